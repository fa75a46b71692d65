"""`motifcore baselines`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ..experiments.baselines import ROWS, BaselineSpec, available_rows, run_baselines
from ..report.tables78 import write_tables
from ._common import check_output_folder, float_in, int_min, number_list, parse_hidden


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``baselines`` subcommand (``motifcore baselines``)."""
    p = subparsers.add_parser(
        "baselines", help="the paper's Tables 7 and 8 (pruning, KD, DSR, RigL, Deep Compression) re-measured",
        description="Train and measure every baseline row of the Motif-SET paper's Tables 7 and 8 with the default "
                    "recipe and write OUT/table7.csv, OUT/table8.csv and OUT/report.md. Each (row, seed) is stored "
                    "when it finishes and every training is checkpointed per epoch: running the same command again "
                    "resumes. Rows whose method is not in this build are reported as unavailable.")
    p.add_argument("--out", required=True, help="experiment folder (created; reused to resume)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", help="folder searched first for the dataset files")
    p.add_argument("--hidden", nargs="+", metavar="W", help="hidden widths (default 3000 3000 3000)")
    p.add_argument("--limit-train", type=int_min(1), metavar="N", help="seeded training subsample")
    p.add_argument("--seeds", nargs="+", metavar="SEED", help="seeds (default 0 1 2)")
    p.add_argument("--epochs", type=int_min(1), help="epochs of the sparse and KD rows (default 20)")
    p.add_argument("--epochs-pre", type=int_min(1), help="epochs of the dense source (default 10)")
    p.add_argument("--epochs-ft", type=int_min(1), help="fine-tuning epochs after one-shot pruning (default 10)")
    p.add_argument("--rewind-epoch", type=int_min(0), help="epoch k of LR and weight rewinding (default 1)")
    p.add_argument("--rounds", type=int_min(1), help="iterative pruning rounds (default 4)")
    p.add_argument("--epochs-round", type=int_min(1), help="retraining epochs per round (default 2)")
    p.add_argument("--epochs-q", type=int_min(1), help="centroid fine-tuning epochs of Deep Compression (default 2)")
    p.add_argument("--density", type=float_in(0, 1, lo_open=True), help="density of the sparse rows (default 0.1)")
    p.add_argument("--temperature", type=float_in(0, float("inf"), lo_open=True), help="KD temperature (default 4)")
    p.add_argument("--lam", type=float_in(0, 1), help="KD weight of the soft term (default 0.9)")
    p.add_argument("--rows", nargs="+", metavar="ROW", choices=list(ROWS), help="a subset of the rows")
    p.add_argument("--latency-repeats", type=int_min(1), help="timed batch-1 calls per model (default 1000)")
    p.add_argument("--threads", type=int_min(1), help="engine threads (default: all)")
    p.add_argument("--list", action="store_true", help="list the rows and whether this build can run them")
    p.add_argument("--tables-only", action="store_true", help="rewrite the tables from the stored runs")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p


def spec_from_args(args: argparse.Namespace) -> BaselineSpec:
    kw: dict[str, Any] = {"dataset": args.dataset}
    if args.hidden:
        kw["hidden"] = tuple(parse_hidden(args.hidden))
    if args.seeds:
        kw["seeds"] = tuple(number_list(args.seeds, "--seeds", kind=int))
    if args.rows:
        kw["rows"] = tuple(args.rows)
    for key in ("data_dir", "limit_train", "epochs", "epochs_pre", "epochs_ft", "rewind_epoch", "rounds",
                "epochs_round", "epochs_q", "density", "temperature", "lam", "latency_repeats", "threads"):
        v = getattr(args, key)
        if v is not None:
            kw[key] = v
    return BaselineSpec(**kw).checked()


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    if args.list:
        for row, why in available_rows(spec).items():
            print(f"{row:<12} table {ROWS[row].table}  {ROWS[row].label}" + (f"  [unavailable: {why}]" if why else ""))
        return 0
    check_output_folder(Path(args.out))
    command = "motifcore " + " ".join(shlex.quote(a) for a in (args.argv or sys.argv[1:]))
    notes = {r: f"unavailable: {why}" if why else None for r, why in available_rows(spec).items()}
    if not args.tables_only:
        notes = run_baselines(spec, args.out, progress=not args.no_progress, log=lambda s: print(s, file=sys.stderr))
    write_tables(Path(args.out), spec, notes, command=command)
    print(f"tables in {Path(args.out) / 'report.md'}")
    return 0
