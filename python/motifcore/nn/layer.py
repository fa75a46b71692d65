"""MotifLayer: one block-sparse layer whose m_out x m_in blocks each share one weight, a view of
the engine's ``Layer`` (geometry, pattern, weights and gradients read from it; forward, backward,
optimizer steps and the dynamic-sparse-training primitives run in it)."""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import numpy as np

from .. import _core
from .._internal.validation import (
    as_float_matrix,
    as_float_vector,
    check_betas,
    check_density,
    check_epsilon,
    check_int,
    check_motif,
    check_optim,
    check_optimizer,
    check_positive,
    check_real,
    check_regrow,
    check_seed,
    check_zeta,
)
from ._engine import check_threads

__all__ = ["MotifLayer"]


class _Engine:
    """An attribute of :class:`MotifLayer` read from its engine object (``layer._core.<name>``),
    converted by ``kind``. With ``size`` it can be assigned: a finite float vector of
    ``size(layer)`` entries, passed to the engine's ``set_<name>``."""

    def __init__(self, kind: Optional[type], doc: str, size: Optional[Any] = None) -> None:
        self.kind, self.size, self.__doc__ = kind, size, doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, layer: Any, owner: Optional[type] = None) -> Any:
        if layer is None:
            return self
        value = getattr(layer._core, self.name)
        return value if self.kind is None else self.kind(value)

    def __set__(self, layer: Any, value: Any) -> None:
        if self.size is None:
            raise AttributeError(f"{self.name} is read-only")
        getattr(layer._core, f"set_{self.name}")(as_float_vector(value, self.size(layer), self.name))


def engine_layer(n_in: Any, n_out: Any, motif: Any, density: Any, epsilon: Any, bias: str, activation: str,
                 seed: Any, input_copies: Any = 1, *, names: Tuple[str, str, str] = ("n_in", "n_out", "bias")) -> Any:
    """A native ``_core.Layer`` from checked arguments: the one construction behind
    :class:`MotifLayer` and :class:`motifcore.torch.MotifLinear` (``names`` are the caller's names
    of the widths and the bias mode, for its error messages)."""
    n_in = check_int(n_in, names[0])
    n_out = check_int(n_out, names[1])
    m_out, m_in = check_motif(motif)
    density = check_density(density)
    eps = check_epsilon(epsilon)
    if bias not in ("neuron", "motif"):
        raise ValueError(f"{names[2]} must be 'neuron' or 'motif', got {bias!r}")
    if activation not in ("linear", "relu"):
        raise ValueError(f"activation must be 'linear' or 'relu', got {activation!r}")
    return _core.Layer(n_in, n_out, m_in, m_out, density, eps or 0.0, bias, activation, check_seed(seed),
                       check_int(input_copies, "input_copies"))


class BlockGeometry:
    """The motif geometry of anything that holds an engine layer in ``self._core``
    (:class:`MotifLayer`, :class:`motifcore.torch.MotifLinear`)."""

    _core: Any

    @property
    def motif(self) -> Tuple[int, int]:
        """(m_out, m_in)."""
        return int(self._core.m_out), int(self._core.m_in)

    @property
    def groups(self) -> Tuple[int, int]:
        """(G_out, G_in): number of output and input motifs."""
        return int(self._core.G_out), int(self._core.G_in)


