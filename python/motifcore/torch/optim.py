"""Torch optimizers whose update of every MotifLinear is made inside the layer's backward.

``train_step`` makes the optimizer update of each sparse layer inside that layer's backward, in the
order the fused kernel reads the weights (docs/engine.md, "The update inside the backward, in
transposed order"); a torch optimizer cannot, because it runs after the whole backward, on
gradients in the order of ``weight``. :class:`SGDInBackward`, :class:`AdamInBackward` and
:class:`AdamWInBackward` hand each :class:`MotifLinear` they hold to the engine instead: the
layer's backward makes the same update there, on the engine's own gradient and optimizer state, and
the parameter gets no ``.grad``. Every other parameter (an ``nn.Linear``, a norm, a MotifLinear
without a bias) is updated by :meth:`step`, by the torch optimizer the class extends.

The updates are torch's (``torch.optim.SGD`` with ``dampening=0`` and ``nesterov=False``;
``torch.optim.Adam`` / ``AdamW`` without ``amsgrad``). What follows from making them inside the
backward:

* one backward per step: a second backward through a layer before :meth:`step` (gradient
  accumulation, a layer used twice in one graph) raises, as its first one has already updated it;
* nothing between ``backward()`` and ``step()`` can see or change those gradients: no gradient
  clipping, no gradient hooks, no loss scaling (``GradScaler``), no ``torch.distributed`` reduction
  of them, no loss term on the weights themselves (a regularizer): use the torch optimizer for
  these (``step()`` or the backward raises where it can tell);
* a layer whose ``weight`` and ``bias`` are not both in one parameter group is left to the torch
  optimizer, as is one without a bias;
* writes of ``weight`` through torch between steps are seen (its version counter); a write that
  bypasses that counter (``weight.data``, a NumPy view) is undone by the next update unless
  :meth:`MotifLinear.weights_written` is called after it;
* another optimizer takes a layer over only after :meth:`release` (or once this one is gone);
* the settings are read from the parameter group when the backward runs, so an LR scheduler's
  ``step()`` after ``optimizer.step()`` applies from the next step on, as with the torch optimizer;
* ``state_dict()`` holds every parameter's state under torch's names (``"momentum_buffer"``;
  ``"step"``, ``"exp_avg"``, ``"exp_avg_sq"``), so state dicts move between a class and the torch
  optimizer it extends;
* the DST objects (``SET`` etc.) need no optimizer: the engine moves the optimizer state with the
  blocks (regrown blocks start at zero);
* a compiled model (``torch.compile``) runs its backward as a graph, which makes no update: its
  MotifLinear layers get ``.grad`` and :meth:`step` makes their update from it, on the engine's
  state (the same results, without the speed-up).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import numpy as np
import torch

from .layer import MotifLinear, owner_of

__all__ = ["AdamInBackward", "AdamWInBackward", "SGDInBackward"]

_EMPTY = np.zeros(0, np.float32)


def _array(t: Any) -> np.ndarray:
    """A state tensor (or None) as a contiguous float32 array (empty for None)."""
    if t is None:
        return _EMPTY
    return np.ascontiguousarray(torch.as_tensor(t).detach().cpu().numpy(), dtype=np.float32)


class _InBackward:
    """What the three optimizers share: which layers they hold, the update a layer's backward
    asks for, :meth:`step`, and the state dicts. A class combines it with a torch optimizer and
    defines ``_check_group``, ``_update`` (the engine's settings for a step), ``_export`` and
    ``_import`` (a layer's engine state as torch's state entries and back)."""

    param_groups: List[Dict[str, Any]]
    state: Dict[Any, Dict[str, Any]]
    # so that a GradScaler calls step() with its scale set, which step() refuses (the updates inside
    # the backward were made with scaled gradients)
    _step_supports_amp_scaling = True

    def _setup(self) -> None:
        # the layers this optimizer updates, by id: (weak reference, group index); and how many
        # updates each has had (Adam's step count; torch keeps it per parameter)
        self._layers: Dict[int, Tuple["weakref.ref[MotifLinear]", int]] = {}
        self._steps: Dict[int, int] = {}

    # ---- which layers ------------------------------------------------------------------------
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        super().add_param_group(param_group)  # type: ignore[misc]
        index = len(self.param_groups) - 1
        group = self.param_groups[index]
        try:
            claimed = self._claimable(group)
        except ValueError:
            self.param_groups.pop()          # refused: the group is not added
            raise
        for mod in claimed:
            self._claim(mod, index)

    def _claimable(self, group: Dict[str, Any], strict: bool = True) -> List[MotifLinear]:
        """The layers of ``group`` this optimizer takes (ValueError if it cannot take them; a layer
        another live optimizer holds is skipped instead when not ``strict``)."""
        held = {id(p) for p in group["params"]}
        claimed: List[MotifLinear] = []
        for p in group["params"]:
            mod = owner_of(p)
            if mod is None or mod.bias is None or id(mod) in self._layers or any(m is mod for m in claimed):
                continue         # not a MotifLinear's, or one without a bias (the torch optimizer steps it)
            if id(mod.weight) not in held or id(mod.bias) not in held:
                continue         # weight and bias not together in this group: the torch optimizer steps them
            other = mod._updater[0]() if mod._updater is not None else None
            if other is not None and other is not self:
                if not strict:
                    continue
                raise ValueError("this MotifLinear is already updated inside its backward by another optimizer; a "
                                 "layer can have one (call release() on the other one first)")
            claimed.append(mod)
        if claimed:
            self._check_group(group)
        return claimed

    def _claim(self, mod: MotifLinear, index: int) -> None:
        """Update ``mod`` inside its backward from now on, from a fresh state (as a new torch
        optimizer starts; load_state_dict and unpickling then set theirs)."""
        self._forget(id(mod))
        with mod._lock:
            mod._core.set_moments(_EMPTY, _EMPTY, _EMPTY, _EMPTY)
        self._layers[id(mod)] = (weakref.ref(mod), index)
        self._steps[id(mod)] = 0
        mod._updater = (weakref.ref(self), index)
        mod._updated = False

    def _forget(self, key: int) -> None:
        """Drop what this optimizer keeps of the layer ``key`` (an id)."""
        self._layers.pop(key, None)
        self._steps.pop(key, None)

    def release(self) -> None:
        """Stop updating the layers inside their backward: from now on they get ``.grad``, and this
        optimizer's ``step()`` updates them as the torch optimizer it extends does, from their
        state (moved to torch's state), unless another optimizer takes them over."""
        self.state.update(self._torch_state())
        for mod, _ in self._held():
            mod._updater = None
            mod._updated = False
            self._forget(id(mod))

    def _check_group(self, group: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _refuse(self, key: str, want: str, got: Any) -> None:
        raise ValueError(f"{type(self).__name__} makes the update of a MotifLinear in the engine, which needs {key} "
                         f"{want}; got {got!r} (use the torch optimizer for this setting)")

    def _held(self) -> List[Tuple[MotifLinear, int]]:
        """The live layers this optimizer updates inside their backward, with their group index."""
        out = []
        for key, (ref, index) in list(self._layers.items()):
            mod = ref()
            if mod is None or mod._updater is None or mod._updater[0]() is not self:
                self._forget(key)
            else:
                out.append((mod, index))
        return out

    # ---- the update inside a layer's backward ----------------------------------------------------
    def _backward_update(self, mod: MotifLinear, need_w: bool, need_b: bool) -> Optional[Dict[str, Any]]:
        """Called by ``mod``'s backward: the update to make there (None: the weight and bias need no
        gradient, no update)."""
        if not need_w and not need_b:
            return None
        name = type(self).__name__
        if need_w != need_b:
            raise RuntimeError(f"{name} updates a MotifLinear's weight and bias together: both must require a "
                               "gradient, or neither")
        if mod._updated:
            raise RuntimeError(f"a second backward through this MotifLinear before optimizer.step(): {name} already "
                               "updated it inside the first one (gradient accumulation and a layer used twice in one "
                               "graph need the torch optimizer; to step the layer with another optimizer, call "
                               f"release() on the {name} first)")
        if mod._keep_io or (torch.distributed.is_available() and torch.distributed.is_initialized()
                            and torch.distributed.get_world_size() > 1):
            raise RuntimeError(f"{name} cannot update a layer inside its backward under torch.distributed (the "
                               "gradients must be reduced across ranks first): use the torch optimizer")
        group = self.param_groups[self._layers[id(mod)][1]]
        self._check_group(group)
        return self._update(mod, group, self._steps[id(mod)] + 1)

    def _update(self, mod: MotifLinear, group: Dict[str, Any], t: int) -> Dict[str, Any]:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """Update every other parameter (the torch optimizer's ``step``) and start the next step of
        the MotifLinear layers, which their backward already updated."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        name = type(self).__name__
        if getattr(self, "grad_scale", None) is not None:
            raise RuntimeError(f"{name} under a GradScaler: the updates inside the backward were made with the scaled "
                               "gradients; use the torch optimizer with loss scaling")
        held = self._held()
        pending = []         # the held layers whose backward made no update: updated here from .grad
        for mod, index in held:
            w, b = mod._parameters["weight"], mod._parameters["bias"]
            if w.grad is None and b.grad is None:
                continue
            if mod._updated:
                if (w.grad is None or not w.grad.any()) and (b.grad is None or not b.grad.any()):
                    continue     # zeros left by zero_grad(set_to_none=False): nothing beside the update
                raise RuntimeError(f"a MotifLinear held by {name} has a .grad beside the update its backward "
                                   "made (a loss term on the weights themselves such as a regularizer, or "
                                   "gradients set by hand); use the torch optimizer")
            if w.grad is None or b.grad is None:
                raise RuntimeError(f"{name} updates a MotifLinear's weight and bias together: both need a "
                                   "gradient, or neither")
            self._check_group(self.param_groups[index])
            pending.append((mod, index))
        hidden = []          # those layers' gradients, out of the torch optimizer's sight meanwhile
        try:
            for mod, index in pending:
                self._update_from_grads(mod, index)
                w, b = mod._parameters["weight"], mod._parameters["bias"]
                hidden += [(w, w.grad), (b, b.grad)]
                w.grad = b.grad = None
            if 2 * len(held) < sum(len(g["params"]) for g in self.param_groups):
                self._torch_step()           # (parameters other than the held layers' to update)
        finally:
            for p, g in hidden:
                p.grad = g
            for mod, _ in held:              # every update made counts, whatever happened after it
                if mod._updated:
                    self._steps[id(mod)] += 1
                    mod._updated = False
        return loss

    def _torch_step(self) -> None:
        """The torch optimizer's own ``step`` without the hooks torch wraps around it (this
        optimizer's ``step`` already ran them once)."""
        for klass in type(self).__mro__:
            if issubclass(klass, _InBackward) or "step" not in klass.__dict__:
                continue
            fn = klass.__dict__["step"]
            if getattr(fn, "hooked", False):
                fn = fn.__wrapped__
            fn(self)
            return

    def _update_from_grads(self, mod: MotifLinear, index: int) -> None:
        """The update of ``mod`` from its ``.grad`` (its backward made none: a compiled graph runs
        the custom operators, which hand the gradients to autograd), on the engine's state."""
        w, b = mod._parameters["weight"], mod._parameters["bias"]
        group = self.param_groups[index]
        update = self._update(mod, group, self._steps[id(mod)] + 1)
        with mod._lock:
            mod._core.update_from(_array(w.grad), _array(b.grad), update, mod._num_threads)
        mod._updated = True                              # (counted in step(), as an update inside the backward)

    # ---- state: the engine's state under torch's names -------------------------------------------
    def _torch_state(self) -> Dict[torch.Tensor, Dict[str, Any]]:
        """The held layers' engine state as torch's state entries of their parameters (copies;
        a parameter with no state has none)."""
        out: Dict[torch.Tensor, Dict[str, Any]] = {}
        for mod, index in self._held():
            with mod._lock:
                entries = self._export(mod, self.param_groups[index], self._steps[id(mod)])
            for p, entry in zip((mod.weight, mod.bias), entries):
                if entry:
                    out[p] = entry
        return out

    def state_dict(self) -> Dict[str, Any]:
        added = self._torch_state()
        self.state.update(added)
        try:
            return super().state_dict()  # type: ignore[misc]
        finally:
            for p in added:
                self.state.pop(p, None)

    def _export(self, mod: MotifLinear, group: Dict[str, Any], t: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        raise NotImplementedError

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._check_sizes(state_dict)
        super().load_state_dict(state_dict)  # type: ignore[misc]
        for mod, _ in self._held():
            self._adopt_state(mod)

    def _adopt_state(self, mod: MotifLinear) -> None:
        """Move the torch state entries of ``mod``'s parameters (none: a fresh state) into the engine."""
        entries = [self.state.pop(p, None) or {} for p in (mod.weight, mod.bias)]
        with mod._lock:
            self._steps[id(mod)] = self._import(mod, entries[0], entries[1])
        mod._updated = False

    def _import(self, mod: MotifLinear, weight: Dict[str, Any], bias: Dict[str, Any]) -> int:
        raise NotImplementedError

    def _check_sizes(self, state_dict: Dict[str, Any]) -> None:
        """Every per-parameter tensor the state dict holds for a held layer has that parameter's
        length (else ValueError, before anything is loaded)."""
        groups = state_dict.get("param_groups", [])
        if len(groups) != len(self.param_groups):
            return                           # torch's own check reports it
        where = {}
        for mine, saved in zip(self.param_groups, groups):
            for p, key in zip(mine["params"], saved.get("params", [])):
                where[id(p)] = key
        saved_state = state_dict.get("state", {})
        for mod, _ in self._held():
            for p in (mod.weight, mod.bias):
                for name, t in saved_state.get(where.get(id(p)), {}).items():
                    if isinstance(t, torch.Tensor) and t.dim() == 1 and t.shape[0] != p.shape[0]:
                        raise ValueError(f"the state dict's {name} of a MotifLinear has {t.shape[0]} entries, the "
                                         f"parameter {p.shape[0]} (a state dict of another block pattern?)")

    # ---- pickling (torch.save(optimizer), copy.deepcopy): the state travels as torch's ------------
    def __getstate__(self) -> Dict[str, Any]:
        state = dict(super().__getstate__())  # type: ignore[misc]
        merged: Dict[Any, Dict[str, Any]] = defaultdict(dict, self.state)
        merged.update(self._torch_state())
        state["state"] = merged
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        fresh = "_layers" not in self.__dict__     # unpickled (torch's load_state_dict comes here too)
        super().__setstate__(state)  # type: ignore[misc]
        if not fresh:
            return
        self._setup()
        # Take over the layers of the parameters again when they exist (a model and its optimizer
        # pickled together); otherwise their state stays torch's and the torch optimizer steps them.
        for index, group in enumerate(self.param_groups):
            for mod in self._claimable(group, strict=False):
                self._claim(mod, index)
                self._adopt_state(mod)


class SGDInBackward(_InBackward, torch.optim.SGD):
    """``torch.optim.SGD`` whose update of each :class:`MotifLinear` (with a bias) runs inside that
    layer's backward in the engine (see the module docs). Same arguments as ``torch.optim.SGD``;
    a parameter group that holds a MotifLinear needs ``dampening=0``, ``nesterov=False``,
    ``maximize=False``, ``momentum < 1`` and both its ``weight`` and its ``bias``."""

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, fused: Optional[bool] = None) -> None:
        self._setup()
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov, maximize=maximize, foreach=foreach, fused=fused)

    def _setup(self) -> None:
        super()._setup()
        # torch keeps a momentum buffer once an update ran with momentum (or one was loaded), and
        # leaves it untouched by updates with momentum 0. The engine's momentum-0 update overwrites
        # its buffer (v = g'), so: the layers that have a buffer in torch's sense, and, while their
        # group's momentum is 0, the buffer as it was before (restored when momentum comes back)
        self._has_buffer: Set[int] = set()
        self._parked: Dict[int, Optional[Tuple[np.ndarray, np.ndarray]]] = {}

    def _forget(self, key: int) -> None:
        super()._forget(key)
        self._has_buffer.discard(key)
        self._parked.pop(key, None)

    def _check_group(self, group: Dict[str, Any]) -> None:
        if group.get("dampening", 0) != 0:
            self._refuse("dampening", "0", group["dampening"])
        for key in ("nesterov", "maximize", "differentiable"):
            if group.get(key, False):
                self._refuse(key, "False", group[key])
        if not 0 <= group["momentum"] < 1:
            self._refuse("momentum", "in [0, 1)", group["momentum"])

    def _update(self, mod: MotifLinear, group: Dict[str, Any], t: int) -> Dict[str, Any]:
        key, momentum = id(mod), float(group["momentum"])
        if momentum == 0:
            if key not in self._parked:      # entering a phase without momentum: park the buffer
                c = mod._core
                self._parked[key] = (c.weight_velocity, c.bias_velocity) if key in self._has_buffer else None
        else:
            if key in self._parked:          # momentum again: torch's buffer as it was, or none (zero)
                saved = self._parked.pop(key)
                mod._core.set_moments(*(saved or (_EMPTY, _EMPTY)), _EMPTY, _EMPTY)
            self._has_buffer.add(key)
        return {"optimizer": "sgd", "lr": float(group["lr"]), "momentum": momentum,
                "weight_decay": float(group["weight_decay"])}

    def _export(self, mod: MotifLinear, group: Dict[str, Any], t: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        key = id(mod)
        if key in self._parked:
            saved = self._parked[key]
            if saved is None:
                return {}, {}
            return ({"momentum_buffer": torch.from_numpy(saved[0].copy())},
                    {"momentum_buffer": torch.from_numpy(saved[1].copy())})
        if key not in self._has_buffer:
            return {}, {}
        return ({"momentum_buffer": torch.from_numpy(mod._core.weight_velocity)},
                {"momentum_buffer": torch.from_numpy(mod._core.bias_velocity)})

    def _import(self, mod: MotifLinear, weight: Dict[str, Any], bias: Dict[str, Any]) -> int:
        vw, vb = weight.get("momentum_buffer"), bias.get("momentum_buffer")
        key = id(mod)
        self._parked.pop(key, None)
        mod._core.set_moments(_array(vw), _array(vb), _EMPTY, _EMPTY)
        if vw is None and vb is None:
            self._has_buffer.discard(key)
            return 0
        self._has_buffer.add(key)
        return 1                                  # (SGD's update does not depend on the count)


class AdamInBackward(_InBackward, torch.optim.Adam):
    """``torch.optim.Adam`` whose update of each :class:`MotifLinear` (with a bias) runs inside that
    layer's backward in the engine (see the module docs). Same arguments as ``torch.optim.Adam``;
    a parameter group that holds a MotifLinear needs ``amsgrad=False``, ``maximize=False``,
    ``capturable=False``, betas in ``[0, 1)``, ``eps > 0`` and both its ``weight`` and its
    ``bias``. ``decoupled_weight_decay=True`` is AdamW's update."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, foreach: Optional[bool] = None,
                 maximize: bool = False, fused: Optional[bool] = None, decoupled_weight_decay: bool = False) -> None:
        self._setup()
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, fused=fused,
                         decoupled_weight_decay=decoupled_weight_decay)

    def _check_group(self, group: Dict[str, Any]) -> None:
        for key in ("amsgrad", "maximize", "capturable", "differentiable"):
            if group.get(key, False):
                self._refuse(key, "False", group[key])
        b1, b2 = (float(b) for b in group["betas"])
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            self._refuse("betas", "in [0, 1)", group["betas"])
        if not group["eps"] > 0:
            self._refuse("eps", "> 0", group["eps"])

    def _update(self, mod: MotifLinear, group: Dict[str, Any], t: int) -> Dict[str, Any]:
        b1, b2 = (float(b) for b in group["betas"])
        return {"optimizer": "adamw" if group.get("decoupled_weight_decay", False) else "adam",
                "lr": float(group["lr"]), "beta1": b1, "beta2": b2, "eps": float(group["eps"]),
                "weight_decay": float(group["weight_decay"]), "t": t}

    def _export(self, mod: MotifLinear, group: Dict[str, Any], t: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        if t == 0:
            return {}, {}
        c = mod._core
        return tuple({"step": torch.tensor(float(t)), "exp_avg": torch.from_numpy(v), "exp_avg_sq": torch.from_numpy(s)}
                     for v, s in ((c.weight_velocity, c.weight_sq), (c.bias_velocity, c.bias_sq)))  # type: ignore

    def _import(self, mod: MotifLinear, weight: Dict[str, Any], bias: Dict[str, Any]) -> int:
        if "step" not in weight:
            mod._core.set_moments(_EMPTY, _EMPTY, _EMPTY, _EMPTY)
            return 0
        if "exp_avg_sq" not in weight or "exp_avg_sq" not in bias:
            raise ValueError("the state dict's Adam state of a MotifLinear lacks exp_avg_sq")
        mod._core.set_moments(_array(weight.get("exp_avg")), _array(bias.get("exp_avg")),
                              _array(weight["exp_avg_sq"]), _array(bias["exp_avg_sq"]))
        return int(float(weight["step"]))


class AdamWInBackward(AdamInBackward, torch.optim.AdamW):
    """``torch.optim.AdamW`` whose update of each :class:`MotifLinear` (with a bias) runs inside that
    layer's backward in the engine; as :class:`AdamInBackward`, with decoupled weight decay (default
    0.01, as ``torch.optim.AdamW``)."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, fused: Optional[bool] = None) -> None:
        self._setup()
        torch.optim.AdamW.__init__(self, params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                   amsgrad=amsgrad, maximize=maximize, foreach=foreach, fused=fused)
