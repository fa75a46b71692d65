"""Dynamic sparse training of the :class:`MotifLinear` layers of any torch model.

``SET``, ``RigL``, ``DSR`` and ``CHT`` act on every ``MotifLinear`` of a model (or the ``layers``
given), each with a ``.step()`` to call after ``optimizer.step()``. They run the same code as the
:class:`~motifcore.Trainer`: SET is :meth:`MotifMLP.evolve`, CHT :meth:`MotifMLP.evolve_cht`, RigL
and DSR the updaters of :mod:`motifcore.train.updaters`, called on a view of the model's engine
layers (:class:`_EngineNet`); only the bookkeeping of torch's side lives here:

* the parameters are pointed at the new block weights (same ``Parameter`` objects);
* the optimizer's per-parameter state follows the blocks: every state tensor of the weight's
  shape (momentum buffers, Adam moments, ...) is remapped by position, a surviving block keeps its
  values, a new block starts at 0, a dropped block's values are gone; scalar state (Adam's
  ``step``) is kept. The same is done to ``weight.grad``.

Counting: ``t`` is the number of ``.step()`` calls so far (optimizer steps); an update follows
step ``t`` when ``t % interval == 0`` (SET, CHT), when :meth:`RigL.is_update_step` /
:meth:`DSR.is_update_step` of the updater says so (``total_steps`` = ``T``). Every random draw of
the update after step ``t`` is seeded from ``(seed, t)``: ranks of a data-parallel run that hold
the same weights take the same decisions.

Under ``torch.distributed`` (``DistributedDataParallel`` averages the gradients, so every rank holds
the same weights), every rank takes the same decisions as one process on the global batch:

* SET, CHT and DSR decide from the weights and from ``(seed, t)`` only;
* RigL's grow scores are sums over the batch of products of the layer's input and output-gradient
  panels: each layer keeps its last input and output gradient, the ranks all-gather them (rank
  order: the global batch when each rank holds a contiguous slice of it; the gradients divided by
  the world size, as DDP averages), and every rank recomputes the panels of the gathered batch
  before the engine's top-k;
* DSR, and CHT with ``fill="none"`` (its default: only positively scored links regrow, so a
  layer may regrow fewer blocks than it removed), change the size of the weights, which a
  ``DistributedDataParallel`` wrapper's gradient buckets are built for: given the wrapper as
  ``model``, the DST object rebuilds its reducer
  after such an update (as ``DistributedDataParallel`` does when it is unpickled; communication
  hooks registered on the wrapper are not carried over).
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .._internal.validation import check_int, check_real, check_seed, check_zeta
from ..defaults import REGROW_MODES
from ..nn import MotifLayer, MotifMLP
from ..nn.mlp import layer_seed
from ..train import updaters as _updaters
from ..train.schedules import EvolutionSchedule, cosine_fraction
from .layer import MotifLinear

__all__ = ["CHT", "DSR", "RigL", "SET", "DynamicSparsity", "motif_layers", "remap_optimizer_state"]


def motif_layers(model: nn.Module) -> List[MotifLinear]:
    """The :class:`MotifLinear` layers of ``model`` in ``model.modules()`` order."""
    if isinstance(model, MotifLinear):
        return [model]
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m for m in model.modules() if isinstance(m, MotifLinear)]


def remap_optimizer_state(optimizers: Iterable[torch.optim.Optimizer], param: torch.Tensor, old: np.ndarray,
                          new: np.ndarray, fresh: Optional[np.ndarray] = None) -> None:
    """Move the per-block state of ``param`` from the block positions ``old`` to ``new`` (both
    increasing): every tensor of shape ``(len(old),)`` in ``optimizer.state[param]`` and
    ``param.grad`` become tensors of shape ``(len(new),)`` holding the old values at positions in
    both, zeros at new positions. ``fresh`` (positions in both) start at zero too: blocks removed
    and regrown at the same position in one update."""
    n_old, n_new = len(old), len(new)
    both = np.intersect1d(old, new, assume_unique=True)
    if fresh is not None and len(fresh):
        both = np.setdiff1d(both, fresh, assume_unique=True)
    src = torch.from_numpy(np.searchsorted(old, both))
    dst = torch.from_numpy(np.searchsorted(new, both))

    def remap(t: torch.Tensor) -> torch.Tensor:
        out = t.new_zeros((n_new,))
        out[dst] = t.detach()[src]
        return out

    for opt in optimizers:
        state = opt.state.get(param)
        if not state:
            continue
        for key, val in list(state.items()):
            if isinstance(val, torch.Tensor) and val.dim() == 1 and val.shape[0] == n_old:
                state[key] = remap(val)
    if param.grad is not None and param.grad.dim() == 1 and param.grad.shape[0] == n_old:
        param.grad = remap(param.grad)


def _ddp_class() -> Any:
    return torch.nn.parallel.DistributedDataParallel


def _world_size(group: Any = None) -> int:
    """The number of processes of ``group`` (default: the default group); 1 without
    ``torch.distributed``."""
    d = torch.distributed
    if not (d.is_available() and d.is_initialized()):
        return 1
    return int(d.get_world_size(group))


def _gather_rows(t: torch.Tensor, group: Any, world: int) -> torch.Tensor:
    """The ``[rows, n]`` tensors of every rank of ``group`` stacked in rank order (ranks may hold
    different numbers of rows)."""
    d = torch.distributed
    t = t.detach().contiguous()
    counts = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    d.all_gather(counts, torch.tensor([t.shape[0]], dtype=torch.int64), group=group)
    rows = [int(c.item()) for c in counts]
    padded = t.new_zeros((max(rows), t.shape[1]))
    padded[: t.shape[0]] = t
    parts = [torch.empty_like(padded) for _ in range(world)]
    d.all_gather(parts, padded, group=group)
    return torch.cat([p[:r] for p, r in zip(parts, rows)])


def _rebuild_ddp(ddp: Any) -> None:
    """Rebuild the gradient buckets of a ``DistributedDataParallel`` wrapper for its parameters'
    current sizes (the steps of ``DistributedDataParallel.__setstate__``). The old reducer and its
    logger go first: the reducer holds each parameter's gradient accumulator, whose recorded shape
    is the old one; once it is gone, the new reducer gets accumulators of the new shapes."""
    try:
        ddp.reducer = ddp.logger = None
        params, sparse = ddp._build_params_for_reducer()
        names = ddp._build_debug_param_to_name_mapping(params)
        ddp._ddp_init_helper(params, sparse, names, ddp.static_graph)
        if ddp.static_graph:
            ddp.reducer._set_static_graph()
            ddp.logger._set_static_graph()
    except AttributeError as exc:        # another torch version's internals
        raise RuntimeError(f"cannot rebuild the DistributedDataParallel buckets after the parameters changed size "
                           f"({exc}); wrap the model again after each update that changes the block counts") from None


class _EngineNet:
    """What the Trainer's evolution code reads of a :class:`MotifMLP`, over the engine layers of
    MotifLinear modules: ``layers`` / ``_layers`` (:class:`MotifLayer` views), ``num_threads``,
    ``_lock``, ``_release_scratch`` (nothing to free: a MotifLinear keeps no network scratch), and
    ``grad_step`` answering RigL's question from the last backward pass (of the global batch
    under ``torch.distributed``, see the module docs)."""

    def __init__(self, mods: Sequence[MotifLinear], group: Any = None) -> None:
        self.mods = list(mods)
        self.group = group
        self._lock = threading.RLock()

    @property
    def _layers(self) -> List[MotifLayer]:
        return [m._layer for m in self.mods]

    layers = _layers

    @property
    def num_threads(self) -> int:
        return max(m.num_threads for m in self.mods)

    def _release_scratch(self) -> None:
        """MotifMLP.evolve frees a network's backward scratch first; MotifLinear layers share none."""

    def grad_step(self, X: Any, y: Any, rows: Any, k: Sequence[int], drop: Sequence[int], topk: Sequence[str],
                  seeds: Sequence[int], dropout: float = 0.0, sample_factor: int = 10) -> Any:
        """RigL's grow candidates of every layer with ``k > 0`` from the panels the engine kept of
        the last forward and backward of that layer (the batch just trained); no loss."""
        res: List[Any] = []
        world = _world_size(self.group)
        for i, (m, ki, di) in enumerate(zip(self.mods, k, drop)):
            if ki <= 0:
                res.append(None)
                continue
            if world > 1:
                self._global_panels(m, world)
            elif m._last_forward < 0:
                raise RuntimeError("RigL needs the block gradients of the last backward pass: call rigl.step() "
                                   "right after loss.backward() and optimizer.step(), before another forward")
            try:
                res.append(m._layer.grad_topk(ki, di, topk[i], sample_factor=sample_factor, seed=seeds[i]))
            except ValueError as exc:
                raise RuntimeError(f"RigL needs the block gradients of the last backward pass of every layer "
                                   f"(call rigl.step() right after loss.backward() and optimizer.step(), before "
                                   f"another forward): {exc}") from None
        return float("nan"), res

    def _global_panels(self, m: MotifLinear, world: int) -> None:
        """Make the engine's panels of ``m`` those of the global batch: gather every rank's last
        input and output gradient of the layer and run the layer's forward and backward on them
        (every rank, the same rows in the same order)."""
        if m._io is None:
            raise RuntimeError("RigL under torch.distributed needs the input and output gradient of every layer's last "
                               "backward pass: call rigl.step() right after loss.backward() and optimizer.step(), "
                               "before another forward")
        x, g, w, b = m._io
        X = _gather_rows(x, self.group, world)
        G = _gather_rows(g, self.group, world) / world       # DDP averages the ranks' gradients
        # the panels of the pass that made g: with the weights and biases before the optimizer step
        # (a fused ReLU's mask depends on them), written through the parameters' views and restored
        views = [(m.weight, w)] + ([(m.bias, b)] if m.bias is not None else [])
        now = [p.detach().clone() for p, _ in views]
        try:
            with torch.no_grad():
                for p, old in views:
                    p.copy_(torch.from_numpy(old))
            m._core.forward(X.numpy(), m.num_threads)
            m._core.backward(G.numpy(), m.num_threads, False)
        finally:
            with torch.no_grad():
                for (p, _), v in zip(views, now):
                    p.copy_(v)
        m._last_forward = -1                                 # the module's forwards are not the engine's last
        m._layer._last_batch = X.shape[0]


