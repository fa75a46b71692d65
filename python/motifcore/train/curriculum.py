"""Motif-size curricula: a schedule of motif sizes over a training run (the Motif-SET paper, Sec. 8:
"begin with m = 1 for accuracy, then gradually increase m for efficiency"; docs/curriculum.md).

A schedule is a list of stages ``(fraction, m)``: from ``fraction`` of the run on, the hidden
layers have motif ``m`` (``MotifMLP(motif=m)``'s layout: ``(m, m)`` hidden layers, the output
layer as it is). The first stage starts at 0 and is the model's motif when training starts; the
fractions increase, and every ``m`` is a whole multiple of the one before, so each switch is a
:meth:`~motifcore.MotifMLP.regroup` (each new block covers ``m_new / m_old`` old blocks per side).

Stage ``i`` starts after epoch ``floor(fraction_i * epochs)``: with 50 epochs,
``[(0, 1), (0.5, 2), (0.8, 4)]`` trains epochs 1-25 at m = 1, 26-40 at m = 2 and 41-50 at m = 4.
The :class:`~motifcore.train.trainer.Trainer` regroups the model at the start of the first epoch
of a stage, before that epoch's evolution; stages that start after the same epoch collapse into
the last of them (one regrouping).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MotifSchedule", "check_motif_schedule", "parse_motif_schedule"]

_EXAMPLE = "[(0, 1), (0.5, 2), (0.8, 4)]"


@dataclass(frozen=True)
class MotifSchedule:
    """A checked motif-size schedule: ``stages`` as ``((fraction, m), ...)``."""

    stages: tuple[tuple[float, int], ...]

    def start_after(self, epochs: int) -> list[int]:
        """The epoch after which each stage starts (0 for the first) in a run of ``epochs``."""
        # the 1e-9 keeps 0.29 * 100 = 28.999999999999996 at 29
        return [int(math.floor(f * epochs + 1e-9)) for f, _ in self.stages]

    def motif_for_epoch(self, epoch: int, epochs: int) -> int:
        """The motif trained in epoch ``epoch`` (1-indexed) of a run of ``epochs``."""
        m = self.stages[0][1]
        for after, (_, mi) in zip(self.start_after(epochs), self.stages):
            if after <= epoch - 1:
                m = mi
        return m

    def motif_after(self, epoch: int, epochs: int) -> int:
        """The motif the model has once ``epoch`` epochs are done (the first stage's before any)."""
        return self.stages[0][1] if epoch <= 0 else self.motif_for_epoch(epoch, epochs)

    @property
    def motifs(self) -> list[int]:
        return [m for _, m in self.stages]

    def to_config(self) -> list[list[Any]]:
        """JSON form: ``[[fraction, m], ...]``."""
        return [[f, m] for f, m in self.stages]

    def __str__(self) -> str:
        return ",".join(f"{f:g}:{m}" for f, m in self.stages)


def check_motif_schedule(value: Any) -> MotifSchedule | None:
    """A :class:`MotifSchedule` from ``None``, a :class:`MotifSchedule`, a list of ``(fraction, m)``
    pairs or its text form ``"0:1,0.5:2,0.8:4"``; ValueError/TypeError naming what is wrong."""
    if value is None or isinstance(value, MotifSchedule):
        return value
    if isinstance(value, str):
        return parse_motif_schedule(value)
    if not isinstance(value, Sequence) or not value:
        raise TypeError(f"motif_schedule must be a non-empty list of (fraction, motif) pairs such as {_EXAMPLE}, "
                        f"got {value!r}")
    stages: list[tuple[float, int]] = []
    for i, entry in enumerate(value):
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise TypeError(f"motif_schedule[{i}] must be a (fraction, motif) pair, got {entry!r}")
        f, m = entry
        if isinstance(f, bool) or not isinstance(f, numbers.Real) or not (0.0 <= float(f) < 1.0):
            raise ValueError(f"motif_schedule[{i}]: the fraction of the run must be in [0, 1), got {f!r}")
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or int(m) < 1:
            raise ValueError(f"motif_schedule[{i}]: the motif size must be an integer >= 1, got {m!r}")
        stages.append((float(f), int(m)))
    if stages[0][0] != 0.0:
        raise ValueError(f"motif_schedule must start at fraction 0 (the motif training starts with), got "
                         f"{stages[0][0]:g}")
    for (f0, m0), (f1, m1) in zip(stages, stages[1:]):
        if f1 <= f0:
            raise ValueError(f"motif_schedule fractions must increase, got {f0:g} then {f1:g}")
        if m1 <= m0 or m1 % m0:
            raise ValueError(f"motif_schedule: motif {m1} cannot follow {m0}; each motif must be a larger whole "
                             f"multiple of the one before (a new block covers whole old blocks)")
    return MotifSchedule(tuple(stages))


def parse_motif_schedule(text: str) -> MotifSchedule:
    """``"0:1,0.5:2,0.8:4"`` (``FRACTION:MOTIF`` stages, comma-separated) as a schedule."""
    stages: list[tuple[float, int]] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        bits = part.split(":")
        if len(bits) != 2:
            raise ValueError(f"bad motif schedule stage {part!r}: expected FRACTION:MOTIF such as 0.5:2")
        try:
            f, m = float(bits[0]), int(bits[1])
        except ValueError:
            raise ValueError(f"bad motif schedule stage {part!r}: expected FRACTION:MOTIF such as 0.5:2, with a "
                             "number and an integer") from None
        stages.append((f, m))
    if not stages:
        raise ValueError("the motif schedule is empty: give stages such as 0:1,0.5:2,0.8:4")
    sched = check_motif_schedule(stages)
    assert sched is not None
    return sched
