"""`motifcore sweep`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from ..defaults import DENSITY, EPOCHS, EVOLUTIONS, LR_SCHEDULES, RECIPES
from ..experiments.sweep import done_ids, run_sweep
from ..experiments.sweep_spec import SWEEP_RECIPE, expand_runs, load_spec, normalize_spec
from ._common import check_output_folder, int_min, number_list, warmup_arg


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``sweep`` subcommand on an argparse subparsers object (``motifcore sweep``)."""
    p = subparsers.add_parser(
        "sweep", help="run a grid of trainings in parallel (Dask)",
        description="Train every point of a grid (datasets x motif sizes x densities x learning rates x seeds) "
                    f"with a recipe (default {SWEEP_RECIPE!r}, the paper's), in parallel on a local Dask cluster "
                    "or a running scheduler. "
                    "Each finished run is stored at once under OUT/runs/<run_id>.json (+ checkpoint); running "
                    "the same command again resumes. Flags override the --spec file.")
    p.add_argument("--spec", help="sweep spec (.json or .toml); see motifcore.sweep for the keys")
    p.add_argument("--out", required=True, help="sweep folder (created; reused to resume)")
    p.add_argument("--name", help="sweep name")
    p.add_argument("--dataset", nargs="+", help="dataset names, e.g. fashion-mnist skf:PCMAC")
    p.add_argument("--data-dir", help="folder searched first for the dataset files")
    p.add_argument("--hidden", nargs="+", metavar="W", help="hidden widths (default 3000 3000 3000)")
    p.add_argument("--motif", nargs="+", metavar="M",
                   help="motif sizes, e.g. '1 2 4 8'; a comma list is a per-layer schedule ('2,2,1,1')")
    p.add_argument("--recipe", choices=tuple(RECIPES),
                   help=f"named settings of every run, for every setting not given (default: {SWEEP_RECIPE})")
    p.add_argument("--density", nargs="+", metavar="D", help=f"block densities (default {DENSITY})")
    p.add_argument("--sparsity", nargs="+", metavar="S", help="sparsities s = 1 - density")
    p.add_argument("--lr", nargs="+", metavar="LR", help="peak learning rates (default: the recipe's)")
    p.add_argument("--seeds", nargs="+", metavar="SEED", help="seeds (default 0)")
    p.add_argument("--epochs", type=int_min(1), help=f"epochs per run (default {EPOCHS}; the paper uses 300)")
    p.add_argument("--batch-size", type=int_min(1))
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES)
    p.add_argument("--warmup", type=warmup_arg, help="lr warmup: epochs (an integer) or a fraction of the run")
    p.add_argument("--evolution", choices=tuple(EVOLUTIONS),
                   help="how the block pattern changes (as motifcore train --evolution; default: the recipe's)")
    p.add_argument("--baseline-narrow", action="store_true", default=None,
                   help="also run plain SET at hidden widths / m for every m > 1 (docs/design.md §4.3)")
    p.add_argument("--limit-train", type=int_min(1), metavar="N", help="seeded training subsample")
    p.add_argument("--no-checkpoints", action="store_true", help="do not store the trained models")
    p.add_argument("--scheduler", metavar="ADDR", help="running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int_min(1), help="local cluster: worker processes (default cores // threads)")
    p.add_argument("--threads-per-worker", type=int_min(1), help="local cluster: threads per worker (default 1)")
    p.add_argument("--threads-per-run", type=int_min(1), help="engine threads of one run (default: the worker's)")
    p.add_argument("--max-runs", type=int_min(1), help="stop after N runs were stored (resume later)")
    p.add_argument("--no-resume", action="store_true", help="rerun and overwrite runs already stored")
    p.add_argument("--dry-run", action="store_true", help="list the runs (and which are stored) and exit")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The spec of ``motifcore sweep``: the --spec file (if any) with the flags on top."""
    spec: dict[str, Any] = load_spec(args.spec) if args.spec else {}
    if args.name:
        spec["name"] = args.name
    if args.dataset:
        spec["datasets"] = [t for v in args.dataset for t in re.split(r"[\s]+", v.strip()) if t]
    if args.data_dir:
        spec["data_dir"] = args.data_dir
    if args.hidden:
        spec["hidden"] = number_list(args.hidden, "--hidden", kind=int)
    if args.motif:
        spec["motifs"] = [v.strip() for v in args.motif if v.strip()]
    if args.density and args.sparsity:
        raise ValueError("give --density or --sparsity, not both")
    if args.density:
        spec["densities"], spec["sparsities"] = number_list(args.density, "--density"), None
    if args.sparsity:
        spec["sparsities"], spec["densities"] = number_list(args.sparsity, "--sparsity"), None
    if args.lr:
        spec["lrs"] = number_list(args.lr, "--lr")
    if args.seeds:
        spec["seeds"] = number_list(args.seeds, "--seeds", kind=int)
    for flag, key in (("recipe", "recipe"), ("epochs", "epochs"), ("batch_size", "batch_size"),
                      ("lr_schedule", "lr_schedule"), ("warmup", "warmup"), ("evolution", "evolution"),
                      ("limit_train", "limit_train"),
                      ("threads_per_run", "threads_per_run"), ("baseline_narrow", "baseline_narrow")):
        v = getattr(args, flag)
        if v is not None:
            spec[key] = v
    if args.no_checkpoints:
        spec["checkpoint"] = False
    if "datasets" not in spec:
        raise ValueError("sweep needs --dataset or a --spec file with 'datasets'")
    # per-dataset tables of a spec file keep their own values unless a flag overrides them
    flags_set = {k for k in ("hidden", "motifs", "densities", "sparsities", "lrs", "seeds", "epochs")
                 if getattr(args, {"motifs": "motif", "densities": "density", "sparsities": "sparsity",
                                   "lrs": "lr"}.get(k, k), None)}
    if flags_set and isinstance(spec.get("datasets"), list):
        spec["datasets"] = [{k: v for k, v in d.items() if k not in flags_set} if isinstance(d, dict) else d
                            for d in spec["datasets"]]
    return spec


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    norm = normalize_spec(spec)
    runs = expand_runs(norm)
    out = check_output_folder(Path(args.out))
    if args.dry_run:
        done = done_ids(out) if out.exists() else set()
        for r in runs:
            print(f"{'stored ' if r['run_id'] in done else 'todo   '} {r['run_id']}")
        print(f"{len(runs)} runs, {sum(r['run_id'] in done for r in runs)} stored")
        return 0
    print(f"sweep {norm['name']}: {len(runs)} runs -> {out}", file=sys.stderr)
    res = run_sweep(spec, out, scheduler=args.scheduler, n_workers=args.workers,
                    threads_per_worker=args.threads_per_worker, resume=not args.no_resume,
                    progress=not args.no_progress, max_runs=args.max_runs)
    print(f"{res.done}/{res.total} runs stored in {out} ({len(res.completed)} now, {len(res.skipped)} were "
          f"stored already, {len(res.failed)} failed)")
    for rid, msg in res.failed.items():
        print(f"  failed {rid}: {msg}", file=sys.stderr)
    return 1 if res.failed else 0
