"""Two checks of the default recipe at the edges of its use: very short runs and tiny batches.

``short``: ``motifcore train --dataset mnist --epochs 3`` (paper network, m = 1) with the default
recipe, with the paper's recipe (whose 5-epoch warmup, clamped to 2 of the 3 epochs, leaves one
epoch of decay), and with the default recipe at learning rates 3e-4 and 3e-3 -- what the network
reaches in 3 epochs when the rate is tuned for it.

``batch2``: the SET reference code's own settings -- ``3289-1000-1000-1000-2`` with SET's
epsilon = 20 on PCMAC, batch 2, SGD lr 0.01, momentum 0.9 -- for ``--epochs`` epochs and 3 seeds,
with the rest of the default recipe, and with the paper's recipe (no gradient clipping, no
dropout). A run whose loss turns NaN is reported as diverged.

    MOTIFCORE_DATA=../shared/data python scripts/recipe_checks.py short
    MOTIFCORE_DATA=../shared/data python scripts/recipe_checks.py batch2 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def short(seed: int) -> None:
    from motifcore.cli import main

    variants = [("motifcore (default)", []), ("paper", ["--recipe", "paper"]),
                ("motifcore, lr 3e-4", ["--lr", "0.0003"]), ("motifcore, lr 3e-3", ["--lr", "0.003"])]
    print("| recipe | test accuracy after epoch 1 / 2 / 3 |")
    print("| --- | --- |")
    for name, extra in variants:
        with tempfile.TemporaryDirectory() as tmp:
            rc = main(["train", "--dataset", "mnist", "--epochs", "3", "--seed", str(seed), "--no-progress",
                       "--out", tmp, *extra])
            if rc != 0:
                raise SystemExit(f"motifcore train failed for {name}")
            rows = [json.loads(s) for s in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        print(f"| {name} | " + " / ".join(f"{100 * r['val_accuracy']:.2f}" for r in rows) + " |", flush=True)


def batch2(epochs: int, seeds: list[int]) -> None:
    import motifcore as mc
    from motifcore.train.trainer import TrainingDivergedError

    X, y, Xt, yt = mc.datasets.load("skf:PCMAC", seed=0)
    print("| recipe | seed | final test accuracy | best | epochs |")
    print("| --- | --- | --- | --- | --- |")
    for recipe in ("motifcore", "paper"):
        finals = []
        for seed in seeds:
            model = mc.MotifMLP([X.shape[1], 1000, 1000, 1000, 2], epsilon=20, seed=seed)
            tr = mc.Trainer(model, epochs=epochs, recipe=recipe, batch_size=2, optimizer="sgd", lr=0.01,
                            momentum=0.9, seed=seed, progress=False)
            try:
                tr.fit(X, y, Xt, yt)
                acc = tr.history["val_accuracy"]
                finals.append(acc[-1])
                print(f"| {recipe} | {seed} | {100 * acc[-1]:.2f} | {100 * max(acc):.2f} | {len(acc)} |", flush=True)
            except TrainingDivergedError as exc:
                print(f"| {recipe} | {seed} | diverged ({exc}) | - | {tr.epoch} |", flush=True)
        if finals:
            print(f"| {recipe} | mean of {len(finals)} | {100 * np.mean(finals):.2f} | | |", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("check", choices=("short", "batch2"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", default="0,1,2")
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    short(seeds[0]) if a.check == "short" else batch2(a.epochs, seeds)
    sys.exit(0)
