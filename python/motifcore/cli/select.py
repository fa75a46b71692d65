"""`motifcore select`: the feature ranking of a trained run (input-neuron strength)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .._internal.io import atomic_write
from ..analysis.features import LEVELS, input_strength
from ..train.checkpoint import load_model
from ._common import UsageError, check_output, int_min, run_checkpoint

#: the file written into the run folder when --out is not given
DEFAULT_NAME = "feature_ranking.csv"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    s = sub.add_parser("select", help="rank the input features of a trained run by input-neuron strength",
                       description="Rank the input features of a trained network by the strength of their input "
                                   "neuron: the sum of |weight| of its active blocks in the first layer, a block "
                                   "counted once per feature it covers (docs/feature_selection.md). Writes a CSV "
                                   "with the columns rank, feature, strength (strongest first).")
    s.add_argument("run_dir", help="run folder (holding checkpoint.npz) or a checkpoint file")
    s.add_argument("--top", type=int_min(1), metavar="K", help="write only the K strongest features (default: all)")
    s.add_argument("--out", help=f"output CSV (default: RUN_DIR/{DEFAULT_NAME})")
    s.add_argument("--level", choices=LEVELS, default=LEVELS[0],
                   help="block: a block counts once per feature it covers (default); edge: once per edge of the "
                        "effective weight matrix; path: the path strength through the whole network (the sum over "
                        "input-to-output paths of the product of |weight|, MotifSETSelector's default)")
    s.add_argument("--normalize", action="store_true", help="strengths as shares of their total (sum 1)")
    s.add_argument("--overwrite", action="store_true", help="replace the file at --out if it exists")
    s.add_argument("--threads", type=int_min(1))
    s.set_defaults(func=run)
    return s


def ranking_csv(strength: np.ndarray, top: int | None = None) -> str:
    """The CSV text of a ranking: ``rank,feature,strength``, strongest first (ties by feature index)."""
    order = np.argsort(-strength, kind="stable")
    if top is not None:
        order = order[:top]
    rows = [f"{r},{int(j)},{float(strength[j])!r}" for r, j in enumerate(order, start=1)]
    return "\n".join(["rank,feature,strength", *rows]) + "\n"


def run(args: argparse.Namespace) -> int:
    ckpt = run_checkpoint(args.run_dir)
    out = check_output(Path(args.out) if args.out else ckpt.parent / DEFAULT_NAME, args.overwrite)
    model = load_model(ckpt, num_threads=args.threads)
    n = model.layers[0].n_in
    if args.top is not None and args.top > n:
        raise UsageError(f"argument --top: {args.top} is more than the model's {n} input features")
    strength = input_strength(model, level=args.level, normalize=args.normalize)
    try:
        atomic_write(out, ranking_csv(strength, args.top).encode())
    except OSError as exc:          # disk full, permissions: the old file is untouched
        raise UsageError(f"could not write {out}: {exc.strerror or exc}") from None
    k = n if args.top is None else args.top
    head = ", ".join(str(j) for j in np.argsort(-strength, kind="stable")[:5])
    print(f"wrote {out} ({k} of {n} features; strongest: {head})")
    return 0
