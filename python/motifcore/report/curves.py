"""Learning curves of training runs (``motifcore plot``): train and test loss, test accuracy,
the epochs before which the pattern evolved, and the blocks each evolution replaced."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._internal.io import PathLike, atomic_write

__all__ = ["curve_data", "plot_runs", "read_metrics"]


def read_metrics(run: PathLike) -> list[dict[str, Any]]:
    """The per-epoch rows of a run: ``RUN_DIR/metrics.jsonl`` (or that file itself)."""
    path = Path(run)
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run} (a folder written by `motifcore train`)")
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: not a JSON line ({exc.msg})") from None
            if not isinstance(row, dict) or "epoch" not in row or "train_loss" not in row:
                raise ValueError(f"{path}:{i}: not an epoch row (each line needs 'epoch' and 'train_loss')")
            _check_row(path, i, row, rows[-1]["epoch"] if rows else 0)
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no epoch rows (each line needs 'epoch' and 'train_loss')")
    return rows


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_row(path: Path, line: int, row: dict[str, Any], previous: int) -> None:
    """One row's plotted values are numbers (or null where not evaluated), epochs increase."""
    epoch = row["epoch"]
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1):
        raise ValueError(f"{path}:{line}: 'epoch' must be a positive integer, got {epoch!r}")
    if epoch <= previous:
        raise ValueError(f"{path}:{line}: epoch {epoch} after epoch {previous} (epochs must increase; "
                         "is the file a mix of two runs?)")
    for key in ("train_loss", "val_loss", "val_accuracy", "zeta"):
        v = row.get(key)
        if v is not None and not _is_number(v):
            raise ValueError(f"{path}:{line}: {key!r} must be a number or null, got {v!r}")
    if not _is_number(row["train_loss"]):
        raise ValueError(f"{path}:{line}: 'train_loss' must be a number, got {row['train_loss']!r}")
    pruned = row.get("pruned")
    if pruned is not None and not (isinstance(pruned, list) and all(_is_number(v) for v in pruned)):
        raise ValueError(f"{path}:{line}: 'pruned' must be a list of numbers or null, got {pruned!r}")


def curve_data(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The plotted series of one run: ``epoch``, ``train_loss``, ``test_loss`` and
    ``test_accuracy`` (``None`` where not evaluated), ``evolved`` (epochs whose training started
    right after an evolution step) and ``replaced`` (blocks replaced there, summed over layers)."""
    evolved = [r for r in rows if (r.get("zeta") or 0) > 0]
    return {
        "epoch": [r["epoch"] for r in rows],
        "train_loss": [r["train_loss"] for r in rows],
        "test_loss": [r.get("val_loss") for r in rows],
        "test_accuracy": [r.get("val_accuracy") for r in rows],
        "evolved": [r["epoch"] for r in evolved],
        "replaced": [sum(r.get("pruned") or [0]) for r in evolved],
    }


def _points(x: Sequence[Any], y: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    kept = [(a, b) for a, b in zip(x, y) if b is not None]
    return [a for a, _ in kept], [b for _, b in kept]


def plot_runs(runs: Sequence[PathLike], out: PathLike, labels: Sequence[str] | None = None) -> Path:
    """Write one PNG of the learning curves of ``runs`` (one colour each): train loss (solid)
    and test loss (dashed), test accuracy, evolution epochs marked ``x`` on both, and a panel of
    the blocks replaced per evolution step when a run evolved. Needs matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not runs:
        raise ValueError("give at least one run folder")
    data = [curve_data(read_metrics(r)) for r in runs]
    names = list(labels) if labels is not None else [Path(r).name or str(r) for r in runs]
    evolving = any(d["evolved"] for d in data)
    fig = Figure(figsize=(5.0 * (3 if evolving else 2), 4.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3 if evolving else 2)
    for k, (d, name) in enumerate(zip(data, names)):
        color = f"C{k % 10}"
        ep = d["epoch"]
        axes[0].plot(ep, d["train_loss"], color=color, label=f"{name} train")
        axes[0].plot(*_points(ep, d["test_loss"]), color=color, linestyle="--", label=f"{name} test")
        axes[1].plot(*_points(ep, d["test_accuracy"]), color=color, label=name)
        marks = set(d["evolved"])
        at = [i for i, e in enumerate(ep) if e in marks]
        axes[0].plot([ep[i] for i in at], [d["train_loss"][i] for i in at], "x", color=color, markersize=5)
        acc_marks = [(ep[i], d["test_accuracy"][i]) for i in at if d["test_accuracy"][i] is not None]
        if acc_marks:
            axes[1].plot(*zip(*acc_marks), "x", color=color, markersize=5)
        if evolving and d["evolved"]:
            axes[2].plot(d["evolved"], d["replaced"], "o-", color=color, markersize=3, label=name)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss (x: after an evolution step)")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="test accuracy")
    if evolving:
        axes[2].set(xlabel="epoch", ylabel="blocks", title="blocks replaced per evolution step")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return atomic_write(out, lambda f: fig.savefig(f, format="png"))
