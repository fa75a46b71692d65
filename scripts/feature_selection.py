"""Feature selection on the scikit-feature sets: motifcore's input-neuron strength against four
standard selectors, under the protocol of the feature-selection literature (docs/feature_selection.md).

For every set, seed and method: rank the features on the training split of
``motifcore.datasets.load("skf:NAME", seed=seed)`` (a stratified 2:1 split, standardised with
training statistics), keep the top K for every K, train one fixed downstream classifier (an RBF
SVC with scikit-learn's defaults) on the training split restricted to them, and score it on the
test split. One JSON line per (set, seed, method) goes to --out (the run resumes: lines already
there are not redone); the table (mean test accuracy over the seeds), the average ranks and the
ranking fit times are printed, and --figure draws accuracy against K per set.

Methods (the default five: the target's comparison):
  motifcore_select  MotifSETSelector(random_state=seed): the "selection" preset, ranked by the path
                 strength (motifcore.sklearn.SELECTION, docs/feature_selection.md)
  f_classif      SelectKBest(f_classif): the ANOVA F statistic
  mutual_info    mutual information with the label of each feature cut into 10 equal-frequency bins
                 (scikit-learn's discrete estimate; its kNN estimator is too slow for this grid)
  l1_logreg      L1-regularised logistic regression (C=1, liblinear; one-vs-rest beyond two
                 classes), importance = sum over classes of |coefficient|
  random_forest  RandomForestClassifier(n_estimators=100, random_state=seed), impurity importances
Earlier and exploratory variants, run and reported only when named in --methods:
  motifcore      MotifSETClassifier(min_steps=1000) (the defaults before the small-data budget;
                 random_state=seed); feature_importances_
  motifcore_set  MotifSETClassifier(evolution="set-epoch")
  motifcore_select_block  MotifSETSelector(importance="block"): the selection preset ranked by the
                 input-neuron strength of feature_importances_ instead of the path strength

--timing measures the ranking fit time of --methods against the random forest's in one process,
interleaved (method, forest, method, forest, ...), the minimum of --repeats fits each, on seed 0 of
every set, and appends one JSON line per (set, method) to --timing-out.

Run it at low priority on a shared machine:
    MOTIFCORE_DATA=/work/shared/data MOTIFCORE_NUM_THREADS=1 nice -n 10 python scripts/feature_selection.py
    python scripts/feature_selection.py --report-only      # table and figure from the JSON lines
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

SETS = ("COIL20", "Isolet", "PCMAC", "BASEHOCK", "TOX-171", "madelon", "ALLAML", "GLIOMA")
KS = (25, 50, 100, 200)
SEEDS = (0, 1, 2)
METHODS = ("motifcore_select", "f_classif", "mutual_info", "l1_logreg", "random_forest")
#: earlier and exploratory variants, run and reported only when named in --methods
EXTRA_METHODS = ("motifcore", "motifcore_set", "motifcore_select_block")
REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "results" / "feature_selection.jsonl"
FIGURE = REPO / "docs" / "results" / "feature_selection.png"
TIMING_OUT = REPO / "docs" / "results" / "feature_selection_timing.jsonl"
DOWNSTREAM = "SVC(kernel='rbf', C=1.0, gamma='scale')"


# ---- the selectors: each returns one importance score per feature (higher is better) -------------

def score_motifcore(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from motifcore.defaults import MIN_STEPS
    from motifcore.sklearn import MotifSETClassifier

    # min_steps given: the budget its records were made with (256-256, 1000 steps) on every set,
    # not the small-data budget the estimator takes on sets that fit in one batch since
    return MotifSETClassifier(min_steps=MIN_STEPS, random_state=seed).fit(X, y).feature_importances_


def score_motifcore_set(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Exploratory, not the target's method: the same estimator with SET's evolution (every layer,
    zeta 0.3 after every epoch, random regrowth), QuickSelection's mechanism of selection."""
    from motifcore.defaults import MIN_STEPS
    from motifcore.sklearn import MotifSETClassifier

    clf = MotifSETClassifier(evolution="set-epoch", min_steps=MIN_STEPS, random_state=seed)
    return clf.fit(X, y).feature_importances_


