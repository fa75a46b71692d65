"""Motif-size curriculum against fixed motifs (issue 25; docs/curriculum.md): one run after another,
resumable, at low priority.

Fashion-MNIST, ``784-3000-3000-3000-10``, the default recipe (``motifcore``), 50 epochs, for each
seed: fixed ``m`` in ``--fixed`` (default 1 2 4) and every schedule in ``--schedules`` (default the
issue's ``0:1,0.5:2,0.8:4`` and ``0:1,0.2:2,0.4:4``, the one whose time can match fixed m = 2; see
docs/curriculum.md). Every run is a plain ``motifcore train`` in its own work folder under
``--work`` (with its checkpoint, which stays out of the repository); after every minute and when it
ends, its ``config.json``, ``metrics.jsonl`` and ``summary.json`` are copied to
``<out>/<kind>/seed<s>/`` (``PARTIAL`` beside them while unfinished). A work folder with a
checkpoint and no summary continues with ``motifcore train --resume``, so a stopped queue picks up
where it stopped (bit-exact with the same build).

Run folders written elsewhere by plain ``motifcore train ... --out DIR`` (fixed-m runs of another
study) are read with ``--runs-from DIR`` (searched recursively for ``config.json``): a finished run
there with the same dataset, widths, epochs, recipe, training subset, motif (or schedule) and seed
is used instead of training that run again.

The table (``<out>/table.md``, also printed): per kind, the seeds finished, final test accuracy
(mean ± sample std, %), best accuracy, training seconds (sum over epochs of ``train_time`` +
``evolution_time`` + ``switch_time``; mean ± std) and mean seconds per epoch; per curriculum,
whether it meets the target (final accuracy >= mean - std of fixed m = 1, and training seconds <=
the mean of fixed m = 2, both counted in stage-median seconds: each stage of one motif size as its
number of epochs times the median of its epochs' seconds, plus the switches, so that a burst of other
work on the shared machine, which inflates a few epochs, does not decide the verdict; the plain sum
is printed beside it). When the machine was busy for whole runs, not bursts, pass the quiet
seconds per epoch of each motif size, measured apart (``--epoch-seconds 1:8.91 2:2.93 4:1.48``):
the table then adds the quiet-derived seconds (every epoch at the quiet cost of its motif size, plus
the run's own switches, 0.02-0.17 s each in the full experiment, measured on the busy machine) and
the time verdict uses them where both sides have them. The figure (``<out>/acc_vs_time.png``): final accuracy against mean
seconds per epoch, error bars one std over the seeds both ways (the plane of the paper's Figures
6/7). ``<out>/summary.json`` holds the aggregates.

Usage (the full experiment; one run at a time; never beside a timed benchmark)::

    MOTIFCORE_DATA=/path/to/data python scripts/motif_curriculum.py --work /tmp/motif-curriculum --threads 2

Smoke test (minutes)::

    python scripts/motif_curriculum.py --work /tmp/cs/work --out /tmp/cs/records --epochs 3 \\
        --hidden 256 256 256 --limit-train 2000 --seeds 0 1

``--table`` prints the table and draws the figure from the records without training.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from motifcore.experiments.run import copy_run_records

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCHEDULES = ("0:1,0.5:2,0.8:4", "0:1,0.2:2,0.4:4")


def parse_schedule(text: str) -> tuple[list[tuple[float, int]], bool]:
    """``"0:1,0.5:2"`` -> ([(0.0, 1), (0.5, 2)], False); a ``/norm`` suffix asks for
    ``--motif-keep-norm`` (True). Checked by motifcore's own parser."""
    from motifcore.train.curriculum import parse_motif_schedule

    body, _, suffix = text.partition("/")
    if suffix not in ("", "norm"):
        raise argparse.ArgumentTypeError(f"a schedule ends in nothing or '/norm', got {text!r}")
    try:
        return [tuple(s) for s in parse_motif_schedule(body).stages], suffix == "norm"  # type: ignore[misc]
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def kind_of(motif: Any, schedule: list[tuple[float, int]] | None, keep_norm: bool = False) -> str:
    """Folder name and table label of a run: ``fixed-m2``, ``curriculum-1@0-2@0.5-4@0.8`` or, with
    ``--motif-keep-norm``, ``curriculum-1@0-2@0.5-4@0.8-norm``."""
    if schedule:
        return "curriculum-" + "-".join(f"{m}@{f:g}" for f, m in schedule) + ("-norm" if keep_norm else "")
    return f"fixed-m{motif}"


