"""What the dead ReLU neurons of trained networks look like (issue 22).

For each checkpoint: per hidden layer, the neurons that are 0 on every row of the training set (a
seeded sample of ``--rows`` rows), on the whole test set and on the first 2048 test rows (what
``Trainer`` records as ``dead``), and for the dead and the live neurons the mean sum of |incoming
weight| and the mean bias. A neuron whose incoming weights are all near zero was shrunk there
(L2 weight decay inside Adam's normalised step acts on a rarely active neuron as a fixed step of
about the learning rate towards zero); one with normal weights and a negative pre-activation
everywhere was pushed there by the data gradient.

    MOTIFCORE_DATA=../shared/data python scripts/dead_neurons.py \\
        RUN_DIR/checkpoint.npz [...] --out docs/results/learning/dead-neurons.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

import motifcore as mc
from motifcore.train.checkpoint import load_checkpoint


def layer_facts(model: mc.MotifMLP, X: np.ndarray) -> List[Dict[str, Any]]:
    """Per hidden layer: dead count on ``X`` and the weight/bias statistics of dead and live neurons."""
    facts = []
    h = X
    for i, layer in enumerate(model.layers[:-1]):
        h = layer.forward(h)
        dead = ~(h > 0).any(axis=0)
        # sum of |w| over each output neuron's incoming edges, from the block pattern (no dense matrix)
        # (a block of a residual motif has fewer edges than m_in; the upper bound m_in is close enough
        # for telling a collapsed neuron, |w| near 0, from a live one)
        m_out, m_in = layer.motif
        indptr = np.asarray(layer.indptr)
        per_block = np.abs(np.asarray(layer.weights, dtype=np.float64)) * m_in
        group = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        per_group = np.bincount(group, weights=per_block, minlength=len(indptr) - 1)
        row_l1 = np.repeat(per_group, m_out)[:dead.size]     # the last group may be a residual motif
        bias = np.asarray(layer.bias, dtype=np.float64)
        if bias.shape[0] != dead.size:                        # one bias per motif: over its neurons
            bias = np.repeat(bias, m_out)[:dead.size]
        facts.append({
            "layer": i, "neurons": int(dead.size), "dead": int(dead.sum()),
            "dead_mean_incoming_l1": float(row_l1[dead].mean()) if dead.any() else None,
            "live_mean_incoming_l1": float(row_l1[~dead].mean()) if (~dead).any() else None,
            "dead_mean_bias": float(bias[dead].mean()) if dead.any() else None,
            "live_mean_bias": float(bias[~dead].mean()) if (~dead).any() else None,
        })
    return facts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--input-clip", type=float, default=3.0, help="the motifcore recipe's (default 3)")
    p.add_argument("--rows", type=int, default=20000, help="training rows sampled (default 20000)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    X, _, X_test, _ = mc.datasets.load(args.dataset, clip=args.input_clip)
    rows = np.random.default_rng(0).choice(len(X), size=min(args.rows, len(X)), replace=False)
    X_train = np.ascontiguousarray(X[np.sort(rows)])
    records = []
    for path in args.checkpoints:
        model = load_checkpoint(path, num_threads=1).model
        config = json.loads((path.parent / "config.json").read_text()).get("trainer")
        rec = {"checkpoint": str(path), "config": config, "train_rows": int(len(X_train)),
               "layers": layer_facts(model, X_train), "dead_on_test": model.dead_neurons(X_test),
               "dead_on_first_2048_test_rows": model.dead_neurons(X_test[:2048])}
        records.append(rec)
        facts = [(f["dead"], f["dead_mean_incoming_l1"], f["live_mean_incoming_l1"]) for f in rec["layers"]]
        print(path, facts, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
