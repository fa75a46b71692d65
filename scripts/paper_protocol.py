"""Table 4 of the Motif-SET paper at its own protocol: one long run after another, resumable.

Fashion-MNIST, ``784-3000-3000-3000-10``, block density 0.1 in every layer, the paper's recipe
(Table 3: SGD momentum 0.9, lr 0.01, weight decay 5e-4, 5-epoch warm-up then cosine, batch 128),
300 epochs, for each (motif, seed) in the queue. Each run trains in its own work folder (with its
checkpoint, which stays out of the repository); when it finishes, its ``config.json``,
``metrics.jsonl`` and ``summary.json`` are copied to
``docs/results/paper-protocol/<dataset>/m<m>/seed<s>/`` (``--records``). A run whose work folder
holds a checkpoint and no summary continues from it with ``motifcore train --resume``, so a
stopped queue picks up where it stopped (bit-exact with the same build). After every epoch of an
unfinished run the records so far are copied too, beside a ``PARTIAL`` marker, so progress can be
committed before the run ends.

Usage (at low priority, one run at a time, never beside a benchmark that is timed)::

    MOTIFCORE_DATA=../shared/data nice -n 19 python scripts/paper_protocol.py \\
        --runs 4:0 2:0 1:0 --work /tmp/paper-protocol --threads 1

``--recipe motifcore`` runs the default recipe instead (records under
``docs/results/default-protocol/``). ``--table`` prints Table 4 from the committed records beside
the paper's numbers (mean and sample standard deviation over the seeds that finished; unfinished
runs listed apart) and runs nothing::

    python scripts/paper_protocol.py --table
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from motifcore.experiments.run import copy_run_records

ROOT = Path(__file__).resolve().parents[1]
#: Motif-SET paper (000_...), Table 4, Fashion-MNIST, 300 epochs: accuracy (%) and s/epoch per m
#: (m = 8 is the paper's projection)
PAPER_TABLE4 = {1: (76.10, 84.12), 2: (73.30, 47.69), 4: (69.20, 30.70), 8: (65.97, 31.14)}


def table(records: Path) -> str:
    """Table 4 from the records under ``records`` (``m<m>/seed<s>/``)."""
    import statistics

    lines = ["| m | seeds (300 ep.) | final acc. % | best acc. % (epoch) | median s/epoch | paper acc. % | "
             "paper s/epoch | unfinished |", "|---|---|---|---|---|---|---|---|"]
    for mdir in sorted(records.glob("m*"), key=lambda d: int(d.name[1:])):
        m = int(mdir.name[1:])
        done, partial = [], []
        for sdir in sorted(mdir.glob("seed*")):
            rows = [json.loads(x) for x in (sdir / "metrics.jsonl").read_text().splitlines() if x.strip()]
            if (sdir / "summary.json").is_file() and not (sdir / "PARTIAL").exists():
                done.append((sdir.name, json.loads((sdir / "summary.json").read_text()), rows))
            elif rows:
                partial.append(f"{sdir.name}: epoch {rows[-1]['epoch']}, acc {100 * rows[-1]['val_accuracy']:.2f}")

        def ms(v: list[float]) -> str:
            return f"{statistics.mean(v):.2f}" + (f" ± {statistics.stdev(v):.2f}" if len(v) > 1 else "")
        fin = [100 * d[1]["final_accuracy"] for d in done]
        best = [(100 * d[1]["best_accuracy"], d[1]["best_epoch"]) for d in done]
        sec = [statistics.median(r["train_time"] for r in d[2]) for d in done]
        pa, ps = PAPER_TABLE4.get(m, (None, None))
        lines.append(f"| {m} | {len(done)} | {ms(fin) if fin else '-'} | "
                     f"{', '.join(f'{b:.2f} ({e})' for b, e in best) or '-'} | "
                     f"{ms(sec) if sec else '-'} | {pa if pa is not None else '-'} | {ps if ps is not None else '-'} | "
                     f"{'; '.join(partial) or '-'} |")
    return "\n".join(lines)


def _parse_run(text: str) -> tuple[int, int]:
    try:
        m, s = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a run is MOTIF:SEED such as 2:0, got {text!r}") from None
    if m < 1 or s < 0:
        raise argparse.ArgumentTypeError(f"motif must be >= 1 and seed >= 0, got {text!r}")
    return m, s


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", type=_parse_run, default=[(4, 0), (2, 0), (1, 0)],
                   help="MOTIF:SEED pairs, run in this order (default: 4:0 2:0 1:0)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--recipe", default="paper", choices=("paper", "motifcore"))
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, help="folder for the run folders and their checkpoints")
    p.add_argument("--table", action="store_true", help="print Table 4 from the committed records and stop")
    p.add_argument("--records", type=Path, default=None,
                   help="where finished records go (default: docs/results/<recipe>-protocol/<dataset>)")
    p.add_argument("--motifcore", default="motifcore", help="the motifcore command to run")
    args = p.parse_args(argv)
    kind = "paper-protocol" if args.recipe == "paper" else "default-protocol"
    records = args.records or ROOT / "docs" / "results" / kind / args.dataset
    if args.table:
        print(table(records))
        return 0
    if args.work is None:
        p.error("--work is required to run")
    for m, seed in args.runs:
        work = args.work / kind / args.dataset / f"m{m}" / f"seed{seed}"
        dest = records / f"m{m}" / f"seed{seed}"
        if (work / "summary.json").is_file():
            copy_run_records(work, dest, finished=True)
            print(f"m={m} seed={seed}: finished earlier, records in {dest}", flush=True)
            continue
        cmd = [args.motifcore, "train", "--no-progress", "--threads", str(args.threads)]
        if (work / "checkpoint.npz").is_file():
            cmd += ["--resume", str(work / "checkpoint.npz"), "--out", str(work)]
        else:
            cmd += ["--dataset", args.dataset, "--hidden", "3000", "3000", "3000", "--motif", str(m),
                    "--density", "0.1", "--recipe", args.recipe, "--epochs", str(args.epochs),
                    "--seed", str(seed), "--out", str(work), "--overwrite"]
        print(f"m={m} seed={seed}: {' '.join(cmd)}", flush=True)
        t0 = time.time()
        proc = subprocess.Popen(cmd)
        while proc.poll() is None:
            time.sleep(60)
            if (work / "metrics.jsonl").is_file():
                copy_run_records(work, dest, finished=False)
        if proc.returncode != 0:
            print(f"m={m} seed={seed}: failed with exit code {proc.returncode}", file=sys.stderr, flush=True)
            return proc.returncode
        copy_run_records(work, dest, finished=True)
        print(f"m={m} seed={seed}: done in {time.time() - t0:.0f} s, records in {dest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
