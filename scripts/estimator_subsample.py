"""The estimator against ``MLPClassifier((256, 256))`` on seeded subsamples of a data set's training
split: accuracy on the full test split and fit time, one JSON line per fit (not a pytest benchmark).

It measures the range between the sets that fit in one batch (the estimator's small-data budget)
and the development sets (960 training samples and more), where the estimator's default budget of
at least 1000 optimizer steps meets an MLP that stops after a few epochs (docs/results.md, section
5, "Round six").

    MOTIFCORE_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/estimator_subsample.py \\
        --dataset skf:COIL20 --sizes 150,300,600 --out subsample.jsonl
    python scripts/estimator_subsample.py --dataset skf:Isolet --sizes 150,300 --methods estimator \\
        --estimator-params '{"hidden_sizes": [64, 64], "lr": 0.01, "min_steps": 300}'
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Optional, Sequence

import numpy as np


def fit_one(method: str, params: Dict[str, Any], X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray,
            seed: int, name: str) -> Dict[str, Any]:
    """One fit through scripts/quality.py's runners (the same estimator and MLP settings)."""
    import quality

    if method == "estimator":
        acc, dt, info = quality._fit_estimator(params)(X, y, Xt, yt, seed, name)
        return {"method": method, "accuracy": acc, "fit_seconds": dt, "estimator_params": params, **info}
    acc, dt = quality._fit_sklearn("mlp")(X, y, Xt, yt, seed, name)
    return {"method": method, "accuracy": acc, "fit_seconds": dt}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, help="a motifcore.datasets name, e.g. skf:COIL20")
    ap.add_argument("--sizes", required=True, help="comma-separated training-sample counts")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="estimator,mlp", help="among estimator, mlp")
    ap.add_argument("--estimator-params", default="{}", metavar="JSON", help="settings of MotifSETClassifier")
    ap.add_argument("--out", help="also append the JSON lines here")
    a = ap.parse_args(argv)
    from motifcore import datasets

    sizes = [int(v) for v in a.sizes.split(",") if v]
    methods = [m for m in a.methods.split(",") if m]
    if not sizes or min(sizes) < 2 or any(m not in ("estimator", "mlp") for m in methods):
        ap.error("--sizes must be counts >= 2 and --methods among estimator, mlp")
    params = json.loads(a.estimator_params)
    out = open(a.out, "a") if a.out else None
    try:
        for seed in (int(s) for s in a.seeds.split(",")):
            X, y, Xt, yt = datasets.load(a.dataset, seed=seed)
            order = np.random.default_rng(seed).permutation(X.shape[0])
            for n in sizes:
                if n > X.shape[0]:
                    ap.error(f"--sizes: {n} is more than the {X.shape[0]} training samples of {a.dataset}")
                idx = order[:n]
                for method in methods:
                    row = {"dataset": a.dataset, "n_train": n, "seed": seed,
                           **fit_one(method, params, X[idx], y[idx], Xt, yt, seed, a.dataset)}
                    line = json.dumps(row)
                    print(line, flush=True)
                    if out:
                        out.write(line + "\n")
    finally:
        if out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
