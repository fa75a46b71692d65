"""The training step on shared cores: 1 and 2 threads, quiet and beside competitors, with ``torch``
imported before motifcore and not (not a pytest benchmark; prints Markdown tables).

Each measurement is a fresh subprocess (the import order decides which libgomp the process uses and
when it reads its settings) timing ``--steps`` training steps of ``784-3000-3000-3000-10``, m = 1,
density 0.1, batch 128, after ``--warmup`` steps. Competitors, started before and stopped after
each pair of 1-thread and 2-thread measurements:

* ``quiet``: none;
* ``motifcore-2t``: a second training of the same network on 2 threads, in a loop (with the same
  import order as the measured process: two users of the same stack);
* ``busy-1``, ``busy-2``: one or two single-threaded busy-looping Python processes.

Import orders (``--imports``): ``motifcore`` (motifcore alone), ``torch-first`` (``import torch``
then ``import motifcore``), and two diagnostics: ``torch-first+spin`` (as torch-first, with
``GOMP_SPINCOUNT=1000`` in the environment from process start) and ``torch-first+passive``
(``OMP_WAIT_POLICY=passive`` from process start). Each child reports which libgomp it mapped.

Targets of the performance issue, checked at the end: quiet, 2 threads >= 1.85x faster than 1
thread; under every competitor, in either import order, the 2-thread step no slower than 1.1x
the 1-thread step.

    python scripts/contention.py                     # about 3-6 min on a quiet 2-core machine (estimate)
    python scripts/contention.py --steps 10 --sizes 784,1000,1000,1000,10   # quick check (~1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# The measured step (and the motifcore competitor when loop=1): prints one JSON line (or "ready" lines).
CHILD = r"""
import json, sys, time
torch_first, threads, steps, warmup, loop, sizes = (sys.argv[1] == "1", int(sys.argv[2]), int(sys.argv[3]),
                                                    int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6])
if torch_first:
    import torch  # noqa: F401
import numpy as np
import motifcore
sizes = [int(s) for s in sizes.split(",")]
gomp = sorted({line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line})
rng = np.random.default_rng(0)
net = motifcore.MotifMLP(sizes, motif=1, density=0.1, distribution="uniform", seed=0, num_threads=threads)
x = rng.standard_normal((128, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], 128).astype(np.int64)
for _ in range(warmup):
    net.train_step(x, y, 0.01)
if loop:
    print("ready", flush=True)
    while True:
        net.train_step(x, y, 0.01)
ts = []
c0 = time.process_time()
for _ in range(steps):
    t0 = time.perf_counter()
    net.train_step(x, y, 0.01)
    ts.append(time.perf_counter() - t0)
