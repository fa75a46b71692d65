"""Cost of one RigL / Motif-RigL mask update on the paper network, next to a training step.

The network is 784-3000-3000-3000-10 at block density 0.1 on Fashion-MNIST, batch 128. One update
is what ``Trainer(evolution="rigl")`` runs at step 0 (the largest fraction, f = 0.3, every layer):
the forward and backward of one batch without an optimizer step, the exact top-k of the block
gradients of every position that is not kept, the drop and the growth. A training step is one
batch of SGD with momentum inside ``train_epoch``. Both are wall-clock medians over ``--repeats``.

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
    print(f"{'m':>2} {'threads':>7} {'blocks':>10} {'train step s':>13} {'grad_step s':>12} {'update s':>9} "
          f"{'update/step':>12} {'% of 100 steps':>15}")
    for m in args.motifs:
        for threads in args.threads:
            model = mc.MotifMLP([784, 3000, 3000, 3000, 10], motif=m, density=0.1, seed=0, num_threads=threads)
            rng = np.random.default_rng(0)
            steps = []
            for _ in range(args.repeats):
                order = rng.permutation(X.shape[0])[: args.steps * B]
                t0 = time.perf_counter()
                model.train_epoch(X, y, batch_size=B, lr=0.01, order=order, check=False)
                steps.append((time.perf_counter() - t0) / args.steps)
            rigl = RigL(topk=args.topk)
            layers = set(range(len(model.layers)))
            grads, updates = [], []
            for r in range(args.repeats):
                rows = rng.permutation(X.shape[0])[:B]
                ks = [int(0.3 * layer.n_blocks) for layer in model.layers]
                t0 = time.perf_counter()
                model.grad_step(X, y, rows, ks, ks, [args.topk] * len(ks), [r] * len(ks))
                grads.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                rigl.update(model, 0, rows, X, y, layers=layers, total_steps=10_000, seed=r, dropout=0.0)
                updates.append(time.perf_counter() - t0)
            step, grad, upd = (statistics.median(v) for v in (steps, grads, updates))
            print(f"{m:>2} {threads:>7} {model.n_blocks:>10,} {step:>13.4f} {grad:>12.3f} {upd:>9.3f} "
                  f"{upd / step:>12.1f} {100 * upd / (100 * step):>14.1f}%")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
