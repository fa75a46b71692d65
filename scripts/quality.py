"""Quality benchmark: motifcore's defaults against scikit-learn on the same splits, one table.

For every dataset and seed, all methods train on the same split (``datasets.load(name, seed=seed)``)
and are scored on its test part:

* ``estimator``  -- ``MotifSETClassifier()`` with every default;
* ``static``     -- the same with ``evolution="none"`` (static sparse: what evolution must beat);
* ``cli``        -- ``motifcore train --dataset NAME --seed SEED`` with every default (the paper's
  ``784-3000-3000-3000-10``-style network, 30 epochs); fit time = its training + evolution time;
* ``logreg``     -- ``LogisticRegression(max_iter=1000)``;
* ``mlp``        -- ``MLPClassifier(hidden_layer_sizes=(256, 256), random_state=seed)``.

Fit time is wall clock of ``fit`` (the CLI: the training and evolution time it reports, without
data loading and evaluation). Results are appended to a JSON-lines file as they finish, so an
interrupted run continues where it stopped; the table is printed from that file.

    MOTIFCORE_DATA=../shared/data python scripts/quality.py --out docs/quality/results.jsonl

Options: ``--datasets``, ``--seeds``, ``--methods`` restrict the grid; ``--table-only`` prints the
table of what the file holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

DATASETS = ["fashion-mnist", "mnist", "skf:COIL20", "skf:Isolet", "skf:PCMAC", "skf:BASEHOCK", "skf:TOX-171",
            "skf:madelon"]
METHODS = ["estimator", "static", "cli", "logreg", "mlp"]


def _fit_estimator(kwargs: dict[str, Any]) -> Callable[..., tuple[float, float]]:
    def run(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int, name: str) -> tuple[float, float]:
        from motifcore import MotifSETClassifier

        clf = MotifSETClassifier(random_state=seed, **kwargs)
        t0 = time.perf_counter()
        clf.fit(X, y)
        dt = time.perf_counter() - t0
        return float(clf.score(Xt, yt)), dt
    return run


def _fit_sklearn(kind: str) -> Callable[..., tuple[float, float]]:
    def run(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int, name: str) -> tuple[float, float]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier

        est = (LogisticRegression(max_iter=1000) if kind == "logreg"
               else MLPClassifier(hidden_layer_sizes=(256, 256), random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            est.fit(X, y)
            dt = time.perf_counter() - t0
        return float(est.score(Xt, yt)), dt
    return run


def _fit_cli(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int, name: str) -> tuple[float, float]:
    from motifcore.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        status = main(["train", "--dataset", name, "--seed", str(seed), "--no-progress", "--out", tmp])
        if status != 0:
            raise RuntimeError(f"motifcore train exited with {status}")
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    return float(summary["final_accuracy"]), summary["total_train_seconds"] + summary["total_evolution_seconds"]


RUNNERS: dict[str, Callable[..., tuple[float, float]]] = {
    "estimator": _fit_estimator({}),
    "static": _fit_estimator({"evolution": "none"}),
    "cli": _fit_cli,
    "logreg": _fit_sklearn("logreg"),
    "mlp": _fit_sklearn("mlp"),
}


def _done(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
                out[(r["dataset"], r["method"], int(r["seed"]))] = r
            except (ValueError, KeyError):
                continue
    return out


def table(rows: dict[tuple[str, str, int], dict[str, Any]], datasets: list[str], methods: list[str]) -> str:
    head = "| dataset | " + " | ".join(methods) + " |"
    lines = [head, "|" + " --- |" * (len(methods) + 1)]
    for d in datasets:
        cells = []
        for m in methods:
            rs = [r for (dd, mm, _), r in sorted(rows.items()) if dd == d and mm == m]
            if not rs:
                cells.append("-")
                continue
            acc = np.array([r["accuracy"] for r in rs]) * 100
            t = float(np.median([r["fit_seconds"] for r in rs]))
            sd = acc.std(ddof=1) if len(acc) > 1 else 0.0     # sample std, as every page of docs/
            cells.append(f"{acc.mean():.2f} ± {sd:.2f} ({t:.1f} s, n={len(rs)})")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default="quality.jsonl", help="JSON-lines file of results (appended, resumable)")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(RUNNERS)
    if unknown:
        p.error(f"unknown methods: {', '.join(sorted(unknown))}; known: {', '.join(RUNNERS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done(out)
    if not args.table_only:
        import motifcore as mc

        for d in datasets:
            for s in seeds:
                todo = [m for m in methods if (d, m, s) not in done]
                if not todo:
                    continue
                X, y, Xt, yt = mc.datasets.load(d, seed=s)
                for m in todo:
                    acc, dt = RUNNERS[m](X, y, Xt, yt, s, d)
                    row = {"dataset": d, "method": m, "seed": s, "accuracy": acc, "fit_seconds": dt,
                           "n_train": int(X.shape[0]), "n_test": int(Xt.shape[0])}
                    with open(out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    done[(d, m, s)] = row
                    print(f"{d:<16} {m:<10} seed {s}: accuracy {acc * 100:.2f} %, fit {dt:.2f} s", file=sys.stderr,
                          flush=True)
    print(table(done, datasets, methods))
    return 0


if __name__ == "__main__":
    sys.exit(main())
