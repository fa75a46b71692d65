"""Print the Fashion-MNIST tables of docs/results.md from the run folders of fmnist_results.sh.

Usage: python scripts/results_table.py RUN_DIR
RUN_DIR holds <recipe>/m<M>/ folders (recipe: motifcore, paper; M: 1, 2, 4), each written by
`motifcore train`. Seconds per epoch are the runs' own medians (training iterations only); the
machine was shared, so docs/performance.md has the clean timings.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

PAPER = {1: 76.1, 2: 73.3, 4: 69.2}  # Chen et al., AI 2025, Table 4 (300 epochs)


def _runs(root: Path) -> list[tuple[str, int, dict, list[dict]]]:
    rows = []
    for recipe in ("motifcore", "paper"):
        for m in (1, 2, 4):
            d = root / recipe / f"m{m}"
            if (d / "summary.json").exists():
                s = json.loads((d / "summary.json").read_text())
                epochs = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
                rows.append((recipe, m, s, epochs))
    return rows


def main(run_dir: str) -> None:
    rows = _runs(Path(run_dir))
    if not rows:
        sys.exit(f"no runs found under {run_dir}")
    print("| recipe | m | epochs | test accuracy (final) | best (epoch) | final - best | paper (300 ep.) | "
          "unique params | block MACs / sample | s/epoch (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for recipe, m, s, e in rows:
        t = statistics.median(r["train_time"] for r in e)
        print(f"| {recipe} | {m} | {s['epochs_completed']} | {100 * s['final_accuracy']:.2f} % | "
              f"{100 * s['best_accuracy']:.2f} % ({s['best_epoch']}) | "
              f"{100 * (s['final_accuracy'] - s['best_accuracy']):+.2f} | {PAPER[m]} % | {s['unique_params']:,} | "
              f"{s['block_macs_per_sample']:,} | {t:.2f} |")
    print("\nTest accuracy per epoch (%):\n")
    print("| epoch | " + " | ".join(f"{r} m={m}" for r, m, *_ in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for i in range(max(len(e) for *_, e in rows)):
        cells = []
        for *_, e in rows:
            acc = e[i]["val_accuracy"] if i < len(e) else None
            mark = "*" if i < len(e) and e[i].get("zeta") else ""
            cells.append(f"{100 * acc:.2f}{mark}" if acc is not None else "")
        print(f"| {i + 1} | " + " | ".join(cells) + " |")
    print("\n`*`: an evolution step ran before that epoch.")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
