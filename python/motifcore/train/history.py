"""The record of a training run: :class:`History`, one row per completed epoch.

:meth:`motifcore.Trainer.fit` appends row ``e`` after epoch ``e`` (the order of one epoch is in
:mod:`motifcore.train.trainer`). A row holds the evolution that ran before the epoch (``zeta``,
``pruned``, ``regrown``, ``evolution_time``; with a mask updater: the fraction replaced by the
epoch's last update, and blocks pruned and regrown per layer and seconds summed over its updates),
the training (``train_loss``, ``train_time`` -- wall clock of the native training calls only, the
paper's protocol --, ``lr_start``, ``lr_end``, and ``steps``, the model's optimizer steps so far)
and the evaluation (``val_loss``, ``val_accuracy`` or ``None``, ``eval_time``), and at each
evaluation epoch the neurons of each hidden layer without a path to the loss (``disconnected``,
:meth:`MotifMLP.disconnected_neurons`, from the block pattern) and, with a held-out set, its dead
ReLU neurons (``dead``: output 0 on each of the first
:data:`motifcore.train.trainer.DEAD_SAMPLES` held-out rows, :meth:`MotifMLP.dead_neurons`; not
part of ``eval_time``).

Every row records the motif the epoch trained with (``motif``: ``m`` for the layout of
``MotifMLP(motif=m)``, else the per-layer list ``[[m_out, m_in], ...]``). With a motif curriculum
(:mod:`motifcore.train.curriculum`), the row of a stage's first epoch records the switch made
before it (``motif_switch``: ``{"from", "to", "blocks_before", "covered", "blocks", "scale"}``,
the last four per layer, see :meth:`MotifMLP.regroup`; ``None`` in other rows) and its seconds
(``switch_time``, not part of ``train_time``).

A history goes into every checkpoint in the columnar form of :meth:`History.to_dict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["History"]

# the columns of a history row, in the order of History.to_dict
_COLUMNS = ("epoch", "train_loss", "val_loss", "val_accuracy", "train_time", "eval_time",
            "evolution_time", "lr_start", "lr_end", "zeta", "pruned", "regrown", "steps", "disconnected", "dead",
            "motif", "motif_switch", "switch_time")


class History:
    """Per-epoch records of a run (see the module docstring for what each column means).

    ``history["val_accuracy"]`` (or ``history.val_accuracy``) is the column as a list, one entry
    per completed epoch (``None`` where there was no evaluation); ``history.rows`` the records.
    """

    columns = _COLUMNS

    def __init__(self, rows: Iterable[Mapping[str, Any]] | None = None) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows or ()]

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: str) -> list[Any]:
        if key not in _COLUMNS and not any(key in r for r in self.rows):
            raise KeyError(f"unknown history column {key!r}; known: {', '.join(_COLUMNS)}")
        return [r.get(key) for r in self.rows]

    def __getattr__(self, key: str) -> list[Any]:
        if key in _COLUMNS:
            return self[key]
        raise AttributeError(key)

    def best(self, metric: str = "val_accuracy") -> dict[str, Any] | None:
        """The row of the best epoch by ``metric`` (highest accuracy, lowest loss; the earliest
        on ties), or ``None`` if no epoch has a value for it."""
        higher = not metric.endswith("loss")
        best_row = None
        for r in self.rows:
            v = r.get(metric)
            if v is None:
                continue
            if best_row is None or (v > best_row[metric] if higher else v < best_row[metric]):
                best_row = r
        return dict(best_row) if best_row is not None else None

    @property
    def last(self) -> dict[str, Any] | None:
        return dict(self.rows[-1]) if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        """Columnar, JSON-serialisable form: ``{"columns": [...], "rows": [[...], ...]}``."""
        return {"columns": list(_COLUMNS), "rows": [[r.get(c) for c in _COLUMNS] for r in self.rows]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        try:
            cols = list(data["columns"])
            return cls(dict(zip(cols, row)) for row in data["rows"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a History dict: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.rows == other.rows

    def __repr__(self) -> str:
        b = self.best()
        tail = f", best val_accuracy {b['val_accuracy']:.4f} at epoch {b['epoch']}" if b else ""
        return f"History({len(self)} epochs{tail})"
