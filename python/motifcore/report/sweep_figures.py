"""The figures of a sweep report (:mod:`.sweep_report`), one set per dataset: accuracy against
seconds per epoch (the paper's Figs. 6-7), the comprehensive score against the efficiency weight
(Figs. 8-9) and the Pareto frontier over (accuracy, log MACs) with its knee. matplotlib is
imported when a figure is drawn."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._internal.io import atomic_write, slug
from ..analysis import metrics

__all__ = ["config_name", "dataset_figures"]


def config_name(g: Mapping[str, Any]) -> str:
    """The name of a configuration group in tables and legends."""
    if g["variant"] == "narrow":
        return f"SET narrow (widths {g['hidden'].replace('-', '/')}) vs m={g['base_motif']}"
    if g["m"] == 1:
        return "SET (m=1)"
    if g["m"] is not None:
        return f"Motif-SET m={g['m']}"
    return f"Motif-SET schedule [{g['motif']}]"





def _new_figure(w: float = 6.0, h: float = 4.3) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def dataset_figures(name: str, uniform: list[dict[str, Any]], schedules: list[dict[str, Any]],
             narrow: dict[Any, dict[str, Any]], base: dict[str, Any] | None, pts: list[dict[str, Any]],
             knee: int | None, out: Path) -> list[str]:
    """Draw the three figures of one dataset into ``out`` (see :mod:`.sweep_report`); returns the
    Markdown lines that show them, or a note when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ["(figures skipped: matplotlib is not installed)", ""]
    stem = slug(name)
    files = []

    def errbar(ax: Any, g: dict[str, Any], x: str, fmt: str, color: str, label: str) -> None:
        xv, xe = g[x], g.get(x + "_std") or 0.0
        ax.errorbar([xv], [100 * g["test_accuracy"]], xerr=[xe] if xe else None,
                    yerr=[100 * (g["test_accuracy_std"] or 0.0)], fmt=fmt, color=color, capsize=4, ms=7, label=label)

    colors = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    # 1. accuracy vs time per epoch (Figs. 6/7)
    fig = _new_figure()
    ax = fig.add_subplot()
    for i, g in enumerate(uniform):
        errbar(ax, g, "s_per_epoch", "o", colors[i % 8], f"m={g['m']}")
    for g in schedules:
        errbar(ax, g, "s_per_epoch", "D", "k", f"schedule {g['motif']}")
    for b_m, g in sorted(narrow.items()):
        i = next((j for j, u in enumerate(uniform) if u["m"] == b_m), 0)
        errbar(ax, g, "s_per_epoch", "s", colors[i % 8], f"SET narrow {g['hidden'].split('-')[0]} (≈m={b_m})")
    ax.set_xlabel("training time per epoch (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{name}: accuracy vs time per epoch (mean ± std over seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    p = out / f"{stem}_acc_vs_time.png"
    atomic_write(p, lambda f: fig.savefig(f, format="png"))
    files.append(p)

    # 2. comprehensive score vs w (Figs. 8/9)
    if base is not None and len(uniform) >= 2:
        fig = _new_figure()
        ax = fig.add_subplot()
        w = np.linspace(0.0, 1.0, 101)
        for i, g in enumerate(uniform):
            s = [metrics.comprehensive_score(g["test_accuracy"], g["s_per_epoch"], base["test_accuracy"],
                                             base["s_per_epoch"], weight=float(x)) for x in w]
            ax.plot(w, s, color=colors[i % 8], label=f"m={g['m']}")
        for g in schedules:
            s = [metrics.comprehensive_score(g["test_accuracy"], g["s_per_epoch"], base["test_accuracy"],
                                             base["s_per_epoch"], weight=float(x)) for x in w]
            ax.plot(w, s, "k--", label=f"schedule {g['motif']}")
        ax.axvline(metrics.DEFAULT_SCORE_WEIGHT, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("efficiency weight w (accuracy weight 1 − w)")
        ax.set_ylabel("comprehensive score S")
        ax.set_title(f"{name}: comprehensive score vs efficiency weight", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / f"{stem}_score_vs_w.png"
        atomic_write(p, lambda f: fig.savefig(f, format="png"))
        files.append(p)

    # 3. Pareto frontier over (accuracy, log MACs)
    if pts:
        fig = _new_figure()
        ax = fig.add_subplot()
        acc = [g["test_accuracy"] for g in pts]
        cost = [g["block_macs_per_sample"] for g in pts]
        front = metrics.pareto_front(acc, cost)
        for i, g in enumerate(pts):
            errbar(ax, g, "block_macs_per_sample", "o" if g["m"] is not None else "D",
                   colors[i % 8] if g["m"] is not None else "k", config_name(g))
        ax.plot([cost[i] for i in front], [100 * acc[i] for i in front], "-", color="0.4", lw=1,
                label="Pareto frontier")
        if knee is not None:
            ax.plot([cost[knee]], [100 * acc[knee]], "o", ms=16, mfc="none", mec="r", mew=2, label="knee")
        for b_m, g in sorted(narrow.items()):
            i = next((j for j, u in enumerate(pts) if u["m"] == b_m), 0)
            errbar(ax, g, "block_macs_per_sample", "s", colors[i % 8],
                   f"SET narrow {g['hidden'].split('-')[0]} (≈m={b_m})")
        ax.set_xscale("log")
        ax.set_xlabel("block MACs per sample (log)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{name}: Pareto frontier over (accuracy, log MACs)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, loc="best")
        fig.tight_layout()
        p = out / f"{stem}_pareto.png"
        atomic_write(p, lambda f: fig.savefig(f, format="png"))
        files.append(p)
    return ["Figures: " + ", ".join(f"![{f.stem}]({f.name})" for f in files), ""]
