"""A/B of the MotifLinear training step between two installs of motifcore (issue 20).

Each install runs in its own process (``--base``: a directory whose motifcore that process
imports, also where an editable install is present, e.g. ``pip install --target DIR`` of another
commit; ``--new``: the same for the other side, default: the installed package). The processes
build the network of scripts/torch_layers.py (784-3000-3000-3000-10, density 0.1, batch 128,
m = 1) and time, when told, 3 steps of either
``MotifMLP.train_step`` or the MotifLinear step in the setup docs/torch.md recommends
(``SGD(fused=True)``, torch on 1 thread); the driver alternates sides and step kinds round by
round, so only one process computes at a time and both sides see the same load. Prints, per side,
the best round's wall and process CPU time per step and the MotifLinear / train_step ratio. A
benchmark, not a test; on a shared machine the numbers are indicative only. Run::

    python scripts/torch_ab.py --base /tmp/base_pkg --threads 1 2 --rounds 15
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any, Dict, List


def worker(threads: int, site: str) -> None:
    """Serve commands on stdin: ``ml`` / ``ts`` time 3 steps and print 'wall_ms cpu_ms'. ``site``:
    the directory whose motifcore to import (also over an editable install), or "" for the
    installed one."""
    if site:
        from scaling_ab import import_from  # (scripts/ is on the path when run as a script)

        import_from(site)
    import motifcore as mc
    import numpy as np
    import torch
    from motifcore.torch import from_mlp

    model = mc.MotifMLP([784, 3000, 3000, 3000, 10], motif=1, density=0.1, seed=0, num_threads=threads)
    net = from_mlp(model, num_threads=threads)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    xn = rng.random((128, 784), dtype=np.float32)
    yn = rng.integers(0, 10, 128)
    xt, yt = torch.from_numpy(xn), torch.from_numpy(yn)
    loss_fn = torch.nn.CrossEntropyLoss()

    def motif_linear() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xt), yt).backward()
        opt.step()

    def train_step() -> None:
        model.train_step(xn, yn, lr=0.01, momentum=0.9, weight_decay=5e-4)

    steps = {"ml": motif_linear, "ts": train_step}
    for _ in range(3):
        motif_linear()
        train_step()
    print("ready " + mc.__file__, flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        time.sleep(0.02)          # torch's idle OpenMP threads asleep, as in torch_layers.py
        t, c = time.perf_counter(), time.process_time()
        for _ in range(3):
            steps[cmd]()
        print(f"{(time.perf_counter() - t) / 3 * 1e3:.3f} {(time.process_time() - c) / 3 * 1e3:.3f}", flush=True)


def compare(sides: Dict[str, str], threads: int, rounds: int) -> None:
    procs: Dict[str, Any] = {}
    for name, path in sides.items():
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", str(threads), "--site", path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline().strip()
        if line.startswith("motifcore "):   # import_from's line; the worker's own comes next
            line = p.stdout.readline().strip()
        print(f"{name}: {line}", flush=True)
        procs[name] = p
    best: Dict[Any, List[float]] = {}
    for _ in range(rounds):
        for name, p in procs.items():
            for cmd in ("ts", "ml"):
                p.stdin.write(cmd + "\n")
                p.stdin.flush()
                wall, cpu = map(float, p.stdout.readline().split())
                b = best.setdefault((name, cmd), [float("inf"), float("inf")])
                b[0], b[1] = min(b[0], wall), min(b[1], cpu)
    for p in procs.values():
        p.stdin.write("quit\n")
        p.stdin.flush()
        p.wait()
    print(f"threads = {threads}, best of {rounds} interleaved rounds of 3 steps (ms per step: wall / process CPU)")
    for name in sides:
        ts, ml = best[(name, "ts")], best[(name, "ml")]
        print(f"  {name:<6} train_step {ts[0]:6.2f} / {ts[1]:6.2f}   MotifLinear {ml[0]:6.2f} / {ml[1]:6.2f}   "
              f"MotifLinear / train_step: wall {ml[0] / ts[0]:.3f}, CPU {ml[1] / ts[1]:.3f}", flush=True)


def main(argv: Any = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=False, default="", help="directory holding the 'base' side's motifcore")
    p.add_argument("--new", default="", help="the same for the 'new' side (default: the installed package)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--site", default="", help=argparse.SUPPRESS)   # (the worker's build)
    args = p.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.site)
        return
    if not args.base:
        p.error("--base is required (a directory holding the other motifcore install)")
    for t in args.threads:
        compare({"base": args.base, "new": args.new}, t, args.rounds)


if __name__ == "__main__":
    main()
