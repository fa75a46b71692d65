"""Structure report of one trained network: motif counts and z-scores, effective and stable
rank, robustness curves; a JSON file, a Markdown table and PNG figures (``motifcore analyze``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .._internal.io import atomic_write_json
from ..analysis import motifs as mo
from ..analysis import nulls
from ..analysis import rank as rk
from ..analysis import robustness as rb

__all__ = ["analyze_model", "write_structure_report"]


def analyze_model(model: Any, X: Any = None, y: Any = None, *, level: Optional[str] = None, null: str = "er",
                  n_samples: int = 100, seed: int = 0, kinds: Sequence[str] = rb.KINDS,
                  fractions: Any = None, repeats: int = 3) -> Dict[str, Any]:
    """Motif counts and z-scores (per anchor layer and total), per-layer ranks and, when ``X, y``
    are given, the robustness curves of ``kinds``; as a JSON-serialisable dict with timings."""
    out: Dict[str, Any] = {"timings_s": {}}
    t = time.perf_counter()
    counts = mo.motif_counts(model, level=level)
    out["timings_s"]["motif_counts"] = time.perf_counter() - t
    out["level"] = counts.level
    out["widths"] = counts.widths
    out["counts"] = {k: str(v) if v >= 2**53 else int(v) for k, v in counts.total.items()}
    out["counts_per_anchor"] = {k: [int(x) for x in v] for k, v in counts.per_anchor.items()}
    t = time.perf_counter()
    zs = nulls.motif_zscores(model, null=null, n_samples=n_samples, seed=seed, level=counts.level)
    out["timings_s"]["zscores"] = time.perf_counter() - t
    out["zscores"] = [{"motif": z.motif, "count": int(z.count), "null_mean": z.null_mean, "null_std": z.null_std,
                       "z": None if z.fixed else z.z, "method": z.method, "null": z.null, "n_samples": z.n_samples}
                      for z in zs]
    sp_ = nulls.significance_profile(zs)
    out["significance_profile"] = [None if not np.isfinite(v) else float(v) for v in sp_]
    t = time.perf_counter()
    out["spectrum"] = rk.spectrum_summary(model, layers="all")
    out["timings_s"]["ranks"] = time.perf_counter() - t
    if X is not None:
        t = time.perf_counter()
        curves = rb.robustness_table(model, X, y, kinds=kinds, fractions=fractions, repeats=repeats, seed=seed)
        out["timings_s"]["robustness"] = time.perf_counter() - t
        out["robustness"] = {k: {"fractions": c.fractions.tolist(), "acc_mean": c.acc_mean.tolist(),
                                 "acc_std": c.acc_std.tolist(), "auc": c.auc, "auc_norm": c.auc_norm}
                             for k, c in curves.items()}
    return out


def _md(res: Dict[str, Any]) -> str:
    lines = [f"# Structure analysis ({res['level']} level, widths {res['widths']})", "",
             "| motif | count | null mean | null std | z | method |", "|---|---|---|---|---|---|"]
    for z in res["zscores"]:
        zv = "fixed" if z["z"] is None else f"{z['z']:.2f}"
        lines.append(f"| {z['motif']} | {z['count']:,} | {z['null_mean']:.4g} | {z['null_std']:.4g} | {zv} | "
                     f"{z['method']} ({z['null']}) |")
    s = res["spectrum"]
    lines += ["", "| layer | effective rank | stable rank |", "|---|---|---|"]
    lines += [f"| {i} | {e:.1f} | {r:.2f} |" for i, (e, r) in enumerate(zip(s["erank"], s["srank"]))]
    lines.append(f"| sum | {s['erank_sum']:.1f} | {s['srank_sum']:.2f} |")
    if not s["exact"]:
        lines.append("\n(effective ranks estimated by stochastic Lanczos quadrature)")
    if "robustness" in res:
        lines += ["", "| perturbation | AUC | AUC / clean accuracy |", "|---|---|---|"]
        lines += [f"| {k} | {c['auc']:.3f} | {c['auc_norm']:.3f} |" for k, c in res["robustness"].items()]
    lines += ["", "timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in res["timings_s"].items()), ""]
    return "\n".join(lines)


def _figures(res: Dict[str, Any], out: Path) -> list:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return []
    files = []
    fig = Figure(figsize=(6.5, 3.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    zs = [z for z in res["zscores"] if z["z"] is not None]
    ax.bar([z["motif"] for z in zs], [z["z"] for z in zs], color="tab:blue")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("z-score")
    ax.set_title(f"motif z-scores vs {res['zscores'][0]['null']} null ({res['level']} level)")
    fig.tight_layout()
    fig.savefig(out / "motif_zscores.png")
    files.append("motif_zscores.png")
    if "robustness" in res:
        fig = Figure(figsize=(6.0, 4.2), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(111)
        for k, c in res["robustness"].items():
            f, m, s = np.array(c["fractions"]), np.array(c["acc_mean"]), np.array(c["acc_std"])
            ax.plot(f, m, label=f"{k} (AUC {c['auc']:.3f})")
            ax.fill_between(f, m - s, m + s, alpha=0.2)
        ax.set_xlabel("fraction of blocks perturbed (per layer)")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "robustness.png")
        files.append("robustness.png")
    return files


def write_structure_report(res: Dict[str, Any], out: Any, figures: bool = True) -> Path:
    """Write ``analysis.json``, ``analysis.md`` and (with matplotlib) the PNG figures into ``out``;
    returns the path of ``analysis.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "analysis.json", json.loads(json.dumps(res)))
    md = _md(res)
    if figures:
        files = _figures(res, out)
        md += "\n" + "\n".join(f"![{f}]({f})" for f in files) + "\n"
    (out / "analysis.md").write_text(md)
    return out / "analysis.md"
