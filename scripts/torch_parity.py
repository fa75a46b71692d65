"""Accuracy parity of motifcore inside PyTorch (issue 20): a plain PyTorch training loop with
``motifcore.torch.MotifLinear`` layers and ``motifcore.torch.SET`` on Fashion-MNIST, against
``motifcore train`` with the same network, recipe and epochs. The issue's target: the two final
test accuracies within 0.3 points.

The recipe (both sides): SGD, momentum 0.9, weight decay 5e-4 (biases included, as the engine
does), batch 128, peak lr 0.01 with a linear warmup of ``--warmup`` epochs and a cosine decay per
step, SET with ``zeta = 0.3`` after every epoch but the last in every layer (fresh He-uniform
regrowth), no dropout, no gradient clipping -- ``motifcore train --recipe paper --evolution set-epoch``
(SET's own schedule; ``"set"`` anneals SET's fraction as RigL's).
``--lr-schedule constant`` trains at the peak lr throughout (no warmup), as SET's own paper does
(Mocanu et al., 2018): under the cosine the last SET updates replace 30 % of every layer while the
learning rate is near zero, and the final accuracy falls with them on both sides (docs/torch.md).
The network: ``--hidden`` widths with motif ``--motif`` at ``--density`` (``--distribution
output-dense``: the output layer dense). Both sides see the same (standardised) data; their
initial weights, shuffling and evolution draws come from their own seeds (the claim is the
accuracy of the method, not a bitwise replay: docs/torch.md and tests/test_torch_layer.py show
that the torch path computes the engine's step).

One json record per seed in ``--out`` (default docs/results/torch/parity/seed<S>.json): the final
(and per-epoch) test accuracies of both sides, the commands and the settings. The final accuracies
compare (after the last epoch, which no SET update follows); the per-epoch ones of the torch loop
are measured after the epoch's SET update, those of ``motifcore train`` before it. Resumable: a side
whose result is in the record is not run again; ``motifcore train`` continues from its
checkpoint (``--resume``) and the torch loop from its own checkpoint of the last finished epoch,
both kept under ``--work`` (default runs/torch-parity, not for the repository).

    python scripts/torch_parity.py --seeds 0 1 2 --threads 2             # the full comparison (50 epochs)
    python scripts/torch_parity.py --seeds 0 1 2 --threads 2 --lr-schedule constant \
        --out docs/results/torch/parity-constant                          # SET at a constant lr
    python scripts/torch_parity.py --seeds 0 --epochs 2 --hidden 256 256 --limit-train 4000 \\
        --out /tmp/parity --work /tmp/parity-work                         # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LR, MOMENTUM, WEIGHT_DECAY, BATCH, ZETA = 0.01, 0.9, 5e-4, 128, 0.3


def cli_command(args: argparse.Namespace, seed: int, out: Path, resume: bool) -> List[str]:
    """The ``motifcore train`` command of one seed (``--resume`` of its checkpoint if asked)."""
    if resume:
        cmd = ["train", "--resume", str(out / "checkpoint.npz")]
    else:
        cmd = ["train", "--dataset", "fashion-mnist", "--recipe", "paper", "--evolution", "set-epoch",
               "--lr-schedule", args.lr_schedule,
               "--distribution", args.distribution, "--hidden", *map(str, args.hidden), "--motif", str(args.motif),
               "--density", str(args.density), "--epochs", str(args.epochs), "--seed", str(seed), "--out", str(out)]
        if args.lr_schedule == "cosine":
            cmd += ["--warmup", str(args.warmup)]
        if args.limit_train:
            cmd += ["--limit-train", str(args.limit_train)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return [sys.executable, "-m", "motifcore", *cmd, "--no-progress"]


def run_cli(args: argparse.Namespace, seed: int, work: Path) -> Dict[str, Any]:
    out = work / "motifcore"
    resume = (out / "checkpoint.npz").exists() and not (out / "summary.json").exists()
    if not (out / "summary.json").exists():
        cmd = cli_command(args, seed, out, resume)
        print("$", shlex.join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    summary = json.loads((out / "summary.json").read_text())
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"final_accuracy": summary["final_accuracy"], "epochs_completed": summary["epochs_completed"],
            "accuracy_per_epoch": [e.get("val_accuracy") for e in epochs if e.get("event", "epoch") == "epoch"],
            "mean_seconds_per_epoch": summary["mean_seconds_per_epoch"], "active_blocks": summary["active_blocks"],
            "command": shlex.join(["python", *cli_command(args, seed, out, False)[1:]]), "out": str(out)}


def run_torch(args: argparse.Namespace, seed: int, work: Path) -> Dict[str, Any]:
    """The plain PyTorch loop (docs/torch.md, "A training loop", is this loop on a subset)."""
    import torch

    import motifcore as mc
    from motifcore.torch import SET, MotifLinear

    if args.threads:
        torch.set_num_threads(1)          # torch's ops of the step are small; the engine gets the cores
    X, y, X_test, y_test = mc.datasets.load("fashion-mnist", seed=seed)
    X, y = mc.datasets.subsample(X, y, args.limit_train, seed)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    X_test, y_test = torch.from_numpy(X_test), torch.from_numpy(y_test)

    torch.manual_seed(seed)
    sizes = [784, *args.hidden, 10]
    layers = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        layers.append(MotifLinear(sizes[i], sizes[i + 1], motif=1 if last else args.motif,
                                  density=1.0 if last and args.distribution == "output-dense" else args.density,
                                  activation="linear" if last else "relu", num_threads=args.threads or None))
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = math.ceil(len(X) / BATCH)
    total = args.epochs * steps_per_epoch
    if args.lr_schedule == "constant":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1.0)
    else:
        warmup = args.warmup * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (t + 1) / warmup if t < warmup else
                                                      0.5 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup))))
    evolution = SET(model, optimizer, zeta=ZETA, interval=steps_per_epoch, stop=total, seed=seed)

    ckpt = work / "torch.pt"
    history: List[float] = []
    start = 0
    if ckpt.exists():                     # resume after the last finished epoch
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        evolution.load_state_dict(state["evolution"])
        torch.set_rng_state(state["rng"])
        history, start = state["history"], state["epoch"]
        print(f"torch loop: resuming after epoch {start}", flush=True)
    seconds = []
    for epoch in range(start, args.epochs):
        t0 = time.perf_counter()
        for batch in torch.randperm(len(X)).split(BATCH):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(X[batch]), y[batch])
            loss.backward()
            optimizer.step()
            scheduler.step()
            evolution.step()              # SET after the last step of every epoch but the last
        seconds.append(time.perf_counter() - t0)
        with torch.no_grad():
            correct = sum(int((model(xb).argmax(dim=1) == yb).sum()) for xb, yb in zip(X_test.split(1000),
                                                                                     y_test.split(1000)))
        accuracy = correct / len(y_test)
        history.append(accuracy)
        print(f"torch loop: epoch {epoch + 1}/{args.epochs} loss {loss.item():.4f} test_acc {accuracy:.4f} "
              f"({seconds[-1]:.1f} s)", flush=True)
        work.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "evolution": evolution.state_dict(),
                    "rng": torch.get_rng_state(), "history": history, "epoch": epoch + 1}, tmp)
        os.replace(tmp, ckpt)
    return {"final_accuracy": history[-1], "epochs_completed": len(history), "accuracy_per_epoch": history,
            "mean_seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
            "active_blocks": int(sum(m.n_blocks for m in model)), "set_updates": len(evolution.history)}


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=50, help="epochs (default: motifcore's default run, 50)")
    p.add_argument("--hidden", type=int, nargs="+", default=[3000, 3000, 3000])
    p.add_argument("--motif", type=int, default=1)
    p.add_argument("--density", type=float, default=0.1)
    p.add_argument("--distribution", choices=("output-dense", "uniform"), default="output-dense")
    p.add_argument("--warmup", type=int, default=5, help="warmup epochs of the cosine (the paper recipe's 5)")
    p.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine",
                   help="cosine: the paper recipe's warmup and cosine decay; constant: the peak lr throughout "
                        "(SET's paper), no warmup")
    p.add_argument("--limit-train", type=int, help="train on a seeded subset (smoke runs)")
    p.add_argument("--threads", type=int, help="engine threads (default: all); torch's own ops then run on one")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "torch" / "parity")
    p.add_argument("--work", type=Path, default=Path("runs") / "torch-parity")
    args = p.parse_args(argv)
    if args.lr_schedule == "constant":
        args.warmup = None
    elif not 1 <= args.warmup < args.epochs:
        p.error("--warmup must be at least 1 and smaller than --epochs")
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        path = args.out / f"seed{seed}.json"
        rec: Dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        settings = {"hidden": args.hidden, "motif": args.motif, "density": args.density,
                    "distribution": args.distribution, "epochs": args.epochs, "warmup": args.warmup,
                    "limit_train": args.limit_train, "lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                    "batch_size": BATCH, "zeta": ZETA, "seed": seed, "lr_schedule": args.lr_schedule}
        if rec and {"lr_schedule": "cosine", **rec.get("settings", {})} != settings:   # older records: cosine
            raise SystemExit(f"{path} holds a run with other settings ({rec.get('settings')}); use another --out")
        rec["settings"] = settings
        rec["command"] = shlex.join(["python", "scripts/torch_parity.py", *(sys.argv[1:] if argv is None else argv)])
        work = args.work / (f"seed{seed}" if args.lr_schedule == "cosine" else f"{args.lr_schedule}-seed{seed}")
        for side, fn in (("motifcore_train", run_cli), ("torch", run_torch)):
            if side not in rec:
                rec[side] = fn(args, seed, work)
                path.write_text(json.dumps(rec, indent=1) + "\n")
        gap = 100 * (rec["torch"]["final_accuracy"] - rec["motifcore_train"]["final_accuracy"])
        rec["gap_points"] = gap
        path.write_text(json.dumps(rec, indent=1) + "\n")
        print(f"seed {seed}: motifcore train {100 * rec['motifcore_train']['final_accuracy']:.2f} %, torch loop "
              f"{100 * rec['torch']['final_accuracy']:.2f} % ({gap:+.2f} points) -> {path}", flush=True)


if __name__ == "__main__":
    main()
