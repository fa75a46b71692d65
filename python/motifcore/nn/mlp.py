"""MotifMLP: a multi-layer perceptron of motif layers, trained natively (forward, softmax
cross-entropy, backward and the optimizer step of a batch, or a whole epoch, in one GIL-free call);
inference in memory-bounded chunks; state get/set for checkpoints; export and import."""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _core
from .._internal.validation import (
    as_float_matrix,
    as_labels,
    check_chunk,
    check_density,
    check_epsilon,
    check_int,
    check_motif,
    check_optim,
    check_order,
    check_real,
    check_regrow,
    check_seed,
    check_zeta,
    optim_args,
    per_layer,
    state_floats,
    state_ints,
)
from ..defaults import DENSITY, DISTRIBUTION
from ._engine import check_threads, diverged
from .diagnostics import Diagnostics
from .layer import MotifLayer
from .regroup import regroup_model
from .sparsity import layer_densities

__all__ = ["DEFAULT_EVAL_MEMORY", "MAX_EVAL_CHUNK", "MotifMLP", "layer_seed"]


#: Default memory budget (bytes) of the inference panels of ``batch_size="auto"``: 256 MiB.
DEFAULT_EVAL_MEMORY = 256 * 2**20
#: Largest chunk ``batch_size="auto"`` picks. A larger chunk does not run faster: its panels leave
#: the caches (784-1000-1000-1000-10, 10,000 samples, 1 thread: 0.07 s in chunks of 256, 0.11 s
#: in one chunk of 10,000); only very wide layers, which stream the whole pattern once per chunk,
#: gain from chunks near this cap.
MAX_EVAL_CHUNK = 256


