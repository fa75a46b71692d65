"""Knowledge-distillation settings of a training run: the teacher's logits, the temperature and the
weight of the soft term (Hinton et al., 2015). The loss itself runs in the engine
(:meth:`MotifMLP.train_epoch` with ``teacher=``); :class:`KD` is what :class:`Trainer` takes as
``distill=``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["KD"]


class KD:
    """Distill from ``teacher_logits`` (one row of logits per training sample, in the order of the
    training set passed to :meth:`Trainer.fit`) at temperature ``temperature`` with weight ``lam``
    on the soft term: per sample ``(1 - lam) CE + lam T² KL(softmax(z_T/T) || softmax(z/T))``.

    The logits are not stored in checkpoints (only ``temperature`` and ``lam``): pass the same
    ``KD`` again to :meth:`Trainer.from_checkpoint` (``distill=``) to resume.
    """

    def __init__(self, teacher_logits: Any, temperature: float = 4.0, lam: float = 0.9) -> None:
        z = np.ascontiguousarray(teacher_logits, dtype=np.float32)
        if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 2:
            raise ValueError(f"teacher_logits must be a 2-D [n_samples, n_classes >= 2] array, got shape {z.shape}")
        if not np.isfinite(z).all():
            raise ValueError("teacher_logits must be finite")
        t, lm = float(temperature), float(lam)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not (math.isfinite(lm) and 0 <= lm <= 1):
            raise ValueError(f"lam must be in [0, 1], got {lam}")
        self.teacher_logits, self.temperature, self.lam = z, t, lm

    def to_config(self) -> dict[str, Any]:
        """What a checkpoint stores (the logits are passed again on resume)."""
        return {"temperature": self.temperature, "lam": self.lam}

    def __repr__(self) -> str:
        n, c = self.teacher_logits.shape
        return f"KD({n} x {c} teacher logits, temperature={self.temperature}, lam={self.lam})"
