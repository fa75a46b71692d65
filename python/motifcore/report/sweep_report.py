"""The paper's tables and figures, rebuilt from the runs of a sweep folder (:mod:`motifcore.sweep`).

:func:`write_report` reads ``<sweep>/runs/*.json`` and writes, into ``<sweep>/report`` by default:

``report.md``
    Per dataset, with every number a mean ± sample std over seeds:

    * **Tables 4/5** -- per motif size ``m``: test accuracy, unique parameters, block MACs per
      sample (the paper's "FLOPs"), edges, dense-equivalent parameters, the paper-style block
      count of the same network at density 1 (what Tables 4-5 print as Params), seconds per
      epoch (training iterations only) and the speed-up over ``m = 1``; next to every ``m > 1``
      the *honest baseline* of docs/design.md §4.3 when the sweep has it: plain SET at hidden widths
      ``n / m`` (about the same unique multiplies), with the accuracy difference;
    * **Table 6** -- per-layer motif schedules, when the sweep has any;
    * the paper's projection check: ``t(m) = a + b / m**2`` and the log-scale accuracy trend fitted
      on ``m in {1, 2, 4}`` and compared with the measured ``m = 8``;
    * comprehensive score (Sec. 4.2, ``w = 0.1``), utility ``U(m)`` and the recommended ``m`` with
      its reason (:func:`motifcore.metrics.recommend_m`); Pareto frontier over (accuracy,
      log MACs) and its knee (:func:`~motifcore.metrics.pareto_front`,
      :func:`~motifcore.metrics.knee_point`);
    * measured batch-1 latency and throughput next to the latency-model estimates of
      :mod:`motifcore.estimate` (Table 1's compute-bound ``1/m**2``, and a model fitted to the
      measurements);
    * **Tables 12/13** -- sensitivity, when the sweep varies the learning rate or the density:
      accuracy, MACs and time normalised to ``m = 1`` at the same (lr, density, seed).
``*.csv``
    The same tables (raw numbers, one CSV per table, all datasets), plus ``runs.csv`` (one row
    per run).
``<dataset>_acc_vs_time.png``, ``<dataset>_score_vs_w.png``, ``<dataset>_pareto.png``
    Accuracy vs seconds per epoch with error bars (paper Figs. 6-7), comprehensive score vs the
    efficiency weight ``w`` (Figs. 8-9), and the Pareto frontier with its knee
    (:mod:`.sweep_figures`).

Tables 4/5 use, per dataset, the learning rate closest (in log scale) to the paper's 0.01 and the
density closest to its 0.1 when the sweep has several.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._internal.io import PathLike, atomic_write
from .._internal.motif_spec import label as motif_label
from ..analysis import metrics
from ..experiments.sweep import load_runs
from ..experiments.sweep_spec import run_id
from .sweep_figures import config_name, dataset_figures

__all__ = ["aggregate", "run_rows", "write_report"]


PAPER_LR = 0.01
PAPER_DENSITY = 0.1
SCORE_WEIGHT = metrics.DEFAULT_SCORE_WEIGHT


# ------------------------------------------------------------------------------------------------
# rows and groups
# ------------------------------------------------------------------------------------------------


def run_rows(runs: Iterable[Mapping[str, Any]], time_stat: str = "median") -> list[dict[str, Any]]:
    """One flat dict per run record (what ``runs.csv`` holds); ``s_per_epoch`` is the run's median
    (``time_stat="median"``) or mean training time per epoch."""
    if time_stat not in ("median", "mean"):
        raise ValueError(f"time_stat must be 'median' or 'mean', got {time_stat!r}")
    rows = []
    for r in runs:
        c = r.get("config", {})
        m = r.get("metrics", {})
        motif = c.get("motif")
        uniform = isinstance(motif, int)
        rows.append({
            "run_id": r["run_id"], "status": r.get("status"), "dataset": c.get("dataset"),
            "variant": c.get("variant", "motif"), "motif": motif_label(motif), "m": motif if uniform else None,
            "base_motif": c.get("base_motif"), "evolution": _evolution(r),
            "hidden": "-".join(str(h) for h in c.get("hidden", [])),
            "sizes": "-".join(str(s) for s in r.get("sizes", [])),
            "density": c.get("density"), "lr": c.get("lr"), "seed": c.get("seed"), "epochs": c.get("epochs"),
            "test_accuracy": m.get("test_accuracy"), "best_test_accuracy": m.get("best_test_accuracy"),
            "final_train_loss": m.get("final_train_loss"),
            "unique_params": m.get("unique_params"), "block_macs_per_sample": m.get("block_macs_per_sample"),
            "edges": m.get("edges"), "dense_params": m.get("dense_params"), "dense_blocks": m.get("dense_blocks"),
            "s_per_epoch": m.get(f"{time_stat}_s_per_epoch"), "mean_s_per_epoch": m.get("mean_s_per_epoch"),
            "median_s_per_epoch": m.get("median_s_per_epoch"),
            "latency_batch1_us": None if m.get("latency_batch1_s") is None else 1e6 * m["latency_batch1_s"],
            "throughput_batch1_per_s": m.get("throughput_batch1_per_s"),
            "threads": (r.get("execution") or {}).get("threads"),
            "n_train": r.get("n_train"), "n_test": r.get("n_test"), "checkpoint": r.get("checkpoint"),
        })
    return rows


def _evolution(run: Mapping[str, Any]) -> Any:
    """The evolution a stored run trained with: a run stored as ``"set"`` before round five (its
    id, from its config alone, is not what ``"set"`` hashes to now) ran SET's own schedule, today's
    ``"set-epoch"``."""
    c = run.get("config", {})
    evo = c.get("evolution")
    if evo != "set":
        return evo
    try:
        return evo if run_id(c) == run.get("run_id") else "set-epoch"
    except (KeyError, TypeError, ValueError):    # a config without the keys of an id: as stored
        return evo


_GROUP_KEY = ("dataset", "variant", "motif", "base_motif", "evolution", "hidden", "density", "lr", "epochs")
_MEAN_STD = ("test_accuracy", "best_test_accuracy", "s_per_epoch", "latency_batch1_us", "throughput_batch1_per_s")
_COUNTS = ("unique_params", "block_macs_per_sample", "edges", "dense_params", "dense_blocks")


def aggregate(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group runs that differ only in their seed; mean and sample std (ddof=1) of the measured
    values over the successful seeds, mean of the counts. ``n_seeds`` counts successful runs,
    ``n_failed`` the others (diverged)."""
    groups: OrderedDict[tuple[Any, ...], list[Mapping[str, Any]]] = OrderedDict()
    for r in rows:
        groups.setdefault(tuple(r[k] for k in _GROUP_KEY), []).append(r)
    out = []
    for key, members in groups.items():
        ok = [r for r in members if r["status"] == "ok" and r["test_accuracy"] is not None]
        g: dict[str, Any] = dict(zip(_GROUP_KEY, key))
        g["m"] = members[0]["m"]
        g["sizes"] = members[0]["sizes"]
        g["n_seeds"] = len(ok)
        g["n_failed"] = len(members) - len(ok)
        g["seeds"] = sorted(r["seed"] for r in ok)
        for k in _MEAN_STD:
            vals = [r[k] for r in ok if r[k] is not None]
            if vals:
                mean, std = metrics.summarize(vals)
                g[k], g[k + "_std"] = mean, std
            else:
                g[k], g[k + "_std"] = None, None
        for k in _COUNTS:
            vals = [r[k] for r in ok if r[k] is not None]
            g[k] = float(np.mean(vals)) if vals else None
        g["per_seed"] = {r["seed"]: r for r in ok}
        out.append(g)
    return out


