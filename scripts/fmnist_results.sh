#!/usr/bin/env bash
# Fashion-MNIST runs behind docs/results.md: 784-3000-3000-3000-10, block density 0.1, seed 0,
# m in {1, 2, 4}, with the default recipe for EPOCHS epochs (default 50) and the paper's recipe
# for PAPER_EPOCHS epochs (default 30). Runs already finished are kept.
# Usage: MOTIFCORE_DATA=../shared/data bash scripts/fmnist_results.sh [RUN_DIR] [EPOCHS] [PAPER_EPOCHS]
# then:  python scripts/results_table.py RUN_DIR
set -euo pipefail
RUN_DIR="${1:-runs/fmnist-results}"
EPOCHS="${2:-50}"
PAPER_EPOCHS="${3:-30}"
for M in 4 2 1; do
  if [ ! -f "$RUN_DIR/motifcore/m$M/summary.json" ]; then
    motifcore train --dataset fashion-mnist --hidden 3000 3000 3000 --motif "$M" --density 0.1 \
      --epochs "$EPOCHS" --seed 0 --no-progress --out "$RUN_DIR/motifcore/m$M"
  fi
  if [ ! -f "$RUN_DIR/paper/m$M/summary.json" ]; then
    motifcore train --dataset fashion-mnist --hidden 3000 3000 3000 --motif "$M" --density 0.1 \
      --epochs "$PAPER_EPOCHS" --recipe paper --seed 0 --no-progress --out "$RUN_DIR/paper/m$M"
  fi
done