class DynamicSparsity:
    """Base of the DST objects: finds the layers, counts steps, applies a pattern change to the
    engine and to torch's side (parameters, optimizer state, gradients)."""

    def __init__(self, model: nn.Module, optimizer: Union[None, torch.optim.Optimizer, Sequence[torch.optim.Optimizer]],
                 *, seed: int = 0, layers: Optional[Sequence[MotifLinear]] = None) -> None:
        mods = motif_layers(model) if layers is None else list(layers)
        if not mods:
            raise ValueError("the model has no MotifLinear layer to evolve")
        if not all(isinstance(m, MotifLinear) for m in mods):
            raise TypeError("layers must be MotifLinear modules")
        if optimizer is None:
            opts: List[torch.optim.Optimizer] = []
        elif isinstance(optimizer, torch.optim.Optimizer):
            opts = [optimizer]
        else:
            opts = list(optimizer)
            if not all(isinstance(o, torch.optim.Optimizer) for o in opts):
                raise TypeError("optimizer must be a torch.optim.Optimizer, a sequence of them, or None")
        self.model, self.layers, self.optimizers = model, mods, opts
        self.seed = check_seed(seed)
        self.t = 0
        self.history: List[Dict[str, Any]] = []
        ddp = _ddp_class()
        self._ddp = model if isinstance(model, ddp) else None
        self._net = _EngineNet(mods, None if self._ddp is None else self._ddp.process_group)

    def is_update_step(self, t: int) -> bool:
        raise NotImplementedError

    def _update(self, t: int) -> Dict[str, Any]:
        raise NotImplementedError

    def step(self) -> Optional[Dict[str, Any]]:
        """Count one optimizer step; run the update if one follows it. Returns the update's record
        (``t``, ``pruned``/``regrown`` per layer, ...) or None."""
        self.t += 1
        if not self.is_update_step(self.t):
            return None
        return self.update()

    #: whether an update may regrow a block at a position it removed in the same update without
    #: keeping its weight (CHT with ``restore=False``): the position is then in the pattern before
    #: and after, and its optimizer state must start at 0 as the engine's does
    _regrows_in_place = False

    def update(self) -> Dict[str, Any]:
        """Run the update of step :attr:`t` now, whatever the schedule says."""
        t = self.t
        changes = []
        before = [m.weight.detach().numpy().copy() for m in self.layers] if self._regrows_in_place else None
        with _patterns(self.layers) as infos:
            rec = self._update(t)
            changes = infos
        for k, (m, info) in enumerate(zip(self.layers, changes)):
            fresh = None if before is None else _rewritten(info["old"], before[k], info["new"],
                                                           m.weight.detach().numpy())
            remap_optimizer_state(self.optimizers, m.weight, info["old"], info["new"], fresh)
        if self._ddp is not None and any(len(i["old"]) != len(i["new"]) for i in changes):
            _rebuild_ddp(self._ddp)
        rec = {"t": t, **rec}
        self.history.append(rec)
        return rec

    def state_dict(self) -> Dict[str, Any]:
        """What a resumed run needs to take the same decisions: the step count, the seed and the
        state of the updater (DSR's threshold, RigL's update count). Save it with the model's
        and the optimizer's state dicts."""
        state: Dict[str, Any] = {"t": self.t, "seed": self.seed}
        updater = getattr(self, "updater", None)
        if updater is not None:
            state["updater"] = updater.get_state()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.t = int(state["t"])
        self.seed = int(state["seed"])
        updater = getattr(self, "updater", None)
        if updater is not None:
            updater.set_state(state.get("updater", {}))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={len(self.layers)}, t={self.t})"