class MotifLayer(BlockGeometry):
    """A block-sparse layer whose m_out x m_in blocks each share one weight (Motif-SET).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths. Widths not divisible by the motif size end in a smaller
        residual motif (no padding).
    motif : int or (m_out, m_in)
        Motif size; ``1`` is an ordinary edge-level sparse layer.
    density : float
        Fraction of active blocks in ``(0, 1]``; ignored when ``epsilon`` is given.
    epsilon : float, optional
        SET's parameterisation ``p = epsilon * (G_in + G_out) / (G_in * G_out)``, capped at 1.
    bias : {"neuron", "motif"}
        One bias per output neuron (default) or one per output motif.
    activation : {"linear", "relu"}
        Applied after the affine map in :meth:`forward`.
    seed : int
        Seed of the Erdős–Rényi pattern and the He-uniform weights.
    num_threads : int, optional
        Threads of the native kernels (default: all available).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        motif: Union[int, Tuple[int, int]] = 1,
        density: float = 0.1,
        epsilon: Optional[float] = None,
        bias: str = "neuron",
        activation: str = "linear",
        seed: int = 0,
        num_threads: Optional[int] = None,
    ) -> None:
        core = engine_layer(n_in, n_out, motif, density, epsilon, bias, activation, seed)
        self._init(core, check_threads(num_threads))

    def _init(self, core: Any, num_threads: int) -> None:
        self._core = core
        self._num_threads = num_threads
        self._last_batch: Optional[int] = None

    @property
    def num_threads(self) -> int:
        """Threads of the native kernels, in [1, 4 x the logical CPUs]."""
        return self._num_threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        self._num_threads = check_threads(value)

    @classmethod
    def _wrap(cls, core: Any, num_threads: int) -> "MotifLayer":
        obj = cls.__new__(cls)
        obj._init(core, num_threads)
        return obj

    # ---- geometry and counts (read from the engine) ------------------------------------------
    n_in = _Engine(int, "Input neurons.")
    n_out = _Engine(int, "Output neurons.")
    activation = _Engine(str, "'linear' or 'relu'.")
    bias_mode = _Engine(str, "'neuron' (one bias per output neuron) or 'motif' (one per output motif).")
    n_blocks = _Engine(int, "Active blocks |P| (= unique weights).")
    n_edges = _Engine(int, "Edges of the effective n_out x n_in matrix (sum of the sizes of the active blocks).")

    @property
    def n_params(self) -> int:
        """Unique trainable parameters: one weight per active block plus the biases."""
        return int(self._core.n_blocks + self._core.n_bias)

    @property
    def macs_per_sample(self) -> int:
        """Block-level multiply-adds of one forward pass of one sample (|P|; the paper's FLOPs)."""
        return int(self._core.n_blocks)

    @property
    def dense_params(self) -> int:
        """Parameters of the dense layer of the same shape (n_in*n_out + n_out)."""
        return self.n_in * self.n_out + self.n_out

    @property
    def density(self) -> float:
        """Current block density |P| / (G_out * G_in)."""
        g_out, g_in = self.groups
        return self.n_blocks / (g_out * g_in)

    # ---- parameters (copies of the engine's arrays; weights and bias can be assigned) -----------
    indptr = _Engine(None, "CSR row pointer over output motifs, int64 [G_out + 1].")
    indices = _Engine(None, "Input motif of each active block, int32 [n_blocks], sorted within each row.")
    weights = _Engine(None, "Shared block weights, float32 [n_blocks], aligned with ``indices`` (a copy).",
                      size=lambda layer: layer.n_blocks)
    bias = _Engine(None, "Biases, float32 [n_out] (per neuron) or [G_out] (per motif) (a copy).",
                   size=lambda layer: int(layer._core.n_bias))
    grad_weights = _Engine(None, "dL/dK of the last backward, float32 [n_blocks].")
    grad_bias = _Engine(None, "dL/db of the last backward.")

    @property
    def block_rows(self) -> np.ndarray:
        """Output motif of each active block, int64 [n_blocks] (the COO row of ``indices``)."""
        return np.repeat(np.arange(self.groups[0], dtype=np.int64), np.diff(self.indptr))

    # ---- compute --------------------------------------------------------------------------
    def forward(self, x: Any) -> np.ndarray:
        """Outputs ``activation(x @ W.T + b)`` for ``x`` of shape [batch, n_in]."""
        # Values are checked for NaN/inf by the engine, in the pass that transposes them.
        xa = as_float_matrix(x, self.n_in, "x", check_finite=False)
        self._last_batch = None        # a rejected x also discards the last forward's input
        out = self._core.forward(xa, self.num_threads)
        self._last_batch = xa.shape[0]
        return out

    __call__ = forward

    def backward(self, grad_out: Any) -> np.ndarray:
        """Gradient w.r.t. the input of the last :meth:`forward`; stores ``grad_weights``/``grad_bias``."""
        if self._last_batch is None:
            raise ValueError("backward() called before forward(): there is no input to differentiate at")
        g = as_float_matrix(grad_out, self.n_out, "grad_out", check_finite=False)   # checked by the engine
        if g.shape[0] != self._last_batch:
            raise ValueError(f"grad_out has {g.shape[0]} rows, the last forward had {self._last_batch}")
        return self._core.backward(g, self.num_threads)

    def to_dense(self) -> np.ndarray:
        """The effective n_out x n_in weight matrix (inspection and tests only: O(n_out*n_in))."""
        if self.n_out * self.n_in > 2**31:
            raise ValueError(f"to_dense() of a {self.n_out} x {self.n_in} layer would need too much memory")
        return self._core.to_dense()

    def prune_regrow(self, zeta: float, seed: int = 0, zero_init: bool = False, regrow: Optional[str] = None) -> int:
        """SET step in place: drop the round(zeta*|P|) smallest-|K| blocks and regrow as many at
        random among the previously inactive positions. Returns the number of blocks replaced.

        ``regrow`` sets the value of the new blocks: ``"he"`` (a fresh He-uniform draw with the
        row's new fan-in, as at initialisation; the default), ``"zero"`` (as RigL;
        ``zero_init=True`` is the same), ``"pruned"`` (uniform within the largest pruned
        ``|K|``) or ``"normal"`` (the paper's Algorithm 3: ``N(0, sigma^2)`` with ``sigma =
        sqrt(2 / fan_in)``, the standard deviation of that He-uniform draw, so only the shape of
        the distribution differs from ``"he"``). Their optimizer state is zero.
        """
        removed, _ = self._core.prune_regrow(check_zeta(zeta), check_seed(seed), check_regrow(regrow, zero_init))
        return int(removed)

    # ---- dynamic sparse training primitives (cpp/dst.cpp) -----------------------------------
    # Every prune remembers the removed flat positions ``r * G_in + c`` (``last_removed``) with
    # their weights and optimizer state, until the next change of the pattern: ``grow_at`` gives a
    # just-removed position its old values back, ``grow_random`` never draws one.

    def keep_where(self, keep: Any) -> int:
        """Keep the active blocks where ``keep`` (bool, one entry per block, in ``indices``
        order) is true and remove the others, with their optimizer state; returns the number
        removed. The generic compaction behind global magnitude pruning."""
        mask = np.asarray(keep)
        if mask.dtype != np.bool_ or mask.shape != (self.n_blocks,):
            raise ValueError(f"keep must be a boolean array of shape ({self.n_blocks},), got "
                             f"{mask.dtype} {mask.shape}")
        return int(self._core.keep_where(np.ascontiguousarray(mask, dtype=np.uint8)))

    def prune_smallest(self, k: int) -> int:
        """Remove the ``k`` active blocks of smallest ``|K|`` (ties: lower position first)."""
        k = check_int(k, "k", 0)
        if k > self.n_blocks:
            raise ValueError(f"cannot prune {k} of {self.n_blocks} blocks")
        return int(self._core.prune_smallest(k))

    def prune_below(self, threshold: float, keep_min: int = 1) -> int:
        """Remove the blocks with ``|K| < threshold`` but keep at least ``keep_min`` (the largest);
        returns the number removed (DSR's pruning step)."""
        return int(self._core.prune_below(check_real(threshold, "threshold", 0.0), check_int(keep_min, "keep_min", 0)))

    def grow_at(self, positions: Any, regrow: str = "zero", seed: int = 0) -> int:
        """Activate the strictly increasing, inactive flat positions ``r * G_in + c``. A position
        removed by the last prune comes back with its old weight and optimizer state (RigL);
        others start from ``regrow`` (``"zero"`` or ``"he"``) with zero optimizer state."""
        pos = np.asarray(positions)
        if pos.ndim != 1 or (pos.size and (not np.issubdtype(pos.dtype, np.integer) or pos.min() < 0)):
            raise ValueError("positions must be a 1-D array of non-negative integers")
        return int(self._core.grow_at(np.ascontiguousarray(pos, dtype=np.uint64), check_regrow(regrow),
                                      check_seed(seed)))

    def grow_random(self, n: int, seed: int = 0, regrow: str = "zero") -> int:
        """Grow up to ``n`` blocks uniformly among the inactive positions not removed by the last
        prune (DSR's regrowth); returns the number grown."""
        return int(self._core.grow_random(check_int(n, "n", 0), check_seed(seed), check_regrow(regrow)))

    @property
    def last_removed(self) -> np.ndarray:
        """Flat positions ``r * G_in + c`` removed by the last prune (uint64, increasing)."""
        return self._core.last_removed

    def grad_topk(self, k: int, drop: int = 0, topk: str = "exact", *, tile_rows: int = 64, tile_cols: int = 0,
                  sample_factor: int = 10, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """RigL's grow candidates after :meth:`forward` and :meth:`backward`: the ``k`` positions
        of largest ``|dL/dK(r, c)| = |sum_b dU[r, b] S[c, b]|`` (the gradient of a block weight at
        0, without weight decay) among those not kept, where kept = the active blocks except the
        ``drop`` of smallest ``|K|``. Ties go to the lower ``(r, c)``. Returns (positions uint64,
        increasing; scores float32). ``topk="exact"`` scores every position in tiles of
        ``tile_rows x tile_cols`` (0: about 256 KB of panel), ``"sampled"`` only
        ``sample_factor * k`` positions drawn from ``seed``."""
        if self._last_batch is None:
            raise ValueError("grad_topk() needs forward() and backward() first")
        if topk not in ("exact", "sampled"):
            raise ValueError(f"topk must be 'exact' or 'sampled', got {topk!r}")
        drop = check_int(drop, "drop", 0)
        if drop > self.n_blocks:
            raise ValueError(f"cannot drop {drop} of {self.n_blocks} blocks")
        return self._core.grad_topk(check_int(k, "k", 0), drop, topk, check_int(tile_rows, "tile_rows"),
                                    check_int(tile_cols, "tile_cols", 0), check_int(sample_factor, "sample_factor"),
                                    check_seed(seed), self.num_threads)
    @property
    def codebook(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """``(codes int32 [n_blocks], centroids float32 [k])`` while the block weights are shared
        through a codebook (:meth:`set_codebook`), else None."""
        c = self._core
        return (c.codes, c.centroids) if c.centroids.size else None

    def set_codebook(self, codes: Any, centroids: Any) -> None:
        """Share the block weights through ``centroids`` (Deep Compression's trained quantization):
        block ``p`` takes the value ``centroids[codes[p]]``, and from now on every optimizer step
        trains the centroids (each gets the sum of its blocks' gradients, no weight decay; the
        same optimizer as the weights, with its own state) and regathers the weights. The
        codebook is dropped when the pattern is replaced (:meth:`MotifMLP.set_state`); after
        evolution an optimizer step raises until it is set again."""
        cent = np.asarray(centroids)
        if cent.ndim != 1 or cent.size < 1:
            raise ValueError(f"centroids must be a non-empty 1-D array, got shape {cent.shape}")
        cent = as_float_vector(cent, cent.shape[0], "centroids")
        code = np.asarray(codes)
        if code.ndim != 1 or code.shape[0] != self.n_blocks or not np.issubdtype(code.dtype, np.integer):
            raise ValueError(f"codes must be a 1-D integer array with one entry per block ({self.n_blocks})")
        if code.size and (code.min() < 0 or code.max() >= cent.shape[0]):
            raise ValueError(f"codes must be in [0, {cent.shape[0]})")
        self._core.set_codebook(np.ascontiguousarray(code, dtype=np.int32), cent)

    def clear_codebook(self) -> None:
        """Train the block weights individually again (they keep their shared values)."""
        self._core.clear_codebook()

    def sgd_step(self, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4) -> None:
        """Apply one SGD-with-momentum update from the stored gradients."""
        self.optimizer_step("sgd", lr, momentum=momentum, weight_decay=weight_decay)

    def optimizer_step(self, optimizer: str, lr: float, *, momentum: float = 0.9,
                       betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                       grad_scale: float = 1.0, t: int = 1) -> None:
        """One in-place update from the stored gradients: ``"sgd"`` (momentum), ``"adam"`` (L2
        weight decay added to the gradient) or ``"adamw"`` (decoupled decay); ``t`` is the 1-based
        update count of Adam's bias correction, ``grad_scale`` multiplies the gradients first."""
        opt = check_optimizer(optimizer)
        b1, b2 = check_betas(betas)
        check_optim(lr, momentum, weight_decay, 0.0)
        eps = check_positive(eps, "eps")
        self._core.optimizer_step(opt, float(lr), float(momentum), b1, b2, eps, float(weight_decay),
                                  float(grad_scale), check_int(t, "t"), self.num_threads)

    def __repr__(self) -> str:
        m_out, m_in = self.motif
        m = str(m_out) if m_out == m_in else f"({m_out}, {m_in})"
        return (f"MotifLayer({self.n_in} -> {self.n_out}, motif={m}, blocks={self.n_blocks}, "
                f"density={self.density:.4g}, activation={self.activation!r})")