def _closest(values: Iterable[float], target: float) -> float:
    vals = sorted(set(values))
    return min(vals, key=lambda v: (abs(math.log(v / target)), v))


# ------------------------------------------------------------------------------------------------
# formatting
# ------------------------------------------------------------------------------------------------


def _pm(mean: Any, std: Any, scale: float = 1.0, digits: int = 2) -> str:
    if mean is None:
        return "–"
    return f"{mean * scale:.{digits}f} ± {(std or 0.0) * scale:.{digits}f}"


def _count(n: float | None) -> str:
    if n is None:
        return "–"
    if n >= 1e6:
        return f"{n / 1e6:.3f} M"
    if n >= 1e4:
        return f"{n / 1e3:.1f} k"
    return f"{n:,.0f}"


def _num(v: float | None, spec: str = ".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(lines)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if x is None else x for x in r])
    atomic_write(path, buf.getvalue().encode())


# ------------------------------------------------------------------------------------------------
# per-dataset analysis
# ------------------------------------------------------------------------------------------------


class _Tables:
    """Accumulates CSV rows of every table over all datasets."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[list[str], list[list[Any]]]] = {}

    def add(self, name: str, header: Sequence[str], row: Sequence[Any]) -> None:
        _h, rows = self.tables.setdefault(name, (list(header), []))
        rows.append(list(row))


def _acc_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float, float]:
    """(mean_a - mean_b, standard error of the difference) of test accuracy, in points."""
    d = 100 * (a["test_accuracy"] - b["test_accuracy"])
    se = 100 * math.sqrt((a["test_accuracy_std"] or 0) ** 2 / max(a["n_seeds"], 1)
                         + (b["test_accuracy_std"] or 0) ** 2 / max(b["n_seeds"], 1))
    return d, se


def _dataset_section(name: str, groups: list[dict[str, Any]], out: Path, tables: _Tables, lam: float,
                     max_acc_drop: float | None, figures: bool) -> list[str]:
    md: list[str] = []
    ok = [g for g in groups if g["n_seeds"] > 0]
    if not ok:
        return [f"## {name}", "", "No successful runs yet.", ""]
    lr_ref = _closest([g["lr"] for g in ok], PAPER_LR)
    d_ref = _closest([g["density"] for g in ok], PAPER_DENSITY)
    ref = [g for g in ok if g["lr"] == lr_ref and g["density"] == d_ref]
    counts = {e: sum(g["epochs"] == e for g in ref) for e in {g["epochs"] for g in ref}}
    ep_ref = max(counts, key=lambda e: (counts[e], e))      # the most common run length (then the longest)
    others = sorted(e for e in counts if e != ep_ref)
    ref = [g for g in ref if g["epochs"] == ep_ref]
    epochs = [ep_ref]
    uniform = sorted([g for g in ref if g["variant"] == "motif" and g["m"] is not None], key=lambda g: g["m"])
    schedules = [g for g in ref if g["variant"] == "motif" and g["m"] is None]
    narrow = {g["base_motif"]: g for g in ref if g["variant"] == "narrow"}
    base = next((g for g in uniform if g["m"] == 1), None)
    sizes = uniform[0]["sizes"] if uniform else ref[0]["sizes"]
    n_train = next(iter(ref[0]["per_seed"].values()))["n_train"]
    n_test = next(iter(ref[0]["per_seed"].values()))["n_test"]

    md += [f"## {name}", "",
           (f"Network {sizes.replace('-', '→')} (hidden layers of the uniform-m runs), {n_train} training / "
           f"{n_test} test samples, {', '.join(map(str, epochs))} epochs, lr {lr_ref:g}, density {d_ref:g} "
           f"(sparsity {1 - d_ref:g}), seeds per configuration: "
           f"{', '.join(str(g['n_seeds']) for g in ref)} (failed/diverged runs: {sum(g['n_failed'] for g in ref)}).")
           + (f" Runs of {', '.join(map(str, others))} epochs are left out of these tables." if others else ""),
           ""]

    # ---- Tables 4/5 -------------------------------------------------------------------------
    head = ["configuration", "m", "hidden", "test acc. (%)", "unique params", "block MACs/sample", "edges",
            "dense-equiv. params", "paper-style params (blocks at density 1)", "s/epoch", "speed-up vs m=1",
            "Δacc vs Motif-SET (pts)", "seeds"]
    csv_head = ["dataset", "configuration", "variant", "motif", "base_motif", "hidden", "lr", "density", "epochs",
                "test_acc_mean", "test_acc_std", "unique_params", "block_macs_per_sample", "edges", "dense_params",
                "dense_blocks", "s_per_epoch_mean", "s_per_epoch_std", "speedup_vs_m1", "acc_diff_vs_motif_pts",
                "acc_diff_se_pts", "n_seeds"]
    rows: list[list[Any]] = []
    ordered: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for g in uniform:
        ordered.append((g, None))
        if g["m"] in narrow:
            ordered.append((narrow[g["m"]], g))
    for b_m, g in narrow.items():
        if all(b_m != u["m"] for u in uniform):
            ordered.append((g, None))
    for g, motif_ref in ordered:
        speed = base["s_per_epoch"] / g["s_per_epoch"] if base and g["s_per_epoch"] else None
        diff = _acc_diff(g, motif_ref) if motif_ref else None
        rows.append([config_name(g), g["motif"] if g["variant"] == "motif" else f"1 (≈{g['base_motif']})",
                     g["hidden"], _pm(g["test_accuracy"], g["test_accuracy_std"], 100),
                     _count(g["unique_params"]), _count(g["block_macs_per_sample"]), _count(g["edges"]),
                     _count(g["dense_params"]), _count(g["dense_blocks"]),
                     _pm(g["s_per_epoch"], g["s_per_epoch_std"], 1, 3), _num(speed, ".2f") + ("×" if speed else ""),
                     f"{diff[0]:+.2f} ± {diff[1]:.2f}" if diff else "", g["n_seeds"]])
        tables.add("table_main", csv_head, [
            name, config_name(g), g["variant"], g["motif"], g["base_motif"], g["hidden"], g["lr"], g["density"],
            g["epochs"], g["test_accuracy"], g["test_accuracy_std"], g["unique_params"], g["block_macs_per_sample"],
            g["edges"], g["dense_params"], g["dense_blocks"], g["s_per_epoch"], g["s_per_epoch_std"], speed,
            diff[0] if diff else None, diff[1] if diff else None, g["n_seeds"]])
    md += ["### Per motif size (paper Tables 4/5) with the narrow-SET baseline (docs/design.md §4.3)", "",
           _md_table(head, rows), "",
           ("Accuracy is the final-epoch test accuracy, mean ± std over seeds; s/epoch is the wall clock of the "
           "training iterations only (no evaluation, no evolution; median or mean over epochs as the header "
           "says). *Block MACs/sample* = active blocks = the unique multiplies of one forward pass (the "
           "paper's FLOPs). *Paper-style params* = Σ G_out·G_in, the "
           "block count of the same network at density 1, which is what the paper's Tables 4-5 print. "
           "Δacc of a narrow-SET row = narrow SET − Motif-SET at that m (± standard error)."), ""]

    # ---- Table 6 ------------------------------------------------------------------------------
    if schedules:
        head6 = ["schedule (per layer)", "test acc. (%)", "unique params", "block MACs/sample",
                 "paper-style params", "s/epoch", "speed-up vs m=1"]
        rows6 = []
        for g in ([base] if base else []) + schedules:
            speed = base["s_per_epoch"] / g["s_per_epoch"] if base and g["s_per_epoch"] else None
            rows6.append([g["motif"] if g["m"] is None else f"uniform m={g['m']}",
                          _pm(g["test_accuracy"], g["test_accuracy_std"], 100), _count(g["unique_params"]),
                          _count(g["block_macs_per_sample"]), _count(g["dense_blocks"]),
                          _pm(g["s_per_epoch"], g["s_per_epoch_std"], 1, 3), _num(speed, ".2f")])
            tables.add("table_schedule", ["dataset", "motif", "test_acc_mean", "test_acc_std", "unique_params",
                                          "block_macs_per_sample", "dense_blocks", "s_per_epoch_mean",
                                          "s_per_epoch_std", "speedup_vs_m1", "n_seeds"],
                       [name, g["motif"], g["test_accuracy"], g["test_accuracy_std"], g["unique_params"],
                        g["block_macs_per_sample"], g["dense_blocks"], g["s_per_epoch"], g["s_per_epoch_std"],
                        speed, g["n_seeds"]])
        md += ["### Layerwise motif schedule (paper Table 6)", "", _md_table(head6, rows6), "",
               "A schedule lists the motif size of every weight layer, input to output.", ""]

    # ---- projection check, scores, recommendation, Pareto --------------------------------------
    ms = [g["m"] for g in uniform]
    if base is not None and len(uniform) >= 2:
        accs = [g["test_accuracy"] for g in uniform]
        times = [g["s_per_epoch"] for g in uniform]
        md += _projection_check(uniform)
        head_s = ["m", f"comprehensive score S (w={SCORE_WEIGHT:g})", f"utility U (λ={lam:g})",
                  "acc / acc(m=1)", "time / time(m=1)", "MACs / MACs(m=1)"]
        rows_s = []
        for g in uniform:
            s = metrics.comprehensive_score(g["test_accuracy"], g["s_per_epoch"], base["test_accuracy"],
                                            base["s_per_epoch"], weight=SCORE_WEIGHT)
            u = metrics.utility(g["test_accuracy"], g["s_per_epoch"], base["test_accuracy"], base["s_per_epoch"],
                                lam=lam)
            ra = g["test_accuracy"] / base["test_accuracy"]
            rt = g["s_per_epoch"] / base["s_per_epoch"]
            rm = g["block_macs_per_sample"] / base["block_macs_per_sample"]
            rows_s.append([g["m"], f"{s:.4f}", f"{u:.4f}", f"{ra:.4f}", f"{rt:.3f}", f"{rm:.3f}"])
            tables.add("table_scores", ["dataset", "m", "comprehensive_score", "utility", "acc_ratio", "time_ratio",
                                        "macs_ratio", "weight", "lambda"],
                       [name, g["m"], s, u, ra, rt, rm, SCORE_WEIGHT, lam])
        rec = metrics.recommend_m(ms, accs, times, lam=lam, max_acc_drop=max_acc_drop)
        md += ["### Comprehensive score, utility and the recommended m (paper Sec. 4.2, 5.2)", "",
               _md_table(head_s, rows_s), "",
               f"**Recommended m = {rec.m}** — {rec.reason}."
               + (f" (accuracy budget: at most {100 * max_acc_drop:g} % relative drop)" if max_acc_drop else ""),
               ""]
        tables.add("recommendation", ["dataset", "recommended_m", "utility", "lambda", "max_acc_drop", "reason"],
                   [name, rec.m, rec.utility, lam, max_acc_drop, rec.reason])

    pts = uniform + schedules
    if len(pts) >= 1:
        pacc = [g["test_accuracy"] for g in pts]
        pcost = [g["block_macs_per_sample"] for g in pts]
        front = metrics.pareto_front(pacc, pcost)
        knee = metrics.knee_point(pacc, pcost, log_cost=True)
        on_front = ", ".join(config_name(pts[i]) for i in front)
        md += ["### Pareto frontier over (accuracy, log block MACs) (paper Sec. 5.2, \"Choosing m\")", "",
               (f"Frontier (cheapest first): {on_front}. **Knee: {config_name(pts[knee])}** "
               f"({100 * pts[knee]['test_accuracy']:.2f} % at {_count(pts[knee]['block_macs_per_sample'])} "
               "block MACs/sample)."), ""]
        dominated = []
        for b_m, nb in narrow.items():
            mg = next((g for g in uniform if g["m"] == b_m), None)
            if mg is None:
                continue
            d, se = _acc_diff(nb, mg)
            verdict = ("more accurate than" if d > 2 * se else "less accurate than" if d < -2 * se
                       else "within noise (2 standard errors) of")
            t_ratio = nb["s_per_epoch"] / mg["s_per_epoch"] if mg["s_per_epoch"] else float("nan")
            dominated.append(f"narrow SET for m={b_m} (widths {nb['hidden'].replace('-', '/')}) is {verdict} "
                             f"Motif-SET m={b_m} ({d:+.2f} ± {se:.2f} pts) at {t_ratio:.2f}× its time per epoch "
                             f"and {nb['block_macs_per_sample'] / mg['block_macs_per_sample']:.2f}× its block MACs")
        if dominated:
            md += ["Honest baseline: " + "; ".join(dominated) + ".", ""]
        for i in front:
            tables.add("table_pareto", ["dataset", "configuration", "motif", "test_acc_mean", "block_macs_per_sample",
                                        "is_knee"],
                       [name, config_name(pts[i]), pts[i]["motif"], pts[i]["test_accuracy"],
                        pts[i]["block_macs_per_sample"], int(i) == int(knee)])
    else:
        knee = None

    # ---- latency ------------------------------------------------------------------------------
    lat_groups = [g for g in uniform if g["latency_batch1_us"] is not None]
    if base is not None and base["latency_batch1_us"] and len(lat_groups) >= 2:
        md += _latency_section(name, lat_groups, base, tables)

    # ---- sensitivity (Tables 12/13) -------------------------------------------------------------
    md += _sensitivity_section(name, ok, lr_ref, d_ref, tables)

    # ---- figures -------------------------------------------------------------------------------
    if figures:
        md += dataset_figures(name, uniform, schedules, narrow, base, pts, knee, out)
    return md


def _projection_check(uniform: list[dict[str, Any]]) -> list[str]:
    """The paper projects m=8 from m in {1,2,4}: t(m) = a + b/m^2 and a log-scale accuracy trend."""
    from ..analysis.estimate import LatencyModel

    by_m = {g["m"]: g for g in uniform}
    if not all(m in by_m for m in (1, 2, 4, 8)):
        return []
    fit_ms = [1, 2, 4]
    t_model = LatencyModel.fit(fit_ms, [by_m[m]["s_per_epoch"] for m in fit_ms], terms=("compute", "overhead"))
    t_proj = float(t_model.predict(8))
    coef = np.polyfit(np.log2(fit_ms), [by_m[m]["test_accuracy"] for m in fit_ms], 1)
    a_proj = float(np.polyval(coef, 3.0))
    g8 = by_m[8]
    return ["### The paper's m = 8 projection, checked against the measured m = 8", "",
            _md_table(["quantity", "projected from m ∈ {1, 2, 4}", "measured m = 8"],
                      [["s/epoch (fit t = a + b/m², paper Tables 4-5)", (f"{t_proj:.3f} (a={t_model.overhead:.3f}, "
                        f"b={t_model.compute:.3f})"), _pm(g8["s_per_epoch"], g8["s_per_epoch_std"], 1, 3)],
                       ["test acc. % (linear in log2 m)", f"{100 * a_proj:.2f}",
                        _pm(g8["test_accuracy"], g8["test_accuracy_std"], 100)]]), ""]


def _latency_section(name: str, groups: list[dict[str, Any]], base: dict[str, Any], tables: _Tables) -> list[str]:
    from ..analysis.estimate import LatencyModel, relative_latency

    ms = [g["m"] for g in groups]
    lat = [g["latency_batch1_us"] for g in groups]
    fit_cm = LatencyModel.fit(ms, lat, terms=("compute", "memory")) if len(set(ms)) >= 2 else None
    fit_all = LatencyModel.fit(ms, lat, terms=("compute", "memory", "overhead")) if len(set(ms)) >= 3 else None
    head = ["m", "measured batch-1 latency (µs)", "throughput (samples/s)", "measured / m=1",
            "Table 1 estimate, κ=0 (1/m²)", "paper model fitted (compute/m² + memory/m) (µs)",
            "fitted + constant overhead (µs)"]
    rows = []
    for g in groups:
        m = g["m"]
        rel = g["latency_batch1_us"] / base["latency_batch1_us"]
        est0 = relative_latency(m, 0.0, normalisation="m1")
        p_cm = float(fit_cm.predict(m)) if fit_cm else None
        p_all = float(fit_all.predict(m)) if fit_all else None
        rows.append([m, _pm(g["latency_batch1_us"], g["latency_batch1_us_std"], 1, 1),
                     _num(g["throughput_batch1_per_s"], ",.0f"), f"{rel:.3f}", f"{est0:.3f}", _num(p_cm, ".1f"),
                     _num(p_all, ".1f")])
        tables.add("table_latency", ["dataset", "m", "latency_batch1_us_mean", "latency_batch1_us_std",
                                     "throughput_batch1_per_s", "measured_ratio_vs_m1", "table1_estimate_kappa0",
                                     "fit_compute_memory_us", "fit_compute_memory_overhead_us"],
                   [name, m, g["latency_batch1_us"], g["latency_batch1_us_std"], g["throughput_batch1_per_s"], rel,
                    est0, p_cm, p_all])
    notes = []
    if fit_cm:
        notes.append(f"compute/memory fit: compute {fit_cm.compute:.1f} µs, memory {fit_cm.memory:.1f} µs at m=1 "
                     f"(κ = {fit_cm.kappa:.2f})")
    if fit_all:
        notes.append(f"with overhead: compute {fit_all.compute:.1f}, memory {fit_all.memory:.1f}, constant "
                     f"{fit_all.overhead:.1f} µs")
    return ["### Batch-1 latency: measured vs the latency model (paper Sec. 3.5, Table 1, docs/design.md §4.5)", "",
            _md_table(head, rows), "",
            "Measured: median of timed `predict_proba` calls on one test sample (motifcore.estimate."
            "measure_latency), mean ± std over seeds. Estimates: " + "; ".join(notes) + ".", ""]


def _sensitivity_section(name: str, ok: list[dict[str, Any]], lr_ref: float, d_ref: float,
                         tables: _Tables) -> list[str]:
    uni = [g for g in ok if g["variant"] == "motif" and g["m"] is not None]
    lrs = sorted({g["lr"] for g in uni})
    dens = sorted({g["density"] for g in uni})
    if len(lrs) < 2 and len(dens) < 2:
        return []
    base = {(g["lr"], g["density"]): g for g in uni if g["m"] == 1}

    def ratios(g: dict[str, Any]) -> dict[str, list[float]] | None:
        b = base.get((g["lr"], g["density"]))
        if b is None:
            return None
        out: dict[str, list[float]] = {"acc": [], "macs": [], "time": []}
        for seed, r in g["per_seed"].items():
            rb = b["per_seed"].get(seed)
            if rb is None or not rb["test_accuracy"]:
                continue
            out["acc"].append(r["test_accuracy"] / rb["test_accuracy"])
            out["macs"].append(r["block_macs_per_sample"] / rb["block_macs_per_sample"])
            out["time"].append(r["s_per_epoch"] / rb["s_per_epoch"])
        return out if out["acc"] else None

    md = ["### Sensitivity, normalised to m = 1 at the same lr, density and seed (paper Tables 12/13)", ""]
    # Table 12: per m, pooled over every (lr, density)
    rows = []
    for m in sorted({g["m"] for g in uni}):
        pooled: dict[str, list[float]] = {"acc": [], "macs": [], "time": []}
        for g in uni:
            if g["m"] == m:
                r = ratios(g)
                if r:
                    for k in pooled:
                        pooled[k] += r[k]
        if not pooled["acc"]:
            continue
        s = {k: metrics.summarize(v) for k, v in pooled.items()}
        rows.append([m, _pm(*s["acc"], 1, 3), _pm(*s["macs"], 1, 3), _pm(*s["time"], 1, 3), len(pooled["acc"])])
        tables.add("table_sensitivity_m", ["dataset", "m", "acc_norm_mean", "acc_norm_std", "macs_norm_mean",
                                           "macs_norm_std", "time_norm_mean", "time_norm_std", "n_pairs"],
                   [name, m, *s["acc"], *s["macs"], *s["time"], len(pooled["acc"])])
    md += [(f"Per m, pooled over learning rates {', '.join(f'{x:g}' for x in lrs)} and densities "
           f"{', '.join(f'{x:g}' for x in dens)} (Table 12):"), "",
           _md_table(["m", "accuracy (norm.)", "block MACs (norm.)", "s/epoch (norm.)", "pairs"], rows), ""]
    for axis, values, fixed_name, fixed in (("density", dens, "lr", lr_ref), ("lr", lrs, "density", d_ref)):
        if len(values) < 2:
            continue
        rows = []
        for v in values:
            for g in sorted(uni, key=lambda g: g["m"]):
                if g["m"] == 1 or g[axis] != v or g[fixed_name] != fixed:
                    continue
                r = ratios(g)
                if not r:
                    continue
                s = {k: metrics.summarize(x) for k, x in r.items()}
                label = f"{1 - v:g}" if axis == "density" else f"{v:g}"
                rows.append([label, g["m"], _pm(*s["acc"], 1, 3), _pm(*s["macs"], 1, 3), _pm(*s["time"], 1, 3),
                             f"{100 * g['test_accuracy']:.2f}"])
                tables.add(f"table_sensitivity_{axis}",
                           ["dataset", "sparsity" if axis == "density" else "lr", fixed_name, "m", "acc_norm_mean",
                            "acc_norm_std", "macs_norm_mean", "macs_norm_std", "time_norm_mean", "time_norm_std",
                            "test_acc_mean"],
                           [name, 1 - v if axis == "density" else v, fixed, g["m"], *s["acc"], *s["macs"],
                            *s["time"], g["test_accuracy"]])
        what = "sparsity" if axis == "density" else "learning rate"
        md += [f"Per {what} at {fixed_name} {fixed:g} (Table {'13' if axis == 'density' else '12/13'} style):", "",
               _md_table([what, "m", "accuracy (norm.)", "block MACs (norm.)", "s/epoch (norm.)", "test acc. (%)"],
                         rows), ""]
    return md


# ------------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------------


def write_report(sweep_dir: PathLike, out_dir: PathLike | None = None, lam: float = metrics.DEFAULT_UTILITY_LAMBDA,
                 max_acc_drop: float | None = None, figures: bool = True, title: str | None = None,
                 time_stat: str = "median", all_runs: bool = False) -> Path:
    """Build the report of a sweep folder; returns the path of ``report.md``.

    Parameters
    ----------
    sweep_dir : path
        A folder written by :func:`motifcore.sweep.run_sweep` (its ``runs/*.json``).
    out_dir : path, optional
        Where to write (default ``<sweep_dir>/report``); created if needed.
    lam : float, default 0.9
        Accuracy weight of the utility used to recommend ``m``.
    max_acc_drop : float, optional
        Relative accuracy-drop budget for the recommendation (see :func:`metrics.recommend_m`).
    figures : bool, default True
        Also draw the PNG figures (needs matplotlib).
    title : str, optional
        Title of ``report.md``.
    time_stat : {"median", "mean"}, default "median"
        Seconds per epoch of one run: the median over its epochs (robust to a machine shared with
        other work) or the mean (the paper's "average").
    all_runs : bool, default False
        Report every stored run; by default only the runs of the sweep's current grid
        (``sweep.json``), so runs left over from an earlier, different grid do not mix in.
    """
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "runs").is_dir():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep folder (no runs/ inside)")
    runs = load_runs(sweep_dir)
    ignored = 0
    grid = sweep_dir / "sweep.json"
    if not all_runs and grid.exists():
        try:
            wanted = set(json.loads(grid.read_text())["runs"])
        except (OSError, ValueError, KeyError, TypeError):
            wanted = None
        if wanted is not None:
            ignored = sum(r["run_id"] not in wanted for r in runs)
            runs = [r for r in runs if r["run_id"] in wanted]
    if not runs:
        raise ValueError(f"{sweep_dir}: no stored runs yet")
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    rows = run_rows(runs, time_stat)
    groups = aggregate(rows)
    tables = _Tables()
    datasets = list(OrderedDict.fromkeys(g["dataset"] for g in groups))
    n_ok = sum(r["status"] == "ok" for r in rows)
    threads = sorted({r["threads"] for r in rows if r["threads"] is not None})
    md = [f"# {title or 'Motif-SET sweep report'}", "",
          (f"Sweep folder `{sweep_dir}`: {len(rows)} runs stored ({n_ok} ok, {len(rows) - n_ok} diverged), "
          f"datasets: {', '.join(datasets)}; engine threads per run: {', '.join(map(str, threads))}. "
          f"Mean ± sample standard deviation over seeds everywhere; a run's s/epoch is the {time_stat} over "
          "its epochs of the training time (no evaluation, no evolution)."
          + (f" {ignored} stored runs outside the current grid (sweep.json) are not shown." if ignored else "")),
          ""]
    for name in datasets:
        md += _dataset_section(name, [g for g in groups if g["dataset"] == name], out, tables, lam, max_acc_drop,
                               figures)
    run_cols = list(rows[0].keys())
    _write_csv(out / "runs.csv", run_cols, [[r[c] for c in run_cols] for r in rows])
    csv_files = ["runs.csv"]
    for tname, (header, trows) in tables.tables.items():
        _write_csv(out / f"{tname}.csv", header, trows)
        csv_files.append(f"{tname}.csv")
    md += ["---", "", "CSV tables: " + ", ".join(f"[{f}]({f})" for f in csv_files) + ".", ""]
    path = out / "report.md"
    atomic_write(path, "\n".join(md).encode())
    return path


