"""Callbacks of the training loop: the :class:`Callback` hooks and the callbacks motifcore ships.

:meth:`motifcore.Trainer.fit` calls ``on_train_begin(trainer)`` once before its first epoch,
``on_epoch_end(trainer, epoch, logs)`` after every epoch (``logs`` is a copy of that epoch's
:class:`~motifcore.train.history.History` row; any callback returning ``True`` stops training after
the epoch) and ``on_train_end(trainer)`` once after the last one. ``trainer`` is the
:class:`~motifcore.Trainer` that runs the hook; callbacks read its ``model``, ``history`` and
``epoch`` and may save it (:meth:`~motifcore.Trainer.save_checkpoint`).

- :class:`EarlyStopping` stops when a monitored value has stopped improving;
- :class:`RestoreBest` puts the best epoch's model state back when training ends;
- :class:`Checkpoint` saves the run every few epochs and at the end;
- :class:`JSONLLogger` appends each epoch's row to a JSON-lines file.

This module does not import the trainer (the trainer imports it), so the hooks take the trainer
untyped (``Any``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._internal.io import PathLike, atomic_write
from .._internal.validation import check_int
from ..nn.regroup import load_state_as

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "JSONLLogger", "RestoreBest", "as_callback"]

log = logging.getLogger(__name__)     # a child of the "motifcore" logger


class Callback:
    """Hooks called by :meth:`Trainer.fit` between native calls. Subclass and override; a plain
    function ``f(trainer, epoch, logs)`` is accepted as a callback too.

    ``on_epoch_end`` returning ``True`` stops training after that epoch.
    """

    def on_train_begin(self, trainer: Any) -> None:
        pass

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> bool | None:
        return None

    def on_train_end(self, trainer: Any) -> None:
        pass


class _FunctionCallback(Callback):
    """A plain function ``f(trainer, epoch, logs)`` as the ``on_epoch_end`` of a callback."""

    def __init__(self, fn: Callable[..., bool | None]) -> None:
        self.fn = fn

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> bool | None:
        return self.fn(trainer, epoch, logs)

    def __repr__(self) -> str:
        return f"FunctionCallback({self.fn!r})"


def as_callback(c: Callback | Callable[..., bool | None]) -> Any:
    """``c`` as an object with the :class:`Callback` hooks: a :class:`Callback` (or anything with a
    callable ``on_epoch_end``) as it is, a plain function ``f(trainer, epoch, logs)`` wrapped as
    its ``on_epoch_end``; TypeError for anything else."""
    if callable(getattr(c, "on_epoch_end", None)):
        return c                 # a Callback, or anything following its protocol
    if callable(c):
        return _FunctionCallback(c)
    raise TypeError(f"callback {c!r} is neither callable nor has an on_epoch_end method")


_MONITORS = ("val_accuracy", "val_loss", "train_loss")


def _check_monitor(monitor: str) -> str:
    if monitor not in _MONITORS:
        raise ValueError(f"monitor must be 'val_accuracy', 'val_loss' or 'train_loss', got {monitor!r}")
    return monitor


def _score(monitor: str, value: float) -> float:
    """Higher is better: accuracies as they are, losses negated."""
    return -float(value) if monitor.endswith("loss") else float(value)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    evaluations. Stateless (decides from ``trainer.history``), so it survives a resume."""

    def __init__(self, monitor: str = "val_accuracy", patience: int = 10, min_delta: float = 0.0) -> None:
        self.monitor = _check_monitor(monitor)
        self.patience = check_int(patience, "patience", 0)
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.min_delta = float(min_delta)
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> bool | None:
        values = [v for v in trainer.history[self.monitor] if v is not None]
        if not values:
            return None
        best_i, best = 0, _score(self.monitor, values[0])
        for i, v in enumerate(values[1:], 1):
            if _score(self.monitor, v) > best + self.min_delta:
                best_i, best = i, _score(self.monitor, v)
        if len(values) - 1 - best_i > self.patience:
            self.stopped_epoch = epoch
            return True
        return None


class RestoreBest(Callback):
    """Keep a copy of the model state of the best epoch by ``monitor`` and put it back when
    training ends, so the model returned is the best one seen, bit for bit (``best_epoch`` tells
    which), in the motif it had then (a motif curriculum may have regrouped it since). Epochs
    without a value for ``monitor`` are skipped; ties keep the earlier epoch."""

    def __init__(self, monitor: str = "val_accuracy") -> None:
        self.monitor = _check_monitor(monitor)
        self.best_epoch: int | None = None
        self._best: float | None = None
        self._state: dict[str, np.ndarray] | None = None
        self._motif: Any = None

    def on_train_begin(self, trainer: Any) -> None:
        self.best_epoch, self._best, self._state, self._motif = None, None, None, None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> bool | None:
        v = logs.get(self.monitor)
        if v is None:
            return None
        score = _score(self.monitor, v)
        if self._best is None or score > self._best:
            self._best, self.best_epoch = score, epoch
            self._state = trainer.model.get_state()     # fresh arrays, not views of the engine
            self._motif = [list(m) for m in trainer.model.config["motif"]]
        return None

    def on_train_end(self, trainer: Any) -> None:
        if self._state is not None and self.best_epoch != trainer.epoch:
            if self._motif != [list(m) for m in trainer.model.config["motif"]]:
                load_state_as(trainer.model, self._motif, self._state)
            else:
                trainer.model.set_state(self._state)


class Checkpoint(Callback):
    """Save the run to ``path`` (one file, overwritten atomically) every ``every`` epochs and when
    training ends; ``extra`` is stored alongside (e.g. the CLI's run configuration)."""

    def __init__(self, path: PathLike, every: int = 1, extra: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.every = check_int(every, "every")
        self.extra = dict(extra or {})
        self._saved_epoch: int | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> bool | None:
        if epoch % self.every == 0:
            trainer.save_checkpoint(self.path, extra=self.extra)
            self._saved_epoch = epoch
        return None

    def on_train_end(self, trainer: Any) -> None:
        if trainer.epoch > 0 and self._saved_epoch != trainer.epoch and not trainer._dirty:
            trainer.save_checkpoint(self.path, extra=self.extra)
            self._saved_epoch = trainer.epoch


class JSONLLogger(Callback):
    """Append one JSON line per epoch (the history row) to ``path``. On (re)start the file is
    rewritten to hold exactly the epochs the trainer has done: lines of later epochs are dropped
    (a resumed run's file stays clean), and the rows of done epochs come from the trainer's history
    (restored from the checkpoint) where the file lost them, each restored row logged."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)

    def on_train_begin(self, trainer: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        by_epoch: dict[int, str] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    e = int(json.loads(line)["epoch"])
                except (ValueError, KeyError, TypeError):
                    continue
                if 1 <= e <= trainer.epoch and e not in by_epoch:
                    by_epoch[e] = line
        restored = []
        for row in getattr(getattr(trainer, "history", None), "rows", ()):
            e = row.get("epoch")
            if isinstance(e, int) and 1 <= e <= trainer.epoch and e not in by_epoch:
                by_epoch[e] = json.dumps(row)
                restored.append(e)
        if restored:
            log.warning("%s: rows of epochs %s were missing or unreadable; restored from the checkpoint's history",
                        self.path, ", ".join(map(str, restored)))
        keep = [by_epoch[e] for e in sorted(by_epoch)]
        atomic_write(self.path, "".join(s + "\n" for s in keep).encode())   # never a truncated file

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> bool | None:
        with open(self.path, "a") as f:
            f.write(json.dumps(logs) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return None
