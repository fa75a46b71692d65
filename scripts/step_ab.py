"""Interleaved A/B of two motifcore builds on one training step (not a pytest benchmark; prints a table).

Two long-lived child processes, one per build, take turns doing ``--per`` SGD-with-momentum steps of
``784-3000-3000-3000-10`` (density 0.1, batch 128, ``MotifMLP.train_step``; ``--sizes``, ``--batch``,
``--epsilon`` change the network) for ``--rounds`` rounds; every step is timed by wall clock and by the process's CPU time. At 1 thread the CPU time
leaves out the time the step spent descheduled, which on a shared machine is most of the noise
(caches shared with other processes still are not). Minima and medians per build, and A / B
(above 1: B is faster).

A build is a Python interpreter, optionally followed by ``:DIR`` where DIR holds a ``motifcore``
package imported instead of the interpreter's own, e.g.:

    python scripts/step_ab.py --a /venv_main/bin/python --b /venv_new/bin/python --threads 1 2
    MOTIFCORE_SIMD=avx2 python scripts/step_ab.py --a ... --b ...   # the children inherit the level
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from typing import List, Tuple

CHILD = r"""
import os, sys, time
if os.environ.get("AB_PACKAGE_DIR"):
    sys.meta_path = [f for f in sys.meta_path if "editable" not in type(f).__module__
                     and "skbc" not in type(f).__module__]
    sys.path.insert(0, os.environ["AB_PACKAGE_DIR"])
import numpy as np
import motifcore
threads, per, m = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sizes, batch, eps = [int(v) for v in sys.argv[4].split("-")], int(sys.argv[5]), float(sys.argv[6])
rng = np.random.default_rng(0)
sparsity = dict(epsilon=eps) if eps > 0 else dict(density=0.1)
net = motifcore.MotifMLP(sizes, motif=m, distribution="uniform", seed=0, num_threads=threads, **sparsity)
x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], batch).astype(np.int64)
for _ in range(3):
    net.train_step(x, y, 0.01, 0.9)
print("ready", motifcore.build_info()["simd"], flush=True)
for line in sys.stdin:
    out = []
    for _ in range(per):
        w0, c0 = time.perf_counter(), time.process_time()
        net.train_step(x, y, 0.01, 0.9)
        out.append(f"{time.perf_counter() - w0:.6f},{time.process_time() - c0:.6f}")
    print(" ".join(out), flush=True)
"""


def start(build: str, threads: int, per: int, m: int, sizes: str, batch: int, eps: float) -> Tuple[subprocess.Popen, str]:
    python, _, pkg = build.partition(":")
    env = dict(os.environ)
    if pkg:
        env["AB_PACKAGE_DIR"] = pkg
    p = subprocess.Popen([python, "-c", CHILD, str(threads), str(per), str(m), sizes, str(batch), str(eps)],
                         stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env)
    ready = p.stdout.readline().split()
    if not ready or ready[0] != "ready":
        raise SystemExit(f"{build}: child did not start")
    return p, ready[1]


def turn(p: subprocess.Popen) -> List[Tuple[float, float]]:
    p.stdin.write("go\n")
    p.stdin.flush()
    return [tuple(float(v) for v in s.split(",")) for s in p.stdout.readline().split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="baseline build: PYTHON[:PACKAGE_DIR]")
    ap.add_argument("--b", required=True, help="new build: PYTHON[:PACKAGE_DIR]")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per", type=int, default=3, help="steps per turn")
    ap.add_argument("--motif", type=int, default=1)
    ap.add_argument("--sizes", default="784-3000-3000-3000-10")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epsilon", type=float, default=0.0, help="SET's epsilon instead of density 0.1 (0: density)")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    for t in args.threads:
        pa, simd_a = start(args.a, t, args.per, args.motif, args.sizes, args.batch, args.epsilon)
        pb, simd_b = start(args.b, t, args.per, args.motif, args.sizes, args.batch, args.epsilon)
        res = {"A": [], "B": []}
        for r in range(args.rounds):   # alternate who goes first
            order = [("A", pa), ("B", pb)] if r % 2 == 0 else [("B", pb), ("A", pa)]
            for name, p in order:
                res[name].extend(turn(p))
        for p in (pa, pb):
            p.stdin.close()
            p.wait()
        sparsity = f"epsilon {args.epsilon:g}" if args.epsilon > 0 else "density 0.1"
        print(f"{args.sizes}, {sparsity}, batch {args.batch}, threads {t}, m = {args.motif}, SIMD {simd_a} / {simd_b}, {args.rounds} rounds x {args.per} steps, "
              f"1-min load {load:.1f} -> {os.getloadavg()[0]:.1f}")
        stats = {}
        for name in ("A", "B"):
            wall = [w for w, _ in res[name]]
            cpu = [c for _, c in res[name]]
            stats[name] = (min(wall), statistics.median(wall), min(cpu), statistics.median(cpu))
            print(f"  {name}: wall min {1e3 * stats[name][0]:7.2f} ms, median {1e3 * stats[name][1]:7.2f} ms; "
                  f"CPU min {1e3 * stats[name][2]:7.2f} ms, median {1e3 * stats[name][3]:7.2f} ms")
        a, b = stats["A"], stats["B"]
        print(f"  A / B: wall min {a[0] / b[0]:.3f}x, median {a[1] / b[1]:.3f}x; "
              f"CPU min {a[2] / b[2]:.3f}x, median {a[3] / b[3]:.3f}x")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
