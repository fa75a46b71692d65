"""`motifcore evaluate`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..train.checkpoint import load_checkpoint
from ._common import checkpoint_data, int_min


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset")
    e.add_argument("--checkpoint", required=True, help="checkpoint.npz to evaluate")
    e.add_argument("--dataset", help="dataset name (default: the one the run was trained on)")
    e.add_argument("--data-dir", help="folder searched first for the dataset files")
    e.add_argument("--split", choices=("test", "train"), default="test", help="split to score (default: test)")
    e.add_argument("--batch-size", type=int_min(1),
                   help="samples per chunk (default: up to 256, as many as fit 256 MiB of panels)")
    e.add_argument("--threads", type=int_min(1))
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=run)
    return e


def run(args: argparse.Namespace) -> int:
    ck = load_checkpoint(args.checkpoint, num_threads=args.threads)
    name, X, y, Xt, yt = checkpoint_data(ck, args.checkpoint, args.dataset, args.data_dir)
    Xe, ye = (Xt, yt) if args.split == "test" else (X, y)
    model = ck.model
    loss, acc = model.evaluate(Xe, ye, batch_size=args.batch_size or "auto")
    res = {"checkpoint": str(args.checkpoint), "dataset": name, "split": args.split, "n_samples": int(Xe.shape[0]),
           "accuracy": acc, "loss": loss, "epoch": ck.epoch}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{name} ({args.split}, {Xe.shape[0]} samples): accuracy {acc:.4f}, loss {loss:.4f} "
              f"[checkpoint epoch {ck.epoch}]")
    return 0
