"""Where the 2-thread training step loses time in the machine's slow state: CPU samples per kernel
in windows of the fast and of the slow state (docs/performance-log.md, "Round four").

``run`` trains ``784-3000-3000-3000-10`` (density 0.1, m = 1, batch 128) at ``--threads`` threads in
windows of 1.5 s, each after one ``scripts/core_probe.c`` run, and prints each window's monotonic
start and end and its median step time. Run it under ``perf record -k CLOCK_MONOTONIC`` (a build
with symbols: ``pip install --target DIR -C cmake.build-type=RelWithDebInfo .``). ``split`` reads
the windows and ``perf script`` and prints CPU milliseconds per step of each kernel in the fast
windows (median step below ``--fast-ms``) and in the slow ones (above ``--slow-ms``), or, with
``--by-probe NS``, in the windows whose probe's round trip was below NS and at or above it::

    PYTHONPATH=DIR perf record -k CLOCK_MONOTONIC -o /tmp/win.data python scripts/state_profile.py run 36 > /tmp/win.txt
    python scripts/state_profile.py split /tmp/win.txt /tmp/win.data --fast-ms 12.6 --slow-ms 13.8
    python scripts/state_profile.py split /tmp/win.txt /tmp/win.data --by-probe 200
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from typing import Dict, List, Tuple

KERNELS = ["fused_backward", "spmm_tile", "gather_prefetched", "sddmm", "sgd_update", "chunked_update", "Pool::grow",
           "group_backward",
           "expand_bias_act", "gemm", "rows_to_panel", "parallel_run"]


def run(windows: int, threads: int, probe: str) -> None:
    import numpy as np
    from motifcore import MotifMLP
    from scaling_ab import probe as core_probe  # (scripts/ is on the path when run as a script)

    model = MotifMLP([784, 3000, 3000, 3000, 10], motif=1, density=0.1, seed=0, num_threads=threads)
    rng = np.random.default_rng(0)
    xn = rng.random((128, 784), dtype=np.float32)
    yn = rng.integers(0, 10, 128)
    for _ in range(5):
        model.train_step(xn, yn, lr=0.01, momentum=0.9, weight_decay=5e-4)
    for w in range(windows):
        rt = core_probe(probe)[0]
        start, ts = time.clock_gettime(time.CLOCK_MONOTONIC), []
        end = time.perf_counter() + 1.5
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            model.train_step(xn, yn, lr=0.01, momentum=0.9, weight_decay=5e-4)
            ts.append(time.perf_counter() - t0)
        stop = time.clock_gettime(time.CLOCK_MONOTONIC)
        print(f"window {w} rt {rt} mono {start:.3f} {stop:.3f} steps {len(ts)} median {1e3 * np.median(ts):.2f}",
              flush=True)


def split(windows_file: str, perf_data: str, fast_ms: float, slow_ms: float, hz: float, by_probe: int = 0) -> None:
    wins: List[Tuple[float, float, float]] = []
    for line in open(windows_file):
        p = line.split()
        if p and p[0] == "window":
            wins.append((float(p[5]), float(p[6]), float(p[-1]), int(p[3])))
    if by_probe:
        groups = {"fast": [w[:3] for w in wins if w[3] < by_probe], "slow": [w[:3] for w in wins if w[3] >= by_probe]}
    else:
        groups = {"fast": [w[:3] for w in wins if w[2] < fast_ms], "slow": [w[:3] for w in wins if w[2] > slow_ms]}
    out = subprocess.run(["perf", "script", "-i", perf_data, "-F", "tid,time,ip,sym"], capture_output=True,
                         text=True, check=True).stdout
    counts: Dict[str, collections.Counter] = {k: collections.Counter() for k in groups}

    def group_of(t: float) -> str:
        for k, ws in groups.items():
            if any(a <= t <= b for a, b, _ in ws):
                return k
        return ""

    t = None
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+([\d.]+):\s*(.*)$", line)
        if m:
            t, sym = float(m.group(2)), m.group(3).strip()
            if not sym:
                continue
        else:
            sym = line.strip()
            if t is None or not sym:
                continue
        k, t = group_of(t), None
        if not k:
            continue
        sym = re.sub(r"^[0-9a-f]+\s+", "", sym)
        counts[k][next((n for n in KERNELS if n in sym), sym[:50])] += 1
    steps = {k: sum((b - a) / (m * 1e-3) for a, b, m in ws) for k, ws in groups.items()}
    rule = (f"probe < {by_probe} ns", f"probe >= {by_probe} ns") if by_probe else (f"< {fast_ms} ms", f"> {slow_ms} ms")
    print(f"windows: {len(groups['fast'])} fast ({rule[0]}), {len(groups['slow'])} slow ({rule[1]}); "
          f"CPU ms per step of each kernel (samples at {hz:g} Hz, both threads)")
    def per_step(k: str, s: str) -> float:
        return counts[k][s] / max(steps[k], 1)

    names = sorted(set(counts["fast"]) | set(counts["slow"]),
                   key=lambda s: -(per_step("fast", s) + per_step("slow", s)))
    for s in names[:14]:
        f, sl = per_step("fast", s) * 1e3 / hz, per_step("slow", s) * 1e3 / hz
        print(f"  {s:<50} fast {f:6.2f}  slow {sl:6.2f}  (+{sl - f:.2f})")


def main(argv: List[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("windows", type=int)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--probe", default="/tmp/core_probe")
    s = sub.add_parser("split")
    s.add_argument("windows_file")
    s.add_argument("perf_data")
    s.add_argument("--fast-ms", type=float, default=0.0)
    s.add_argument("--slow-ms", type=float, default=0.0)
    s.add_argument("--by-probe", type=int, default=0, metavar="NS",
                   help="group the windows by their probe's round trip (fast below NS) instead of step time")
    s.add_argument("--hz", type=float, default=4000.0, help="perf's sampling rate (cpu-clock default: 4000)")
    a = p.parse_args(argv)
    if a.cmd == "run":
        run(a.windows, a.threads, a.probe)
    else:
        if not a.by_probe and not (a.fast_ms and a.slow_ms):
            p.error("split needs --fast-ms and --slow-ms, or --by-probe")
        split(a.windows_file, a.perf_data, a.fast_ms, a.slow_ms, a.hz, a.by_probe)


if __name__ == "__main__":
    main(sys.argv[1:])