class _patterns:
    """Enters :meth:`MotifLinear._pattern_change` of several layers (one context each), taking the
    layers' locks in the one order every multi-layer caller uses (their handles: MotifSequential
    takes them so too), so two such callers never wait on each other; the infos come in ``mods``'
    order."""

    def __init__(self, mods: Sequence[MotifLinear]) -> None:
        order = sorted(range(len(mods)), key=lambda i: mods[i]._handle)
        self.ctxs = [mods[i]._pattern_change() for i in order]
        self.order = order

    def __enter__(self) -> List[Dict[str, np.ndarray]]:
        entered: List[Dict[str, np.ndarray]] = []
        try:
            for c in self.ctxs:
                entered.append(c.__enter__())
        except BaseException:
            for c in reversed(self.ctxs[: len(entered)]):
                c.__exit__(None, None, None)
            raise
        infos: List[Dict[str, np.ndarray]] = [{} for _ in entered]
        for pos, info in zip(self.order, entered):
            infos[pos] = info
        self.infos = infos
        return infos

    def __exit__(self, *exc: Any) -> None:
        for c in reversed(self.ctxs):
            c.__exit__(*exc)


def _step_seed(seed: int, t: int) -> int:
    return layer_seed(seed, t)


def _rewritten(old: np.ndarray, old_w: np.ndarray, new: np.ndarray, new_w: np.ndarray) -> np.ndarray:
    """Positions active before and after an update whose weight bits changed. An update never
    writes a block it keeps, so these were removed and regrown in place (a regrown weight equal
    to the removed one bit for bit, e.g. 0 regrown at 0, counts as kept)."""
    both = np.intersect1d(old, new, assume_unique=True)
    a = np.ascontiguousarray(old_w[np.searchsorted(old, both)], dtype=np.float32).view(np.int32)
    b = np.ascontiguousarray(new_w[np.searchsorted(new, both)], dtype=np.float32).view(np.int32)
    return both[a != b]


