"""Knowledge distillation (Hinton et al., 2015): teacher logits, the parameter count of an MLP and
the width of a dense student matched to a parameter budget. The loss runs in the engine; training
is :class:`motifcore.Trainer` with ``distill=KD(teacher_logits, temperature, lam)``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._internal.validation import check_int
from ..nn import MotifMLP
from ..train.distillation import KD

__all__ = ["KD", "matched_width", "mlp_params", "teacher_logits"]


def teacher_logits(teacher: MotifMLP, X: Any, batch_size: int = 1024) -> np.ndarray:
    """The teacher's pre-softmax outputs on ``X``, float32 [n_samples, n_classes] (computed once;
    the training set is not augmented, so these are exact for every epoch)."""
    if not isinstance(teacher, MotifMLP):
        raise TypeError(f"teacher must be a MotifMLP, got {type(teacher).__name__}")
    return np.ascontiguousarray(teacher.decision_function(X, batch_size=batch_size), dtype=np.float32)


def mlp_params(sizes: Sequence[int], biases: bool = True) -> int:
    """Parameters of the dense MLP with these widths: weights, plus one bias per non-input
    neuron when ``biases``."""
    s = [check_int(v, f"sizes[{i}]") for i, v in enumerate(sizes)]
    if len(s) < 2:
        raise ValueError(f"sizes needs at least an input and an output width, got {s}")
    w = sum(a * b for a, b in zip(s[:-1], s[1:]))
    return w + (sum(s[1:]) if biases else 0)


def matched_width(params: int, n_in: int, n_out: int, hidden_layers: int = 3, biases: bool = True) -> int:
    """Width ``h`` of a dense ``n_in-h-...-h-n_out`` MLP (``hidden_layers`` hidden layers) whose
    parameter count is closest to ``params``: the root of the quadratic count, rounded. With the
    motif paper's weights-only count ``2h² + 794h`` and 5.10 M this is its h = 1411."""
    p = check_int(params, "params")
    n_in, n_out = check_int(n_in, "n_in"), check_int(n_out, "n_out")
    L = check_int(hidden_layers, "hidden_layers")
    # (L-1) h² + (n_in + n_out + L·b) h + n_out·b = params
    a = L - 1
    b = n_in + n_out + (L if biases else 0)
    c = (n_out if biases else 0) - p
    root = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return max(1, int(round(root)))
