"""Paper 002 (Zahn, Daniel & Kutz, arXiv 2403.00974) at a larger scale: many networks per pruning
level, 002's own null and chain convention beside motifcore's (docs/analysis.md, "Paper 002 at
scale"). Two steps, results into docs/experiments/structure/002_scale/:

    # 1. train N networks (dense, then iterative magnitude pruning with fine-tuning); the masks of
    #    every level go to --cache (data, not committed), accuracies to the output folder
    MOTIFCORE_NUM_THREADS=1 nice -n 19 python scripts/structure_002.py train --seeds 24
    # 2. z-scores of every (network, level) under both conventions, SP correlations with
    #    bootstrap confidence intervals, the table
    MOTIFCORE_NUM_THREADS=1 nice -n 19 python scripts/structure_002.py analyze

    # 3. control: randomly pruned networks with the same link counts, under the same conventions
    MOTIFCORE_NUM_THREADS=1 nice -n 19 python scripts/structure_002.py control

``train`` can be run again with ``--first-seed`` to add networks; ``analyze`` uses every network
found in the cache (and re-uses the z-scores already computed for it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import motifcore
import numpy as np
import scipy.sparse as sp
from motifcore import MotifMLP, Trainer
from motifcore.analysis import motif_zscores
from motifcore.baselines.prune import keep_largest

OUT = Path("docs/experiments/structure/002_scale")
CACHE = Path("/tmp/motifcore-structure002")
#: the motifs with a z-score (``edges`` is fixed by every null used here)
NAMES = ("div2", "conv2", "chain2", "div3", "conv3", "chain3", "bifan", "bipar")


def _data(name, limit, seed=0):
    X, y, Xt, yt = motifcore.datasets.load(name, seed=seed)
    if limit and limit < X.shape[0]:
        idx = np.random.default_rng(seed).permutation(X.shape[0])[:limit]
        X, y = X[idx], y[idx]
    return X, y, Xt, yt


def magnitude_prune(model, sparsity, n_layers):
    """Keep the largest-|K| ``1 - sparsity`` fraction of the blocks of the first ``n_layers``
    layers (of the full ``n_out x n_in`` size; cumulative along a schedule, since earlier prunes
    removed the smallest), with their optimizer state (:func:`motifcore.baselines.prune.keep_largest`)."""
    keep_largest(model, 1.0 - sparsity, range(min(n_layers, len(model.layers))))


def train(a):
    levels = [float(v) for v in a.levels.split(",")]
    X, y, Xt, yt = _data(a.dataset, a.limit_train)
    sizes = [X.shape[1]] + [a.width] * 3 + [a.bottleneck, int(y.max()) + 1]
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    (OUT / "networks").mkdir(parents=True, exist_ok=True)
    n_pruned = len(sizes) - 1 - (0 if a.prune_output else 1)
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        t0 = time.process_time()
        model = MotifMLP(sizes, density=1.0, seed=seed)
        Trainer(model, epochs=a.epochs, evolution="none", progress=False, seed=seed).fit(X, y)
        masks, rec = {}, {"seed": seed, "sizes": sizes, "levels": []}
        for lv in levels:
            if lv > 0:
                magnitude_prune(model, lv, n_pruned)
                Trainer(model, epochs=a.finetune, evolution="none", progress=False, seed=seed).fit(X, y)
            acc = float(model.score(Xt, yt))
            nnz = [int(lay.indices.size) for lay in model.layers]
            rec["levels"].append({"sparsity": lv, "accuracy": acc, "nnz": nnz})
            for i, lay in enumerate(model.layers):
                masks[f"{lv}:{i}:indptr"] = np.asarray(lay.indptr, dtype=np.int32)
                masks[f"{lv}:{i}:indices"] = np.asarray(lay.indices, dtype=np.int32)
            print(f"seed {seed} sparsity {lv:.2f} acc {acc:.4f} nnz {nnz}", flush=True)
        rec["cpu_s"] = time.process_time() - t0
        rec["args"] = {k: v for k, v in vars(a).items() if k != "fn"}
        np.savez_compressed(cache / f"seed{seed}.npz", **masks)
        (OUT / "networks" / f"seed{seed}.json").write_text(json.dumps(rec, indent=1))


def _masks(npz, lv, n_layers, sizes):
    out = []
    for i in range(n_layers):
        indptr = npz[f"{lv}:{i}:indptr"].astype(np.int64)
        indices = npz[f"{lv}:{i}:indices"].astype(np.int64)
        out.append(sp.csr_matrix((np.ones(indices.size, dtype=np.int64), indices, indptr),
                                 shape=(sizes[i + 1], sizes[i])))
    return out


def _z(masks, null, chain_mode, n_samples, seed):
    zs = motif_zscores(masks, null=null, chain_mode=chain_mode, n_samples=n_samples, seed=seed, motifs=NAMES)
    return {z.motif: (None if z.fixed else z.z) for z in zs}


#: (key, null, chain mode, part) of every z table
CONVENTIONS = (("ours", "er_live", "paths"), ("p002", "er_live_min1", "pairs"), ("degree", "degree", "paths"),
               ("live_pairs", "er_live", "pairs"), ("min1_paths", "er_live_min1", "paths"))


def _analyze_seed(path, a):
    seed = int(path.stem[4:])
    rec_path = OUT / "networks" / f"seed{seed}.json"
    rec = json.loads(rec_path.read_text())
    done = rec.setdefault("z", {})
    npz = np.load(path)
    sizes = rec["sizes"]
    L = len(sizes) - 1
    convs = [c for c in CONVENTIONS if c[0] in a.conventions.split(",")]
    for k, lvrec in enumerate(rec["levels"]):
        lv = lvrec["sparsity"]
        if lv == 0:             # a dense layer has a single pattern: every z is undefined
            continue
        masks = _masks(npz, lv, L, sizes)
        for part, sub in (("whole", masks), ("hidden", masks[1:])):
            for key, null, mode in convs:
                name = f"{lv}/{part}/{key}"
                n = a.degree_samples if key == "degree" else a.samples
                if name in done and done[name]["n_samples"] == (0 if key == "ours" else n):
                    continue
                t0 = time.process_time()
                z = _z(sub, null, mode, n, seed * 1000 + k)
                done[name] = {"z": z, "n_samples": 0 if key == "ours" else n, "cpu_s": time.process_time() - t0}
                print(f"seed {seed} {name}: " + " ".join(f"{m}={v:.1f}" for m, v in z.items() if v is not None)
                      + f" ({done[name]['cpu_s']:.1f} s)", flush=True)
        rec_path.write_text(json.dumps(rec, indent=1))
    return rec


def _pair_stats(P):
    """Correlation and Euclidean distance matrices of SP vectors (rows of P) over the motifs
    finite in both."""
    n = len(P)
    C = np.full((n, n), np.nan)
    D = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            ok = np.isfinite(P[i]) & np.isfinite(P[j])
            a, b = P[i][ok], P[j][ok]
            if ok.sum() > 1:
                D[i, j] = float(np.linalg.norm(a - b))
                if a.std() > 0 and b.std() > 0:
                    C[i, j] = float(np.corrcoef(a, b)[0, 1])
    return C, D


def _mean_ci(C, n_boot, rng):
    """Mean of the off-diagonal pairs of a network x network matrix and a percentile bootstrap
    95 % interval (networks resampled with replacement; pairs of copies of one network left out)."""
    n = C.shape[0]
    iu = np.triu_indices(n, 1)
    vals = C[iu][np.isfinite(C[iu])]
    if vals.size == 0:
        return float("nan"), float("nan"), float("nan")
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        sub = C[np.ix_(idx, idx)]
        v = sub[np.triu(idx[:, None] != idx[None, :], 1)]
        v = v[np.isfinite(v)]
        if v.size:
            boots.append(float(v.mean()))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(vals.mean()), float(lo), float(hi)


def _sp(z):
    v = np.array([np.nan if z[m] is None else z[m] for m in NAMES], dtype=float)
    ok = np.isfinite(v)
    nrm = np.linalg.norm(v[ok])
    return v / nrm if nrm > 0 else v


def analyze(a):
    if a.seed_range:                     # a share of the networks (e.g. one of several processes)
        lo, hi = (int(v) for v in a.seed_range.split(":"))
        for seed in (range(lo, hi) if lo <= hi else range(lo, hi, -1)):     # lo > hi: downwards
            f = Path(a.cache) / f"seed{seed}.npz"
            t0 = time.time()
            while not (f.exists() and (OUT / "networks" / f"seed{seed}.json").exists()) and time.time() - t0 < a.wait:
                time.sleep(15)          # still being trained
            lock = OUT / "networks" / f"seed{seed}.lock"
            if not f.exists():
                continue
            try:                        # another process is on this network
                os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            try:
                _analyze_seed(f, a)
            finally:
                lock.unlink()
        return
    files = sorted(Path(a.cache).glob("seed*.npz"), key=lambda p: int(p.stem[4:]))
    if not files:
        raise SystemExit(f"no trained networks in {a.cache}: run the train step first")
    if a.summary_only:                   # the networks whose z-scores are all computed
        recs = []
        for f in files:
            rec = json.loads((OUT / "networks" / f"{f.stem}.json").read_text())
            want = {f"{lv['sparsity']}/{part}/{key}" for lv in rec["levels"] if lv["sparsity"] > 0
                    for part in ("whole", "hidden") for key in a.conventions.split(",")}
            if want <= set(rec.get("z", {})):
                recs.append(rec)
    else:
        recs = [_analyze_seed(f, a) for f in files]
    levels = [lv["sparsity"] for lv in recs[0]["levels"]]
    rng = np.random.default_rng(0)
    summary = []
    for k, lv in enumerate(levels):
        acc = [r["levels"][k]["accuracy"] for r in recs]
        row = {"sparsity": lv, "n_networks": len(recs), "accuracy_mean": float(np.mean(acc)),
               "accuracy_min": float(np.min(acc)), "accuracy_max": float(np.max(acc)), "tables": {}}
        for part in ("whole", "hidden"):
            for key, _, _ in CONVENTIONS:
                name = f"{lv}/{part}/{key}"
                sel = [r["z"][name]["z"] for r in recs if name in r.get("z", {})]
                if not sel:
                    continue
                med = {m: (float(np.median([z[m] for z in sel if z[m] is not None]))
                           if any(z[m] is not None for z in sel) else None) for m in NAMES}
                C, D = _pair_stats([_sp(z) for z in sel])
                point, lo, hi = _mean_ci(C, a.boot, rng)
                dpoint, dlo, dhi = _mean_ci(D, a.boot, rng)
                row["tables"][f"{part}/{key}"] = {"median_z": med, "sp_corr": point, "sp_corr_ci": [lo, hi],
                                                  "sp_dist": dpoint, "sp_dist_ci": [dlo, dhi], "n": len(sel),
                                                  "defined": [m for m in NAMES if all(z[m] is not None for z in sel)]}
        summary.append(row)
    res = {"args": {k: v for k, v in vars(a).items() if k != "fn"}, "sizes": recs[0]["sizes"],
           "train_args": recs[0]["args"], "summary": summary}
    (OUT / f"summary{a.tag}.json").write_text(json.dumps(res, indent=1))
    lines = [f"{len(recs)} networks {'-'.join(map(str, recs[0]['sizes']))}; median z over networks; SP corr = mean "
             "pairwise correlation of the significance profiles (over the motifs defined in both), SP dist = mean "
             "pairwise Euclidean distance between them; each with a 95 % bootstrap interval (networks resampled).",
             ""]
    titles = {"ours": "motifcore: exact ER over live units, path chains",
              "p002": f"002's convention: min-degree-1 null over live units (002's generator), pair chains, "
                      f"{a.samples} samples",
              "degree": f"degree-preserving Curveball null, path chains, {a.degree_samples} samples",
              "live_pairs": f"ER over live units (sampled), pair chains, {a.samples} samples",
              "min1_paths": f"002's min-degree-1 null, path chains, {a.samples} samples"}
    for part, ptitle in (("hidden", "without the input layer"), ("whole", "whole network")):
        for key, _, _ in CONVENTIONS:
            tk = f"{part}/{key}"
            if not any(tk in s["tables"] for s in summary):
                continue
            lines += [f"### {titles[key]} ({ptitle})", "",
                      "| pruned | acc (mean, min) | " + " | ".join(NAMES)
                      + " | SP corr [95 % CI] | SP dist [95 % CI] |",
                      "|---" * (len(NAMES) + 4) + "|"]
            for s in summary:
                t = s["tables"].get(tk)
                if t is None:
                    continue
                lines.append(f"| {100 * s['sparsity']:.0f} % | {s['accuracy_mean']:.3f}, {s['accuracy_min']:.3f} | "
                             + " | ".join("–" if t["median_z"][m] is None else f"{t['median_z'][m]:.1f}"
                                          for m in NAMES)
                             + f" | {t['sp_corr']:.3f} [{t['sp_corr_ci'][0]:.3f}, {t['sp_corr_ci'][1]:.3f}]"
                             + f" | {t['sp_dist']:.3f} [{t['sp_dist_ci'][0]:.3f}, {t['sp_dist_ci'][1]:.3f}] |")
            lines.append("")
    (OUT / f"summary{a.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _figure(summary, titles, a.tag)


def _figure(summary, titles, tag=""):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8), dpi=110)
    FigureCanvasAgg(fig)
    rows = [s for s in summary if s["tables"]]
    x = np.array([100 * s["sparsity"] for s in rows])
    ax = fig.add_subplot(1, 3, 1)
    for tk, style in (("hidden/ours", "-o"), ("hidden/p002", "-s"), ("whole/ours", ":o"), ("whole/p002", ":s")):
        if not all(tk in s["tables"] for s in rows):
            continue
        y = np.array([s["tables"][tk]["sp_corr"] for s in rows])
        lo = np.array([s["tables"][tk]["sp_corr_ci"][0] for s in rows])
        hi = np.array([s["tables"][tk]["sp_corr_ci"][1] for s in rows])
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt=style, capsize=2, label=tk.replace("p002", "002"), ms=3)
    ax.set_xlabel("pruned (%)")
    ax.set_ylabel("mean pairwise SP correlation (95 % CI)")
    ax.legend(fontsize=7)
    for j, tk in enumerate(("hidden/ours", "hidden/p002")):
        if not all(tk in s["tables"] for s in rows):
            continue
        ax = fig.add_subplot(1, 3, j + 2)
        for m in NAMES:
            ax.plot(x, [np.nan if s["tables"][tk]["median_z"][m] is None else s["tables"][tk]["median_z"][m]
                        for s in rows], marker=".", label=m)
        ax.set_yscale("symlog")
        ax.set_xlabel("pruned (%)")
        ax.set_title(titles[tk.split("/")[1]].split(":")[0] + " (hidden)", fontsize=8)
        ax.set_ylabel("median z")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(OUT / f"summary{tag}.png")


def control(a):
    """Randomly pruned networks (each layer uniform with the trained networks' link counts at a
    level; 002's open question 1) under the same conventions: z ~ 0 is what a null that matches
    random pruning gives; a nonzero median shows what the null itself adds."""
    rec = json.loads(sorted((OUT / "networks").glob("seed*.json"))[0].read_text())
    sizes = rec["sizes"]
    rng = np.random.default_rng(a.seed)
    convs = [c for c in CONVENTIONS if c[0] in a.conventions.split(",")]
    out = {"args": {k: v for k, v in vars(a).items() if k != "fn"}, "sizes": sizes, "levels": []}
    for k, lvrec in enumerate(rec["levels"]):
        lv = lvrec["sparsity"]
        if lv == 0:
            continue
        row = {"sparsity": lv, "nnz": lvrec["nnz"], "z": {}}
        for r in range(a.n):
            masks = []
            for i, nnz in enumerate(lvrec["nnz"]):
                pos = rng.choice(sizes[i + 1] * sizes[i], size=nnz, replace=False)
                rows, cols = np.divmod(pos, sizes[i])
                masks.append(sp.csr_matrix((np.ones(nnz, dtype=np.int64), (rows, cols)),
                                           shape=(sizes[i + 1], sizes[i])))
            for part, sub in (("whole", masks), ("hidden", masks[1:])):
                for key, null, mode in convs:
                    z = _z(sub, null, mode, a.samples if key == "p002" else a.degree_samples, 10**6 + 1000 * k + r)
                    row["z"].setdefault(f"{part}/{key}", []).append(z)
            print(f"control {lv} #{r}: " + " ".join(f"{m}={v:.1f}" for m, v in row["z"]["hidden/p002"][-1].items()
                                                    if v is not None), flush=True)
        out["levels"].append(row)
        (OUT / "control.json").write_text(json.dumps(out, indent=1))
    lines = [f"Randomly pruned {'-'.join(map(str, sizes))} networks ({a.n} per level, each layer uniform with the "
             "trained networks' link counts): median z.", ""]
    for tk in sorted(out["levels"][0]["z"]):
        lines += [f"### {tk}", "", "| pruned | " + " | ".join(NAMES) + " |", "|---" * (len(NAMES) + 1) + "|"]
        for row in out["levels"]:
            zs = row["z"][tk]
            lines.append(f"| {100 * row['sparsity']:.0f} % | " + " | ".join(
                "–" if all(z[m] is None for z in zs) else f"{np.median([z[m] for z in zs if z[m] is not None]):.1f}"
                for m in NAMES) + " |")
        lines.append("")
    (OUT / "control.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    global OUT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(OUT), help="output folder (default %(default)s)")
    p.add_argument("--cache", default=str(CACHE), help="folder of the trained masks (default %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("train")
    q.add_argument("--dataset", default="mnist")
    q.add_argument("--limit-train", type=int, default=20000)
    q.add_argument("--width", type=int, default=400)
    q.add_argument("--bottleneck", type=int, default=16)
    q.add_argument("--epochs", type=int, default=6, help="dense epochs")
    q.add_argument("--finetune", type=int, default=2, help="epochs of retraining after each pruning step")
    q.add_argument("--seeds", type=int, default=24)
    q.add_argument("--first-seed", type=int, default=0)
    q.add_argument("--levels", default="0,0.5,0.75,0.85,0.9,0.93,0.95,0.97,0.98")
    q.add_argument("--prune-output", action="store_true",
                   help="prune the output layer too (default: kept dense, so that accuracy stays functional)")
    q.set_defaults(fn=train)
    q = sub.add_parser("analyze")
    q.add_argument("--samples", type=int, default=1000, help="samples of 002's null per network (002: 1000)")
    q.add_argument("--degree-samples", type=int, default=50, help="samples of the Curveball null per network")
    q.add_argument("--conventions", default="ours,p002", help="z tables to compute (ours, p002, degree)")
    q.add_argument("--boot", type=int, default=2000, help="bootstrap resamples of the SP correlation")
    q.add_argument("--seed-range", default="",
                   help="lo:hi: only compute the z-scores of networks lo..hi-1 (hi < lo: lo down to hi+1; no "
                        "summary), waiting up to --wait s for each to be trained; for running several processes")
    q.add_argument("--wait", type=float, default=1800.0)
    q.add_argument("--summary-only", action="store_true", help="summarise the networks already analysed")
    q.add_argument("--tag", default="", help="suffix of the summary files")
    q.set_defaults(fn=analyze)
    q = sub.add_parser("control")
    q.add_argument("--n", type=int, default=5, help="random networks per level")
    q.add_argument("--samples", type=int, default=1000, help="samples of 002's null per network")
    q.add_argument("--degree-samples", type=int, default=50)
    q.add_argument("--conventions", default="ours,p002")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(fn=control)
    a = p.parse_args()
    OUT = Path(a.out)
    OUT.mkdir(parents=True, exist_ok=True)
    a.fn(a)


if __name__ == "__main__":
    main()
