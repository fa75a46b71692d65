"""Cost of one RigL / Motif-RigL mask update on the paper network, next to a training step.

The network is 784-3000-3000-3000-10 at block density 0.1 on Fashion-MNIST, batch 128. One update
is what ``Trainer(evolution="rigl")`` runs at step 0 (the largest fraction, f = 0.3, every layer):
the forward and backward of one batch without an optimizer step, the exact top-k of the block
gradients of every position that is not kept, the drop and the growth. A training step is one
batch of SGD with momentum inside ``train_epoch``. Steps and updates alternate; the script prints
medians over ``--repeats`` of wall-clock and of process CPU time (on a machine shared with other
jobs, the CPU time of a 1-thread run is the steadier measure; at 2 threads it includes the
threads' waiting).

Usage: MOTIFCORE_DATA=../shared/data python scripts/rigl_cost.py [--threads 1 2] [--motifs 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import motifcore as mc
import numpy as np
from motifcore.train.updaters import RigL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--motifs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="training steps per timed train_epoch call")
    ap.add_argument("--topk", default="exact", choices=("exact", "sampled"))
    args = ap.parse_args()
    X, y, _, _ = mc.datasets.load("fashion-mnist")
    B = 128
    print(f"load average before: {os.getloadavg()}")
    print(f"{'m':>2} {'threads':>7} {'blocks':>10} {'step wall s':>12} {'update wall s':>14} {'ratio':>6} "
          f"{'step cpu s':>11} {'update cpu s':>13} {'ratio':>6}")
    for m in args.motifs:
        for threads in args.threads:
            model = mc.MotifMLP([784, 3000, 3000, 3000, 10], motif=m, density=0.1, seed=0, num_threads=threads)
            rng = np.random.default_rng(0)
            rigl = RigL(topk=args.topk)
            layers = set(range(len(model.layers)))
            wall: dict[str, list[float]] = {"step": [], "update": []}
            cpu: dict[str, list[float]] = {"step": [], "update": []}
            # step and update alternate, so both see the same load on a shared machine
            for r in range(args.repeats):
                order = rng.permutation(X.shape[0])[: args.steps * B]
                w0, c0 = time.perf_counter(), time.process_time()
                model.train_epoch(X, y, batch_size=B, lr=0.01, order=order, check=False)
                wall["step"].append((time.perf_counter() - w0) / args.steps)
                cpu["step"].append((time.process_time() - c0) / args.steps)
                rows = rng.permutation(X.shape[0])[:B]
                w0, c0 = time.perf_counter(), time.process_time()
                rigl.update(model, 0, rows, X, y, layers=layers, total_steps=10_000, seed=r, dropout=0.0)
                wall["update"].append(time.perf_counter() - w0)
                cpu["update"].append(time.process_time() - c0)
            ws, wu = statistics.median(wall["step"]), statistics.median(wall["update"])
            cs, cu = statistics.median(cpu["step"]), statistics.median(cpu["update"])
            print(f"{m:>2} {threads:>7} {model.n_blocks:>10,} {ws:>12.4f} {wu:>14.3f} {wu / ws:>6.1f} "
                  f"{cs:>11.4f} {cu:>13.3f} {cu / cs:>6.1f}", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
