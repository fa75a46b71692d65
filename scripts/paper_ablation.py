"""Issue 19, item 3: which of the Motif-SET paper's literal choices moves the accuracy-vs-m trend.

The paper's Table 4 (Fashion-MNIST, ``784-3000-3000-3000-10``, density 0.1) falls from 76.10 % at
m = 1 to 69.20 % at m = 4; motifcore's run of the same protocol (``scripts/paper_protocol.py``) is
flat. motifcore departs from the paper's literal method in five places (docs/training.md, "The
paper's literal choices"); this script switches them on one at a time on top of the paper recipe
(``--recipe paper``), and all together:

=================== ==========================================================================
variant             what differs from ``base`` (``motifcore train --recipe paper``)
=================== ==========================================================================
``base``            nothing
``block-grad``      ``--block-grad paper``: the block-weight gradient times 1/m (no-op at m = 1)
``shared-output``   ``--output-motif divisible``: the output layer shares m x m blocks when m
                    divides the class count (a no-op at m = 1 and wherever m does not divide it,
                    e.g. m = 4 on 10 classes)
``motif-bias``      ``--bias motif``: one bias per output motif (no-op at m = 1)
``normal-regrow``   ``--regrow normal``: regrown blocks drawn from N(0, sigma^2), sigma the std of
                    the He initialisation
``epoch-lr``        ``--lr-schedule cosine-epoch``: warmup and cosine counted in epochs
``all``             all five together
``all-but-output``  all but ``shared-output``: at m = 2 the shared output layer alone caps the
                    accuracy at 50 % (design.md §4.2), which hides what the other four do; at
                    an m where ``shared-output`` is a no-op it is the same run as ``all``
=================== ==========================================================================

A toggle is not run at an m where it is a no-op (the table shows the base there), nor
``all-but-output`` where it equals ``all``. Each run trains in its own work folder (``--work``,
with its checkpoint, which stays out of the repository) with ``motifcore train`` at low priority
(``nice``), one run at a time; when it finishes, its ``config.json``, ``metrics.jsonl`` and
``summary.json`` are copied to ``docs/results/paper-ablation/<variant>/m<m>/seed<s>/``
(``--records``). A run whose records are there is skipped; a run whose work folder holds a
checkpoint continues from it (``--resume``). So the script can be stopped and started again at
any point.

Usage (the full ablation: 30 epochs, seeds 0 1 2, m = 1 2 4)::

    MOTIFCORE_DATA=../shared/data python scripts/paper_ablation.py --work /tmp/paper-ablation --threads 2

``--table`` prints the table from the records (final test accuracy, mean ± sample std over the
finished seeds, and the drop from m = 1 to m = 2 and m = 4) and runs nothing::

    python scripts/paper_ablation.py --table
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from motifcore.experiments.run import copy_run_records

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECORDS = ROOT / "docs" / "results" / "paper-ablation"
#: The Motif-SET paper (000_...), Table 4, Fashion-MNIST, 300 epochs: test accuracy (%) per m.
PAPER_TABLE4 = {1: 76.10, 2: 73.30, 4: 69.20, 8: 65.97}

#: variant -> (the flags it adds to the base run, one line on what it changes)
TOGGLES: dict[str, tuple[list[str], str]] = {
    "block-grad": (["--block-grad", "paper"], "block-weight gradient x 1/m"),
    "shared-output": (["--output-motif", "divisible"], "output layer in m x m blocks if m divides the classes"),
    "motif-bias": (["--bias", "motif"], "one bias per output motif"),
    "normal-regrow": (["--regrow", "normal"], "regrowth from N(0, sigma^2), sigma = He std"),
    "epoch-lr": (["--lr-schedule", "cosine-epoch"], "warmup + cosine counted in epochs"),
}
VARIANTS: dict[str, tuple[list[str], str]] = {
    "base": ([], "the paper recipe (motifcore train --recipe paper)"),
    **TOGGLES,
    "all": ([f for flags, _ in TOGGLES.values() for f in flags], "all five toggles"),
    "all-but-output": ([f for name, (flags, _) in TOGGLES.items() if name != "shared-output" for f in flags],
                       "all but shared-output"),
}


def is_noop(variant: str, m: int, n_classes: int) -> bool:
    """Whether ``variant`` trains exactly the base network and recipe at motif size ``m``."""
    if variant in ("block-grad", "motif-bias"):
        return m == 1
    if variant == "shared-output":
        return m == 1 or n_classes % m != 0
    return False


def same_as(variant: str, m: int, n_classes: int) -> str:
    """The variant whose runs ``variant`` repeats exactly at motif size ``m`` (itself if none)."""
    if variant not in ("base", "all", "all-but-output") and is_noop(variant, m, n_classes):
        return "base"
    if variant == "all-but-output" and is_noop("shared-output", m, n_classes):
        return "all"
    return variant


def run_flags(variant: str, m: int, seed: int, args: argparse.Namespace) -> list[str]:
    """The ``motifcore train`` flags of one new run (without --out, --threads)."""
    flags = ["--dataset", args.dataset, "--hidden", *map(str, args.hidden), "--motif", str(m), "--density",
             str(args.density), "--recipe", "paper", "--epochs", str(args.epochs), "--seed", str(seed)]
    if args.limit_train is not None:
        flags += ["--limit-train", str(args.limit_train)]
    return flags + VARIANTS[variant][0]


# ------------------------------------------------------------------------------------------------
# table
# ------------------------------------------------------------------------------------------------


def _finished(records: Path, variant: str, m: int) -> list[dict[str, Any]]:
    """The summaries (with the run's config) of the finished runs of one cell."""
    out = []
    for sdir in sorted((records / variant / f"m{m}").glob("seed*")):
        if (sdir / "summary.json").is_file() and (sdir / "config.json").is_file():
            s = json.loads((sdir / "summary.json").read_text())
            s["_config"] = json.loads((sdir / "config.json").read_text())
            out.append(s)
    return out


def _mean_std(v: list[float]) -> str:
    return f"{statistics.mean(v):.2f}" + (f" ± {statistics.stdev(v):.2f}" if len(v) > 1 else "") + f" ({len(v)})"


def _protocol(runs: list[dict[str, Any]]) -> str:
    """One line on what the records ran (network, epochs, training samples), or the differences."""
    seen = set()
    for s in runs:
        c = s["_config"]["run"]
        seen.add((c["dataset"], "-".join(map(str, s["sizes"])), c["epochs"], c["density"], s["n_train"]))
    parts = [f"{d}, {net}, density {dens}, {ep} epochs, {n} training samples" for d, net, ep, dens, n in sorted(seen)]
    return ("Protocol of the records: " + "; ".join(parts)) if parts else "No finished records."


def table(records: Path, motifs: list[int], variants: list[str]) -> str:
    """The markdown table of the records under ``records`` (``<variant>/m<m>/seed<s>/``)."""
    every: list[dict[str, Any]] = []
    sized = [s for m in motifs for s in _finished(records, "base", m)]
    n_classes = sized[0]["sizes"][-1] if sized else 10
    head = "| variant | what changes | " + " | ".join(f"m = {m}" for m in motifs) + " | " + " | ".join(
        f"drop m = {motifs[0]} → {m} (pts)" for m in motifs[1:]) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(motifs) - 1)]
    for v in variants:
        cells, means = [], {}
        for m in motifs:
            runs = _finished(records, v, m)
            every += runs
            ref = same_as(v, m, n_classes)
            if ref != v:
                cells.append("= base (no-op)" if ref == "base" else f"= {ref} (same run)")
                ref_acc = [100 * s["final_accuracy"] for s in _finished(records, ref, m)]
                if ref_acc:
                    means[m] = statistics.mean(ref_acc)
                continue
            acc = [100 * s["final_accuracy"] for s in runs]
            cells.append(_mean_std(acc) if acc else "-")
            if acc:
                means[m] = statistics.mean(acc)
        m0 = motifs[0]
        drops = [f"{means[m0] - means[m]:+.2f}" if m0 in means and m in means else "-" for m in motifs[1:]]
        lines.append(f"| {v} | {VARIANTS[v][1]} | " + " | ".join(cells) + " | " + " | ".join(drops) + " |")
    paper = {m: PAPER_TABLE4.get(m) for m in motifs}
    pd = [f"{paper[motifs[0]] - paper[m]:+.2f}" if paper[motifs[0]] is not None and paper[m] is not None else "-"
          for m in motifs[1:]]
    lines.append("| paper, Table 4 (300 epochs) | – | " + " | ".join(
        f"{paper[m]:.2f}" if paper[m] is not None else "-" for m in motifs) + " | " + " | ".join(pd) + " |")
    notes = [_protocol(every),
             "Cells: final test accuracy (%), mean ± sample std (number of finished seeds). A drop is the mean at "
             f"m = {motifs[0]} minus the mean at the larger m (positive: accuracy falls with m); a cell that repeats "
             "another variant's runs counts as that variant's."]
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """The (variant, m, seed) runs to do, in order: variant by variant, m, then seed."""
    return [(v, m, s) for v in args.variants for m in args.motifs for s in args.seeds
            if same_as(v, m, args.classes) == v]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS),
                   help="variants to run, in this order (default: all)")
    p.add_argument("--motifs", nargs="+", type=int, default=[1, 2, 4], help="motif sizes (default: 1 2 4)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per run (default: 30)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--classes", type=int, default=10,
                   help="classes of --dataset, to know where --output-motif divisible is a no-op (default: 10)")
    p.add_argument("--hidden", nargs="+", type=int, default=[3000, 3000, 3000],
                   help="hidden widths (default: 3000 3000 3000, the paper's)")
    p.add_argument("--density", type=float, default=0.1)
    p.add_argument("--limit-train", type=int, default=None, metavar="N",
                   help="train on a seeded subset of N samples (smoke runs only)")
    p.add_argument("--threads", type=int, default=1, help="engine threads per run (default: 1)")
    p.add_argument("--nice", type=int, default=19, help="niceness of the runs (default: 19)")
    p.add_argument("--work", type=Path, help="folder for the run folders and their checkpoints (required to run)")
    p.add_argument("--records", type=Path, default=DEFAULT_RECORDS,
                   help="where the records of finished runs go (default: docs/results/paper-ablation)")
    p.add_argument("--table", action="store_true", help="print the table from the records and stop")
    args = p.parse_args(argv)
    if min(args.motifs) < 1 or min(args.seeds) < 0 or args.epochs < 1:
        p.error("motif sizes and --epochs must be >= 1, seeds >= 0")
    args.motifs = sorted(set(args.motifs))
    if args.table:
        print(table(args.records, args.motifs, args.variants))
        return 0
    if args.work is None:
        p.error("--work is required to run (or give --table)")
    todo = plan(args)
    print(f"{len(todo)} runs planned ({', '.join(args.variants)}; m = {args.motifs}; seeds {args.seeds}); "
          f"records -> {args.records}", flush=True)
    for i, (v, m, seed) in enumerate(todo, 1):
        dest = args.records / v / f"m{m}" / f"seed{seed}"
        work = args.work / v / f"m{m}" / f"seed{seed}"
        tag = f"[{i}/{len(todo)}] {v} m={m} seed={seed}"
        if (dest / "summary.json").is_file():
            print(f"{tag}: recorded already, skipped", flush=True)
            continue
        if (work / "summary.json").is_file():
            copy_run_records(work, dest)
            print(f"{tag}: finished earlier, records copied to {dest}", flush=True)
            continue
        cmd = ["nice", "-n", str(args.nice), sys.executable, "-m", "motifcore", "train", "--no-progress",
               "--threads", str(args.threads)]
        if (work / "checkpoint.npz").is_file():
            cmd += ["--resume", str(work / "checkpoint.npz"), "--out", str(work)]
        else:
            cmd += [*run_flags(v, m, seed, args), "--out", str(work), "--overwrite"]
        print(f"{tag}: {' '.join(cmd)}", flush=True)
        t0 = time.time()
        work.parent.mkdir(parents=True, exist_ok=True)
        with open(work.parent / f"{work.name}.log", "a") as log:     # the run's own output, beside its folder
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            print(f"{tag}: failed with exit code {rc} (log: {work.parent / f'{work.name}.log'})", file=sys.stderr,
                  flush=True)
            return rc
        copy_run_records(work, dest)
        print(f"{tag}: done in {time.time() - t0:.0f} s, records in {dest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
