"""Structure experiments (docs/analysis.md): one command each, results into docs/experiments/structure/.

    # (a1) motif z-scores vs sparsity along iterative magnitude pruning (paper 002's protocol, scaled down)
    python scripts/structure_experiments.py pruning
    # (a2) motif z-scores along SET (m = 1) and Motif-SET (m = 2, block level) training
    python scripts/structure_experiments.py training
    # (b) random vs CH3-L3 regrowth, with and without chain removal (the slides of paper 004)
    python scripts/structure_experiments.py regrowth

Sizes are reduced to fit a shared 2-core machine; every size is a flag (``--help``), and the
docs give the command of a full-size run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import motifcore
import numpy as np
from motifcore import MotifMLP, Trainer
from motifcore.analysis import (
    live_hidden_fraction,
    motif_zscores,
    perturbation_curve,
    significance_profile,
    spectrum_summary,
)
from motifcore.analysis.robustness import KINDS
from motifcore.baselines.prune import keep_largest

OUT = Path("docs/experiments/structure")


def _figure(w=6.0, h=4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _data(name, limit, seed=0):
    X, y, Xt, yt = motifcore.datasets.load(name, seed=seed)
    if limit and limit < X.shape[0]:
        idx = np.random.default_rng(seed).permutation(X.shape[0])[:limit]
        X, y = X[idx], y[idx]
    return X, y, Xt, yt


def magnitude_prune(model, sparsity):
    """Keep the largest-|K| ``1 - sparsity`` fraction of every layer's blocks, with their optimizer
    state (:func:`motifcore.baselines.prune.keep_largest`)."""
    keep_largest(model, 1.0 - sparsity, range(len(model.layers)))


def _ztable(model, level=None, null="er_live"):
    zs = motif_zscores(model, null=null, level=level)
    return {z.motif: (None if z.fixed else z.z) for z in zs}, significance_profile(zs)


def _mean_corr(profiles):
    P = [p[np.isfinite(p)] for p in profiles]
    cs = [float(np.corrcoef(a, b)[0, 1]) for i, a in enumerate(P) for b in P[i + 1:]
          if a.size == b.size and a.size > 1 and a.std() > 0 and b.std() > 0]
    return float(np.mean(cs)) if cs else float("nan")


def pruning(a):
    levels = [float(v) for v in a.levels.split(",")]
    X, y, Xt, yt = _data(a.dataset, a.limit_train)
    sizes = [X.shape[1]] + [a.width] * 3 + [16, int(y.max()) + 1]
    rows = []
    for seed in range(a.seeds):
        model = MotifMLP(sizes, density=1.0, seed=seed)
        Trainer(model, epochs=a.epochs, evolution="none", progress=False, seed=seed).fit(X, y)
        for lv in levels:
            if lv > 0:
                magnitude_prune(model, lv)
                Trainer(model, epochs=a.finetune, evolution="none", progress=False, seed=seed).fit(X, y)
            z, prof = _ztable(model)
            zh, profh = _ztable(model.layers[1:])        # without the 784-wide input layer
            acc = model.score(Xt, yt)
            rows.append({"seed": seed, "sparsity": lv, "accuracy": acc, "z": z, "sp": prof.tolist(),
                         "z_hidden": zh, "sp_hidden": profh.tolist()})
            print(f"seed {seed} sparsity {lv:.2f} acc {acc:.4f} " +
                  " ".join(f"{k}={v:.1f}" for k, v in z.items() if v is not None), flush=True)
    summary = []

    def median_z(sel, key):
        return {m: (float(np.median([r[key][m] for r in sel if r[key][m] is not None]))
                    if any(r[key][m] is not None for r in sel) else None) for m in sel[0][key]}

    for lv in levels:
        sel = [r for r in rows if r["sparsity"] == lv]
        med = median_z(sel, "z")
        summary.append({"sparsity": lv, "accuracy": float(np.mean([r["accuracy"] for r in sel])), "median_z": med,
                        "median_z_hidden": median_z(sel, "z_hidden"),
                        "sp_corr_hidden": _mean_corr([np.array(r["sp_hidden"]) for r in sel]),
                        "sp_corr": _mean_corr([np.array(r["sp"]) for r in sel])})
    res = {"args": {k: v for k, v in vars(a).items() if k != "fn"}, "sizes": sizes, "rows": rows, "summary": summary}
    _save("pruning", res)
    names = [m for m in summary[0]["median_z"] if m != "edges"]
    lines = []
    for title, zk, ck in (("Whole network", "median_z", "sp_corr"),
                          ("Without the input layer", "median_z_hidden", "sp_corr_hidden")):
        lines += [f"{title}: median z over seeds (exact ER null over live neurons)", "",
                  "| pruned | acc | " + " | ".join(names) + " | SP corr |", "|---" * (len(names) + 3) + "|"]
        for s in summary:
            lines.append(f"| {100 * s['sparsity']:.0f} % | {s['accuracy']:.3f} | " + " | ".join(
                "–" if s[zk][m] is None else f"{s[zk][m]:.1f}" for m in names) + f" | {s[ck]:.2f} |")
        lines.append("")
    (OUT / "pruning.md").write_text("\n".join(lines) + "\n")
    fig = _figure()
    ax = fig.add_subplot(111)
    for m in names:
        ax.plot([100 * s["sparsity"] for s in summary], [s["median_z"][m] if s["median_z"][m] is not None else np.nan
                                                          for s in summary], marker="o", label=m)
    ax.set_xlabel("pruned (%)")
    ax.set_ylabel("median z (ER over live neurons)")
    ax.set_yscale("symlog")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(OUT / "pruning_zscores.png")


def training(a):
    X, y, Xt, yt = _data(a.dataset, a.limit_train)
    sizes = [X.shape[1]] + [a.width] * 3 + [int(y.max()) + 1]
    res = {"args": {k: v for k, v in vars(a).items() if k != "fn"}, "sizes": sizes, "runs": []}
    for m in (1, 2):
        for seed in range(a.seeds):
            model = MotifMLP(sizes, motif=m, density=a.density, seed=seed)
            traj = []

            def record(trainer, epoch, logs, model=model, traj=traj):
                if epoch % a.every == 0 or epoch == trainer.epochs:
                    z, prof = _ztable(model, level="block", null="er")
                    traj.append({"epoch": epoch, "accuracy": logs.get("val_accuracy"), "z": z})

            record(type("T", (), {"epochs": a.epochs})(), 0, {})
            Trainer(model, epochs=a.epochs, evolution="set-epoch", evolve_layers="hidden", progress=False, seed=seed,
                    callbacks=[record]).fit(X, y, Xt, yt)
            res["runs"].append({"motif": m, "seed": seed, "trajectory": traj})
            print(f"m={m} seed {seed}: " + "; ".join(
                f"ep{t['epoch']} bifan={t['z']['bifan']:.1f} bipar={t['z']['bipar']:.1f}" for t in traj), flush=True)
    _save("training", res)
    names = ["div2", "conv2", "chain2", "div3", "conv3", "chain3", "bifan", "bipar"]
    lines = ["| motif size | epoch | acc | " + " | ".join(names) + " |", "|---" * (len(names) + 3) + "|"]
    for r in res["runs"]:
        if r["seed"] != 0:
            continue
        for t in r["trajectory"]:
            acc = "–" if t["accuracy"] is None else f"{t['accuracy']:.3f}"
            lines.append(f"| {r['motif']} | {t['epoch']} | {acc} | " + " | ".join(
                "–" if t["z"][n] is None else f"{t['z'][n]:.1f}" for n in names) + " |")
    (OUT / "training.md").write_text("\n".join(lines) + "\n")
    fig = _figure(8, 3.8)
    for k, m in enumerate((1, 2)):
        ax = fig.add_subplot(1, 2, k + 1)
        r = next(r for r in res["runs"] if r["motif"] == m and r["seed"] == 0)
        for n in names:
            ax.plot([t["epoch"] for t in r["trajectory"]],
                    [np.nan if t["z"][n] is None else t["z"][n] for t in r["trajectory"]], marker=".", label=n)
        ax.set_title(f"{'SET' if m == 1 else 'Motif-SET m=2 (block level)'}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("z (ER null)")
        ax.set_yscale("symlog")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(OUT / "training_zscores.png")


def regrowth(a):
    configs = [("RLR", "set", False), ("RLR (+CR)", "cht_random", True), ("CH3L3 (+CR)", "cht", True),
               ("CH3L3 (no CR)", "cht", False)]
    res = {"args": {k: v for k, v in vars(a).items() if k != "fn"}, "runs": []}
    fr = np.linspace(0, 1, a.points)
    for ds in a.datasets.split(","):
        X, y, Xt, yt = _data(ds, a.limit_train)
        Xe, ye = Xt[:a.limit_test], yt[:a.limit_test]
        sizes = [X.shape[1]] + [a.width] * 3 + [int(y.max()) + 1]
        for name, kind, cr in configs:
            for seed in range(a.first_seed, a.first_seed + a.seeds):
                model = MotifMLP(sizes, density=[a.density] * 3 + [1.0], seed=seed)
                init = [set(zip(lay.block_rows.tolist(), lay.indices.tolist())) for lay in model.layers[:3]]
                params = {"zeta": a.zeta}
                if kind.startswith("cht"):
                    params.update(chain_removal=cr, link="random" if kind == "cht_random" else "ch3_l3",
                                  # the step these records were made with (before the CHT code's
                                  # defaults; scripts/cht_protocol.py runs those)
                                  removal="magnitude", fill="random", restore=False)
                tr = Trainer(model, epochs=a.epochs, recipe="paper", optimizer="sgd", lr=a.lr, lr_schedule="constant",
                             weight_decay=a.weight_decay, evolution="set-epoch" if kind == "set" else "cht",
                             evolution_params=params, regrow=a.regrow, evolve_layers="hidden",
                             progress=False, seed=seed)
                t0 = time.perf_counter()
                h = tr.fit(X, y, Xt, yt)
                train_s = time.perf_counter() - t0
                curves = {k: perturbation_curve(model, Xe, ye, k, fractions=fr, repeats=a.repeats, seed=seed)
                          for k in KINDS}
                spec = spectrum_summary(model, layers="hidden")
                alive = live_hidden_fraction(model)
                kept = [len(init[i] & set(zip(lay.block_rows.tolist(), lay.indices.tolist()))) / len(init[i])
                        for i, lay in enumerate(model.layers[:3])]
                run = {"dataset": ds, "config": name, "seed": seed, "accuracy": h.val_accuracy,
                       "init_links_kept": kept,
                       "final_accuracy": h.val_accuracy[-1], "train_s": train_s,
                       "auc": {k: c.auc for k, c in curves.items()},
                       "curves": {k: c.acc_mean.tolist() for k, c in curves.items()},
                       "erank": spec["erank"], "srank": spec["srank"], "erank_sum": spec["erank_sum"],
                       "srank_sum": spec["srank_sum"], "alive_hidden": alive}
                res["runs"].append(run)
                print(f"{ds} {name} seed {seed}: acc {run['final_accuracy']:.4f} erank {spec['erank_sum']:.0f} "
                      f"srank {spec['srank_sum']:.1f} alive {np.round(alive, 2).tolist()} "
                      f"kept {np.round(kept, 2).tolist()} "
                      + " ".join(f"{k}={v:.3f}" for k, v in run["auc"].items()), flush=True)
    res["fractions"] = fr.tolist()
    stem = "regrowth" + (f"_{a.tag}" if a.tag else "")
    _save(stem, res)
    slides = {"CH3L3 (+CR)": [0.122, 0.869, 0.374, 0.255, 0.189, 308.0, 43.1],
              "CH3L3 (no CR)": [0.110, 0.889, 0.291, 0.155, 0.196, 282.6, 42.7],
              "RLR": [0.112, 0.912, 0.339, 0.225, 0.233, 2063.5, 135.0],
              "RLR (+CR)": [0.115, 0.919, 0.347, 0.236, 0.232, 2019.6, 130.0]}
    order = ["strong_first", "weak_first", "random", "shuffle", "noise"]
    lines = ["| dataset | config | accuracy | strong-first | weak-first | random | shuffled | noise | erank | srank | "
             "alive hidden |", "|---" * 11 + "|"]
    for ds in a.datasets.split(","):
        for name in slides:
            sel = [r for r in res["runs"] if r["dataset"] == ds and r["config"] == name]
            if not sel:
                continue

            def mean(f, sel=sel):
                return float(np.mean([f(r) for r in sel]))
            lines.append(f"| {ds} | {name} | {mean(lambda r: r['final_accuracy']):.4f} | " + " | ".join(
                f"{mean(lambda r, k=k: r['auc'][k]):.3f}" for k in order)
                + f" | {mean(lambda r: r['erank_sum']):.1f} | {mean(lambda r: r['srank_sum']):.1f} | "
                + f"{mean(lambda r: np.mean(r['alive_hidden'])):.2f} |")
    for name, v in slides.items():
        lines.append(f"| slides (004) | {name} | – | " + " | ".join(f"{x:.3f}" for x in v[:5])
                     + f" | {v[5]:.1f} | {v[6]:.1f} | – |")
    (OUT / f"{stem}.md").write_text("\n".join(lines) + "\n")
    for ds in a.datasets.split(","):
        fig = _figure(10, 6)
        for k, kind in enumerate(order):
            ax = fig.add_subplot(2, 3, k + 1)
            for name in slides:
                sel = [r for r in res["runs"] if r["dataset"] == ds and r["config"] == name]
                if sel:
                    ax.plot(fr, np.mean([r["curves"][kind] for r in sel], axis=0), label=name)
            ax.set_title(kind, fontsize=9)
            ax.set_xlabel("fraction perturbed", fontsize=8)
        ax = fig.add_subplot(2, 3, 6)
        for name in slides:
            sel = [r for r in res["runs"] if r["dataset"] == ds and r["config"] == name]
            if sel:
                ax.plot(np.arange(1, a.epochs + 1), np.mean([r["accuracy"] for r in sel], axis=0), label=name)
        ax.set_title("test accuracy", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(OUT / f"{stem}_{ds}.png")


def _save(name, res):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(res, indent=1, default=float))


def main():
    global OUT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(OUT), help="output folder (default %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("pruning")
    q.add_argument("--dataset", default="mnist")
    q.add_argument("--limit-train", type=int, default=10000)
    q.add_argument("--width", type=int, default=100)
    q.add_argument("--epochs", type=int, default=5)
    q.add_argument("--finetune", type=int, default=1)
    q.add_argument("--seeds", type=int, default=3)
    q.add_argument("--levels", default="0,0.25,0.5,0.75,0.85,0.9,0.93,0.95,0.97")
    q.set_defaults(fn=pruning)
    q = sub.add_parser("training")
    q.add_argument("--dataset", default="mnist")
    q.add_argument("--limit-train", type=int, default=10000)
    q.add_argument("--width", type=int, default=300)
    q.add_argument("--density", type=float, default=0.05)
    q.add_argument("--epochs", type=int, default=10)
    q.add_argument("--every", type=int, default=2)
    q.add_argument("--seeds", type=int, default=1)
    q.set_defaults(fn=training)
    q = sub.add_parser("regrowth")
    q.add_argument("--datasets", default="mnist,fashion-mnist")
    q.add_argument("--limit-train", type=int, default=0)
    q.add_argument("--limit-test", type=int, default=5000)
    q.add_argument("--width", type=int, default=1000)
    q.add_argument("--density", type=float, default=0.01)
    q.add_argument("--epochs", type=int, default=10)
    q.add_argument("--zeta", type=float, default=0.3)
    q.add_argument("--lr", type=float, default=0.01)
    q.add_argument("--weight-decay", type=float, default=5e-4)
    q.add_argument("--points", type=int, default=11)
    q.add_argument("--repeats", type=int, default=2)
    q.add_argument("--seeds", type=int, default=1)
    q.add_argument("--first-seed", type=int, default=0)
    q.add_argument("--regrow", choices=("zero", "he", "pruned"), default="zero",
                   help="value of regrown links (CHT's default: zero)")
    q.add_argument("--tag", default="", help="suffix of the output files")
    q.set_defaults(fn=regrowth)
    a = p.parse_args()
    OUT = Path(a.out)
    OUT.mkdir(parents=True, exist_ok=True)
    a.fn(a)


if __name__ == "__main__":
    main()