def read_run(folder: Path) -> dict[str, Any] | None:
    """What the table needs from a run folder written by ``motifcore train`` (None if it is not one)."""
    try:
        config = json.loads((folder / "config.json").read_text())
        rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        return None
    run = config.get("run") or {}
    if config.get("command") != "train" or not run:
        return None
    summary = None
    if (folder / "summary.json").is_file() and not (folder / "PARTIAL").exists():
        summary = json.loads((folder / "summary.json").read_text())
    schedule = [tuple(s) for s in run["motif_schedule"]] if run.get("motif_schedule") else None
    seconds = sum((r.get("train_time") or 0.0) + (r.get("evolution_time") or 0.0) + (r.get("switch_time") or 0.0)
                  for r in rows)
    accs = [r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None]
    # Load-robust time: each stage (epochs at one motif size) counted as its number of epochs times
    # the median of its epochs' train + evolution seconds, plus the switches' own seconds. A burst of
    # other work on the shared machine inflates a few epochs; the median of a stage ignores them.
    stages: dict[str, list[float]] = {}
    for r in rows:   # keyed by the motif's JSON text: a per-layer motif is a list of [m_out, m_in]
        stages.setdefault(json.dumps(r.get("motif")), []).append((r.get("train_time") or 0.0) + (r.get("evolution_time") or 0.0))
    robust = sum(len(v) * statistics.median(v) for v in stages.values()) + sum(
        r.get("switch_time") or 0.0 for r in rows)
    return {
        "folder": str(folder), "kind": kind_of(run.get("motif"), schedule, bool(run.get("motif_keep_norm"))),
        "seed": int(run.get("seed", 0)),
        "identity": (run.get("dataset"), tuple(run.get("hidden") or ()), run.get("epochs"), run.get("recipe"),
                     run.get("limit_train")),
        "finished": summary is not None, "epochs_done": len(rows),
        "final_accuracy": summary["final_accuracy"] if summary else None,
        "best_accuracy": max(accs) if accs else None, "seconds": seconds, "robust_seconds": robust,
        "seconds_per_epoch": seconds / len(rows) if rows else None,
        "motifs": [r.get("motif") for r in rows],
        "switch_seconds": sum(r.get("switch_time") or 0.0 for r in rows),
    }


def derived_seconds(run: dict[str, Any], epoch_seconds: dict[int, float]) -> float | None:
    """The run's training time had every epoch cost what a quiet epoch of its motif size costs
    (``epoch_seconds``, measured apart) plus its own switches' seconds; None if a motif size has no
    quiet time. After a switch a model has exactly the block counts of a model built with the new
    motif (docs/curriculum.md, "Block budget"), so its epochs cost what a fixed-m epoch costs."""
    motifs = run["motifs"] or []
    if any(not isinstance(m, int) or m not in epoch_seconds for m in motifs):
        return None   # per-layer motifs (lists) have no quiet time by motif size
    return sum(epoch_seconds[m] for m in motifs) + run["switch_seconds"]


def scan(folders: list[Path]) -> list[dict[str, Any]]:
    runs = []
    for top in folders:
        if not top.is_dir():
            continue
        for cfg in sorted(top.rglob("config.json")):
            r = read_run(cfg.parent)
            if r is not None:
                runs.append(r)
    return runs


