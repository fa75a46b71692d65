"""Time one Fashion-MNIST training epoch of the paper network per motif size (training iterations
only, like the paper's protocol) and write them as JSON for scripts/results_table.py.

Usage: MOTIFCORE_DATA=../shared/data python scripts/epoch_time.py OUT.json [--threads 2] [--epochs 2]
Run it on a quiet machine: the numbers are wall-clock medians over the timed epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import motifcore as mc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--motifs", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    X, y, _, _ = mc.datasets.load("fashion-mnist")
    result = {"threads": args.threads, "epochs_timed": args.epochs,
              "machine": platform.processor() or platform.machine(),
              "load_average_before": os.getloadavg(), "build": mc.build_info(), "seconds_per_epoch": {}}
    for m in args.motifs:
        model = mc.MotifMLP([784, 3000, 3000, 3000, 10], motif=m, density=0.1, distribution="uniform", seed=0, num_threads=args.threads)
        times = []
        for e in range(args.epochs):
            t0 = time.perf_counter()
            model.train_epoch(X, y, batch_size=128, lr=0.01, seed=e, check=False)
            times.append(time.perf_counter() - t0)
        result["seconds_per_epoch"][str(m)] = statistics.median(times)
        print(f"m={m}: {statistics.median(times):.2f} s/epoch ({', '.join(f'{t:.2f}' for t in times)})", flush=True)
    result["load_average_after"] = os.getloadavg()
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
