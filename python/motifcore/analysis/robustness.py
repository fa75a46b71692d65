"""Robustness of a trained network to perturbations of its weights (no retraining).

Five perturbations, each applied per layer to a fraction ``f`` of the active blocks (the unit is
the block: for Motif-SET one shared weight, i.e. ``m_out * m_in`` edges):

* ``random``: zero the first ``round(f |P|)`` blocks of one random permutation (nested sets);
* ``strong_first``: zero the ``round(f |P|)`` largest-``|K|`` blocks (weight-order pruning);
* ``weak_first``: zero the smallest-``|K|`` blocks (reverse weight order);
* ``shuffle``: sort the layer's weights, cut them into bins of ``max(1, round(f |P|))``
  consecutive values and permute the values within each bin (``"rank_bins"``), or permute the
  values of a random ``f``-subset among themselves (``"subset"``);
* ``noise``: ``K + f sigma xi`` with ``xi ~ N(0, 1)`` per block and ``sigma`` the population std
  of the layer's weights (``noise_mode="relative"``), or ``sigma = 1`` (``"absolute"``: ``f`` is
  the noise std in weight units).

The accuracy curve over ``f`` and its area (trapezoid over ``[0, 1]``, unnormalised and divided by
the clean accuracy) follow the protocol of the slides on dynamic sparse training (paper 004 of
the sources). The slides name the five perturbations and nothing more, and neither the CHT paper
nor its code defines any of them, so the bin meaning of "shuffle" and the noise scale are
motifcore's explicit choices; both readings of each are available so that a result can be
checked against either.
The model (anything with ``layers``, ``get_state``, ``set_state`` and ``evaluate``) is restored
bitwise after every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import numpy as np

__all__ = ["KINDS", "NOISE_MODES", "SHUFFLE_MODES", "Curve", "perturb_weights", "perturbation_curve",
           "robustness_table"]

KINDS = ("random", "strong_first", "weak_first", "shuffle", "noise")


@dataclass
class Curve:
    """Accuracy against perturbed fraction: mean and std over repeats, AUC and AUC / acc(0)."""

    kind: str
    fractions: np.ndarray
    acc_mean: np.ndarray
    acc_std: np.ndarray
    auc: float
    auc_norm: float


def _layer_ids(n_layers: int, layers: Any) -> List[int]:
    if layers == "hidden":
        return list(range(max(n_layers - 1, 1)))
    if layers == "all":
        return list(range(n_layers))
    ids = [int(i) for i in layers]
    if any(i < 0 or i >= n_layers for i in ids):
        raise ValueError(f"layer indices {ids} out of range for {n_layers} layers")
    return ids


NOISE_MODES = ("relative", "absolute")
SHUFFLE_MODES = ("rank_bins", "subset")


def perturb_weights(K: np.ndarray, kind: str, f: float, rng: np.random.Generator,
                    shuffle_mode: str = "rank_bins", order: Any = None, noise_mode: str = "relative") -> np.ndarray:
    """The perturbed copy of one layer's block weights ``K`` at fraction ``f``. ``order`` (a
    permutation of the blocks) fixes the random order of ``"random"`` so that the sets are
    nested across fractions. ``shuffle_mode`` and ``noise_mode``: see the module docstring."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    K = np.asarray(K, dtype=np.float32)
    n = K.size
    k = int(round(f * n))
    out = K.copy()
    if kind == "random":
        perm = rng.permutation(n) if order is None else order
        out[perm[:k]] = 0.0
    elif kind in ("strong_first", "weak_first"):
        tie = rng.random(n)
        mag = np.abs(K)
        idx = np.lexsort((tie, -mag if kind == "strong_first" else mag))
        out[idx[:k]] = 0.0
    elif kind == "shuffle":
        if shuffle_mode == "rank_bins":
            width = max(1, k)
            idx = np.argsort(K, kind="stable")
            for a in range(0, n, width):
                sel = idx[a:a + width]
                out[sel] = K[rng.permutation(sel)]
        elif shuffle_mode == "subset":
            sel = rng.permutation(n)[:k]
            out[sel] = K[rng.permutation(sel)]
        else:
            raise ValueError(f"shuffle_mode must be 'rank_bins' or 'subset', got {shuffle_mode!r}")
    elif kind == "noise":
        sigma = (float(K.std()) if n else 0.0) if noise_mode == "relative" else 1.0
        out = (K + f * sigma * rng.standard_normal(n)).astype(np.float32)
    else:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return out


def perturbation_curve(model: Any, X: Any, y: Any, kind: str, fractions: Any = None,
                       repeats: int = 5, seed: int = 0, layers: Any = "hidden",
                       shuffle_mode: str = "rank_bins", noise_mode: str = "relative") -> Curve:
    """Test accuracy of ``model`` on ``(X, y)`` with ``kind`` applied at each fraction (default
    21 points 0, 0.05, ..., 1) to the layers ``layers`` (``"hidden"``: all but the output layer,
    ``"all"``, or indices); ``repeats`` seeds for the stochastic kinds (``strong_first`` and
    ``weak_first`` only randomise ties). The model's state is restored afterwards."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if shuffle_mode not in SHUFFLE_MODES:
        raise ValueError(f"shuffle_mode must be one of {', '.join(SHUFFLE_MODES)}, got {shuffle_mode!r}")
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    fr = np.linspace(0.0, 1.0, 21) if fractions is None else np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or fr.size == 0 or not np.all((fr >= 0) & (fr <= 1)):
        raise ValueError("fractions must be a non-empty 1-D sequence of values in [0, 1]")
    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    all_layers = list(model.layers)
    ids = _layer_ids(len(all_layers), layers)
    state = model.get_state()
    base = {i: np.array(state[f"layer{i}.weights"], dtype=np.float32) for i in ids}
    reps = int(repeats) if kind in ("random", "shuffle", "noise") else 1
    acc = np.zeros((reps, fr.size))
    try:
        for rep in range(reps):
            rng = np.random.default_rng([seed, rep, KINDS.index(kind)])
            orders = {i: rng.permutation(base[i].size) for i in ids}
            for j, f in enumerate(fr):
                for i in ids:
                    all_layers[i].weights = perturb_weights(base[i], kind, float(f), rng, shuffle_mode, orders[i],
                                                                  noise_mode)
                acc[rep, j] = model.evaluate(X, y)[1]
    finally:
        model.set_state(state)
    mean = acc.mean(axis=0)
    std = acc.std(axis=0, ddof=1) if reps > 1 else np.zeros_like(mean)
    auc = float(np.sum(0.5 * (mean[1:] + mean[:-1]) * np.diff(fr)))      # trapezoid rule
    a0 = float(mean[0]) if fr[0] == 0 else float("nan")
    return Curve(kind, fr, mean, std, auc, auc / a0 if a0 else float("nan"))


def robustness_table(model: Any, X: Any, y: Any, kinds: Sequence[str] = KINDS, **kw: Any) -> Dict[str, Curve]:
    """:func:`perturbation_curve` for every kind in ``kinds``."""
    return {k: perturbation_curve(model, X, y, k, **kw) for k in kinds}
