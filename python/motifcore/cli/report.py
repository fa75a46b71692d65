"""`motifcore report`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ..analysis import metrics
from ..report import write_report
from ._common import check_output_folder


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand (``motifcore report SWEEP_DIR``)."""
    p = subparsers.add_parser(
        "report", help="paper tables and figures from a sweep folder",
        description="Write report.md, CSV tables and PNG figures (paper Tables 4/5/6/12/13, Figs. 6-9, Pareto "
                    "frontier, recommended m, latency vs model) from the runs of a 'motifcore sweep' folder.")
    p.add_argument("sweep_dir", help="folder written by 'motifcore sweep --out'")
    p.add_argument("--out", help="output folder (default SWEEP_DIR/report)")
    p.add_argument("--lam", type=float, default=metrics.DEFAULT_UTILITY_LAMBDA,
                   help=f"accuracy weight of the utility U(m) (default {metrics.DEFAULT_UTILITY_LAMBDA})")
    p.add_argument("--max-acc-drop", type=float, help="relative accuracy-drop budget for the recommendation")
    p.add_argument("--title", help="report title")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument("--time-stat", choices=("median", "mean"), default="median",
                   help="a run's s/epoch: median (default, robust on a shared machine) or mean over its epochs")
    p.add_argument("--all-runs", action="store_true",
                   help="also report stored runs that are not in the sweep's current grid (sweep.json)")
    p.set_defaults(func=run)

    return p


def run(args: argparse.Namespace) -> int:
    for v, flag in ((args.lam, "--lam"), (args.max_acc_drop, "--max-acc-drop")):
        if v is not None and not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"argument {flag}: must be in [0, 1], got {v}")
    if args.out is not None:
        check_output_folder(Path(args.out))
    path = write_report(args.sweep_dir, args.out, lam=args.lam, max_acc_drop=args.max_acc_drop,
                        figures=not args.no_figures, title=args.title, time_stat=args.time_stat,
                        all_runs=args.all_runs)
    print(f"wrote {path} (and CSV/PNG files beside it)")
    return 0
