"""The arrays of a trained model in a form other libraries read: per layer the block pattern
(CSR over motifs), the shared weights, the biases and the index maps of the motifs; SciPy
matrices of the effective weights; the block pattern of a dense weight matrix (pruning).

Everything here reads a model through its public layer attributes (``n_in``, ``n_out``,
``motif``, ``indptr``, ``indices``, ``weights``, ``bias``, ``bias_mode``, ``activation``), so
:mod:`motifcore.nn` can call it without this package importing it back. Work is O(edges) per
layer, never O(n_out * n_in), except in :func:`blocks_from_dense`, whose input is dense anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

from .._internal.validation import check_density, check_motif

__all__ = ["LayerArrays", "ScipyLayer", "blocks_from_dense", "layer_arrays", "model_layers", "to_npz_dict",
           "to_scipy_layer"]


@dataclass(frozen=True)
class LayerArrays:
    """One motif layer as plain arrays: ``y = act(Expand(K · GroupSum(x)) + b)``."""

    n_in: int
    n_out: int
    m_out: int
    m_in: int
    indptr: np.ndarray      # int64 [G_out + 1]: CSR over output motifs
    indices: np.ndarray     # int64 [n_blocks]: input motif of each block
    weights: np.ndarray     # float32 [n_blocks]: the shared weight K of each block
    bias: np.ndarray        # float32 [n_out] ("neuron") or [G_out] ("motif")
    bias_mode: str
    activation: str         # "relu" or "linear"

    @property
    def groups(self) -> Tuple[int, int]:
        """(G_out, G_in); the last motif of a width not divisible by m is smaller (residual)."""
        return -(-self.n_out // self.m_out), -(-self.n_in // self.m_in)

    @property
    def rows(self) -> np.ndarray:
        """Output motif of each block, int64 [n_blocks]."""
        return np.repeat(np.arange(self.groups[0], dtype=np.int64), np.diff(self.indptr))

    @property
    def in_group(self) -> np.ndarray:
        """Input motif of each input neuron, int64 [n_in]."""
        return np.arange(self.n_in, dtype=np.int64) // self.m_in

    @property
    def out_group(self) -> np.ndarray:
        """Output motif of each output neuron, int64 [n_out]."""
        return np.arange(self.n_out, dtype=np.int64) // self.m_out

    @property
    def has_residual(self) -> bool:
        """True when a width is not a multiple of its motif size (a smaller last motif)."""
        return self.n_out % self.m_out != 0 or self.n_in % self.m_in != 0

    @property
    def neuron_bias(self) -> np.ndarray:
        """The bias of every output neuron, float32 [n_out]."""
        return self.bias if self.bias_mode == "neuron" else self.bias[self.out_group]


def layer_arrays(layer: Any) -> LayerArrays:
    """The :class:`LayerArrays` of a :class:`~motifcore.MotifLayer` (copies, read in one engine
    call, so another thread evolving the layer cannot mix two patterns into one export)."""
    m_out, m_in = layer.motif
    indptr, indices, weights, bias = layer._core.pattern_snapshot()
    return LayerArrays(int(layer.n_in), int(layer.n_out), int(m_out), int(m_in),
                       np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64),
                       np.asarray(weights, dtype=np.float32), np.asarray(bias, dtype=np.float32),
                       str(layer.bias_mode), str(layer.activation))


def model_layers(model: Any) -> list:
    """:func:`layer_arrays` of every layer of a :class:`~motifcore.MotifMLP`, input to output."""
    layers = getattr(model, "layers", None)
    if layers is None or not hasattr(model, "n_classes"):
        raise TypeError(f"expected a MotifMLP, got {type(model).__name__}")
    lock = getattr(model, "_lock", None)      # the model's own lock: no model-level evolve in between
    if lock is None:
        return [layer_arrays(layer) for layer in layers]
    with lock:
        return [layer_arrays(layer) for layer in layers]


class ScipyLayer(NamedTuple):
    """One layer as SciPy matrices (see :meth:`motifcore.MotifMLP.to_scipy`)."""

    weight: Any        # effective [n_out, n_in] matrix: BSR (m_out x m_in blocks) or CSR
    blocks: Any        # CSR [G_out, G_in]: the block pattern, each entry the block's shared weight
    bias: np.ndarray   # float32 [n_out], per-motif biases expanded
    motif: Tuple[int, int]
    activation: str


def _indicator(n: int, m: int) -> Any:
    """CSR [n, ceil(n/m)] with a 1 at (i, i // m): maps motifs to their neurons."""
    import scipy.sparse as sp

    g = -(-n // m)
    return sp.csr_matrix((np.ones(n, dtype=np.float32), np.arange(n) // m, np.arange(n + 1)), shape=(n, g))


def to_scipy_layer(a: LayerArrays, format: str = "auto") -> ScipyLayer:
    """The layer as SciPy matrices; ``format`` of ``weight``: ``"auto"`` (BSR when no motif of the
    layer is residual, else CSR), ``"csr"`` or ``"bsr"`` (ValueError for a layer with a residual
    motif)."""
    import scipy.sparse as sp

    if format not in ("auto", "csr", "bsr"):
        raise ValueError(f"format must be 'auto', 'csr' or 'bsr', got {format!r}")
    if format == "bsr" and a.has_residual:
        raise ValueError(f"a {a.n_out} x {a.n_in} layer with motif {(a.m_out, a.m_in)} has a residual motif; "
                         "BSR needs equal blocks (use format='csr')")
    blocks = sp.csr_matrix((a.weights, a.indices, a.indptr), shape=a.groups)
    if format == "bsr" or (format == "auto" and not a.has_residual):
        data = np.repeat(a.weights, a.m_out * a.m_in).reshape(-1, a.m_out, a.m_in)
        weight = sp.bsr_matrix((data, a.indices, a.indptr), shape=(a.n_out, a.n_in))
    else:
        # each entry of the product is one block weight times ones: exact, and O(edges)
        weight = (_indicator(a.n_out, a.m_out) @ blocks @ _indicator(a.n_in, a.m_in).T).tocsr()
        weight.sort_indices()
    return ScipyLayer(weight, blocks, np.array(a.neuron_bias, dtype=np.float32), (a.m_out, a.m_in), a.activation)


def to_npz_dict(layers: list, sizes: list) -> dict:
    """The arrays of :func:`motifcore.export.to_npz`: per layer ``l`` the block pattern
    (``l.indptr``, ``l.indices``, ``l.weights``), ``l.bias`` (per neuron), ``l.motif``,
    ``l.relu``, and the effective matrix as CSR (``l.csr_data``, ``l.csr_indices``,
    ``l.csr_indptr``, ``l.shape``)."""
    out: dict = {"sizes": np.asarray(sizes, dtype=np.int64), "n_layers": np.array(len(layers))}
    for i, a in enumerate(layers):
        s = to_scipy_layer(a, "csr")
        out.update({f"{i}.indptr": a.indptr, f"{i}.indices": a.indices, f"{i}.weights": a.weights,
                    f"{i}.bias": s.bias, f"{i}.motif": np.array([a.m_out, a.m_in], dtype=np.int64),
                    f"{i}.relu": np.array(a.activation == "relu"), f"{i}.shape": np.array([a.n_out, a.n_in]),
                    f"{i}.csr_data": s.weight.data, f"{i}.csr_indices": s.weight.indices.astype(np.int64),
                    f"{i}.csr_indptr": s.weight.indptr.astype(np.int64)})
    return out


def blocks_from_dense(weight: Any, motif: Any = 1, density: Optional[float] = None
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block pattern of a dense ``[n_out, n_in]`` weight matrix: ``(indptr, indices, weights)``.

    Each block's shared weight is the mean of its entries (the tied weight closest in squared
    error). ``density=None`` keeps every block holding a non-zero entry (exact for a matrix that
    already has the motif structure, e.g. one exported by :meth:`~motifcore.MotifMLP.to_torch`);
    a density in ``(0, 1]`` keeps the ``round(density * G_out * G_in)`` blocks (at least one) of
    largest mean ``|w|`` (magnitude pruning), ties broken towards the lower position.
    """
    W = np.asarray(weight, dtype=np.float64)
    if W.ndim != 2 or W.size == 0:
        raise ValueError(f"weight must be a non-empty 2-D matrix, got shape {W.shape}")
    if not np.isfinite(W).all():
        raise ValueError("weight holds a NaN or infinite value")
    m_out, m_in = check_motif(motif)
    n_out, n_in = W.shape
    r0, c0 = np.arange(0, n_out, m_out), np.arange(0, n_in, m_in)
    sizes = np.minimum(m_out, n_out - r0)[:, None] * np.minimum(m_in, n_in - c0)[None, :]
    mean = np.add.reduceat(np.add.reduceat(W, r0, axis=0), c0, axis=1) / sizes
    mag = np.add.reduceat(np.add.reduceat(np.abs(W), r0, axis=0), c0, axis=1) / sizes
    if density is None:
        keep = mag.ravel() > 0
    else:
        d = check_density(density)
        k = max(1, int(round(d * mag.size)))
        keep = np.zeros(mag.size, dtype=bool)
        keep[np.argsort(-mag.ravel(), kind="stable")[:k]] = True
    keep = keep.reshape(mag.shape)
    rows, cols = np.nonzero(keep)          # row-major: sorted by row, then column
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64)
    return indptr, cols.astype(np.int32), mean[rows, cols].astype(np.float32)
