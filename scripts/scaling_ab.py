"""How the 2-thread speed-up of two engine builds compares, in each of the machine's two states.

On this machine the two cores read each other's writes either fast (a cache-line round trip of
80-130 ns) or slow (350-470 ns; docs/performance-log.md, "the machine's two states"), and the state
changes within minutes. This script alternates the builds given with ``--site`` (each a directory
holding an installed ``motifcore``, e.g. made by ``pip install --target DIR .``) for ``--cycles``
cycles; each cycle first runs ``scripts/core_probe.c`` (compiled to ``--probe``) and then, per
build, a fresh process that times the forward pass (``decision_function`` of 128 samples) and the
SGD step (``train_step``) of ``784-3000-3000-3000-10`` at density 0.1, m = 1, at 1 and at 2
threads (two rounds, each the median of 40 forwards and ``--steps`` steps, 15 unless given), then
runs the probe again. Each child prints which ``motifcore`` it imported: the one in its ``--site``
directory, also where an editable install is present (``import_from``). At the end it prints, per
state and build, the medians of the speed-ups and of the step times: a cycle is fast or slow when
both of its probes say so, mixed when they differ (the state can change within a cycle).

    gcc -O2 -mavx512f -mfma -pthread scripts/core_probe.c -o /tmp/core_probe
    python scripts/scaling_ab.py --site old=/tmp/site_old --site new=/tmp/site_new --cycles 20

A benchmark, not a test: run it on a quiet machine, nothing else running.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Tuple

LINE = re.compile(r"forward 1T ([\d.]+) 2T ([\d.]+) x([\d.]+) \| step 1T ([\d.]+) 2T ([\d.]+) x([\d.]+)")


def import_from(site: str) -> None:
    """Makes ``import motifcore`` load the build in ``site``. An editable install puts an import
    hook ahead of ``sys.path`` (so ``PYTHONPATH`` alone would load the editable build for every
    side, as it did for this script's runs before 2026-12-07 08:30 UTC); the hook is dropped, and the
    module's file is checked."""
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
    sys.path.insert(0, site)
    import motifcore

    where, root = os.path.realpath(motifcore.__file__), os.path.realpath(site)
    if not where.startswith(root + os.sep):
        raise SystemExit(f"motifcore was imported from {where}, not from {site}")
    print(f"motifcore {where}", flush=True)


def measure(rounds: int, site: str, steps: int = 15) -> None:
    """One build (the one in ``site``): forward and step medians at 1 and 2 threads, ``rounds`` times."""
    import_from(site)
    import numpy as np
    from motifcore import MotifMLP

    rng = np.random.default_rng(0)
    xn = rng.random((128, 784), dtype=np.float32)
    yn = rng.integers(0, 10, 128)
    models = {t: MotifMLP([784, 3000, 3000, 3000, 10], motif=1, density=0.1, seed=0, num_threads=t) for t in (1, 2)}

    def median_ms(f, n: int) -> float:
        for _ in range(3):
            f()
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return 1e3 * float(np.median(ts))

    for _ in range(rounds):
        f1 = median_ms(lambda: models[1].decision_function(xn, batch_size=128), 40)
        f2 = median_ms(lambda: models[2].decision_function(xn, batch_size=128), 40)
        s1 = median_ms(lambda: models[1].train_step(xn, yn), steps)
        s2 = median_ms(lambda: models[2].train_step(xn, yn), steps)
        print(f"forward 1T {f1:.2f} 2T {f2:.2f} x{f1 / f2:.2f} | step 1T {s1:.2f} 2T {s2:.2f} x{s1 / s2:.2f}",
              flush=True)


def probe(path: str) -> Tuple[int, str]:
    """The cache-line round trip between the threads (ns) that ``scripts/core_probe.c`` (compiled to
    ``path``) measures now, and its first output line."""
    line = subprocess.run([path, "1"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    return int(re.search(r"threads (\d+) ns", line).group(1)), line


def probe_ns(path: str) -> int:
    ns, line = probe(path)
    print(line, flush=True)
    return ns


def main(argv: List[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", action="append", default=[], metavar="NAME=DIR", help="a build to compare (twice or more)")
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--probe", default="/tmp/core_probe", help="scripts/core_probe.c, compiled")
    p.add_argument("--slow-ns", type=int, default=200, help="a probe round trip at or above this is the slow state")
    p.add_argument("--measure", type=int, default=0, help=argparse.SUPPRESS)   # (the per-build child process)
    p.add_argument("--site-dir", default="", help=argparse.SUPPRESS)           # (its build)
    p.add_argument("--steps", type=int, default=15, help="timed steps per median (default 15)")
    a = p.parse_args(argv)
    if a.measure:
        measure(a.measure, a.site_dir, a.steps)
        return
    sites = [s.split("=", 1) for s in a.site]
    if len(sites) < 2 or any(len(s) != 2 or not os.path.isdir(s[1]) for s in sites):
        p.error("give two or more --site NAME=DIR, each an existing directory")
    rows: List[Tuple[str, str, Tuple[float, ...]]] = []
    for _ in range(a.cycles):
        before = probe_ns(a.probe)
        cycle: List[Tuple[str, Tuple[float, ...]]] = []
        for name, site in sites:
            print(f"build={name}", flush=True)
            out = subprocess.run([sys.executable, __file__, "--measure", "2", "--site-dir", site, "--steps",
                                  str(a.steps)], capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                print(line, flush=True)
                m = LINE.search(line)
                if m:
                    cycle.append((name, tuple(float(x) for x in m.groups())))
        after = probe_ns(a.probe)
        slow = (before >= a.slow_ns, after >= a.slow_ns)
        state = "slow" if all(slow) else "fast" if not any(slow) else "mixed"
        rows += [(state, name, values) for name, values in cycle]
    summarise(rows, [n for n, _ in sites], a.slow_ns)


def summarise(rows: List[Tuple[str, str, Tuple[float, ...]]], names: List[str], slow_ns: int) -> None:
    print(f"\nmedians per state (both probes of a cycle under {slow_ns} ns: fast, both at or above: slow) and build:")
    for state in ("fast", "slow", "mixed"):
        for name in names:
            xs = [r[2] for r in rows if r[1] == name and r[0] == state]
            if not xs:
                continue
            med: Dict[str, float] = {k: statistics.median(x[i] for x in xs)
                                     for k, i in (("fwd", 2), ("step", 5), ("t1", 3), ("t2", 4))}
            print(f"  {state} {name:<10} n={len(xs):2d}  forward x{med['fwd']:.2f}  step x{med['step']:.2f}  "
                  f"step 1T {med['t1']:.2f} ms  2T {med['t2']:.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
