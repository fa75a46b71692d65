"""The dense MLP beside a ``motifcore train`` run (issue 22): scikit-learn's ``MLPClassifier`` with one
hidden layer sized to the sparse network's unique parameters (``scripts/quality.py``'s
``dense_width``), trained for the same epochs (``max_iter``) at the same batch size (128) on the
same inputs (the loaders' z-score clipped to the ``motifcore`` recipe's ``input_clip``), seeded.
One JSON line per seed is appended to ``--out``.

    MOTIFCORE_DATA=../shared/data OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/dense_equal.py \\
        --dataset mnist --params 72509 --epochs 6 --seeds 0 --out dense.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from quality import dense_params, dense_width


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--params", type=int, required=True, help="unique parameters of the sparse network")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--seeds", default="0")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import motifcore as mc
    from motifcore.defaults import RECIPES
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clip = RECIPES["motifcore"]["input_clip"]
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        X, y, Xt, yt = mc.datasets.load(args.dataset, seed=seed, clip=clip)
        k = int(max(y.max(), yt.max())) + 1
        width = dense_width(args.params, X.shape[1], k)
        est = MLPClassifier((width,), max_iter=args.epochs, batch_size=args.batch_size, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            est.fit(X, y)
            dt = time.perf_counter() - t0
        rec = {"dataset": args.dataset, "seed": seed, "model": f"MLPClassifier(({width},))", "hidden": width,
               "params": dense_params(width, X.shape[1], k), "sparse_unique_params": args.params,
               "epochs": args.epochs, "epochs_run": int(est.n_iter_), "batch_size": args.batch_size,
               "input_clip": clip, "test_accuracy": float(est.score(Xt, yt)), "fit_seconds": dt}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
