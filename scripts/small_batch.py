"""Small batches: one batch-2 Fashion-MNIST training epoch of ``784-1000-1000-1000-10`` at SET's
epsilon = 20 (the SET reference implementation's own example setting), m = 1 (not a pytest
benchmark; prints a Markdown table).

At batch 2 an epoch is 30,000 steps of a few hundred thousand multiply-adds each, so the cost is
per-call overhead (parallel-region fork/join, GroupSum/Expand/layout passes), not arithmetic. The
epoch is one native call (``MotifMLP.train_epoch``). ``--samples N`` trains on the first N samples
of a fixed permutation only and extrapolates the epoch time linearly to the 60,000 samples (the
table says so); the default is the whole epoch. Each thread count is timed ``--repeats`` times on a
fresh model; medians and minima are printed with the 1-minute load average. The issue's target is
the epoch >= 3x faster than its 16.8 s (<= 5.6 s).

The learning rate is 0.005, not the reference's 0.01: at 0.01 (momentum 0.9, batch 2) the model of
seed 1 diverges at step 3,621 (NaN weights in layer 0; the engine raises ``DivergedError``), in
this build and in the one before round two alike. The work per step does not depend on the rate.

    MOTIFCORE_DATA=/path/to/data python scripts/small_batch.py                    # ~2-4 min quiet
    MOTIFCORE_DATA=/path/to/data python scripts/small_batch.py --samples 6000     # ~20 s, extrapolated
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Optional, Sequence

import numpy as np

SIZES = [784, 1000, 1000, 1000, 10]
BASELINE_EPOCH_S = 16.8     # the measurement of this epoch (before round two)
TARGET_SPEEDUP = 3.0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=0, help="train on this many samples and extrapolate (0: all)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=2e-4)
    ap.add_argument("--dropout", type=float, default=0.0)
    a = ap.parse_args(argv)
    import motifcore as mc

    X, y, _, _ = mc.datasets.load("fashion-mnist")
    n_full = X.shape[0]
    n = n_full if a.samples <= 0 else min(a.samples, n_full)
    order = np.random.default_rng(0).permutation(n_full)[:n].astype(np.int64)
    scale = n_full / n
    steps = -(-n // a.batch)
    print(f"1-min load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"{'-'.join(map(str, SIZES))}, epsilon 20, m = 1, batch {a.batch}, {steps:,} steps of "
          f"{n:,} samples{'' if n == n_full else f' (x{scale:.1f} extrapolated to {n_full:,})'}; "
          f"lr {a.lr}, momentum {a.momentum}, weight decay {a.weight_decay}, dropout {a.dropout}\n")
    print("| threads | epoch s, median (min) | per step ms | vs 16.8 s | target <= 5.6 s | 1-min load |")
    print("|---|---|---|---|---|---|")
    for t in (int(s) for s in a.threads.split(",") if s):
        times = []
        for r in range(a.repeats):
            net = mc.MotifMLP(SIZES, motif=1, epsilon=20.0, seed=r, num_threads=t)
            net.train_epoch(X, y, batch_size=a.batch, lr=a.lr, order=order[: 64 * a.batch],
                            momentum=a.momentum, weight_decay=a.weight_decay, dropout=a.dropout)  # warm-up
            t0 = time.perf_counter()
            loss = net.train_epoch(X, y, batch_size=a.batch, lr=a.lr, order=order, momentum=a.momentum,
                                   weight_decay=a.weight_decay, dropout=a.dropout, check=False)
            times.append((time.perf_counter() - t0) * scale)
            if not np.isfinite(loss):
                raise RuntimeError(f"non-finite training loss {loss} (threads {t}, repeat {r})")
        med = statistics.median(times)
        label = "" if n == n_full else " (extrapolated)"
        print(f"| {t} | {med:.2f} ({min(times):.2f}){label} | {1e3 * med / (n_full / a.batch):.3f} | "
              f"{BASELINE_EPOCH_S / med:.2f}x | {'met' if BASELINE_EPOCH_S / med >= TARGET_SPEEDUP else 'not met'} "
              f"| {os.getloadavg()[0]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
