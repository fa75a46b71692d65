"""How motifcore's OpenMP threads behave when the cores are shared (not a pytest benchmark).

Runs the paper network's training step (batch 128, m = 1, 2) and batch-1 ``predict_proba`` (m = 4)
with 1 and 2 threads, each in a fresh subprocess under ``OMP_WAIT_POLICY`` unset / ``passive`` /
``active`` (libgomp reads it once at start-up), and prints a Markdown table of medians and minima
with the 1-minute load average. On a quiet machine the policies should agree; when other processes
compete for the cores, a spinning barrier can wait a whole scheduler time slice for a descheduled
thread.

    python scripts/wait_policy.py [--repeats 15]      (with motifcore installed)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
import numpy as np
import motifcore
m, threads, what, repeats = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(0)
net = motifcore.MotifMLP([784, 3000, 3000, 3000, 10], motif=m, density=0.1, seed=0, num_threads=threads)
if what == "step":
    x = rng.standard_normal((128, 784)).astype(np.float32)
    y = rng.integers(0, 10, 128).astype(np.int64)
    fn = lambda: net.train_step(x, y, 0.01)
else:
    x = rng.standard_normal((1, 784)).astype(np.float32)
    fn = lambda: net.predict_proba(x)
fn()
ts = []
for _ in range(repeats):
    t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
print(json.dumps({"median": float(np.median(ts)), "min": min(ts)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args()
    import motifcore

    pkg_root = str(Path(motifcore.__file__).resolve().parent.parent)   # the children import the same package
    cases = [("step", 1), ("step", 2), ("predict_proba batch=1", 4)]
    print(f"1-min load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
    print("| workload | m | threads | OMP_WAIT_POLICY | median ms | min ms |")
    print("|---|---|---|---|---|---|")
    for what, m in cases:
        for threads in (1, 2):
            for policy in ("(unset)", "passive", "active"):
                env = dict(os.environ)
                env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "")
                env.pop("OMP_WAIT_POLICY", None)
                if policy != "(unset)":
                    env["OMP_WAIT_POLICY"] = policy
                out = subprocess.run([sys.executable, "-c", CHILD, str(m), str(threads), what.split()[0],
                                      str(a.repeats)], capture_output=True, text=True, env=env, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"| {what} | {m} | {threads} | {policy} | {1e3 * r['median']:.2f} | {1e3 * r['min']:.2f} |",
                      flush=True)
    print(f"\n1-min load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