def score_motifcore_select(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """The selection preset (motifcore.sklearn.SELECTION), ranked by the path strength."""
    from motifcore.sklearn import MotifSETSelector

    return MotifSETSelector(random_state=seed).fit(X, y).feature_importances_


def score_motifcore_select_block(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """The selection preset ranked by the block-level input-neuron strength (QuickSelection's)."""
    from motifcore.sklearn import MotifSETSelector

    return MotifSETSelector(importance="block", random_state=seed).fit(X, y).feature_importances_


def score_f_classif(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.feature_selection import SelectKBest, f_classif

    return SelectKBest(f_classif, k="all").fit(X, y).scores_


MI_BINS = 10


def score_mutual_info(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Mutual information (nats) between the label and each feature cut into ``MI_BINS``
    equal-frequency bins of the training values (the plug-in estimate; what
    ``mutual_info_classif(Xb, y, discrete_features=True)`` returns on the binned ``Xb``, computed for
    all features at once). The kNN estimator of ``mutual_info_classif`` on the raw values took 162 s
    for GLIOMA's 4434 features here, more than the whole grid's budget allows."""
    n, f = X.shape
    qs = np.quantile(X, np.linspace(0, 1, MI_BINS + 1)[1:-1], axis=0)          # [bins - 1, f]
    xb = np.empty((n, f), dtype=np.int64)
    for j in range(f):
        xb[:, j] = np.searchsorted(qs[:, j], X[:, j], side="right")
    c = int(y.max()) + 1
    cell = (np.arange(f, dtype=np.int64)[None, :] * MI_BINS + xb) * c + y[:, None]
    p = np.bincount(cell.ravel(), minlength=f * MI_BINS * c).reshape(f, MI_BINS, c) / n
    px, py = p.sum(axis=2, keepdims=True), p.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / (px * py)), 0.0)
    return terms.sum(axis=(1, 2))


def score_l1_logreg(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    lr = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=1.0, max_iter=1000, random_state=seed)
    if len(np.unique(y)) > 2:
        ovr = OneVsRestClassifier(lr).fit(X, y)
        coef = np.vstack([e.coef_ for e in ovr.estimators_])
    else:
        coef = lr.fit(X, y).coef_
    return np.abs(coef).sum(axis=0)


def score_random_forest(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1).fit(X, y).feature_importances_


SCORERS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "motifcore": score_motifcore, "f_classif": score_f_classif, "mutual_info": score_mutual_info,
    "l1_logreg": score_l1_logreg, "random_forest": score_random_forest, "motifcore_set": score_motifcore_set,
    "motifcore_select": score_motifcore_select, "motifcore_select_block": score_motifcore_select_block,
}


def ranking(scores: np.ndarray) -> np.ndarray:
    """Features by decreasing score, ties (and NaN, as -inf) by increasing index."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    return np.argsort(-s, kind="stable")


def downstream_accuracy(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray) -> float:
    from sklearn.svm import SVC

    return float(SVC(kernel="rbf", C=1.0, gamma="scale").fit(X, y).score(Xt, yt))


# ---- the runs ------------------------------------------------------------------------------------

def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:     # a line cut by an interrupted run: redone
                continue
    return out


def run(sets: list[str], ks: list[int], seeds: list[int], methods: list[str], out: Path) -> None:
    import motifcore

    done = {(r["dataset"], r["seed"], r["method"]) for r in read_records(out)}
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in seeds:                       # seed-major: an interrupted run covers every set
        for name in sets:
            todo = [m for m in ["all_features", *methods] if (name, seed, m) not in done]
            if not todo:
                continue
            X, y, Xt, yt = motifcore.datasets.load(f"skf:{name}", seed=seed)
            for method in todo:
                rec: dict[str, Any] = {"dataset": name, "seed": seed, "method": method, "n_train": int(X.shape[0]),
                                       "n_test": int(Xt.shape[0]), "n_features": int(X.shape[1]),
                                       "n_classes": int(y.max()) + 1, "downstream": DOWNSTREAM}
                if method == "all_features":
                    rec["accuracy_all"] = downstream_accuracy(X, y, Xt, yt)
                else:
                    t0 = time.perf_counter()
                    scores = SCORERS[method](X, y, seed)
                    rec["fit_time_s"] = time.perf_counter() - t0
                    order = ranking(scores)
                    rec["accuracy"] = {str(k): downstream_accuracy(X[:, order[:k]], y, Xt[:, order[:k]], yt)
                                       for k in ks if k <= X.shape[1]}
                    rec["top"] = [int(i) for i in order[:max(ks)]]
                rec["threads"] = os.environ.get("MOTIFCORE_NUM_THREADS")
                with out.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                acc = rec.get("accuracy", {"all": rec.get("accuracy_all")})
                print(f"{name:9s} seed {seed} {method:14s} " + " ".join(f"K={k}:{v:.3f}" for k, v in acc.items())
                      + (f"  fit {rec['fit_time_s']:.1f}s" if "fit_time_s" in rec else ""), flush=True)


def timing(sets: list[str], methods: list[str], repeats: int, out: Path) -> None:
    """Ranking fit time of every method against the random forest's, interleaved in one process
    (method, forest, method, forest, ...), minimum of ``repeats`` fits each, seed 0; one JSON line
    per (set, method) appended to ``out`` with the load average at the start and the end."""
    import motifcore

    out.parent.mkdir(parents=True, exist_ok=True)
    for name in sets:
        X, y, _, _ = motifcore.datasets.load(f"skf:{name}", seed=0)
        for method in methods:
            if method == "random_forest":
                continue
            load0 = os.getloadavg()[0]
            t_m: list[float] = []
            t_rf: list[float] = []
            for _ in range(repeats):
                for f, ts in ((SCORERS[method], t_m), (score_random_forest, t_rf)):
                    t0 = time.perf_counter()
                    f(X, y, 0)
                    ts.append(time.perf_counter() - t0)
            rec = {"dataset": name, "method": method, "repeats": repeats, "fit_time_min_s": min(t_m),
                   "random_forest_min_s": min(t_rf), "ratio": min(t_m) / min(t_rf),
                   "loadavg": [load0, os.getloadavg()[0]], "threads": os.environ.get("MOTIFCORE_NUM_THREADS")}
            with out.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            print(f"{name:9s} {method:16s} min {min(t_m):.2f}s  random_forest min {min(t_rf):.2f}s  "
                  f"ratio {rec['ratio']:.2f}  (load {load0:.2f})", flush=True)


# ---- the report ----------------------------------------------------------------------------------

def summarise(records: list[dict[str, Any]], ks: list[int], methods: list[str]) -> dict[str, Any]:
    """Mean accuracy per (set, method, K) over the seeds present, average ranks over the (set, K)
    cells that every method has, mean fit times."""
    from scipy.stats import rankdata

    acc: dict[tuple[str, str, int], list[float]] = {}
    fit: dict[tuple[str, str], list[float]] = {}
    full: dict[str, list[float]] = {}
    for r in records:
        if r["method"] == "all_features":
            full.setdefault(r["dataset"], []).append(r["accuracy_all"])
            continue
        for k, v in r["accuracy"].items():
            acc.setdefault((r["dataset"], r["method"], int(k)), []).append(v)
        fit.setdefault((r["dataset"], r["method"]), []).append(r["fit_time_s"])
    sets = [s for s in SETS if any(key[0] == s for key in acc)] + \
        sorted({key[0] for key in acc} - set(SETS))
    ranks: dict[str, list[float]] = {m: [] for m in methods}
    seeds_per_cell: dict[tuple[str, int], int] = {}
    for s in sets:
        for k in ks:
            cell = [acc.get((s, m, k)) for m in methods]
            if any(c is None for c in cell):
                continue
            n = min(len(c) for c in cell)            # the seeds every method has
            seeds_per_cell[(s, k)] = n
            means = [float(np.mean(c[:n])) for c in cell]
            for m, rk in zip(methods, rankdata([-v for v in means])):
                ranks[m].append(float(rk))
    return {"sets": sets, "acc": acc, "fit": fit, "full": full, "ranks": ranks, "seeds": seeds_per_cell}


def print_report(summary: dict[str, Any], ks: list[int], methods: list[str]) -> None:
    acc, fit, full = summary["acc"], summary["fit"], summary["full"]
    print(f"\nTest accuracy of {DOWNSTREAM} on the top K features (mean ± std over seeds)\n")
    head = "| set | K | " + " | ".join(methods) + " |"
    print(head)
    print("|" + "---|" * (len(methods) + 2))
    for s in summary["sets"]:
        for k in ks:
            cells = []
            vals = {m: acc.get((s, m, k)) for m in methods}
            best = max((np.mean(v) for v in vals.values() if v), default=None)
            for m in methods:
                v = vals[m]
                if not v:
                    cells.append("-")
                    continue
                txt = f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
                cells.append(f"**{txt}**" if best is not None and np.isclose(np.mean(v), best) else txt)
            print(f"| {s} | {k} | " + " | ".join(cells) + " |")
        if s in full:
            print(f"| {s} | all | {np.mean(full[s]):.3f} (every feature, {len(full[s])} seeds) |"
                  + " |" * (len(methods) - 1))
    print("\nAverage rank over the (set, K) cells (1 = best; ties share the mean rank; "
          f"{len(next(iter(summary['ranks'].values()), []))} cells)\n")
    print("| method | average rank | mean fit time (s) |")
    print("|---|---|---|")
    for m in sorted(methods, key=lambda m: np.mean(summary["ranks"][m]) if summary["ranks"][m] else np.inf):
        r = summary["ranks"][m]
        times = [t for (s, mm), ts in fit.items() if mm == m for t in ts]
        print(f"| {m} | {np.mean(r):.2f} | {np.mean(times):.2f} |" if r else f"| {m} | - | - |")
    print("\nRanking fit time per set (mean over seeds, s; one thread, shared machine: indicative)\n")
    print("| set | " + " | ".join(methods) + " |")
    print("|" + "---|" * (len(methods) + 1))
    for s in summary["sets"]:
        print(f"| {s} | " + " | ".join(f"{np.mean(fit[(s, m)]):.2f}" if (s, m) in fit else "-" for m in methods)
              + " |")


def figure(summary: dict[str, Any], ks: list[int], methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = summary["sets"]
    cols = 4
    rows = max(1, -(-len(sets) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, s in zip(axes.flat, sets):
        for m in methods:
            pts = [(k, summary["acc"][(s, m, k)]) for k in ks if (s, m, k) in summary["acc"]]
            if not pts:
                continue
            kk = [p[0] for p in pts]
            mean = np.array([np.mean(p[1]) for p in pts])
            std = np.array([np.std(p[1]) for p in pts])
            line, = ax.plot(kk, mean, marker="o", lw=2.2 if m.startswith("motifcore") else 1.2, label=m)
            ax.fill_between(kk, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        if s in summary["full"]:
            ax.axhline(np.mean(summary["full"][s]), color="grey", ls=":", lw=1, label="all features")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_title(s)
        ax.set_xlabel("K (selected features)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(sets):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(f"Feature selection on scikit-feature sets: {DOWNSTREAM} on the top K features (mean ± std, seeds)")
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=list(SETS), help="scikit-feature set names (default: the eight)")
    p.add_argument("--ks", nargs="+", type=int, default=list(KS))
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--methods", nargs="+", choices=METHODS + EXTRA_METHODS, default=list(METHODS),
                   help="selectors run and ranked against each other (default: the five of the protocol)")
    p.add_argument("--out", type=Path, default=OUT, help="JSON lines, appended (default docs/results/...)")
    p.add_argument("--figure", type=Path, default=FIGURE)
    p.add_argument("--report-only", action="store_true", help="no new runs: table and figure from --out")
    p.add_argument("--timing", action="store_true",
                   help="only the interleaved fit-time comparison of --methods with the random forest")
    p.add_argument("--repeats", type=int, default=3, help="fits per method and set in --timing (default 3)")
    p.add_argument("--timing-out", type=Path, default=TIMING_OUT)
    args = p.parse_args(argv)
    if args.timing:
        if args.repeats < 1:
            p.error("--repeats must be at least 1")
        timing(args.sets, args.methods, args.repeats, args.timing_out)
        return 0
    if not args.report_only:
        run(args.sets, args.ks, args.seeds, args.methods, args.out)
    records = [r for r in read_records(args.out) if r["dataset"] in args.sets and r["seed"] in args.seeds]
    if not records:
        print(f"no records in {args.out}", file=sys.stderr)
        return 1
    summary = summarise(records, args.ks, args.methods)
    print_report(summary, args.ks, args.methods)
    figure(summary, args.ks, args.methods, args.figure)
    print(f"\nwrote {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
