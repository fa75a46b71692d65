"""`motifcore evaluate`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..data import datasets
from ..experiments.config import RunConfig
from ..train.checkpoint import load_checkpoint
from ._common import UsageError, int_min


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset")
    e.add_argument("--checkpoint", required=True, help="checkpoint.npz to evaluate")
    e.add_argument("--dataset", help="dataset name (default: the one the run was trained on)")
    e.add_argument("--data-dir", help="folder searched first for the dataset files")
    e.add_argument("--split", choices=("test", "train"), default="test", help="split to score (default: test)")
    e.add_argument("--batch-size", type=int_min(1), default=1024)
    e.add_argument("--threads", type=int_min(1))
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=run)
    return e


def run(args: argparse.Namespace) -> int:
    ck = load_checkpoint(args.checkpoint, num_threads=args.threads)
    stored = RunConfig.from_checkpoint_extra(ck.extra)
    name = args.dataset or (stored.dataset if stored else None)
    if name is None:
        raise UsageError(f"{args.checkpoint} does not record its dataset; pass --dataset")
    data_dir = args.data_dir if args.data_dir is not None else (stored.data_dir if stored else None)
    X, y, Xt, yt = datasets.load(name, data_dir=data_dir, seed=stored.data_seed if stored else 0)
    Xe, ye = (Xt, yt) if args.split == "test" else (X, y)
    model = ck.model
    if Xe.shape[1] != model.n_features:
        raise UsageError(f"dataset {name} has {Xe.shape[1]} features, the checkpoint's model expects "
                         f"{model.n_features}")
    loss, acc = model.evaluate(Xe, ye, batch_size=args.batch_size)
    res = {"checkpoint": str(args.checkpoint), "dataset": name, "split": args.split, "n_samples": int(Xe.shape[0]),
           "accuracy": acc, "loss": loss, "epoch": ck.epoch}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{name} ({args.split}, {Xe.shape[0]} samples): accuracy {acc:.4f}, loss {loss:.4f} "
              f"[checkpoint epoch {ck.epoch}]")
    return 0
