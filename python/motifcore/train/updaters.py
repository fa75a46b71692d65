"""Mask updaters: dynamic sparse training methods that change the block pattern every few
optimizer steps, inside an epoch (``Trainer(evolution="rigl")`` or ``"dsr"``).

The :class:`~motifcore.train.trainer.Trainer` asks an updater which batches of an epoch are
preceded by an update (:meth:`MaskUpdater.update_batches`), trains the batches in between with one
native call each, and calls :meth:`MaskUpdater.update` at each of them. Global steps count batches
from 0: batch ``b`` of epoch ``e`` (1-indexed) is step ``t = (e - 1) * steps_per_epoch + b``, and
``T = epochs * steps_per_epoch``. Every random draw is seeded from ``(seed, t, layer)``, so an
update depends only on the model, the step and the seed; the state that carries over between
updates (DSR's threshold) is saved in checkpoints, which keeps a resumed run bit-exact.

``"rigl"`` -- RigL (Evci et al., 2020); Motif-RigL at motif size > 1
    At every step ``t`` with ``t % interval == 0`` and ``t < stop * T`` (``t = 0`` included unless
    ``update_at_step0=False``), with ``f(t) = alpha / 2 * (1 + cos(pi * t / (stop * T)))``,
    each updated layer with ``|P|`` blocks gets ``k = floor(f(t) * |P|)``:

    * the batch of step ``t`` is forwarded and back-propagated without an optimizer step
      (:meth:`MotifMLP.grad_step`);
    * drop: the ``k`` blocks of smallest ``|K|`` (ties: lower position; no noise);
    * grow: the ``k`` positions of largest ``|dL/dK(r, c)|`` among all positions except the kept
      blocks -- the gradient of a block weight at 0, i.e. ``|sum of the block's edge gradients|``
      (RigL's ``|dL/dW|`` at motif size 1), without weight decay; ties to the lower ``(r, c)``.
      A just-dropped block that is grown again keeps its weight and optimizer state; a new block
      starts at 0 with zero optimizer state;
    * the batch gets no optimizer step (``skip_sgd=False`` trains it after the update instead).

    ``topk``: ``"exact"`` scores all ``G_out * G_in`` positions (tiled, never materialised),
    ``"sampled"`` only ``sample_factor * k`` positions drawn uniformly among the candidates
    (**RigL-sampled**, for very wide layers), ``"auto"`` (default) picks exact for a layer when
    ``G_out * G_in <= auto_steps * 3 * |P|`` -- scoring costs at most ``auto_steps`` training
    steps of that layer, 5 % of the ``interval`` steps between updates at ``auto_steps = 5`` -- and
    ``G_out * G_in < 2**31``.
``"dsr"`` -- Dynamic Sparse Reparameterization (Mostafa & Wang, 2019); Motif-DSR at motif size > 1
    After the optimizer step of every step ``t > 0`` with ``t % period(t) == 0`` and
    ``t < stop * T``, where ``period(t) = periods[i]`` for the last ``i`` with
    ``starts[i] * T <= t`` (defaults 100/200/400/800 steps from 0/12.5/40/70 % of training,
    ``stop = 0.95``):

    1. every updated layer removes its blocks with ``|K| < H`` but keeps at least one;
    2. the ``R`` removed blocks are given back to the layers in proportion to the blocks each
       has left, by largest remainder (floors first, then the largest fractional parts, ties to
       the lower layer index; a layer is capped at its free positions and the excess is
       re-apportioned over the others), grown uniformly at random among the positions that were
       inactive before the prune, at 0 with zero optimizer state; the total is kept;
    3. ``H`` is halved if ``R > (1 + delta) * n_prune`` and doubled if ``R < (1 - delta) * n_prune``.

    Defaults: ``H = 1e-3``, ``delta = 0.1``, ``n_prune = round(0.12 * sum |P|)`` of the updated
    layers at the first update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._internal.validation import check_int, check_real
from ..defaults import UPDATERS  # the updaters' names, registered in motifcore.defaults.EVOLUTIONS
from ..nn import MotifMLP
from .schedules import cosine_fraction

__all__ = ["DSR", "UPDATERS", "MaskUpdater", "RigL", "apportion", "make_updater"]

_TAG = 0xD57


def _seed(seed: int, t: int, layer: int) -> int:
    return int(np.random.SeedSequence([seed, _TAG, t, layer]).generate_state(1, np.uint64)[0])


def apportion(total: int, weights: Sequence[int], caps: Sequence[int] | None = None) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` by largest remainder (floors,
    then one more to the largest fractional parts, ties to the lower index). With ``caps``, no
    share exceeds its cap: the excess goes to the uncapped entries the same way (anything that
    fits nowhere is dropped)."""
    n = len(weights)
    caps = list(caps) if caps is not None else [total] * n
    out = [0] * n
    left = int(total)
    open_ = [i for i in range(n) if weights[i] > 0 and caps[i] > 0]
    while left > 0 and open_:
        wsum = sum(weights[i] for i in open_)
        # exact integer shares: floor and remainder of left * w / wsum
        give = {i: left * weights[i] // wsum for i in open_}
        frac = {i: left * weights[i] % wsum for i in open_}
        rest = left - sum(give.values())
        for i in sorted(open_, key=lambda i: (-frac[i], i))[:rest]:
            give[i] += 1
        left = 0
        for i in open_:
            g = min(give[i], caps[i] - out[i])
            out[i] += g
            left += give[i] - g
        open_ = [i for i in open_ if out[i] < caps[i]]
    return out


class MaskUpdater:
    """Interface of a mask updater (see the module docstring)."""

    name = ""
    #: True when the batch of an update step gets no optimizer step.
    consumes_batch = False

    def update_batches(self, epoch: int, steps_per_epoch: int, epochs: int) -> list[int]:
        """Batches ``b`` (0-indexed) of ``epoch`` that are preceded by an update, increasing."""
        raise NotImplementedError

    def update(self, model: MotifMLP, t: int, rows: np.ndarray, X: np.ndarray, y: np.ndarray, *,
               layers: set[int], total_steps: int, seed: int, dropout: float) -> dict[str, Any]:
        """Run the update before step ``t`` (``rows``: that step's batch). Returns ``fraction``
        (the share of the updated layers' blocks replaced), ``pruned`` and ``regrown`` (per layer)
        and ``loss`` (the batch's loss, or None)."""
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        pass

    def to_config(self) -> dict[str, Any]:
        raise NotImplementedError


class RigL(MaskUpdater):
    """RigL / Motif-RigL (see the module docstring for the algorithm and defaults)."""

    name = "rigl"

    def __init__(self, alpha: float = 0.3, interval: int = 100, stop: float = 0.75, topk: str = "auto",
                 sample_factor: int = 10, auto_steps: float = 5.0, update_at_step0: bool = True,
                 skip_sgd: bool = True) -> None:
        self.alpha = check_real(alpha, "alpha", 0.0, 1.0, lo_open=True, hi_open=True)
        self.interval = check_int(interval, "interval")
        self.stop = check_real(stop, "stop", 0.0, 1.0, lo_open=True)
        if topk not in ("exact", "sampled", "auto"):
            raise ValueError(f"topk must be 'exact', 'sampled' or 'auto', got {topk!r}")
        self.topk = topk
        self.sample_factor = check_int(sample_factor, "sample_factor")
        self.auto_steps = check_real(auto_steps, "auto_steps", 0.0)
        self.update_at_step0 = bool(update_at_step0)
        self.skip_sgd = bool(skip_sgd)
        self.consumes_batch = self.skip_sgd
        self.updates = 0
        self.last_update: int | None = None

    def fraction(self, t: int, total_steps: int) -> float:
        """``f(t) = alpha / 2 * (1 + cos(pi * min(t, T_end) / T_end))``, ``T_end = stop * T``."""
        t_end = self.stop * total_steps
        return cosine_fraction(self.alpha, min(t, t_end), t_end)

    def is_update_step(self, t: int, total_steps: int) -> bool:
        if t % self.interval or t >= self.stop * total_steps:
            return False
        return t > 0 or self.update_at_step0

    def update_batches(self, epoch: int, steps_per_epoch: int, epochs: int) -> list[int]:
        t0 = (epoch - 1) * steps_per_epoch
        T = epochs * steps_per_epoch
        first = -(-t0 // self.interval) * self.interval
        return [t - t0 for t in range(first, t0 + steps_per_epoch, self.interval) if self.is_update_step(t, T)]

    def topk_mode(self, layer: Any) -> str:
        """The top-k mode of a layer under ``topk`` (resolves ``"auto"``)."""
        if self.topk != "auto":
            return self.topk
        g_out, g_in = layer.groups
        grid = g_out * g_in
        return "exact" if grid < 2**31 and grid <= self.auto_steps * 3 * layer.n_blocks else "sampled"

    def update(self, model: MotifMLP, t: int, rows: np.ndarray, X: np.ndarray, y: np.ndarray, *,
               layers: set[int], total_steps: int, seed: int, dropout: float) -> dict[str, Any]:
        f = self.fraction(t, total_steps)
        ls = model.layers
        ks = [int(math.floor(f * layer.n_blocks)) if i in layers else 0 for i, layer in enumerate(ls)]
        with model._lock:      # one step: no other call on the model between the scores, the drop and the growth
            loss, res = model.grad_step(X, y, rows, ks, ks, [self.topk_mode(layer) for layer in ls],
                                        [_seed(seed, t, i) for i in range(len(ls))], dropout=dropout,
                                        sample_factor=self.sample_factor)
            grown = [0] * len(ls)
            for i, (layer, k) in enumerate(zip(ls, ks)):
                if k > 0:
                    layer.prune_smallest(k)
                    grown[i] = layer.grow_at(res[i][0], regrow="zero")
        self.updates += 1
        self.last_update = t
        return {"fraction": f, "pruned": ks, "regrown": grown, "loss": loss}

    def get_state(self) -> dict[str, Any]:
        return {"updates": self.updates, "last_update": self.last_update}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.updates = int(state.get("updates", 0))
        last = state.get("last_update")
        self.last_update = None if last is None else int(last)

    def to_config(self) -> dict[str, Any]:
        return {"updater": "rigl", "alpha": self.alpha, "interval": self.interval, "stop": self.stop,
                "topk": self.topk, "sample_factor": self.sample_factor, "auto_steps": self.auto_steps,
                "update_at_step0": self.update_at_step0, "skip_sgd": self.skip_sgd}


class DSR(MaskUpdater):
    """Dynamic Sparse Reparameterization / Motif-DSR (see the module docstring)."""

    name = "dsr"

    def __init__(self, threshold: float = 1e-3, n_prune: int | None = None, prune_fraction: float = 0.12,
                 delta: float = 0.1, periods: Sequence[int] = (100, 200, 400, 800),
                 starts: Sequence[float] = (0.0, 0.125, 0.4, 0.7), stop: float = 0.95) -> None:
        self.threshold = check_real(threshold, "threshold", 0.0, lo_open=True)
        self.n_prune = None if n_prune is None else check_int(n_prune, "n_prune")
        self.prune_fraction = check_real(prune_fraction, "prune_fraction", 0.0, 1.0, lo_open=True)
        self.delta = check_real(delta, "delta", 0.0, 1.0, hi_open=True)
        self.periods = [check_int(p, "periods entry") for p in periods]
        self.starts = [check_real(s, "starts entry", 0.0, 1.0) for s in starts]
        if len(self.periods) != len(self.starts) or not self.periods:
            raise ValueError("periods and starts must be non-empty and of the same length")
        if self.starts[0] != 0.0 or any(b <= a for a, b in zip(self.starts, self.starts[1:])):
            raise ValueError(f"starts must begin at 0 and increase, got {list(starts)}")
        self.stop = check_real(stop, "stop", 0.0, 1.0, lo_open=True)
        self.initial_threshold = self.threshold
        self.updates = 0

    def period(self, t: int, total_steps: int) -> int:
        """The reallocation period in force at step ``t``."""
        p = self.periods[0]
        for start, per in zip(self.starts, self.periods):
            if start * total_steps <= t:
                p = per
        return p

    def is_update_step(self, t: int, total_steps: int) -> bool:
        """True when a reallocation follows the optimizer step of step ``t``."""
        return 0 < t < self.stop * total_steps and t % self.period(t, total_steps) == 0

    def update_batches(self, epoch: int, steps_per_epoch: int, epochs: int) -> list[int]:
        # the update after step t runs before batch t + 1
        t0 = (epoch - 1) * steps_per_epoch
        T = epochs * steps_per_epoch
        return [b for b in range(steps_per_epoch) if self.is_update_step(t0 + b - 1, T)]

    def step_threshold(self, removed: int) -> float:
        """Adapt ``H`` to the number of blocks removed in one reallocation; returns the new H."""
        assert self.n_prune is not None
        if removed > (1 + self.delta) * self.n_prune:
            self.threshold /= 2
        elif removed < (1 - self.delta) * self.n_prune:
            self.threshold *= 2
        return self.threshold

    def reallocate(self, model: MotifMLP, layers: set[int], seed: int, t: int) -> tuple[list[int], list[int]]:
        """One prune / apportion / regrow round at step ``t`` (steps 1-2 of the algorithm);
        returns (removed, grown) per layer. Does not change ``H``."""
        ls = model.layers
        if self.n_prune is None:
            self.n_prune = max(1, round(self.prune_fraction * sum(ls[i].n_blocks for i in layers)))
        removed = [ls[i].prune_below(self.threshold, keep_min=1) if i in layers else 0 for i in range(len(ls))]
        survivors = [ls[i].n_blocks if i in layers else 0 for i in range(len(ls))]
        caps = [ls[i].groups[0] * ls[i].groups[1] - ls[i].n_blocks - removed[i] if i in layers else 0
                for i in range(len(ls))]
        share = apportion(sum(removed), survivors, caps)
        grown = [ls[i].grow_random(share[i], seed=_seed(seed, t, i), regrow="zero") if i in layers else 0
                 for i in range(len(ls))]
        return removed, grown

    def update(self, model: MotifMLP, t: int, rows: np.ndarray, X: np.ndarray, y: np.ndarray, *,
               layers: set[int], total_steps: int, seed: int, dropout: float) -> dict[str, Any]:
        with model._lock:      # one step: the prune and the reallocated growth see the same pattern
            removed, grown = self.reallocate(model, layers, seed, t)
        self.step_threshold(sum(removed))
        self.updates += 1
        total = sum(model.layers[i].n_blocks for i in layers)
        return {"fraction": sum(removed) / max(total, 1), "pruned": removed, "regrown": grown, "loss": None}

    def get_state(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "n_prune": self.n_prune, "updates": self.updates}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.threshold = float(state.get("threshold", self.threshold))
        n = state.get("n_prune")
        self.n_prune = None if n is None else int(n)
        self.updates = int(state.get("updates", 0))

    def to_config(self) -> dict[str, Any]:
        return {"updater": "dsr", "threshold": self.initial_threshold, "n_prune": self.n_prune,
                "prune_fraction": self.prune_fraction, "delta": self.delta, "periods": list(self.periods),
                "starts": list(self.starts), "stop": self.stop}


def make_updater(spec: Any, **params: Any) -> MaskUpdater:
    """An updater from its name (``"rigl"``, ``"dsr"``) and parameters, or from the dict
    ``{"updater": name, **params}`` that :meth:`MaskUpdater.to_config` writes."""
    if isinstance(spec, Mapping):
        p = {str(k): v for k, v in spec.items()}
        spec = p.pop("updater")
        params = {**p, **params}
    if spec == "rigl":
        return RigL(**params)
    if spec == "dsr":
        if "periods" in params:
            params["periods"] = tuple(params["periods"])
        if "starts" in params:
            params["starts"] = tuple(params["starts"])
        return DSR(**params)
    raise ValueError(f"updater must be one of {', '.join(UPDATERS)}, got {spec!r}")