cpu = (time.process_time() - c0) / steps
print(json.dumps({"median": float(np.median(ts)), "min": min(ts), "cpu": cpu, "libgomp": gomp}), flush=True)
"""

BUSY = "while True:\n    pass\n"

IMPORTS = {
    # name: (import torch first, extra environment from process start)
    "motifcore": (False, {}),
    "torch-first": (True, {}),
    "torch-first+spin": (True, {"GOMP_SPINCOUNT": "1000"}),
    "torch-first+passive": (True, {"OMP_WAIT_POLICY": "passive"}),
}
COMPETITORS = ("quiet", "motifcore-2t", "busy-1", "busy-2")
QUIET_SPEEDUP = 1.85      # quiet: t1 / t2 >= this
SHARED_SLOWDOWN = 1.10    # competitor: t2 / t1 <= this


def child_env(extra: Dict[str, str], pkg_root: str) -> Dict[str, str]:
    env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MOTIFCORE_NUM_THREADS", "OMP_NUM_THREADS"):
        env.pop(k, None)
    env.update(extra)
    env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_competitor(kind: str, torch_first: bool, env: Dict[str, str], sizes: str) -> List[subprocess.Popen]:
    procs: List[subprocess.Popen] = []
    if kind == "motifcore-2t":
        p = subprocess.Popen([sys.executable, "-c", CHILD, "1" if torch_first else "0", "2", "0", "1", "1", sizes],
                             stdout=subprocess.PIPE, text=True, env=env)
        procs.append(p)
        line = p.stdout.readline() if p.stdout else ""
        if line.strip() != "ready":
            stop(procs)
            raise RuntimeError("the motifcore competitor did not start")
    elif kind.startswith("busy-"):
        for _ in range(int(kind.split("-")[1])):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY], env=env))
    time.sleep(0.5 if procs else 0.0)
    return procs


def stop(procs: Sequence[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def measure(torch_first: bool, threads: int, env: Dict[str, str], steps: int, warmup: int, sizes: str) -> Dict:
    out = subprocess.run([sys.executable, "-c", CHILD, "1" if torch_first else "0", str(threads), str(steps),
                          str(warmup), "0", sizes], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(imports: Sequence[str], competitors: Sequence[str], steps: int, warmup: int,
        sizes: str, rounds: int = 1) -> Dict[Tuple[str, str, int], Dict]:
    """Results per (import order, competitor, threads): the first round's measurement, with the
    1-thread / 2-thread ratio of every round under ``"rounds"`` (the 2-thread entry)."""
    import motifcore

    pkg_root = str(Path(motifcore.__file__).resolve().parent.parent)   # children import the same package
    results: Dict[Tuple[str, str, int], Dict] = {}
    for imp in imports:
        torch_first, extra = IMPORTS[imp]
        env = child_env(extra, pkg_root)
        for comp in competitors:
            procs = start_competitor(comp, torch_first, env, sizes)
            try:
                measured: List[Dict[int, Dict]] = []
                for rnd in range(rounds):          # 1 and 2 threads interleaved, round after round
                    pair = {}
                    for threads in (1, 2):
                        r = measure(torch_first, threads, env, steps, warmup, sizes)
                        r["load1"] = os.getloadavg()[0]
                        pair[threads] = r
                        if rnd == 0:
                            results[(imp, comp, threads)] = r
                        print(f"  {imp:20s} {comp:13s} t={threads}: median {1e3 * r['median']:8.2f} ms  "
                              f"min {1e3 * r['min']:8.2f} ms  CPU {1e3 * r['cpu']:6.2f} ms/step  "
                              f"load {r['load1']:.2f}", file=sys.stderr, flush=True)
                    measured.append(pair)
                results[(imp, comp, 2)]["rounds"] = [p[1]["median"] / p[2]["median"] for p in measured]
                results[(imp, comp, 2)]["round_measurements"] = [
                    {str(t): {k: v for k, v in m.items() if k != "libgomp"} for t, m in pair.items()}
                    for pair in measured]
            finally:
                stop(procs)
    return results


def table(results: Dict[Tuple[str, str, int], Dict], imports: Sequence[str], competitors: Sequence[str]) -> str:
    lines = ["| import order | competitor | 1 thread: median (min) ms | 2 threads: median (min) ms | "
             "t2 / t1 | target | verdict | 1-min load |", "|---|---|---|---|---|---|---|---|"]
    for imp in imports:
        for comp in competitors:
            a, b = results.get((imp, comp, 1)), results.get((imp, comp, 2))
            if not a or not b:
                continue
            ratio = b["median"] / a["median"]
            rounds = b.get("rounds", [])
            if comp == "quiet" and len(rounds) > 1:   # the verdict of the rounds' median
                target = f"median of {len(rounds)} rounds' t1 / t2 >= {QUIET_SPEEDUP}"
                ok = float(np.median(rounds)) >= QUIET_SPEEDUP
                shown = f"{ratio:.2f} in round 1 (median speedup {float(np.median(rounds)):.2f}x)"
            elif comp == "quiet":
                target = f"t1 / t2 >= {QUIET_SPEEDUP}"
                ok = a["median"] / b["median"] >= QUIET_SPEEDUP
                shown = f"{ratio:.2f} (speedup {a['median'] / b['median']:.2f}x)"
            else:
                target = f"t2 / t1 <= {SHARED_SLOWDOWN}"
                ok = ratio <= SHARED_SLOWDOWN
                shown = f"{ratio:.2f}"
            lines.append(f"| {imp} | {comp} | {1e3 * a['median']:.1f} ({1e3 * a['min']:.1f}) | "
                         f"{1e3 * b['median']:.1f} ({1e3 * b['min']:.1f}) | {shown} | {target} | "
                         f"{'met' if ok else 'NOT met'} | {a['load1']:.1f}-{b['load1']:.1f} |")
    for imp in imports:                    # the interleaved rounds of the quiet target
        sp = (results.get((imp, "quiet", 2)) or {}).get("rounds", [])
        if len(sp) > 1:
            met = sum(v >= QUIET_SPEEDUP for v in sp)
            lines.append(f"\n{imp}, quiet, {len(sp)} rounds of 1 then 2 threads: speedups "
                         f"{', '.join(f'{v:.2f}' for v in sp)}; median {float(np.median(sp)):.2f}x, "
                         f"{met} of {len(sp)} rounds >= {QUIET_SPEEDUP}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement (default 30)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--imports", default="motifcore,torch-first",
                    help=f"comma-separated import orders among {','.join(IMPORTS)}")
    ap.add_argument("--competitors", default=",".join(COMPETITORS),
                    help=f"comma-separated competitors among {','.join(COMPETITORS)}")
    ap.add_argument("--sizes", default="784,3000,3000,3000,10", help="layer widths of the network")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--rounds", type=int, default=1,
                    help="pairs of 1- and 2-thread measurements per competitor, interleaved (default 1); "
                         "the quiet target is then read as the median of the rounds' speedups")
    a = ap.parse_args(argv)
    imports = [s for s in a.imports.split(",") if s]
    competitors = [s for s in a.competitors.split(",") if s]
    bad = [s for s in imports if s not in IMPORTS] + [s for s in competitors if s not in COMPETITORS]
    if a.rounds < 1:
        ap.error("--rounds must be >= 1")
    if bad:
        ap.error(f"unknown import order or competitor: {', '.join(bad)}")
    if "torch" in ",".join(imports):
        try:
            import torch  # noqa: F401
        except ImportError:
            imports = [s for s in imports if not s.startswith("torch")]
            print("torch is not installed: torch-first orders skipped", file=sys.stderr)
    print(f"1-min load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; network {a.sizes}, "
          f"m = 1, d = 0.1, batch 128; {a.steps} timed steps after {a.warmup}", flush=True)
    results = run(imports, competitors, a.steps, a.warmup, a.sizes, a.rounds)
    print()
    print(table(results, imports, competitors))
    gomp = {imp: results[(imp, competitors[0], 1)]["libgomp"] for imp in imports}
    print()
    for imp, libs in gomp.items():
        print(f"- {imp}: libgomp mapped: {', '.join(libs) or 'none'}")
    print(f"- 1-min load average at the end: {os.getloadavg()[0]:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{k[0]}|{k[1]}|{k[2]}": v for k, v in results.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