def _serialized(method: Any) -> Any:
    """Run a MotifMLP method under the model's lock: a call that spans several layers (evolve,
    set_state, get_state) is atomic with respect to the other calls on the same model."""
    @functools.wraps(method)
    def run(self: "MotifMLP", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return run


def layer_seed(seed: int, index: int) -> int:
    """Seed of layer `index` derived from a model seed (independent streams per layer)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0])


class MotifMLP(Diagnostics):
    """A multi-layer perceptron of motif layers trained natively (forward, softmax cross-entropy,
    backward and SGD of a batch in one GIL-free call).

    Parameters
    ----------
    sizes : sequence of int
        Widths from input to output, e.g. ``[784, 3000, 3000, 3000, 10]``.
    motif : int or sequence
        Motif size of the hidden layers (the output layer keeps ``m = 1``: a shared output block
        would tie the logits of its classes), or one entry per layer, each an int or
        ``(m_out, m_in)``. A shared output layer must be asked for explicitly and warns.
    density, epsilon : float or sequence
        Block density (a scalar, spread over the layers by ``distribution``, or one per layer),
        or SET's epsilon (overrides density).
    distribution : {"output-dense", "uniform", "erk"}, optional
        How a scalar ``density`` is spread over the layers. ``"output-dense"`` (the default,
        :data:`motifcore.defaults.DISTRIBUTION`): the hidden layers at ``density``, the output
        layer dense, so that every hidden neuron has a path to the loss (at uniform density 0.1
        about 35 % of the last hidden layer of a 10-class network has none; a network without
        hidden layers keeps its one layer at ``density``). ``"uniform"``: every layer at
        ``density`` (the paper's network). ``"erk"``: Erdős–Rényi-Kernel
        (:func:`motifcore.nn.sparsity.erk_densities`: denser small layers, the same total number
        of blocks). ``None`` is the default for a scalar density and "as given" for per-layer
        densities or ``epsilon``.
    activation : {"relu"}
        Hidden activation.
    bias : {"neuron", "motif"}
        Bias granularity of every layer.
    seed : int
        Model seed; layer ``l`` uses :func:`layer_seed` ``(seed, l)``.
    num_threads : int, optional
        Threads of every native call (default: all available, or ``$MOTIFCORE_NUM_THREADS``).

    Memory: training keeps a workspace of activation and gradient panels sized by the largest
    batch trained so far (:attr:`workspace_bytes`, freed by :meth:`release_workspace`). Inference
    (:meth:`decision_function`, :meth:`predict`, :meth:`evaluate`, ...) runs forward only, in
    panels that live for the call; with ``batch_size="auto"`` (the default) the chunk is the
    largest, up to 256 samples, whose panels fit :attr:`eval_memory` bytes (default
    :data:`DEFAULT_EVAL_MEMORY`, 256 MiB).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        motif: Union[int, Sequence[Any]] = 1,
        density: Union[float, Sequence[float]] = DENSITY,
        epsilon: Union[None, float, Sequence[Optional[float]]] = None,
        activation: str = "relu",
        bias: str = "neuron",
        seed: int = 0,
        num_threads: Optional[int] = None,
        distribution: Optional[str] = None,
    ) -> None:
        if isinstance(sizes, (str, bytes, Mapping)) or not hasattr(sizes, "__len__"):
            raise TypeError(f"sizes must be a sequence of layer widths, got {sizes!r}")
        sizes = [check_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output width, got {sizes}")
        if sizes[-1] < 2:
            raise ValueError(f"the output layer needs at least 2 classes, got {sizes[-1]}")
        if activation != "relu":
            raise ValueError(f"activation must be 'relu', got {activation!r}")
        n_layers = len(sizes) - 1
        if isinstance(motif, (list, tuple, np.ndarray)):
            motifs = [check_motif(m, f"motif[{i}]") for i, m in enumerate(per_layer(list(motif), n_layers, "motif"))]
            if motifs[-1] != (1, 1):
                warnings.warn(
                    f"the output layer shares weights in {motifs[-1]} blocks: the logits of classes in one "
                    "output motif differ only by their bias, so they cannot be separated",
                    UserWarning, stacklevel=2)
        else:
            m = check_motif(motif)
            motifs = [m] * (n_layers - 1) + [(1, 1)]
        densities = [check_density(d, f"density[{i}]") for i, d in enumerate(per_layer(density, n_layers, "density"))]
        epsilons = [check_epsilon(e, f"epsilon[{i}]") for i, e in enumerate(per_layer(epsilon, n_layers, "epsilon"))]
        per_layer_given = isinstance(density, (list, tuple, np.ndarray)) or any(e is not None for e in epsilons)
        if distribution is None:
            distribution = "uniform" if per_layer_given else DISTRIBUTION
        if distribution != "uniform":
            if per_layer_given:
                raise ValueError(f"distribution={distribution!r} spreads one scalar density over the layers; "
                                 "it cannot be combined with per-layer densities or epsilon")
            grids = [(-(-sizes[i + 1] // motifs[i][0]), -(-sizes[i] // motifs[i][1])) for i in range(n_layers)]
            densities = layer_densities(distribution, grids, densities[0])
        if bias not in ("neuron", "motif"):
            raise ValueError(f"bias must be 'neuron' or 'motif', got {bias!r}")
        seed = check_seed(seed)
        threads = check_threads(num_threads)
        cores = []
        for i in range(n_layers):
            act = "relu" if i < n_layers - 1 else "linear"
            (m_out, m_in) = motifs[i]
            # Inputs of a hidden layer fed by an aligned motif layer come in identical copies at init.
            copies = m_in if i > 0 and m_in > 1 and motifs[i - 1][0] == m_in else 1
            cores.append(_core.Layer(sizes[i], sizes[i + 1], m_in, m_out, densities[i], epsilons[i] or 0.0,
                                     bias, act, layer_seed(seed, i), copies))
        self._net = _core.Network(cores, threads)
        self._net.dropout_seed = layer_seed(seed, 1_000_003)
        self.sizes = sizes
        self.config: Dict[str, Any] = {
            "sizes": sizes,
            "motif": [list(m) for m in motifs],
            "density": densities,
            "epsilon": epsilons,
            "activation": activation,
            "bias": bias,
            "seed": seed,
        }
        self._layers = [MotifLayer._wrap(c, threads) for c in cores]
        self._lock = threading.RLock()
        self._eval_memory = DEFAULT_EVAL_MEMORY

    # ---- structure ------------------------------------------------------------------------
    @property
    def layers(self) -> List[MotifLayer]:
        """The layers, input to output (views sharing the native state)."""
        return list(self._layers)

    @property
    def num_threads(self) -> int:
        return int(self._net.num_threads)

    @num_threads.setter
    @_serialized
    def num_threads(self, value: int) -> None:
        n = check_threads(value)
        self._net.num_threads = n
        for layer in self._layers:
            layer.num_threads = n

    @property
    def n_features(self) -> int:
        return self.sizes[0]

    @property
    def n_classes(self) -> int:
        return self.sizes[-1]

    @property
    def steps(self) -> int:
        """Training steps taken so far."""
        return int(self._net.step)

    n_blocks = property(lambda self: sum(l.n_blocks for l in self._layers), doc="Active blocks, all layers.")
    n_params = property(lambda self: sum(l.n_params for l in self._layers), doc="Unique parameters.")
    n_edges = property(lambda self: sum(l.n_edges for l in self._layers), doc="Edges of the effective matrices.")
    macs_per_sample = property(lambda self: sum(l.macs_per_sample for l in self._layers),
                               doc="Block-level forward multiply-adds per sample.")
    dense_params = property(lambda self: sum(l.dense_params for l in self._layers),
                            doc="Parameters of the dense MLP of the same widths.")

    # ---- training -------------------------------------------------------------------------
    @_serialized
    def train_step(self, x: Any, y: Any, lr: float = 0.01, momentum: float = 0.9,
                   weight_decay: float = 5e-4, dropout: float = 0.0, optimizer: str = "sgd",
                   betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, max_grad_norm: float = 0.0,
                   teacher: Optional[Any] = None, temperature: float = 1.0, kd_lambda: float = 0.0,
                   weight_grad_factor: Optional[Sequence[float]] = None, label_smoothing: float = 0.0) -> float:
        """One optimizer step on the batch (x, y); returns the mean loss of the batch (cross-entropy,
        or the distillation or label-smoothing loss when ``teacher`` or ``label_smoothing`` is
        given). See :meth:`train_epoch` for the optimizer, distillation, label-smoothing and
        ``weight_grad_factor`` arguments (``teacher`` here holds one row per row of ``x``)."""
        # x's values are checked finite by the engine while it copies them (no pass of its own)
        xa = as_float_matrix(x, self.n_features, "x", check_finite=False)
        ya = as_labels(y, xa.shape[0], self.n_classes, "y")
        check_optim(lr, momentum, weight_decay, dropout)
        opt = optim_args(optimizer, betas, eps, max_grad_norm)
        kd = self._kd_args(teacher, xa.shape[0], temperature, kd_lambda, True, label_smoothing)
        gf = self._grad_factor_args(weight_grad_factor)
        try:
            loss = self._net.train_step(xa, ya, float(lr), float(momentum), float(weight_decay), float(dropout),
                                        **opt, **kd, **gf)
        except OverflowError as exc:      # the engine's divergence check
            raise diverged(exc) from None
        return _finite_loss(loss, self.steps)

    def _grad_factor_args(self, factors: Optional[Sequence[float]]) -> Dict[str, Any]:
        """The engine's ``weight_grad_factor`` keyword: nothing for ``None`` (every factor 1, the
        untouched path), else one finite factor > 0 per layer."""
        if factors is None:
            return {}
        if isinstance(factors, (str, bytes)) or not hasattr(factors, "__len__"):
            raise TypeError(f"weight_grad_factor must be a sequence of one factor per layer, got {factors!r}")
        values = [check_real(f, f"weight_grad_factor[{i}]", 0.0, np.inf, lo_open=True)
                  for i, f in enumerate(per_layer(list(factors), len(self._layers), "weight_grad_factor"))]
        return {"weight_grad_factor": values}

    def _kd_args(self, teacher: Any, rows: int, temperature: float, kd_lambda: float, check: bool,
                 label_smoothing: float = 0.0) -> Dict[str, Any]:
        t, lam = float(temperature), float(kd_lambda)
        if not (np.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not (np.isfinite(lam) and 0 <= lam <= 1):
            raise ValueError(f"kd_lambda must be in [0, 1], got {kd_lambda}")
        ls = check_real(label_smoothing, "label_smoothing", 0.0, 1.0, hi_open=True)
        if ls > 0:
            if teacher is not None or lam > 0:
                raise ValueError("label_smoothing cannot be combined with distillation (teacher=, kd_lambda=)")
            return {"label_smoothing": ls}
        if teacher is None:
            if lam > 0:
                raise ValueError("kd_lambda > 0 needs the teacher's logits (teacher=)")
            return {}
        if check:
            teacher = as_float_matrix(teacher, self.n_classes, "teacher")
            if teacher.shape[0] != rows:
                raise ValueError(f"teacher must hold one row of logits per sample ({rows}), got {teacher.shape[0]}")
            if not np.isfinite(teacher).all():
                raise ValueError("teacher logits must be finite")
        return {"teacher": teacher, "temperature": t, "kd_lambda": lam}

    @_serialized
    def train_epoch(self, X: Any, y: Any, batch_size: int = 128, lr: Union[float, Sequence[float]] = 0.01,
                    momentum: float = 0.9, weight_decay: float = 5e-4, dropout: float = 0.0,
                    order: Optional[Any] = None, seed: Optional[int] = None, check: bool = True,
                    optimizer: str = "sgd", betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                    max_grad_norm: float = 0.0, teacher: Optional[Any] = None, temperature: float = 1.0,
                    kd_lambda: float = 0.0, weight_grad_factor: Optional[Sequence[float]] = None,
                    label_smoothing: float = 0.0) -> float:
        """One pass over (X, y) in one native call; returns the mean training loss.

        ``order`` gives the sample order (default: a permutation from ``seed``, or the natural
        order when ``seed`` is None); ``lr`` is a scalar or one value per batch. ``check=False``
        skips the O(N) input validation when the caller already did it (the Trainer).

        ``optimizer`` is ``"sgd"`` (momentum ``momentum``, L2 ``weight_decay`` added to the
        gradient), ``"adam"`` (same L2) or ``"adamw"`` (decoupled ``weight_decay``), with
        ``betas`` and ``eps`` for the Adam variants; the Adam bias correction counts the model's
        :attr:`steps`. ``max_grad_norm > 0`` rescales each step's gradient (all layers together)
        to at most that L2 norm.

        Knowledge distillation (Hinton et al., 2015): ``teacher`` holds a teacher's logits, one
        row per row of ``X`` (gathered through ``order`` like ``y``); with temperature ``T`` and
        weight ``kd_lambda`` (λ) each sample's loss is ``(1 - λ) CE(y, softmax(z)) + λ T²
        KL(softmax(z_T / T) || softmax(z / T))``, computed in the engine. ``kd_lambda=0`` is the
        cross-entropy path bit for bit. The returned loss is then the distillation loss.

        Label smoothing (Szegedy et al., 2016): ``label_smoothing`` ε in [0, 1) trains against the
        target ``(1 - ε) onehot(y) + ε / C``, as distillation from a uniform teacher at ``T = 1``
        with ``λ = ε`` (the same engine path, without a teacher array): per sample ``(1 - ε)
        CE(y, softmax(z)) + ε KL(u || softmax(z))``, which is the smoothed cross-entropy less the
        constant ``ε log C``. Not combined with ``teacher``; 0 is the cross-entropy path bit for bit.

        ``weight_grad_factor`` (one factor > 0 per layer) multiplies each layer's block-weight
        gradient after the backward pass, before clipping, weight decay and momentum (biases are
        not scaled): ``[1/m, ...]`` is Motif-SET's equation ``dL/dW_sub = (1/m) A^T delta_sub``
        (:class:`motifcore.Trainer` ``block_grad="paper"``). ``None`` (the default) and factors
        of 1 leave the update bit for bit as without it.
        """
        batch_size = check_int(batch_size, "batch_size")
        if check:
            X = as_float_matrix(X, self.n_features, "X")
            y = as_labels(y, X.shape[0], self.n_classes, "y")
        n = X.shape[0]
        if order is None:
            order = np.random.default_rng(seed).permutation(n) if seed is not None else np.arange(n)
        order = check_order(order, n)
        n_batches = -(-order.shape[0] // batch_size)
        lr_arr = np.asarray(lr, dtype=np.float32)
        if lr_arr.ndim > 1 or (lr_arr.ndim == 1 and lr_arr.shape[0] != n_batches):
            raise ValueError(f"lr must be a scalar or hold one value per batch ({n_batches}), got shape {lr_arr.shape}")
        lrs = np.ascontiguousarray(np.broadcast_to(lr_arr, (n_batches,)))
        check_optim(float(lrs.min()) if lrs.size else 0.0, momentum, weight_decay, dropout)
        opt = optim_args(optimizer, betas, eps, max_grad_norm)
        kd = self._kd_args(teacher, n, temperature, kd_lambda, check, label_smoothing)
        gf = self._grad_factor_args(weight_grad_factor)
        try:
            loss = self._net.train_epoch(X, y, order, batch_size, lrs, float(momentum), float(weight_decay),
                                         float(dropout), **opt, **kd, **gf)
        except OverflowError as exc:      # the engine's divergence check
            raise diverged(exc) from None
        return _finite_loss(loss, self.steps)

    @_serialized
    def grad_step(self, X: np.ndarray, y: np.ndarray, rows: Any, k: Sequence[int], drop: Sequence[int],
                  topk: Sequence[str], seeds: Sequence[int], dropout: float = 0.0,
                  sample_factor: int = 10) -> Tuple[float, List[Tuple[np.ndarray, np.ndarray]]]:
        """Forward and backward of the batch ``X[rows]`` **without** an optimizer step; for each
        layer ``l`` with ``k[l] > 0`` the result of :meth:`MotifLayer.grad_topk` (``k[l]``,
        ``drop[l]``, ``topk[l]``, ``seeds[l]``), computed inside the backward pass right after
        that layer. Returns (mean loss, [(positions, scores) per layer]). ``X``/``y`` must be
        validated already (float32 C-contiguous, int64 labels), as :meth:`train_epoch` with
        ``check=False``."""
        n = len(self._layers)
        ks = [check_int(v, f"k[{i}]", 0) for i, v in enumerate(per_layer(list(k), n, "k"))]
        drops = [check_int(v, f"drop[{i}]", 0) for i, v in enumerate(per_layer(list(drop), n, "drop"))]
        for i, (d, layer) in enumerate(zip(drops, self._layers)):
            if d > layer.n_blocks:
                raise ValueError(f"drop[{i}]={d} exceeds the {layer.n_blocks} blocks of layer {i}")
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        check_optim(0.0, 0.0, 0.0, dropout)
        try:
            loss, res = self._net.grad_step(X, y, rows, ks, drops, list(topk),
                                            check_int(sample_factor, "sample_factor"),
                                            [check_seed(s) for s in seeds], float(dropout))
        except OverflowError as exc:      # a diverged model refuses to compute
            raise diverged(exc) from None
        return float(loss), list(res)

    @_serialized
    def evolve(self, zeta: Union[float, Sequence[float]], seed: int = 0, zero_init: bool = False,
               regrow: Optional[str] = None) -> List[int]:
        """SET evolution of every layer (scalar or per-layer zeta; 0 leaves a layer as it is);
        returns blocks replaced per layer. ``regrow``: see :meth:`MotifLayer.prune_regrow`.

        The backward scratch of the training workspace is freed first (the next training call
        allocates it again; :attr:`workspace_bytes`), so the step's own scratch does not come on
        top of it; the transposed index of an evolved layer is rebuilt by the next backward."""
        zetas = [check_zeta(z, f"zeta[{i}]") for i, z in enumerate(per_layer(zeta, len(self._layers), "zeta"))]
        seed = check_seed(seed)
        mode = check_regrow(regrow, zero_init)
        self._release_scratch()
        return [layer.prune_regrow(z, layer_seed(seed, i), regrow=mode)
                for i, (layer, z) in enumerate(zip(self._layers, zetas))]

    @_serialized
    def evolve_cht(self, zeta: Union[float, Sequence[float]], seed: int = 0, chain_removal: bool = True,
                   fill: str = "random", regrow: str = "zero", link: str = "ch3_l3", removal: str = "magnitude",
                   restore: bool = False) -> List[Dict[str, int]]:
        """CHT evolution (Cannistraci-Hebb training) of the network, in place: in every layer with
        ``zeta > 0`` remove the ``round(zeta*|P|)`` smallest-``|K|`` blocks (``removal="sign"``:
        as the CHT code does, the ``round(zeta*n)`` blocks nearest zero among the negative and
        among the positive weights separately, and every block at exactly zero); with
        ``chain_removal``, remove in cascade the blocks of neurons left without outgoing or
        incoming blocks; then regrow as many blocks as were removed at the highest CH3-L3 scores
        of the block graph (:func:`motifcore.analysis.dst.ch3_l3_scores`; ties broken by a seeded
        hash), and at random among the other empty positions if fewer have a positive score
        (``fill="random"``; ``"none"`` regrows only scored blocks, as the CHT code). New blocks take
        ``regrow`` (``"zero"``, the CHT default, ``"he"``, ``"pruned"`` or ``"normal"``) and zero optimizer
        state; with ``restore`` a block regrown at a position removed in this same step keeps its
        value and optimizer state instead (the CHT code's update of the weights). The native step
        never forms an ``n_out x n_in`` matrix; results do not depend on the thread count.
        ``link="random"`` regrows every block uniformly at random instead (random regrowth, the
        "RLR" baseline). Returns per layer ``{"removed", "cr_removed", "regrown_score",
        "regrown_fill", "restored"}`` (``restored``: regrown blocks that were removed in this step,
        counted whether or not ``restore`` keeps their values)."""
        zetas = [check_zeta(z, f"zeta[{i}]") for i, z in enumerate(per_layer(zeta, len(self._layers), "zeta"))]
        seed = check_seed(seed)
        if not isinstance(chain_removal, (bool, np.bool_)):
            raise TypeError(f"chain_removal must be a bool, got {chain_removal!r}")
        if not isinstance(restore, (bool, np.bool_)):
            raise TypeError(f"restore must be a bool, got {restore!r}")
        if fill not in ("random", "none"):
            raise ValueError(f"fill must be 'random' or 'none', got {fill!r}")
        if link not in ("ch3_l3", "random"):
            raise ValueError(f"link must be 'ch3_l3' or 'random', got {link!r}")
        if removal not in ("magnitude", "sign"):
            raise ValueError(f"removal must be 'magnitude' or 'sign', got {removal!r}")
        self._release_scratch()          # as evolve: the step's scratch does not stack on it
        stats = _core.cht_evolve([layer._core for layer in self._layers], zetas,
                                 [layer_seed(seed, i) for i in range(len(self._layers))], bool(chain_removal),
                                 fill == "random", check_regrow(regrow), self.num_threads, link == "ch3_l3",
                                 removal, bool(restore))
        keys = ("removed", "cr_removed", "regrown_score", "regrown_fill", "restored")
        return [dict(zip(keys, (int(v) for v in s))) for s in stats]

    def regroup(self, motif: Union[int, Sequence[Any]], budget: str = "density",
                keep_norm: bool = False) -> List[Dict[str, Any]]:
        """Turn the layers into coarser motifs in place, mid-training (a motif-size curriculum;
        :mod:`motifcore.nn.regroup` and docs/curriculum.md give the rules): ``motif`` as in the
        constructor (an int ``m``: ``(m, m)`` hidden layers, a ``(1, 1)`` output layer), every new
        size a multiple of the layer's present one. Each new block's weight is the mean of the
        effective weights it covers, its optimizer state is derived from theirs; ``budget="density"``
        keeps as many blocks as the layer's configured density gives at the new motif (the largest
        ``|weight|``), ``"covered"`` every block over an active old one; ``keep_norm=True`` then
        rescales each regrouped layer's weights to its former Frobenius norm. ``model.layers``
        returns new layer objects afterwards. Returns per layer ``{"from", "to", "blocks_before",
        "covered", "blocks", "scale"}``."""
        return regroup_model(self, motif, budget, keep_norm)

    # ---- memory ---------------------------------------------------------------------------
    @property
    def eval_memory(self) -> int:
        """Budget in bytes of the inference panels when ``batch_size="auto"`` (default
        :data:`DEFAULT_EVAL_MEMORY`, 256 MiB)."""
        return self._eval_memory

    @eval_memory.setter
    def eval_memory(self, value: int) -> None:
        self._eval_memory = check_int(value, "eval_memory")

    def inference_bytes(self, batch_size: int) -> int:
        """Bytes of the panels inference allocates for a chunk of ``batch_size`` samples:
        ``4 * ld * (2 W + S + U)`` with ``ld`` the padded panel stride of the chunk, ``W`` the widest
        of the input and every layer's output, ``S`` the most input motifs of a layer with
        ``m_in > 1`` and ``U`` the most output motifs of a layer with ``m_out > 1``."""
        return int(self._net.inference_bytes(check_int(batch_size, "batch_size")))

    def eval_chunk(self, memory: Optional[int] = None) -> int:
        """What ``batch_size="auto"`` uses: the largest chunk of at most :data:`MAX_EVAL_CHUNK`
        (256) samples whose inference panels (:meth:`inference_bytes`) fit ``memory`` bytes
        (default :attr:`eval_memory`); at least 1."""
        budget = self.eval_memory if memory is None else check_int(memory, "memory")
        return min(int(self._net.auto_chunk(budget)), MAX_EVAL_CHUNK)

    def _chunk(self, batch_size: Union[int, str]) -> int:
        chunk = check_chunk(batch_size, "batch_size")
        return self.eval_chunk() if chunk == "auto" else int(chunk)

    @property
    def workspace_bytes(self) -> int:
        """Bytes held by the training workspace (panels of the largest batch trained so far, and
        the hidden layers' transposed copies of their weights and gradients: docs/engine.md)."""
        return int(self._net.workspace_bytes)

    def _release_scratch(self) -> None:
        """Frees the backward scratch of the training workspace (evolve and evolve_cht call it
        before they change the patterns; the next training call allocates it again)."""
        self._net.release_scratch()

    @_serialized
    def release_workspace(self) -> None:
        """Free the training workspace (activation and gradient panels, the hidden layers'
        transposed copies); the next training call allocates it again. Weights, optimizer state
        and results are unchanged."""
        self._net.release_workspace()

    # ---- inference ------------------------------------------------------------------------
    def decision_function(self, X: Any, batch_size: Union[int, str] = "auto") -> np.ndarray:
        """Logits [n_samples, n_classes], computed in chunks of ``batch_size`` samples
        (``"auto"``: :meth:`eval_chunk`); the logits of a sample do not depend on the chunk."""
        Xa = as_float_matrix(X, self.n_features, "X")
        chunk = self._chunk(batch_size)
        try:
            with self._lock:
                z = self._net.logits(Xa, chunk)
        except OverflowError as exc:
            raise diverged(exc) from None
        if not np.isfinite(z).all():
            raise diverged(ValueError(f"the model's logits are NaN or infinite: the inputs (largest |x| "
                                       f"{float(np.abs(Xa).max()):.3g}) or the weights (training diverged?) "
                                       "overflow float32"))
        return z

    def predict_proba(self, X: Any, batch_size: Union[int, str] = "auto") -> np.ndarray:
        """Class probabilities (softmax of the logits), float32 [n_samples, n_classes]."""
        z = self.decision_function(X, batch_size)
        z = z - z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, X: Any, batch_size: Union[int, str] = "auto") -> np.ndarray:
        """Most likely class, int64 [n_samples]."""
        return self.decision_function(X, batch_size).argmax(axis=1).astype(np.int64)

    def evaluate(self, X: Any, y: Any, batch_size: Union[int, str] = "auto",
                 check: bool = True) -> Tuple[float, float]:
        """(mean cross-entropy, accuracy) on (X, y) without training, in chunks as
        :meth:`decision_function` (the result does not depend on the chunk)."""
        if check:
            X = as_float_matrix(X, self.n_features, "X")
            y = as_labels(y, X.shape[0], self.n_classes, "y")
        chunk = self._chunk(batch_size)
        try:
            with self._lock:
                loss, correct = self._net.evaluate(X, y, chunk)
        except OverflowError as exc:
            raise diverged(exc) from None
        if not np.isfinite(loss):
            raise diverged(ValueError(f"the model's loss is {loss}: the inputs or the weights (training "
                                       "diverged?) overflow float32"))
        return float(loss), correct / X.shape[0]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y)."""
        return self.evaluate(X, y)[1]

    # ---- state ----------------------------------------------------------------------------
    @_serialized
    def get_state(self) -> Dict[str, np.ndarray]:
        """Every array needed to restore the model and its optimizer exactly (flat dict)."""
        state: Dict[str, np.ndarray] = {
            "step": np.array(self._net.step, dtype=np.uint64),
            "dropout_seed": np.array(self._net.dropout_seed, dtype=np.uint64),
        }
        for i, layer in enumerate(self._layers):
            c = layer._core
            state[f"layer{i}.indptr"] = c.indptr
            state[f"layer{i}.indices"] = c.indices
            state[f"layer{i}.weights"] = c.weights
            state[f"layer{i}.bias"] = c.bias
            state[f"layer{i}.weight_velocity"] = c.weight_velocity
            state[f"layer{i}.bias_velocity"] = c.bias_velocity
            if c.weight_sq.size or c.bias_sq.size:   # Adam second moments, once Adam has run
                state[f"layer{i}.weight_sq"] = c.weight_sq
                state[f"layer{i}.bias_sq"] = c.bias_sq
            if c.centroids.size:                     # a codebook (trained quantization)
                state[f"layer{i}.codes"] = c.codes
                state[f"layer{i}.centroids"] = c.centroids
                state[f"layer{i}.centroid_velocity"] = c.centroid_velocity
                state[f"layer{i}.centroid_sq"] = c.centroid_sq
        return state

    @_serialized
    def set_state(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (pattern, weights, momentum, step counter).

        All or nothing: if any entry is missing or invalid, the model is left as it was.
        """
        backup = self.get_state()
        try:
            self._load_state(state)
        except BaseException:
            self._load_state(backup)
            raise

    def _load_state(self, state: Dict[str, Any]) -> None:
        try:
            for i, layer in enumerate(self._layers):
                floats = [state_floats(state[f"layer{i}.{k}"], f"layer{i}.{k}")
                          for k in ("weights", "bias", "weight_velocity", "bias_velocity")]
                floats += [state_floats(state.get(f"layer{i}.{k}", ()), f"layer{i}.{k}")
                           for k in ("weight_sq", "bias_sq")]
                layer._core.set_state(state_ints(state[f"layer{i}.indptr"], np.int64, f"layer{i}.indptr"),
                                      state_ints(state[f"layer{i}.indices"], np.int32, f"layer{i}.indices"),
                                      *floats)
                if f"layer{i}.centroids" in state:
                    layer._core.set_codebook(
                        state_ints(state[f"layer{i}.codes"], np.int32, f"layer{i}.codes"),
                        *[state_floats(state[f"layer{i}.{k}"], f"layer{i}.{k}")
                          for k in ("centroids", "centroid_velocity", "centroid_sq")])
            self._net.step = int(state_ints(state["step"], np.uint64, "step", scalar=True))
            self._net.dropout_seed = int(state_ints(state["dropout_seed"], np.uint64, "dropout_seed", scalar=True))
        except KeyError as e:
            raise ValueError(f"model state is missing the entry {e.args[0]!r}") from None

    # ---- export and import -------------------------------------------------------------------
    def to_scipy(self, format: str = "auto") -> List[Any]:
        """Per layer the SciPy matrices of :func:`motifcore.export.to_scipy`: ``weight`` (BSR of
        ``m_out x m_in`` blocks where no motif is residual, else CSR of the effective matrix;
        ``format="csr"`` always CSR), ``blocks`` (the ``[G_out, G_in]`` pattern with the shared
        weights), ``bias`` (per neuron), ``motif`` and ``activation``."""
        from ..export import to_scipy

        return to_scipy(self, format)

    def to_torch(self, dense: bool = False) -> Any:
        """A ``torch.nn.Sequential`` computing the logits (:func:`motifcore.export.to_torch`):
        compact :class:`~motifcore.export.pytorch.MotifLinear` layers (GroupSum, a sparse block
        matrix with one trainable weight per block, Expand) or, with ``dense=True``, ``nn.Linear``
        layers holding the expanded matrices. Needs torch. For layers whose forward and backward
        run this engine's kernels (trainable in torch at the engine's speed), use
        ``motifcore.torch.from_mlp(model)``; :meth:`from_torch` brings either back."""
        from ..export import to_torch

        return to_torch(self, dense=dense)

    @classmethod
    def from_torch(cls, module: Any, motif: Union[int, Sequence[Any], None] = None,
                   density: Union[None, float, Sequence[Optional[float]]] = None, bias: str = "neuron",
                   seed: int = 0, num_threads: Optional[int] = None) -> "MotifMLP":
        """A MotifMLP from a torch MLP: ``nn.Linear`` and ``MotifLinear`` layers in
        ``nn.Sequential`` containers, ReLU between layers and linear logits (the shape of what
        :meth:`to_torch` returns). What a MotifMLP cannot compute exactly is refused with the
        module's path (another activation such as ``Tanh``, two layers with no ReLU between them,
        a ``LayerNorm`` or any other module, a layer used twice, a custom container):
        :func:`motifcore.export.torch_layers` lists what is read.

        A ``MotifLinear`` (from :meth:`to_torch`, or the engine-backed one of
        ``motifcore.torch.from_mlp``) is copied exactly. An ``nn.Linear`` is made block-sparse with ``motif`` (default 1; as in the constructor, an int applies to the
        hidden layers and the output layer keeps 1) by magnitude pruning: ``density`` keeps that
        fraction of the blocks of largest mean ``|w|`` (``None``: every block holding a non-zero
        weight), each block weighted by the mean of its entries
        (:func:`motifcore.export.blocks_from_dense`). Optimizer state starts at zero. The reading
        is :func:`motifcore.export.pytorch.from_torch`.
        """
        from ..export.pytorch import from_torch

        return from_torch(cls, module, motif=motif, density=density, bias=bias, seed=seed, num_threads=num_threads)

    def __repr__(self) -> str:
        return f"MotifMLP(sizes={self.sizes}, motif={self.config['motif']}, blocks={self.n_blocks:,})"


def _finite_loss(loss: float, step: int) -> float:
    """The loss of a training call; DivergedError when it is NaN or infinite."""
    loss = float(loss)
    if not np.isfinite(loss):
        raise diverged(ValueError(f"training diverged at step {step}: the loss is {loss} (learning rate too "
                                   "large?)"))
    return loss
