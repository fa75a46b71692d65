"""Print the Markdown results page (docs/results.md) from the run folders of fmnist_results.sh.

Usage: python scripts/results_table.py RUN_DIR [EPOCH_TIMES.json] > docs/results.md
RUN_DIR holds one folder per motif size (m1, m2, m4), each written by `motifcore train`.
EPOCH_TIMES.json (from scripts/epoch_time.py, run on a quiet machine) replaces the s/epoch
recorded during training when the machine was shared.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

PAPER = {1: 76.1, 2: 73.3, 4: 69.2}  # Chen et al., AI 2025, Table 4 (300 epochs)


def main(run_dir: str, times_file: str | None = None) -> None:
    root = Path(run_dir)
    quiet = json.loads(Path(times_file).read_text()) if times_file else None
    rows = []
    for m in (1, 2, 4):
        d = root / f"m{m}"
        if not (d / "summary.json").exists():
            continue
        s = json.loads((d / "summary.json").read_text())
        epochs = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
        times = [e["train_time"] for e in epochs]
        t = quiet["seconds_per_epoch"][str(m)] if quiet else statistics.median(times)
        rows.append((m, s, t, epochs))
    if not rows:
        sys.exit(f"no runs found under {root}")
    base_time = next((t for m, _, t, _ in rows if m == 1), None)
    n_epochs = rows[0][1]["epochs_completed"]
    print("# Fashion-MNIST results\n")
    print(f"Motif-SET on Fashion-MNIST, `784-3000-3000-3000-10`, block density 0.1, the paper's recipe "
          f"(SGD momentum 0.9, weight decay 5e-4, lr 0.01 with 5-epoch warmup and cosine decay, batch 128, "
          f"SET evolution: zeta 0.2 every 10 epochs after 5 warmup epochs, cosine decay of zeta over the "
          f"last third) shortened to **{n_epochs} epochs** (the paper trains 300), seed 0.\n")
    if quiet:
        print(f"Seconds per epoch (training iterations only, evaluation excluded) come from a separate "
              f"timing run, `scripts/epoch_time.py`, with {quiet['threads']} threads: median of "
              f"{quiet['epochs_timed']} epochs, load average before/after "
              f"{quiet['load_average_before'][0]:.1f}/{quiet['load_average_after'][0]:.1f}. The training runs "
              f"themselves shared the machine with other jobs, so their own timings are not comparable.\n")
    print("| m | test accuracy (final) | best | paper (300 ep.) | unique params | block MACs / sample | "
          "edges | dense-equivalent params | s/epoch (median) | time vs m=1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m, s, t, _ in rows:
        ratio = f"{t / base_time:.2f}x" if base_time else "-"
        print(f"| {m} | {100 * s['final_accuracy']:.2f} % | {100 * s['best_accuracy']:.2f} % "
              f"(ep. {s['best_epoch']}) | {PAPER[m]} % | {s['unique_params']:,} | "
              f"{s['block_macs_per_sample']:,} | {s['edges']:,} | {s['dense_equivalent_params']:,} | "
              f"{t:.2f} | {ratio} |")
    print("\nTest accuracy per epoch:\n")
    print("| epoch | " + " | ".join(f"m={m}" for m, *_ in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for i in range(max(len(e) for *_, e in rows)):
        cells = []
        for *_, e in rows:
            acc = e[i]["val_accuracy"] if i < len(e) else None
            cells.append(f"{100 * acc:.2f}" if acc is not None else "")
        print(f"| {i + 1} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
