"""SGDInBackward: torch's SGD, with the update of every MotifLinear made inside its backward.

``train_step`` makes the optimizer update of each sparse layer inside that layer's backward, in the
order the fused kernel reads the weights (docs/engine.md, "The update inside the backward, in
transposed order"); a torch optimizer cannot, because it runs after the whole backward, on
gradients in the order of ``weight``. :class:`SGDInBackward` hands each :class:`MotifLinear` it
holds to the engine instead: the layer's backward makes the same SGD update there, on the engine's
own gradient and momentum, and the parameter gets no ``.grad``. Every other parameter (an
``nn.Linear``, a norm, a MotifLinear without a bias) is updated by :meth:`step`, as
``torch.optim.SGD`` would.

The update is SGD as torch defines it, with ``dampening=0`` and ``nesterov=False``:
``v = momentum * v + (g + weight_decay * w)``, ``w -= lr * v``. What follows from making it inside
the backward:

* one backward per step: a second backward through a layer before :meth:`step` (gradient
  accumulation, a layer used twice in one graph) raises, as its first one has already updated it;
* nothing between ``backward()`` and ``step()`` can see or change those gradients: no gradient
  clipping, no gradient hooks, no ``torch.distributed`` reduction of them (use ``torch.optim.SGD``
  for these);
* the learning rate, momentum and weight decay are read from the parameter group when the backward
  runs, so an LR scheduler's ``step()`` after ``optimizer.step()`` applies from the next step on, as
  with ``torch.optim.SGD``;
* ``state_dict()`` holds the momentum of every parameter as ``torch.optim.SGD`` does
  (``"momentum_buffer"``), so state dicts move between the two classes;
* the DST objects (``SET`` etc.) need no optimizer: the engine moves the momentum with the blocks
  (regrown blocks start at zero);
* a compiled model (``torch.compile``) runs its backward as a graph: its MotifLinear layers are not
  updated inside it, and :meth:`step` raises (use ``torch.optim.SGD``).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .layer import MotifLinear, owner_of

__all__ = ["SGDInBackward"]


class SGDInBackward(torch.optim.SGD):
    """``torch.optim.SGD`` whose update of each :class:`MotifLinear` (with a bias) runs inside that
    layer's backward in the engine (see the module docs). Same arguments as ``torch.optim.SGD``;
    a parameter group that holds a MotifLinear needs ``dampening=0``, ``nesterov=False``,
    ``maximize=False``, ``momentum < 1`` and both its ``weight`` and its ``bias``."""

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, fused: Optional[bool] = None) -> None:
        # the layers this optimizer updates, by id: (weak reference, group index)
        self._layers: Dict[int, Tuple["weakref.ref[MotifLinear]", int]] = {}
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov, maximize=maximize, foreach=foreach, fused=fused)

    # ---- which layers ------------------------------------------------------------------------
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        super().add_param_group(param_group)
        index = len(self.param_groups) - 1
        group = self.param_groups[index]
        held = {id(p) for p in group["params"]}
        claimed: List[MotifLinear] = []
        for p in group["params"]:
            mod = owner_of(p)
            if mod is None or mod.bias is None or id(mod) in self._layers or any(m is mod for m in claimed):
                continue         # not a MotifLinear's, or one without a bias (torch's SGD steps it)
            if id(mod.weight) not in held or id(mod.bias) not in held:
                raise ValueError("SGDInBackward updates a MotifLinear's weight and bias together: put both in "
                                 "the same parameter group")
            other = mod._updater[0]() if mod._updater is not None else None
            if other is not None and other is not self:
                raise ValueError("this MotifLinear is already updated inside its backward by another "
                                 "SGDInBackward; a layer can have one")
            claimed.append(mod)
        if claimed:
            self._check_group(group)
        for mod in claimed:
            self._layers[id(mod)] = (weakref.ref(mod), index)
            mod._updater = (weakref.ref(self), index)
            mod._updated = False

    @staticmethod
    def _check_group(group: Dict[str, Any]) -> None:
        for key, ok, want in (("dampening", lambda v: v == 0, "0"), ("nesterov", lambda v: not v, "False"),
                              ("maximize", lambda v: not v, "False"),
                              ("differentiable", lambda v: not v, "False"),
                              ("momentum", lambda v: 0 <= v < 1, "in [0, 1)")):
            if not ok(group.get(key, 0)):
                raise ValueError(f"SGDInBackward makes the update of a MotifLinear in the engine, which needs "
                                 f"{key} {want}; got {group.get(key)!r} (use torch.optim.SGD for this setting)")

    def _held(self) -> List[Tuple[MotifLinear, int]]:
        """The live layers this optimizer updates inside their backward, with their group index."""
        out = []
        for key, (ref, index) in list(self._layers.items()):
            mod = ref()
            if mod is None or mod._updater is None or mod._updater[0]() is not self:
                del self._layers[key]
            else:
                out.append((mod, index))
        return out

    # ---- the update inside a layer's backward ----------------------------------------------------
    def _backward_update(self, mod: MotifLinear, need_w: bool, need_b: bool) -> Optional[Dict[str, Any]]:
        """Called by ``mod``'s backward: the update to make there (None: the weight and bias need no
        gradient, no update)."""
        if not need_w and not need_b:
            return None
        if need_w != need_b:
            raise RuntimeError("SGDInBackward updates a MotifLinear's weight and bias together: both must require "
                               "a gradient, or neither")
        if mod._updated:
            raise RuntimeError("a second backward through this MotifLinear before optimizer.step(): SGDInBackward "
                               "already updated it inside the first one (gradient accumulation and a layer used twice "
                               "in one graph need torch.optim.SGD)")
        if mod._keep_io:
            raise RuntimeError("SGDInBackward cannot update a layer inside its backward under torch.distributed "
                               "(the gradients must be reduced across ranks first): use torch.optim.SGD")
        group = self.param_groups[self._layers[id(mod)][1]]
        self._check_group(group)
        return {"optimizer": "sgd", "lr": float(group["lr"]), "momentum": float(group["momentum"]),
                "weight_decay": float(group["weight_decay"])}

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:  # type: ignore[override]
        """Update every other parameter (``torch.optim.SGD.step``) and start the next step of the
        MotifLinear layers, which their backward already updated."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        held = self._held()
        for mod, _ in held:
            if mod.weight.grad is not None or mod.bias.grad is not None:
                raise RuntimeError("a MotifLinear held by SGDInBackward has a .grad: its backward did not make the "
                                   "update (a compiled model, or gradients set by hand); use torch.optim.SGD")
        if 2 * len(held) < sum(len(g["params"]) for g in self.param_groups):
            super().step()                   # (parameters other than the held layers' to update)
        for mod, _ in held:
            mod._updated = False
        return loss

    # ---- state: the engine's momentum as torch's "momentum_buffer" -------------------------------
    def state_dict(self) -> Dict[str, Any]:
        added: List[torch.Tensor] = []
        try:
            for mod, index in self._held():
                if self.param_groups[index]["momentum"] == 0:
                    continue
                with mod._lock:
                    vw, vb = mod._core.weight_velocity, mod._core.bias_velocity
                for p, v in ((mod.weight, vw), (mod.bias, vb)):
                    self.state[p] = {"momentum_buffer": torch.from_numpy(v)}
                    added.append(p)
            return super().state_dict()
        finally:
            for p in added:
                self.state.pop(p, None)

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for mod, _ in self._held():
            bufs = []
            for p in (mod.weight, mod.bias):
                entry = self.state.pop(p, None) or {}
                buf = entry.get("momentum_buffer")
                bufs.append(np.zeros(0, np.float32) if buf is None
                            else np.ascontiguousarray(buf.detach().cpu().numpy(), dtype=np.float32))
            with mod._lock:
                mod._core.set_velocity(bufs[0], bufs[1])
            mod._updated = False

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_layers", {})