class SET(DynamicSparsity):
    """SET / Motif-SET (Mocanu et al., 2018): after every ``interval`` optimizer steps, each layer
    drops the ``round(zeta * |P|)`` blocks of smallest ``|weight|`` and regrows as many uniformly
    at random among the positions that were inactive, with ``regrow`` values (``"he"``, SET's
    choice; ``"zero"``; ``"pruned"``; ``"normal"``, Motif-SET's Algorithm 3 --
    :data:`motifcore.defaults.REGROW_MODES`) -- :meth:`MotifMLP.evolve`, the step of
    ``Trainer(evolution="set")`` and ``"set-epoch"``.

    ``zeta`` is a float in ``[0, 1)`` or a callable ``f(t) -> zeta`` of the step count;
    ``stop`` (a step count, optional) ends the evolution. A fixed ``zeta`` with ``interval`` = the
    steps of an epoch and ``stop`` = the run's steps is SET's own schedule (``"set-epoch"``);
    :meth:`cosine` gives the annealed fraction of ``Trainer(evolution="set")``.
    """

    def __init__(self, model: nn.Module, optimizer: Any = None, zeta: Union[float, Callable[[int], float]] = 0.3,
                 interval: int = 100, *, regrow: str = "he", seed: int = 0, stop: Optional[int] = None,
                 layers: Optional[Sequence[MotifLinear]] = None) -> None:
        super().__init__(model, optimizer, seed=seed, layers=layers)
        self.zeta = zeta if callable(zeta) else check_zeta(zeta)
        self.interval = check_int(interval, "interval")
        if regrow not in REGROW_MODES:
            raise ValueError(f"regrow must be one of {', '.join(map(repr, REGROW_MODES))}, got {regrow!r}")
        self.regrow = regrow
        self.stop = None if stop is None else check_int(stop, "stop", 0)

    @classmethod
    def cosine(cls, model: nn.Module, optimizer: Any = None, *, total_steps: int, zeta: float = 0.3,
               interval: int = 100, stop: float = 0.75, regrow: str = "he", seed: int = 0,
               layers: Optional[Sequence[MotifLinear]] = None) -> "SET":
        """SET with the annealed fraction of ``Trainer(evolution="set")`` (Evci et al., 2020,
        anneal every dynamic sparse method's this way): after step ``t`` with ``t % interval ==
        0`` and ``t < stop * total_steps``, ``zeta(t) = zeta / 2 * (1 + cos(pi * t / (stop *
        total_steps)))`` (:func:`motifcore.train.schedules.cosine_fraction`, as RigL's). The
        Trainer evolves between epochs: on a set of 100 or more steps per epoch once per epoch, at
        the epoch's last step, which ``interval`` = the steps of an epoch reproduces here."""
        z0 = check_zeta(zeta)
        total = check_int(total_steps, "total_steps")
        frac = check_real(stop, "stop", 0.0, 1.0, lo_open=True)
        t_end = frac * total
        return cls(model, optimizer, lambda t: cosine_fraction(z0, t, t_end), interval, regrow=regrow, seed=seed,
                   stop=int(math.ceil(t_end)), layers=layers)

    def zeta_at(self, t: int) -> float:
        return check_zeta(self.zeta(t)) if callable(self.zeta) else float(self.zeta)

    def is_update_step(self, t: int) -> bool:
        return t % self.interval == 0 and (self.stop is None or t < self.stop) and self.zeta_at(t) > 0

    def _update(self, t: int) -> Dict[str, Any]:
        z = self.zeta_at(t)
        n = MotifMLP.evolve(self._net, z, seed=_step_seed(self.seed, t), regrow=self.regrow)  # type: ignore[arg-type]
        return {"zeta": z, "pruned": n, "regrown": n}


