"""Quality benchmark: motifcore's defaults against scikit-learn on the same splits, one table.

For every dataset and seed, all methods train on the same split (``datasets.load(name, seed=seed)``)
and are scored on its test part:

* ``estimator``  -- ``MotifSETClassifier()`` with every default;
* ``static``     -- the same with ``evolution="none"`` (static sparse: what evolution must beat);
* ``cli``        -- ``motifcore train --dataset NAME --seed SEED`` with every default (the paper's
  ``784-3000-3000-3000-10``-style network, 30 epochs); fit time = its training + evolution time;
* ``logreg``     -- ``LogisticRegression(max_iter=1000)``;
* ``mlp``        -- ``MLPClassifier(hidden_layer_sizes=(256, 256), random_state=seed)``;
* ``dense-eq``   -- a dense ``MLPClassifier`` with one hidden layer whose width gives it as many
  parameters as ``MotifSETClassifier()``'s sparse network has unique parameters (the nearest
  width), trained for the same epochs (``max_iter``) at the same batch size: what sparsity has
  to match at an equal parameter count and an equal budget.

Below the accuracy table, the estimator's gap to the better of ``logreg`` and ``mlp`` (issue 22's
target: within 2 points) and to ``dense-eq``, and its fit time against ``mlp``'s.

Fit time is wall clock of ``fit`` (the CLI: the training and evolution time it reports, without
data loading and evaluation). Results are appended to a JSON-lines file as they finish, so an
interrupted run continues where it stopped; the table is printed from that file.

    MOTIFCORE_DATA=../shared/data python scripts/quality.py --out docs/quality/results.jsonl

Options: ``--datasets``, ``--seeds``, ``--methods`` restrict the grid; ``--table-only`` prints the
table of what the file holds; ``--estimator-params '{"min_steps": 500}'`` changes the estimator's
settings (a candidate default; use a separate ``--out``).
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
METHODS = ["estimator", "static", "cli", "logreg", "mlp", "dense-eq"]


def dense_width(n_params: int, n_features: int, n_classes: int) -> int:
    """Hidden width of a one-hidden-layer dense ``MLPClassifier`` with the parameter count nearest
    ``n_params`` (weights and biases; two classes have one output unit in scikit-learn)."""
    k = 1 if n_classes == 2 else n_classes
    return max(1, round((n_params - k) / (n_features + 1 + k)))


def dense_params(width: int, n_features: int, n_classes: int) -> int:
    k = 1 if n_classes == 2 else n_classes
    return n_features * width + width + width * k + k


#: Settings given to every ``MotifSETClassifier`` of the run on top of the method's own
#: (``--estimator-params``); empty: every default.
ESTIMATOR_PARAMS: dict[str, Any] = {}
#: what each estimator method sets on top of them
METHOD_PARAMS: dict[str, dict[str, Any]] = {"estimator": {}, "static": {"evolution": "none"}}


def _fit_estimator(kwargs: dict[str, Any]) -> Callable[..., tuple[float, float, dict[str, Any]]]:
    def run(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int,
            name: str) -> tuple[float, float, dict[str, Any]]:
        from motifcore import MotifSETClassifier

        params = {**ESTIMATOR_PARAMS, **kwargs}
        clf = MotifSETClassifier(random_state=seed, **params)
        t0 = time.perf_counter()
        clf.fit(X, y)
        dt = time.perf_counter() - t0
        run = {"estimator_params": dict(ESTIMATOR_PARAMS)} if ESTIMATOR_PARAMS else {}
        return float(clf.score(Xt, yt)), dt, {**run, "n_iter": int(clf.n_iter_), "small_data": bool(clf.small_data_)}
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


def _fit_dense_eq(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int,
                  name: str) -> tuple[float, float, dict[str, Any]]:
    from motifcore import MotifSETClassifier
    from motifcore.train.schedules import epochs_for
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    # the estimator's network, epochs and batch (the defaults, or --estimator-params)
    ref = MotifSETClassifier(random_state=seed, **ESTIMATOR_PARAMS)
    n_classes = len(np.unique(y))
    hidden, _, min_steps = ref._budget(X.shape[0])
    sparse = ref._new_model(X.shape[1], n_classes, seed, 1, hidden).n_params
    batch = ref._batch_size()
    epochs = epochs_for(ref.epochs, min_steps, X.shape[0], batch)
    width = dense_width(sparse, X.shape[1], n_classes)
    est = MLPClassifier(hidden_layer_sizes=(width,), max_iter=epochs, batch_size=batch, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, y)
        dt = time.perf_counter() - t0
    run = {"estimator_params": dict(ESTIMATOR_PARAMS)} if ESTIMATOR_PARAMS else {}
    info = {**run, "hidden": width, "params": dense_params(width, X.shape[1], n_classes),
            "sparse_unique_params": sparse, "epochs": epochs, "epochs_run": int(est.n_iter_), "batch_size": batch}
    return float(est.score(Xt, yt)), dt, info


RUNNERS: dict[str, Callable[..., Any]] = {
    "estimator": _fit_estimator(METHOD_PARAMS["estimator"]),
    "static": _fit_estimator(METHOD_PARAMS["static"]),
    "cli": _fit_cli,
    "logreg": _fit_sklearn("logreg"),
    "mlp": _fit_sklearn("mlp"),
    "dense-eq": _fit_dense_eq,
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


def gaps(rows: dict[tuple[str, str, int], dict[str, Any]], datasets: list[str]) -> str:
    """Per dataset: the estimator's mean accuracy minus the better of logreg's and mlp's, minus
    dense-eq's (points), and its median fit time over mlp's (empty where a method is missing)."""
    def mean(d: str, m: str) -> float | None:
        acc = [r["accuracy"] * 100 for (dd, mm, _), r in rows.items() if dd == d and mm == m]
        return float(np.mean(acc)) if acc else None

    def median_time(d: str, m: str) -> float | None:
        t = [r["fit_seconds"] for (dd, mm, _), r in rows.items() if dd == d and mm == m]
        return float(np.median(t)) if t else None

    lines = ["| dataset | estimator − best of logreg, mlp | estimator − dense-eq | fit time estimator / mlp |",
             "| --- | --- | --- | --- |"]
    for d in datasets:
        est, lr, mlp, eq = mean(d, "estimator"), mean(d, "logreg"), mean(d, "mlp"), mean(d, "dense-eq")
        te, tm = median_time(d, "estimator"), median_time(d, "mlp")
        best = max(v for v in (lr, mlp) if v is not None) if (lr is not None or mlp is not None) else None
        cells = [f"{est - best:+.2f}" if est is not None and best is not None else "-",
                 f"{est - eq:+.2f}" if est is not None and eq is not None else "-",
                 f"{te / tm:.2f}" if te is not None and tm else "-"]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default="quality.jsonl", help="JSON-lines file of results (appended, resumable)")
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--estimator-params", default="{}", metavar="JSON",
                   help="settings of MotifSETClassifier for the estimator and static methods, e.g. "
                        "'{\"min_steps\": 500}' (recorded in each row; default: every default)")
    args = p.parse_args(argv)
    try:
        params = json.loads(args.estimator_params)
    except json.JSONDecodeError as e:
        p.error(f"--estimator-params is not JSON: {e}")
    if not isinstance(params, dict):
        p.error(f"--estimator-params must be a JSON object, got {args.estimator_params!r}")
    from motifcore import MotifSETClassifier

    known = set(MotifSETClassifier().get_params()) - {"random_state"}
    bad = sorted(set(params) - known)
    if bad:
        p.error(f"--estimator-params: {', '.join(bad)} cannot be set (the seed is the run's; known: "
                f"{', '.join(sorted(known))})")
    ESTIMATOR_PARAMS.clear()
    ESTIMATOR_PARAMS.update(params)
    datasets = [d for d in args.datasets.split(",") if d]
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(RUNNERS)
    if unknown:
        p.error(f"unknown methods: {', '.join(sorted(unknown))}; known: {', '.join(RUNNERS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done(out)
    def stored(m: str, r: dict[str, Any]) -> str:
        own = METHOD_PARAMS.get(m, {})    # rows of a first version recorded the method's own setting too
        given = {k: v for k, v in r.get("estimator_params", {}).items() if k not in own or own[k] != v}
        return json.dumps(given, sort_keys=True)

    other = sorted({stored(m, r) for (_, m, _), r in done.items() if m in ("estimator", "static", "dense-eq")}
                   - {json.dumps(params, sort_keys=True)})
    if other:
        p.error(f"{out} holds rows of other estimator settings ({', '.join(other)}); use another --out")
    if not args.table_only:
        import motifcore as mc

        for d in datasets:
            for s in seeds:
                todo = [m for m in methods if (d, m, s) not in done]
                if not todo:
                    continue
                X, y, Xt, yt = mc.datasets.load(d, seed=s)
                for m in todo:
                    acc, dt, *info = RUNNERS[m](X, y, Xt, yt, s, d)
                    row = {"dataset": d, "method": m, "seed": s, "accuracy": acc, "fit_seconds": dt,
                           "n_train": int(X.shape[0]), "n_test": int(Xt.shape[0]), **(info[0] if info else {})}
                    with open(out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    done[(d, m, s)] = row
                    print(f"{d:<16} {m:<10} seed {s}: accuracy {acc * 100:.2f} %, fit {dt:.2f} s", file=sys.stderr,
                          flush=True)
    print(table(done, datasets, methods))
    print()
    print(gaps(done, datasets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
