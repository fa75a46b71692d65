"""Feature selection from the sparse input layer: the strength of each input neuron.

A trained sparse network keeps the input connections that the loss found useful and loses the
others to evolution (SET removes the blocks of smallest ``|weight|``; motifcore's default
``"input-cosine"`` evolution acts on the input layer only). The strength of an input neuron then
ranks the features, as QuickSelection (Atashgahi et al.) does with the input neurons of a sparse
autoencoder.

**Definition.** Let the first layer hold the active blocks ``b = 1..|P|``, block ``b`` joining
input motif ``g_b`` (the features ``g_b * m_in .. min((g_b + 1) * m_in, n_in) - 1``) to one
output motif with the shared weight ``w_b``. The strength of feature ``j`` is

    s_j = sum over the active blocks b whose input motif covers j of |w_b|

so a block counts once for each feature it covers, whatever the number of output neurons
(``m_out``) it feeds; a feature with no active block has strength 0. For ``m = 1`` (an ordinary
sparse layer) this is the sum of ``|weight|`` of the feature's active connections, QuickSelection's
neuron strength. ``level="edge"`` counts every edge of the effective ``n_out x n_in`` matrix
instead (the column sums of ``|W|``: a block weighs ``|w_b|`` times its output-motif size).
``normalize=True`` divides by the sum over the features (the shares sum to 1; all zeros stay
zeros), as scikit-learn's ``feature_importances_`` do.

**Path strength** (``level="path"``, a variant with its own name, not QuickSelection's strength).
With ``|W_l|`` the element-wise absolute value of layer ``l``'s effective ``n_out x n_in`` matrix
(``l = 1..L``, the output layer last),

    p = |W_1|^T |W_2|^T ... |W_L|^T 1

so ``p_j`` is the sum, over every path from input ``j`` to any output neuron, of the product of the
``|weight|`` along the path. An input connection counts as much as the downstream network it feeds:
a large weight into a hidden neuron that no output reads adds nothing. On a single layer (or a
one-layer model) it is the ``"edge"`` level. Biases and activations are not part of it.

The ranking orders the features by decreasing strength; ties keep the order of the feature index
(a stable sort), so the ranking is a function of the weights alone.

Inputs are duck-typed: a model (anything with ``.layers``, e.g. :class:`motifcore.MotifMLP`) or a
single layer exposing ``n_in, n_out, motif, indptr, indices, weights`` like
:class:`motifcore.MotifLayer`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LEVELS", "feature_ranking", "input_strength", "path_strength", "top_features"]

#: What a block counts for: ``"block"`` once per covered feature (the definition above), ``"edge"``
#: once per edge of the effective matrix, ``"path"`` once per edge times the path strength of the
#: output neuron it feeds (the path strength above).
LEVELS = ("block", "edge", "path")


_ARRAYS = ("n_in", "n_out", "motif", "indptr", "indices", "weights")


def _layers(model: Any, first_only: bool = False) -> list[Any]:
    """The motif layers of ``model`` (``.layers``, or ``model`` itself), each checked for the block
    arrays; ``first_only``: only the first (what the block and edge levels read)."""
    layers = getattr(model, "layers", None)
    out = list(layers) if layers is not None and len(layers) else [model]
    out = out[:1] if first_only else out
    for layer in out:
        missing = [a for a in _ARRAYS if not hasattr(layer, a)]
        if missing:
            raise TypeError(f"expected a model with .layers or a motif layer; {type(layer).__name__} has no "
                            f"{', '.join(missing)}")
    return out


def _abs_transpose_times(layer: Any, u: np.ndarray) -> np.ndarray:
    """``|W|^T u`` for the effective matrix ``W`` of a motif layer (``u``: one value per output
    neuron), from the block arrays: block ``b`` in output motif ``r`` adds ``|w_b|`` times the sum of
    ``u`` over that motif's neurons to every feature of its input motif."""
    n_in, n_out = int(layer.n_in), int(layer.n_out)
    m_out, m_in = (int(v) for v in layer.motif)
    indptr = np.asarray(layer.indptr, dtype=np.int64)
    indices, w = _abs_weights(layer)
    if u.shape != (n_out,):
        raise ValueError(f"the layers do not chain: a layer has {n_out} outputs, the next one {u.size} inputs")
    g_out = indptr.size - 1
    u_motif = np.add.reduceat(np.concatenate([u, np.zeros(g_out * m_out - n_out)]), np.arange(0, g_out * m_out, m_out))
    rows = np.repeat(np.arange(g_out, dtype=np.int64), np.diff(indptr))
    per_motif = np.bincount(indices, weights=w * u_motif[rows], minlength=-(-n_in // m_in))
    return np.repeat(per_motif, m_in)[:n_in]


def path_strength(model: Any) -> np.ndarray:
    """The path strength of every input feature, float64 ``[n_in]``: ``|W_1|^T ... |W_L|^T 1``
    (the sum over all input-to-output paths of the product of ``|weight|``; module docstring)."""
    layers = _layers(model)
    u = np.ones(int(layers[-1].n_out), dtype=np.float64)
    for layer in reversed(layers):
        u = _abs_transpose_times(layer, u)
    return u


def _abs_weights(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """(input motif of each block as int64, ``|w|`` of each block as float64), checked."""
    indices = np.asarray(layer.indices, dtype=np.int64)
    w = np.abs(np.asarray(layer.weights, dtype=np.float64))
    if w.shape != indices.shape:
        raise ValueError(f"a layer has {indices.size} active blocks but {w.size} weights")
    if not np.all(np.isfinite(w)):
        raise ValueError("the layer's weights are not finite (a diverged model?)")
    return indices, w


def input_strength(model: Any, *, level: str = "block", normalize: bool = False) -> np.ndarray:
    """The strength of every input neuron of ``model``'s first layer, float64 ``[n_in]``.

    Parameters
    ----------
    model : MotifMLP, MotifLayer or any object with ``.layers``
        The trained network (or its first layer).
    level : {"block", "edge"}, default "block"
        ``"block"``: the sum of ``|w_b|`` over the active blocks covering the feature, one count per
        block (see the module docstring). ``"edge"``: the column sum of ``|W|`` of the effective
        matrix (a block counts once per output neuron it feeds). ``"path"``: the path strength
        through the whole network (:func:`path_strength`; needs the model, not only its first layer).
    normalize : bool, default False
        Divide by the total so that the strengths sum to 1 (all zeros stay zeros).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if level == "path":
        s = path_strength(model)
        if normalize:
            total = s.sum()
            s = s / total if total > 0 else np.zeros_like(s)
        return s
    layer = _layers(model, first_only=True)[0]
    if level == "edge":            # column sums of |W|: |W|^T 1 (a block counts once per output neuron)
        s = _abs_transpose_times(layer, np.ones(int(layer.n_out), dtype=np.float64))
    else:
        n_in, m_in = int(layer.n_in), int(layer.motif[1])
        indices, w = _abs_weights(layer)
        per_motif = np.bincount(indices, weights=w, minlength=-(-n_in // m_in))
        s = np.repeat(per_motif, m_in)[:n_in]                              # residual input motif cut off
    if normalize:
        total = s.sum()
        s = s / total if total > 0 else np.zeros_like(s)
    return s


def feature_ranking(model: Any, *, level: str = "block") -> np.ndarray:
    """Feature indices by decreasing :func:`input_strength` (ties by increasing index), int64 ``[n_in]``."""
    s = input_strength(model, level=level)
    return np.argsort(-s, kind="stable").astype(np.int64)


def top_features(model: Any, k: int, *, level: str = "block") -> np.ndarray:
    """The ``k`` strongest features (the first ``k`` of :func:`feature_ranking`)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    ranking = feature_ranking(model, level=level)
    if k > ranking.size:
        raise ValueError(f"k={k} is more than the model's {ranking.size} input features")
    return ranking[:k]