class CHT(SET):
    """Cannistraci-Hebb training (Zhang et al., ICLR 2024): as :class:`SET`, but the regrown blocks
    go to the highest CH3-L3 link-prediction scores of the block graph, after chain removal --
    :meth:`MotifMLP.evolve_cht`. The layers must form a chain (layer ``i``'s output feeds layer
    ``i + 1``, in ``model.modules()`` order or as ``layers``).

    Its defaults are the step of ``Trainer(evolution="cht")``, the CHT code's: removal by sign
    (the blocks nearest zero among the negative and among the positive weights), only positively
    scored links regrown (``fill="none"``), and a link removed and regrown in the same step keeps
    its weight and optimizer state (``restore=True``). ``removal="magnitude"``, ``fill="random"``,
    ``restore=False`` give :meth:`MotifMLP.evolve_cht`'s other variants; with ``restore=False`` a
    block regrown where it was removed starts with zero optimizer state, as in the engine. With
    ``fill="none"`` a layer may regrow fewer blocks than it removed, so its ``weight`` may shrink:
    under ``torch.distributed`` pass the ``DistributedDataParallel`` wrapper as ``model``."""

    def __init__(self, model: nn.Module, optimizer: Any = None, zeta: Union[float, Callable[[int], float]] = 0.3,
                 interval: int = 100, *, chain_removal: bool = True, fill: str = "none", regrow: str = "zero",
                 link: str = "ch3_l3", removal: str = "sign", restore: bool = True, seed: int = 0,
                 stop: Optional[int] = None, layers: Optional[Sequence[MotifLinear]] = None) -> None:
        super().__init__(model, optimizer, zeta, interval, regrow=regrow, seed=seed, stop=stop, layers=layers)
        for a, b in zip(self.layers, self.layers[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"CHT needs a chain of layers: a layer with {a.out_features} outputs is followed by "
                                 f"one with {b.in_features} inputs (pass layers=[...] in the order of the data flow)")
        # the Trainer's schedule checks the same arguments (one definition of what is valid)
        EvolutionSchedule.cht(1, chain_removal=chain_removal, fill=fill, link=link, removal=removal, restore=restore)
        self.chain_removal, self.fill, self.link = chain_removal, fill, link
        self.removal, self.restore = removal, restore
        self._regrows_in_place = not restore
        if fill == "none" and self._ddp is None and _world_size() > 1:
            warnings.warn("CHT with fill='none' may regrow fewer blocks than it removes, which changes the size of "
                          "the weights: pass the DistributedDataParallel wrapper as model so that its gradient "
                          "buckets are rebuilt after such an update", RuntimeWarning, stacklevel=2)

    def _update(self, t: int) -> Dict[str, Any]:
        z = self.zeta_at(t)
        stats = MotifMLP.evolve_cht(self._net, z, seed=_step_seed(self.seed, t),  # type: ignore[arg-type]
                                    chain_removal=self.chain_removal, fill=self.fill, regrow=self.regrow,
                                    link=self.link, removal=self.removal, restore=self.restore)
        return {"zeta": z, "pruned": [s["removed"] + s["cr_removed"] for s in stats],
                "regrown": [s["regrown_score"] + s["regrown_fill"] for s in stats], "stats": stats}


class _StepUpdater(DynamicSparsity):
    """An object over one of the Trainer's step-level mask updaters (``self.updater``,
    :mod:`motifcore.train.updaters`) on a run of ``self.total_steps`` steps."""

    updater: Any
    total_steps: int

    def is_update_step(self, t: int) -> bool:
        return self.updater.is_update_step(t, self.total_steps)

    def _update(self, t: int) -> Dict[str, Any]:
        rec = self.updater.update(self._net, t, None, None, None,  # type: ignore[arg-type]
                                  layers=set(range(len(self.layers))), total_steps=self.total_steps, seed=self.seed,
                                  dropout=0.0)
        rec.pop("loss", None)
        return rec


class RigL(_StepUpdater):
    """RigL / Motif-RigL (Evci et al., 2020) -- :class:`motifcore.train.updaters.RigL`: after step
    ``t`` with ``t % interval == 0`` and ``t < stop * total_steps``, each layer drops the
    ``k = floor(f(t) |P|)`` blocks of smallest ``|weight|`` (``f`` the cosine-decayed ``alpha``)
    and grows the ``k`` positions of largest block gradient ``|dL/dK|`` among the others, at 0 with
    zero optimizer state. The block gradients of inactive positions come from the engine's panels
    of the last backward pass (``grad_topk``): call :meth:`step` right after ``optimizer.step()``,
    before another forward. Under ``torch.distributed`` the scores are those of the global batch
    (the ranks all-gather the layers' inputs and output gradients of that pass, see the module
    docs). Other arguments as the updater."""

    def __init__(self, model: nn.Module, optimizer: Any = None, *, total_steps: int, alpha: float = 0.3,
                 interval: int = 100, stop: float = 0.75, topk: str = "auto", sample_factor: int = 10,
                 auto_steps: float = 5.0, seed: int = 0, layers: Optional[Sequence[MotifLinear]] = None) -> None:
        super().__init__(model, optimizer, seed=seed, layers=layers)
        self.updater = _updaters.RigL(alpha=alpha, interval=interval, stop=stop, topk=topk,
                                      sample_factor=sample_factor, auto_steps=auto_steps, update_at_step0=False)
        self.total_steps = check_int(total_steps, "total_steps")
        self._record_inputs()

    def _record_inputs(self) -> None:
        # under torch.distributed, the backward pass before an update keeps each layer's input and
        # output gradient (references) and its weights and biases (copies) for the all-gather of
        # the grow scores; set before the forward of that step
        keep = _world_size(self._net.group) > 1 and self.is_update_step(self.t + 1)
        for m in self.layers:
            m._keep_io = keep
            if not keep:
                m._io = None

    def step(self) -> Optional[Dict[str, Any]]:
        rec = super().step()
        self._record_inputs()
        return rec

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._record_inputs()


class DSR(_StepUpdater):
    """Dynamic Sparse Reparameterization (Mostafa & Wang, 2019) --
    :class:`motifcore.train.updaters.DSR`: after step ``t`` on its schedule, every layer removes
    its blocks with ``|weight| < H``, the removed blocks are handed back to the layers in
    proportion to what each kept and grown at random (at 0), and ``H`` adapts. The block count of
    a layer changes, so its ``weight`` changes shape (optimizers follow, see the module docs; under
    ``torch.distributed``, pass the ``DistributedDataParallel`` wrapper as ``model`` so that its
    gradient buckets are rebuilt)."""

    def __init__(self, model: nn.Module, optimizer: Any = None, *, total_steps: int, threshold: float = 1e-3,
                 n_prune: Optional[int] = None, prune_fraction: float = 0.12, delta: float = 0.1,
                 periods: Sequence[int] = (100, 200, 400, 800), starts: Sequence[float] = (0.0, 0.125, 0.4, 0.7),
                 stop: float = 0.95, seed: int = 0, layers: Optional[Sequence[MotifLinear]] = None) -> None:
        super().__init__(model, optimizer, seed=seed, layers=layers)
        if self._ddp is None and _world_size() > 1:
            warnings.warn("DSR changes the size of the weights: pass the DistributedDataParallel wrapper as model "
                          "so that its gradient buckets are rebuilt after such an update", RuntimeWarning,
                          stacklevel=2)
        self.updater = _updaters.DSR(threshold=threshold, n_prune=n_prune, prune_fraction=prune_fraction, delta=delta,
                                     periods=periods, starts=starts, stop=stop)
        self.total_steps = check_int(total_steps, "total_steps")

    def _update(self, t: int) -> Dict[str, Any]:
        rec = super()._update(t)
        rec["threshold"] = self.updater.threshold
        return rec
