#!/usr/bin/env bash
# Regenerates docs/results.md: Motif-SET on Fashion-MNIST, 784-3000-3000-3000-10, block density 0.1,
# the paper's recipe shortened to EPOCHS epochs, m in {1, 2, 4}, one seed.
# Usage: MOTIFCORE_DATA=../shared/data bash scripts/fmnist_results.sh [RUN_DIR] [EPOCHS]
set -euo pipefail
RUN_DIR="${1:-runs/fmnist-results}"
EPOCHS="${2:-30}"
for M in 4 2 1; do
  if [ ! -f "$RUN_DIR/m$M/summary.json" ]; then
    motifcore train --dataset fashion-mnist --hidden 3000 3000 3000 --motif "$M" --density 0.1 \
      --epochs "$EPOCHS" --schedule paper --seed 0 --no-progress --out "$RUN_DIR/m$M"
  fi
done
python scripts/epoch_time.py "$RUN_DIR/epoch_times.json"
python scripts/results_table.py "$RUN_DIR" "$RUN_DIR/epoch_times.json" > docs/results.md