def _ms(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    if not values:
        return "-"
    mean = statistics.mean(values) * scale
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


def aggregate(runs: list[dict[str, Any]], identity: tuple, kinds: list[str],
              epoch_seconds: dict[int, float] | None = None) -> dict[str, dict[str, Any]]:
    """Per kind: the finished runs of this experiment (one per seed, the first found) and their stats;
    with ``epoch_seconds`` (quiet seconds per epoch by motif size) also the derived seconds."""
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        by_seed: dict[int, dict[str, Any]] = {}
        for r in runs:
            if r["kind"] == kind and r["identity"] == identity and r["finished"] and r["seed"] not in by_seed:
                by_seed[r["seed"]] = r
        done = [by_seed[s] for s in sorted(by_seed)]
        acc = [r["final_accuracy"] for r in done]
        sec = [r["seconds"] for r in done]
        rsec = [r["robust_seconds"] for r in done]
        dsec = [d for d in (derived_seconds(r, epoch_seconds) for r in done) if d is not None] if epoch_seconds else []
        spe = [r["seconds_per_epoch"] for r in done]
        out[kind] = {
            "seeds": sorted(by_seed), "folders": [r["folder"] for r in done], "final_accuracy": acc,
            "best_accuracy": [r["best_accuracy"] for r in done], "seconds": sec, "seconds_per_epoch": spe,
            "acc_mean": statistics.mean(acc) if acc else None,
            "acc_std": statistics.stdev(acc) if len(acc) > 1 else 0.0 if acc else None,
            "sec_mean": statistics.mean(sec) if sec else None,
            "robust_seconds": rsec, "rsec_mean": statistics.mean(rsec) if rsec else None,
            "derived_seconds": dsec, "dsec_mean": statistics.mean(dsec) if dsec and len(dsec) == len(done) else None,
            "dspe_mean": (statistics.mean(dsec) / len(done[0]["motifs"])) if dsec and len(dsec) == len(done) else None,
            "spe_mean": statistics.mean(spe) if spe else None,
            "spe_std": statistics.stdev(spe) if len(spe) > 1 else 0.0 if spe else None,
            "motifs": done[0]["motifs"] if done else None,
        }
    return out


def table(stats: dict[str, dict[str, Any]]) -> str:
    derived = any(s.get("dsec_mean") is not None for s in stats.values())
    lines = ["| run | seeds | final acc. % | best acc. % | training s | stage-median s | "
             + ("quiet-derived s | " if derived else "") + "s/epoch | target met |",
             "|---|---|---|---|---|---|---|---|" + ("---|" if derived else "")]
    ref1, ref2 = stats.get("fixed-m1"), stats.get("fixed-m2")
    # The time side of the verdict: quiet-derived seconds when given, else stage-median seconds.
    for kind, s in stats.items():
        verdict = "-"
        # quiet-derived when both sides have it, else stage-median seconds (said in the verdict)
        key = "dsec_mean" if ref2 and ref2.get("dsec_mean") is not None and s.get("dsec_mean") is not None \
            else "rsec_mean"
        if kind.startswith("curriculum") and s["acc_mean"] is not None and ref1 and ref2 \
                and ref1["acc_mean"] is not None and ref2.get(key) is not None and s.get(key) is not None:
            acc_ok = s["acc_mean"] >= ref1["acc_mean"] - ref1["acc_std"]
            time_ok = s[key] <= ref2[key]
            verdict = (f"accuracy {'yes' if acc_ok else 'no'} ({100 * (s['acc_mean'] - ref1['acc_mean']):+.2f} vs "
                       f"m = 1), time {'yes' if time_ok else 'no'} ({s[key] / ref2[key]:.2f} x m = 2"
                       + (" quiet-derived" if key == "dsec_mean" else
                          f" stage-median; total seconds {s['sec_mean'] / ref2['sec_mean']:.2f} x") + ")")
        lines.append(f"| {kind} | {len(s['seeds'])} | {_ms(s['final_accuracy'], 100)} | {_ms(s['best_accuracy'], 100)} "
                     f"| {_ms(s['seconds'], 1, 0)} | {_ms(s['robust_seconds'], 1, 0)} "
                     + (f"| {_ms(s['derived_seconds'], 1, 0)} " if derived else "")
                     + f"| {_ms(s['seconds_per_epoch'], 1, 2)} | {verdict} |")
    return "\n".join(lines)


def figure(stats: dict[str, dict[str, Any]], path: Path, title: str) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    derived = any(s.get("dspe_mean") is not None for s in stats.values())
    for kind, s in stats.items():
        if s["acc_mean"] is None or (derived and s.get("dspe_mean") is None):
            continue
        fixed = kind.startswith("fixed")
        x, xerr = (s["dspe_mean"], 0.0) if derived else (s["spe_mean"], s["spe_std"])
        ax.errorbar(x, 100 * s["acc_mean"], xerr=xerr, yerr=100 * s["acc_std"],
                    fmt="o" if fixed else "s", capsize=3, label=kind.replace("curriculum-", "curriculum "))
    ax.set_xlabel("quiet-derived training seconds per epoch" if derived else "mean training seconds per epoch")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(title.replace("; ", "\n"), fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--hidden", nargs="+", type=int, default=[3000, 3000, 3000])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--recipe", default="motifcore", choices=("motifcore", "paper"))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--fixed", nargs="*", type=int, default=[1, 2, 4], help="fixed motif sizes to compare")
    p.add_argument("--schedules", nargs="*", type=parse_schedule, default=None,
                   help="curricula, FRACTION:MOTIF,... each, '/norm' appended for --motif-keep-norm "
                        f"(default: {' '.join(DEFAULT_SCHEDULES)})")
    p.add_argument("--limit-train", type=int, default=None, help="train on a seeded subset (smoke runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nice", type=int, default=19, help="niceness of this script and its runs (default 19)")
    p.add_argument("--work", type=Path, help="folder of the run folders and their checkpoints")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "curriculum",
                   help="where the records, table and figure go (default: docs/results/curriculum)")
    p.add_argument("--runs-from", nargs="*", type=Path, default=[],
                   help="folders searched for finished 'motifcore train' runs to use instead of training them")
    p.add_argument("--epoch-seconds", nargs="*", default=[], metavar="M:SECONDS",
                   help="quiet seconds per epoch by motif size (e.g. 1:8.91 2:2.93 4:1.48), measured apart "
                        "on an otherwise idle machine: adds the quiet-derived time and decides the time verdict by it")
    p.add_argument("--table", action="store_true", help="print the table and draw the figure; train nothing")
    p.add_argument("--motifcore", default=None, help="the motifcore command (default: this Python's -m motifcore)")
    args = p.parse_args(argv)
    schedules = args.schedules if args.schedules is not None else [parse_schedule(s) for s in DEFAULT_SCHEDULES]
    for f in args.fixed:
        if f < 1:
            p.error(f"--fixed sizes must be >= 1, got {f}")
    try:
        epoch_seconds = {int(k): float(v) for k, v in (x.split(":") for x in args.epoch_seconds)}
    except ValueError:
        p.error(f"--epoch-seconds takes M:SECONDS pairs, got {args.epoch_seconds}")
    if args.nice > 0:
        os.nice(max(0, args.nice - os.nice(0)))
    identity = (args.dataset, tuple(args.hidden), args.epochs, args.recipe, args.limit_train)
    plan: list[tuple[str, int, list[str]]] = []
    for seed in args.seeds:
        for m in args.fixed:
            plan.append((kind_of(m, None), seed, ["--motif", str(m)]))
        for s, norm in schedules:
            flags = ["--motif-schedule", ",".join(f"{f:g}:{m}" for f, m in s)] + (["--motif-keep-norm"] if norm else [])
            plan.append((kind_of(None, s, norm), seed, flags))
    kinds = list(dict.fromkeys(k for k, _, _ in plan))
    motifcore = [args.motifcore] if args.motifcore else [sys.executable, "-m", "motifcore"]

    if not args.table:
        if args.work is None:
            p.error("--work is required to train (or pass --table)")
        for kind, seed, flags in plan:
            elsewhere = [r for r in scan(args.runs_from) if r["kind"] == kind and r["seed"] == seed
                         and r["identity"] == identity and r["finished"]]
            if elsewhere:
                print(f"{kind} seed {seed}: finished in {elsewhere[0]['folder']}, not trained again", flush=True)
                continue
            work = args.work / kind / f"seed{seed}"
            dest = args.out / kind / f"seed{seed}"
            if (work / "summary.json").is_file():
                copy_run_records(work, dest, finished=True)
                print(f"{kind} seed {seed}: finished earlier, records in {dest}", flush=True)
                continue
            cmd = [*motifcore, "train", "--no-progress", "--threads", str(args.threads)]
            if (work / "checkpoint.npz").is_file():
                cmd += ["--resume", str(work / "checkpoint.npz"), "--out", str(work)]
            else:
                cmd += ["--dataset", args.dataset, "--hidden", *map(str, args.hidden), "--epochs", str(args.epochs),
                        "--recipe", args.recipe, "--seed", str(seed), *flags, "--out", str(work), "--overwrite"]
                if args.limit_train:
                    cmd += ["--limit-train", str(args.limit_train)]
            print(f"{kind} seed {seed}: {' '.join(cmd)}", flush=True)
            t0 = time.time()
            proc = subprocess.Popen(cmd)
            while proc.poll() is None:
                time.sleep(5 if args.limit_train else 60)
                if (work / "metrics.jsonl").is_file():
                    copy_run_records(work, dest, finished=False)
            if proc.returncode != 0:
                print(f"{kind} seed {seed}: failed with exit code {proc.returncode}", file=sys.stderr, flush=True)
                return proc.returncode
            copy_run_records(work, dest, finished=True)
            print(f"{kind} seed {seed}: done in {time.time() - t0:.0f} s, records in {dest}", flush=True)

    stats = aggregate(scan([args.out, *args.runs_from]), identity, kinds, epoch_seconds or None)
    text = table(stats)
    note = (f"{args.dataset}, {'-'.join(map(str, args.hidden))} hidden, {args.recipe} recipe, {args.epochs} epochs"
            + (f", {args.limit_train} training samples" if args.limit_train else "")
            + "; training seconds on a shared 2-core machine (indicative)"
            + ("; quiet-derived seconds from the epoch seconds " + " ".join(args.epoch_seconds) if epoch_seconds else ""))
    print(note)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(note + "\n\n" + text + "\n")
    (args.out / "summary.json").write_text(json.dumps({"experiment": note, "runs": stats}, indent=1) + "\n")
    fig = figure(stats, args.out / "acc_vs_time.png", note)
    if fig is not None:
        print(f"wrote {args.out / 'table.md'}, {args.out / 'summary.json'}, {fig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
