"""`motifcore analyze`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.robustness import KINDS
from ..report.structure import analyze_model, write_structure_report
from ..train.checkpoint import load_checkpoint
from ._common import check_output_folder, checkpoint_data, int_min, run_checkpoint


def add_parser(sub: Any) -> argparse.ArgumentParser:
    a = sub.add_parser("analyze", help="motif z-scores, ranks and robustness of a trained checkpoint",
                       description="Count the motifs of a trained network (closed forms), their z-scores against a "
                                   "random-network null, the effective and stable rank of every layer and, unless "
                                   "--no-robustness, the test accuracy under five weight perturbations; writes "
                                   "analysis.json, analysis.md and PNG figures.")
    a.add_argument("run_dir", help="run folder holding checkpoint.npz (or the path of a checkpoint)")
    a.add_argument("--out", help="output folder (default RUN_DIR/analysis)")
    a.add_argument("--level", choices=("edge", "block"),
                   help="count the effective network or the block graph (default: block for motifs > 1)")
    a.add_argument("--null", choices=("er", "er_live", "er_live_min1", "degree"), default="er",
                   help="null model: er (exact moments), er_live (after chain removal), er_live_min1 (paper 002's: "
                        "live units, each linked, sampled), degree (sampled)")
    a.add_argument("--samples", type=int_min(2), default=100, help="networks drawn for a sampled null (default 100)")
    a.add_argument("--no-robustness", action="store_true", help="skip the perturbation curves (no data needed)")
    a.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="perturbations (default: all)")
    a.add_argument("--points", type=int_min(2), default=11, help="fractions 0..1 per curve (default 11)")
    a.add_argument("--repeats", type=int_min(1), default=3, help="seeds of the stochastic perturbations (default 3)")
    a.add_argument("--limit-test", type=int_min(1), metavar="N", help="score robustness on the first N test samples")
    a.add_argument("--dataset", help="dataset (default: the one the run was trained on)")
    a.add_argument("--data-dir", help="folder searched first for the dataset files")
    a.add_argument("--seed", type=int_min(0), default=0, help="seed of null samples and perturbations")
    a.add_argument("--threads", type=int_min(1), help="engine threads")
    a.add_argument("--no-figures", action="store_true", help="tables only")
    a.set_defaults(func=run)
    return a


def run(args: argparse.Namespace) -> int:
    path = Path(args.run_dir)
    ckpt = run_checkpoint(args.run_dir)
    out = check_output_folder(Path(args.out) if args.out else (path if path.is_dir() else path.parent) / "analysis")
    ck = load_checkpoint(ckpt, num_threads=args.threads)
    model = ck.model
    X = y = None
    if not args.no_robustness:
        _, _, _, X, y = checkpoint_data(ck, ckpt, args.dataset, args.data_dir)
        if args.limit_test:
            X, y = X[:args.limit_test], y[:args.limit_test]
    res = analyze_model(model, X, y, level=args.level, null=args.null, n_samples=args.samples, seed=args.seed,
                        kinds=args.kinds, fractions=np.linspace(0, 1, args.points), repeats=args.repeats)
    res["checkpoint"] = str(ckpt)
    md = write_structure_report(res, out, figures=not args.no_figures)
    print(md.read_text())
    print(f"wrote {md} (and analysis.json, PNG figures beside it)")
    return 0
