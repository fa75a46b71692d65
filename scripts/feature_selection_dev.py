"""Development of the ``selection`` preset (docs/feature_selection.md, "How the selection preset was
chosen"): candidate training configurations of motifcore's feature ranking, measured on development
splits (seeds 3 and 4) that the reported grid of scripts/feature_selection.py (seeds 0, 1, 2) does
not use.

Each candidate trains a MotifMLP with the Trainer as MotifSETClassifier does (inputs clipped to ±3
standard deviations, the "motifcore" recipe, epochs raised to ``min_steps`` optimizer steps, seed =
the split's seed), with the candidate's changes, and ranks the features by the block-level strength
and by the path strength of the same fit. The random forest of the protocol is fitted right after
each candidate fit in the same process, so the fit-time ratio compares like with like (indicative on
a busy machine). Accuracies use the protocol's downstream SVC; the ranks compare each candidate with
the four baselines of --baselines (written by
``scripts/feature_selection.py --seeds 3 4 --methods motifcore f_classif mutual_info l1_logreg random_forest
--out docs/results/feature_selection_dev_baselines.jsonl --figure /tmp/dev.png``).

    MOTIFCORE_DATA=/work/shared/data MOTIFCORE_NUM_THREADS=1 nice -n 10 \
        python scripts/feature_selection_dev.py --candidates preset --seeds 3 4
    python scripts/feature_selection_dev.py --report-only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feature_selection as fs  # noqa: E402

OUT = fs.REPO / "docs" / "results" / "feature_selection_dev.jsonl"
BASELINES = fs.REPO / "docs" / "results" / "feature_selection_dev_baselines.jsonl"
SMALL: dict[str, Any] = {"hidden": (128,), "min_steps": 300}
#: the candidates of the page's table (changes from the estimator's defaults)
CANDIDATES: dict[str, dict[str, Any]] = {
    "small": {**SMALL},
    "small_init0.1": {**SMALL, "input_scale": 0.1},
    "small_set_input_zero": {**SMALL, "evolution": "set-epoch", "evolve_layers": "input", "regrow": "zero"},
    "small_wd5e-3": {**SMALL, "weight_decay": 5e-3},                 # run on four sets only
    "small_every10": {**SMALL, "interval": 10},                        # run on four sets only
    "small_wd2e-2_every10": {**SMALL, "weight_decay": 2e-2, "interval": 10},
    "preset": {**SMALL, "weight_decay": 5e-2, "interval": 10},
    "small_wd1e-1_every10": {**SMALL, "weight_decay": 1e-1, "interval": 10},
    "small_wd2e-2_every10_500steps": {**SMALL, "weight_decay": 2e-2, "interval": 10, "min_steps": 500},
    "small_wd2e-2_every10_nodropout": {**SMALL, "weight_decay": 2e-2, "interval": 10, "dropout": 0.0},
    "small_wd2e-2_every10_2nets": {**SMALL, "weight_decay": 2e-2, "interval": 10, "ensemble": 2},
}


def fit_strengths(X: np.ndarray, y: np.ndarray, seed: int, hidden: tuple[int, ...] = (256, 256),
                  min_steps: int = 1000, input_scale: float = 1.0, evolution: str = "input-cosine",
                  interval: int | None = None, evolve_layers: str | None = None, regrow: str | None = None,
                  weight_decay: float | None = None, dropout: float | None = None) -> dict[str, np.ndarray]:
    """Block-level and path strength of one network trained as the candidate says."""
    from motifcore.analysis.features import input_strength, path_strength
    from motifcore.defaults import INPUT_CLIP
    from motifcore.nn import MotifMLP
    from motifcore.sklearn import ESTIMATOR_EPOCHS
    from motifcore.train.schedules import epochs_for
    from motifcore.train.trainer import Trainer

    Xc = np.clip(X, -INPUT_CLIP, INPUT_CLIP).astype(np.float32)
    model = MotifMLP([X.shape[1], *hidden, int(y.max()) + 1], density=0.1, distribution="output-dense", seed=seed)
    if input_scale != 1.0:
        model.layers[0].weights = np.asarray(model.layers[0].weights) * np.float32(input_scale)
    evo: Any = evolution if interval is None else {"preset": evolution, "interval": interval}
    trainer = Trainer(model, epochs=epochs_for(ESTIMATOR_EPOCHS, min_steps, X.shape[0], 128), recipe="motifcore",
                      evolution=evo, evolve_layers=evolve_layers, regrow=regrow, weight_decay=weight_decay,
                      dropout=dropout, seed=seed, progress=False)
    trainer.fit(Xc, y.astype(np.int64))
    return {"block": input_strength(model), "path": path_strength(model)}


def run(candidates: list[str], sets: list[str], seeds: list[int], ks: list[int], out: Path) -> None:
    import motifcore

    for seed in seeds:
        for name in sets:
            X, y, Xt, yt = motifcore.datasets.load(f"skf:{name}", seed=seed)
            for cand in candidates:
                cfg = dict(CANDIDATES[cand])
                nets = cfg.pop("ensemble", 1)
                t0 = time.perf_counter()
                total: dict[str, np.ndarray] = {}
                for i in range(nets):        # an ensemble sums the normalised strengths of its networks
                    s = fit_strengths(X, y, seed * 1000 + i if nets > 1 else seed, **cfg)
                    total = {k: total.get(k, 0) + v / v.sum() for k, v in s.items()}
                fit_time = time.perf_counter() - t0
                t0 = time.perf_counter()
                fs.score_random_forest(X, y, seed)
                rf_time = time.perf_counter() - t0
                for level, scores in total.items():
                    order = fs.ranking(scores)
                    acc = {str(k): fs.downstream_accuracy(X[:, order[:k]], y, Xt[:, order[:k]], yt) for k in ks}
                    rec = {"candidate": cand, "level": level, "dataset": name, "seed": seed, "accuracy": acc,
                           "fit_time_s": fit_time, "random_forest_s": rf_time}
                    with out.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
                    print(f"{cand:32s} {level:5s} {name:9s} seed {seed} "
                          + " ".join(f"K={k}:{v:.3f}" for k, v in acc.items())
                          + f"  fit {fit_time:.2f}s rf {rf_time:.2f}s",
                          flush=True)


def report(out: Path, baselines: Path, ks: list[int]) -> None:
    """Per candidate, level and seed: the average rank against the four baselines over the cells of
    the sets it was run on, and its mean fit time over the random forest's."""
    from scipy.stats import rankdata

    base = [r for r in fs.read_records(baselines) if "accuracy" in r]
    acc = {(r["method"], r["dataset"], r["seed"], k): v for r in base for k, v in r["accuracy"].items()}
    recs = fs.read_records(out)
    for r in recs:
        for k, v in r["accuracy"].items():
            acc[(f"{r['candidate']}:{r['level']}", r["dataset"], r["seed"], k)] = v
    others = ["f_classif", "mutual_info", "l1_logreg", "random_forest"]
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for r in recs:
        row = rows.setdefault((f"{r['candidate']}:{r['level']}", r["seed"]), {"sets": set(), "fit": [], "rf": []})
        row["sets"].add(r["dataset"])
        row["fit"].append(r["fit_time_s"])
        row["rf"].append(r["random_forest_s"])
    for r in base:                               # the default estimator as a reference
        if r["method"] == "motifcore":
            row = rows.setdefault(("motifcore (default):block", r["seed"]), {"sets": set(), "fit": [], "rf": []})
            row["sets"].add(r["dataset"])
            row["fit"].append(r["fit_time_s"])
            rf = [b["fit_time_s"] for b in base if b["method"] == "random_forest" and b["dataset"] == r["dataset"]
                  and b["seed"] == r["seed"]]
            row["rf"].extend(rf)
    print("| candidate:level | seed | sets | average rank vs the four baselines | fit time / forest's |")
    print("|---|---|---|---|---|")
    for (name, seed), row in sorted(rows.items()):
        method = "motifcore" if name.startswith("motifcore (default)") else name
        ranks = []
        for s in sorted(row["sets"]):
            for k in map(str, ks):
                vals = [acc.get((m, s, seed, k)) for m in [method, *others]]
                if any(v is None for v in vals):
                    continue
                ranks.append(rankdata([-v for v in vals])[0])
        if ranks:
            print(f"| {name} | {seed} | {len(row['sets'])} | {np.mean(ranks):.2f} | "
                  f"{np.mean(row['fit']) / np.mean(row['rf']):.2f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", nargs="+", choices=tuple(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--sets", nargs="+", default=list(fs.SETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[3])
    p.add_argument("--ks", nargs="+", type=int, default=list(fs.KS))
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--baselines", type=Path, default=BASELINES)
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    if set(args.seeds) & set(fs.SEEDS):
        p.error(f"seeds {sorted(set(args.seeds) & set(fs.SEEDS))} are the reported grid's, not development seeds")
    if not args.report_only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        run(args.candidates, args.sets, args.seeds, args.ks, args.out)
    report(args.out, args.baselines, args.ks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
