"""Paired A/B of two motifcore builds on shared cores (not a pytest benchmark; prints a summary).

On a machine that other jobs load, separate runs of ``scripts/contention.py`` minutes apart differ by
more than the effects being measured. Here four long-lived processes -- build A and build B, each at
1 and 2 threads -- take turns, in a random order every cycle, doing ``--per`` training steps of
``784-3000-3000-3000-10`` (m = 1, d = 0.1, batch 128) while one competitor runs throughout (the
competitors and import orders of ``scripts/contention.py``). Each cycle gives every process the same
minute of the machine, so the per-cycle ratios (2 threads / 1 thread of a build, B / A at a thread
count) compare like with like; their medians are printed.

The process started first ran up to ~30 % slower, at 1 thread, than an identical one started after it
on a loaded 2-core VM: ``--orders 2`` repeats the run with B started first and reports both orders.

A build is a Python interpreter, optionally followed by ``:DIR`` where DIR holds a ``motifcore``
package (with its compiled ``_core``) that is imported instead of the interpreter's own, e.g.:

    python scripts/contention_ab.py --a /venv_old/bin/python --b /venv_new/bin/python --competitor busy-2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

CHILD = r"""
import os, sys, time
if os.environ.get("AB_PACKAGE_DIR"):  # import motifcore from this folder, not an editable install
    sys.meta_path = [f for f in sys.meta_path if "editable" not in type(f).__module__
                     and "skbc" not in type(f).__module__]
    sys.path.insert(0, os.environ["AB_PACKAGE_DIR"])
if sys.argv[1] == "1":
    import torch  # noqa: F401
import numpy as np
import motifcore
threads, per, loop = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
sizes = [784, 3000, 3000, 3000, 10]
rng = np.random.default_rng(0)
net = motifcore.MotifMLP(sizes, motif=1, density=0.1, distribution="uniform", seed=0, num_threads=threads)
x = rng.standard_normal((128, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], 128).astype(np.int64)
for _ in range(3):
    net.train_step(x, y, 0.01)
print("ready", flush=True)
while loop:
    net.train_step(x, y, 0.01)
for line in sys.stdin:
    ts = []
    for _ in range(per):
        t0 = time.perf_counter()
        net.train_step(x, y, 0.01)
        ts.append(time.perf_counter() - t0)
    print(" ".join(f"{t:.6f}" for t in ts), flush=True)
"""

COMPETITORS = ("quiet", "motifcore-2t", "busy-1", "busy-2")


def spawn(build: str, torch_first: bool, threads: int, per: int, loop: bool) -> subprocess.Popen:
    python, _, package_dir = build.partition(":")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MOTIFCORE_NUM_THREADS", "OMP_NUM_THREADS")}
    if package_dir:
        env["AB_PACKAGE_DIR"] = package_dir
    args = ["1" if torch_first else "0", str(threads), str(per), "1" if loop else "0"]
    p = subprocess.Popen([python, "-c", CHILD, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=env)
    if p.stdout is None or p.stdout.readline().strip() != "ready":
        p.kill()
        raise RuntimeError(f"{build} did not start")
    return p


def one_order(builds: Sequence[str], competitor: str, torch_first: bool, cycles: int,
              per: int) -> Tuple[Dict[Tuple[int, int], List[float]], List[float]]:
    procs: Dict[Tuple[int, int], subprocess.Popen] = {}
    comp: List[subprocess.Popen] = []
    try:
        for b, build in enumerate(builds):
            for threads in (1, 2):
                procs[(b, threads)] = spawn(build, torch_first, threads, per, False)
        if competitor == "motifcore-2t":
            comp.append(spawn(builds[0], torch_first, 2, per, True))
        elif competitor.startswith("busy-"):
            comp += [subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
                     for _ in range(int(competitor.split("-")[1]))]
        time.sleep(0.5)
        times: Dict[Tuple[int, int], List[float]] = {k: [] for k in procs}
        loads = []
        for _ in range(cycles):
            order = list(procs)
            random.shuffle(order)
            for k in order:
                p = procs[k]
                assert p.stdin is not None and p.stdout is not None
                p.stdin.write("go\n")
                p.stdin.flush()
                times[k].append(statistics.median(float(v) for v in p.stdout.readline().split()))
            loads.append(os.getloadavg()[0])
        return times, loads
    finally:
        for p in comp + list(procs.values()):
            p.kill()
            p.wait()


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="baseline build: PYTHON[:PACKAGE_DIR]")
    ap.add_argument("--b", required=True, help="new build: PYTHON[:PACKAGE_DIR]")
    ap.add_argument("--competitor", default="quiet", choices=COMPETITORS)
    ap.add_argument("--torch-first", action="store_true", help="import torch before motifcore")
    ap.add_argument("--cycles", type=int, default=16)
    ap.add_argument("--per", type=int, default=3, help="steps per turn (a turn reports their median)")
    ap.add_argument("--orders", type=int, default=2, choices=(1, 2), help="2: also run with B started first")
    ap.add_argument("--json", help="also write the per-cycle times here")
    a = ap.parse_args(argv)
    out = {}
    for order in range(a.orders):
        builds = [a.a, a.b] if order == 0 else [a.b, a.a]
        names = ["A", "B"] if order == 0 else ["B", "A"]
        times, loads = one_order(builds, a.competitor, a.torch_first, a.cycles, a.per)
        t = {(names[b], th): v for (b, th), v in times.items()}
        print(f"{a.competitor}, torch first: {a.torch_first}, {names[0]} started first: {a.cycles} cycles of {a.per} "
              f"steps, 1-min load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
        for n in ("A", "B"):
            r = [y / x for x, y in zip(t[(n, 1)], t[(n, 2)])]
            print(f"  {n}: 1 thread {1e3 * statistics.median(t[(n, 1)]):7.1f} ms, 2 threads "
                  f"{1e3 * statistics.median(t[(n, 2)]):7.1f} ms, t2 / t1 per cycle: median {statistics.median(r):.3f}")
        for th in (1, 2):
            r = [y / x for x, y in zip(t[("A", th)], t[("B", th)])]
            print(f"  B / A at {th} thread(s), per cycle: median {statistics.median(r):.3f}")
        out[f"order{order}"] = {f"{n}|{th}": v for (n, th), v in t.items()} | {"loads": loads}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
