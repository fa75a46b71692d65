"""Learning-rate and SET-evolution schedules, as named presets with exactly documented values.

Conventions used everywhere in motifcore:

* **Epochs are 1-indexed**: a run of ``E`` epochs trains epochs ``1, 2, ..., E``.
* **Batches are 0-indexed** within an epoch; an epoch of ``N`` samples at batch size ``B`` has
  ``ceil(N / B)`` batches (the last one may be smaller). The global step of batch ``b`` of epoch
  ``e`` is ``t = (e - 1) * steps_per_epoch + b``.
* **Evolution happens between epochs.** ``zeta_at(e)`` is the prune fraction of the SET evolution
  that runs *after epoch e has completed* (and after its evaluation), ``0.0`` meaning "no
  evolution". There is never an evolution after the final epoch ``E``: ``zeta_at(E) == 0`` for
  every schedule. The :class:`~motifcore.train.trainer.Trainer` applies the evolution scheduled after
  epoch ``e`` right before training epoch ``e + 1`` (so it never runs after the last epoch, nor
  after an early stop, and a checkpoint written at the end of epoch ``e`` holds the trained,
  not-yet-evolved network).

Learning-rate presets (:func:`lr_schedule`):

``"cosine"`` (paper default, Table 3)
    Linear warmup over ``Ws`` steps, then cosine decay to 0 at the end of training, per step::

        T = E * steps_per_epoch
        t <  Ws:  lr = base * (t + 1) / Ws
        t >= Ws:  lr = base * 0.5 * (1 + cos(pi * (t - Ws) / (T - Ws)))

    The warmup ``W`` is given in epochs (an int: ``Ws = W * steps_per_epoch``, the paper's 5
    epochs, clamped to ``E - 1``) or as a fraction of the run (a float in ``[0, 1)``:
    ``Ws = floor(W * T)``), which fits any run length: a 3-epoch run with ``W = 0.05`` warms up
    over its first 5 % of steps instead of spending all its epochs in warmup.
``"cosine-epoch"`` (the paper's Table 3 read literally: "cosine decay ... over 300 epochs" with
a "5-epoch warmup", a scheduler stepped once per epoch)
    The same formula counted in epochs: one learning rate for all the batches of an epoch::

        t = e - 1                       (epoch e, 1-indexed)
        t <  We:  lr = base * (t + 1) / We
        t >= We:  lr = base * 0.5 * (1 + cos(pi * (t - We) / (E - We)))

    with ``We = W`` for an int warmup (clamped to ``E - 1``) and ``We = floor(W * E)`` for a
    fraction. For ``E = 300, W = 5``: epochs 1-5 train at 0.2, 0.4, ..., 1.0 times ``base``, epoch
    6 at ``base``, and the last epoch at ``base * 0.5 * (1 + cos(pi * 294 / 295))`` (about
    ``3e-5 * base``), where ``"cosine"`` moves the lr at every step and ends near 0.
``"constant"``
    ``lr = base``.
``"step"``
    ``lr = base * gamma ** floor((e - 1) / step_size)``: multiplied by ``gamma`` after every
    ``step_size`` epochs (constant within an epoch).
a callable ``f(epoch, batch) -> lr``
    Used as is.

Evolution presets (:func:`evolution_schedule`):

``"paper"`` (Motif-SET, Sec. 3.2-3.3)
    No evolution during the ``warmup = 5`` first epochs; then ``zeta = 0.2`` every ``every = 10``
    epochs counted from the end of the warmup, i.e. after epochs ``15, 25, 35, ...`` (an epoch
    ``e`` evolves when ``e > warmup`` and ``(e - warmup) % every == 0``). Over the last third of
    training ``zeta`` decays to 0 with a cosine::

        D = E * (1 - 1/3)          (decay start, e.g. 200 for E = 300)
        e <= D:  zeta = 0.2
        e >  D:  zeta = 0.2 * 0.5 * (1 + cos(pi * (e - D) / (E - D)))

    For ``E = 300``: after epochs 15, 25, ..., 195 ``zeta = 0.2``; after 205 ``0.2 * 0.5 *
    (1 + cos(0.05 pi))``; after 245 ``0.2 * 0.5 * (1 + cos(0.45 pi))``; after 295
    ``0.2 * 0.5 * (1 + cos(0.95 pi))``; 29 evolutions in all.
``"set-epoch"`` (SET's own schedule, Mocanu et al. 2018)
    ``zeta = 0.3`` after every epoch ``1 .. E-1`` (the Trainer evolves every layer and regrows
    with fresh He-uniform weights: :data:`motifcore.defaults.EVOLUTIONS`).
``"cosine"`` (counted in optimizer steps; ``"input-cosine"``, motifcore's default evolution, is
this schedule on the input layer with regrowth at zero, and ``"set"`` is it on every layer with
fresh He-uniform regrowth: SET with its fraction annealed as Evci et al. 2020 anneal it)
    Evolution every ``interval = 100`` steps, RigL's cosine-decayed fraction, and nothing in the
    last quarter of training. With ``spe`` steps per epoch and ``T = E * spe``, the evolution
    after epoch ``e`` runs when a multiple of ``interval`` lies in ``((e-1)*spe, e*spe]`` and
    ``t = e * spe < stop * T`` (``stop = 0.75``), with::

        zeta = zeta0 * 0.5 * (1 + cos(pi * t / (stop * T)))        (zeta0 = 0.3)

    So a large dataset (``spe >= interval``) evolves after every epoch of the first 75 %, and a
    tiny one (one batch per epoch) every ``interval`` epochs; the final quarter fine-tunes a fixed
    pattern (RigL, Evci et al. 2020, stops updating the mask at 75 % of training).
``"cht"`` (Cannistraci-Hebb training, Zhang et al., ICLR 2024)
    ``zeta = 0.3`` after every epoch ``1 .. E-1`` like ``"set-epoch"``, but the Trainer regrows at the
    highest CH3-L3 link-prediction scores instead of at random, after chain removal of neurons
    left without input or output (``chain_removal = True``). As the CHT code (Zhang et al.'s
    repository, ``sparse.py``, ``sparse_layer.remove_connections`` / ``regrow_connections``): the
    removal takes ``zeta`` of the negative and of the positive weights separately (``removal =
    "sign"``; ``"magnitude"``: the smallest ``|K|`` overall), only links with a positive score
    regrow (``fill = "none"``; ``"random"`` tops up at random), and a link removed and regrown in
    the same step keeps its weight and momentum (``restore = True``). ``link = "random"`` regrows
    at random (the RLR baseline) -- see :meth:`motifcore.MotifMLP.evolve_cht`.
``"none"``
    Static sparse training: ``zeta = 0`` always.
a callable ``f(epoch) -> zeta``, a dict ``{epoch: zeta}`` or a list ``[zeta after epoch 1, ...]``
    Custom schedules; epochs not covered mean 0. The final epoch is never evolved, whatever the
    custom schedule says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Union

import numpy as np

from .._internal.validation import check_int, check_real
from ..defaults import EVOLUTIONS, LR_SCHEDULES, SCHEDULE_PRESETS

__all__ = [
    "EVOLUTION_PRESETS",
    "LR_PRESETS",
    "EvolutionSchedule",
    "LRSchedule",
    "cosine_fraction",
    "evolution_schedule",
    "lr_schedule",
]

LR_PRESETS = LR_SCHEDULES
#: every SET-style evolution by name (:data:`motifcore.defaults.EVOLUTIONS` says what each is)
EVOLUTION_PRESETS = SCHEDULE_PRESETS


def cosine_fraction(fraction: float, t: float, t_end: float) -> float:
    """RigL's decayed update fraction at step ``t`` (Evci et al., 2020): ``fraction / 2 * (1 +
    cos(pi * t / t_end))``, from ``fraction`` at 0 to 0 at ``t_end``. The one formula behind the
    ``"cosine"`` schedule (``"input-cosine"``, ``"set"``), RigL's updater and
    :meth:`motifcore.torch.SET.cosine`."""
    return fraction * 0.5 * (1.0 + math.cos(math.pi * t / t_end))


LRSpec = Union[str, Callable[[int, int], float]]
EvolutionSpec = Union[str, Callable[[int], float], Mapping[int, float], Sequence[float], "EvolutionSchedule", None]


def epochs_for(epochs: int, min_steps: int, n_samples: int, batch_size: int) -> int:
    """``epochs``, raised where needed so that a run on ``n_samples`` at ``batch_size`` takes at
    least ``min_steps`` optimizer steps (small data is few batches per epoch)."""
    steps_per_epoch = -(-check_int(n_samples, "n_samples") // check_int(batch_size, "batch_size"))
    return max(check_int(epochs, "epochs"), -(-check_int(min_steps, "min_steps", 0) // steps_per_epoch))


def check_warmup(warmup: Any, epochs: int) -> int | float:
    """Warmup in epochs (an int, clamped to ``epochs - 1``) or as a fraction of the run (a float
    in ``[0, 1)``)."""
    if isinstance(warmup, (float, np.floating)):
        return check_real(warmup, "warmup (a fraction of the run)", 0.0, 1.0, hi_open=True)
    return min(check_int(warmup, "warmup", 0), epochs - 1)


# ------------------------------------------------------------------------------------------------
# learning rate
# ------------------------------------------------------------------------------------------------


class LRSchedule:
    """A per-batch learning-rate schedule of a run of ``epochs`` epochs of ``steps_per_epoch``
    batches. Build it with :func:`lr_schedule`; see the module docstring for the formulas.

    Attributes
    ----------
    kind : str
        ``"cosine"``, ``"cosine-epoch"``, ``"constant"``, ``"step"`` or ``"custom"``.
    base_lr, epochs, steps_per_epoch, warmup, step_size, gamma
        The parameters (``warmup`` is the effective, clamped warmup in epochs).
    """

    def __init__(self, kind: str, base_lr: float, epochs: int, steps_per_epoch: int, *,
                 warmup: int | float = 0, step_size: int = 30, gamma: float = 0.1,
                 fn: Callable[[int, int], float] | None = None) -> None:
        self.kind = kind
        self.base_lr = base_lr
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.warmup = warmup
        total = epochs * steps_per_epoch
        #: warmup length in steps
        self.warmup_steps = (int(math.floor(warmup * total)) if isinstance(warmup, float)
                             else int(warmup) * steps_per_epoch)
        #: warmup length in epochs (``"cosine-epoch"``)
        self.warmup_epochs = (int(math.floor(warmup * epochs)) if isinstance(warmup, float) else int(warmup))
        self.step_size = step_size
        self.gamma = gamma
        self._fn = fn

    def _check(self, epoch: int, batch: int) -> None:
        if not 1 <= epoch <= self.epochs:
            raise ValueError(f"epoch must be in [1, {self.epochs}], got {epoch}")
        if not 0 <= batch < self.steps_per_epoch:
            raise ValueError(f"batch must be in [0, {self.steps_per_epoch}), got {batch}")

    def lr_at(self, epoch: int, batch: int = 0) -> float:
        """Learning rate of batch ``batch`` (0-indexed) of epoch ``epoch`` (1-indexed)."""
        self._check(epoch, batch)
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "step":
            return self.base_lr * self.gamma ** ((epoch - 1) // self.step_size)
        if self.kind == "custom":
            assert self._fn is not None
            return float(self._fn(epoch, batch))
        if self.kind == "cosine-epoch":     # counted in epochs: one value per epoch
            t, ws, total = epoch - 1, self.warmup_epochs, self.epochs
        else:
            t = (epoch - 1) * self.steps_per_epoch + batch
            ws, total = self.warmup_steps, self.epochs * self.steps_per_epoch
        if t < ws:
            return self.base_lr * (t + 1) / ws
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * (t - ws) / (total - ws)))

    def lr_for_epoch(self, epoch: int) -> np.ndarray:
        """The ``steps_per_epoch`` learning rates of epoch ``epoch`` (float64, one per batch)."""
        out = np.array([self.lr_at(epoch, b) for b in range(self.steps_per_epoch)], dtype=np.float64)
        if not np.isfinite(out).all() or (out < 0).any():
            raise ValueError(f"the learning-rate schedule gave invalid values in epoch {epoch}: {out}")
        return out

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_lr": self.base_lr, "epochs": self.epochs,
                "steps_per_epoch": self.steps_per_epoch, "warmup": self.warmup,
                "step_size": self.step_size, "gamma": self.gamma}

    def __repr__(self) -> str:
        extra = {"cosine": f", warmup={self.warmup}", "cosine-epoch": f", warmup={self.warmup}",
                 "step": f", step_size={self.step_size}, gamma={self.gamma}"}
        return (f"LRSchedule({self.kind!r}, base_lr={self.base_lr}, epochs={self.epochs}, "
                f"steps_per_epoch={self.steps_per_epoch}{extra.get(self.kind, '')})")


def lr_schedule(spec: LRSpec, base_lr: float, epochs: int, steps_per_epoch: int, *,
                warmup: int | float = 5, step_size: int = 30, gamma: float = 0.1) -> LRSchedule:
    """Build a learning-rate schedule.

    Parameters
    ----------
    spec : {"cosine", "cosine-epoch", "constant", "step"} or callable
        Preset name, or ``f(epoch, batch) -> lr`` (epoch 1-indexed, batch 0-indexed).
    base_lr : float
        Peak learning rate (> 0).
    epochs, steps_per_epoch : int
        Length of the run; ``steps_per_epoch = ceil(n_samples / batch_size)``.
    warmup : int or float
        Linear warmup of ``"cosine"`` and ``"cosine-epoch"``: epochs (an int, clamped to
        ``epochs - 1``) or a fraction of the run (a float in ``[0, 1)``).
    step_size, gamma : int, float
        ``"step"``: multiply by ``gamma`` every ``step_size`` epochs.
    """
    base = check_real(base_lr, "lr", 0.0, math.inf, lo_open=True)
    epochs = check_int(epochs, "epochs")
    spe = check_int(steps_per_epoch, "steps_per_epoch")
    if callable(spec):
        return LRSchedule("custom", base, epochs, spe, fn=spec)
    if not isinstance(spec, str) or spec not in LR_PRESETS:
        raise ValueError(f"lr schedule must be one of {', '.join(LR_PRESETS)} or a callable, got {spec!r}")
    w = check_warmup(warmup, epochs)
    ss = check_int(step_size, "step_size")
    g = check_real(gamma, "gamma", 0.0, 1.0, lo_open=True)
    return LRSchedule(spec, base, epochs, spe, warmup=w if spec in ("cosine", "cosine-epoch") else 0,
                      step_size=ss, gamma=g)


# ------------------------------------------------------------------------------------------------
# SET evolution
# ------------------------------------------------------------------------------------------------


class EvolutionSchedule:
    """When SET evolution runs and with which prune fraction, for a run of ``epochs`` epochs.

    ``zeta_at(e)`` is the fraction of active blocks pruned (and regrown) after epoch ``e``
    (1-indexed) completes; 0 means no evolution. ``zeta_at(epochs)`` is always 0. Build one with
    :func:`evolution_schedule` or the constructors :meth:`paper`, :meth:`set`, :meth:`none`,
    :meth:`custom`.
    """

    def __init__(self, name: str, epochs: int, fn: Callable[[int], float],
                 params: dict[str, Any] | None = None, spec: Any = None, steps_per_epoch: int = 1) -> None:
        self.name = name
        #: the schedule it is built from (``name`` is the preset it was asked for by: an
        #: ``"input-cosine"`` schedule is of kind ``"cosine"``)
        self.kind = name
        self.epochs = check_int(epochs, "epochs")
        self.steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch")
        self._fn = fn
        self.params: dict[str, Any] = dict(params or {})
        self._spec = spec

    # -- presets -----------------------------------------------------------------------------
    @classmethod
    def paper(cls, epochs: int, zeta: float = 0.2, every: int = 10, warmup: int = 5,
              decay_fraction: float = 1.0 / 3.0) -> EvolutionSchedule:
        """Motif-SET schedule (see the module docstring for the exact epochs and values)."""
        epochs = check_int(epochs, "epochs")
        z0 = check_real(zeta, "zeta", 0.0, 1.0, hi_open=True)
        every = check_int(every, "every")
        warmup = check_int(warmup, "warmup", 0)
        frac = check_real(decay_fraction, "decay_fraction", 0.0, 1.0)
        decay_start = epochs * (1.0 - frac)

        def fn(e: int) -> float:
            if e <= warmup or (e - warmup) % every != 0:
                return 0.0
            if e <= decay_start:
                return z0
            return z0 * 0.5 * (1.0 + math.cos(math.pi * (e - decay_start) / (epochs - decay_start)))

        return cls("paper", epochs, fn, {"zeta": z0, "every": every, "warmup": warmup,
                                         "decay_fraction": frac})

    @classmethod
    def set(cls, epochs: int, zeta: float = 0.3) -> EvolutionSchedule:
        """SET's own schedule (``"set-epoch"``): ``zeta`` (default 0.3) after every epoch but the
        last. The ``"set"`` preset is :meth:`cosine` (see the module docstring)."""
        z0 = check_real(zeta, "zeta", 0.0, 1.0, hi_open=True)
        return cls("set-epoch", epochs, lambda e: z0, {"zeta": z0})

    @classmethod
    def cht(cls, epochs: int, zeta: float = 0.3, chain_removal: bool = True, fill: str = "none",
            link: str = "ch3_l3", removal: str = "sign", restore: bool = True) -> EvolutionSchedule:
        """CHT: ``zeta`` (default 0.3) after every epoch but the last, regrowth by CH3-L3 scores
        (``link="random"``: at random) with optional chain removal (the Trainer reads ``params``).
        The defaults are the CHT code's (:meth:`motifcore.MotifMLP.evolve_cht`): removal by sign,
        only positively scored links regrown, a link removed and regrown in the same step keeps
        its weight."""
        z0 = check_real(zeta, "zeta", 0.0, 1.0, hi_open=True)
        if not isinstance(chain_removal, bool):
            raise TypeError(f"chain_removal must be a bool, got {chain_removal!r}")
        if not isinstance(restore, bool):
            raise TypeError(f"restore must be a bool, got {restore!r}")
        if fill not in ("random", "none"):
            raise ValueError(f"fill must be 'random' or 'none', got {fill!r}")
        if link not in ("ch3_l3", "random"):
            raise ValueError(f"link must be 'ch3_l3' or 'random', got {link!r}")
        if removal not in ("magnitude", "sign"):
            raise ValueError(f"removal must be 'magnitude' or 'sign', got {removal!r}")
        return cls("cht", epochs, lambda e: z0, {"zeta": z0, "chain_removal": chain_removal, "fill": fill,
                                                 "link": link, "removal": removal, "restore": restore})

    @classmethod
    def cosine(cls, epochs: int, steps_per_epoch: int = 1, zeta: float = 0.3, interval: int = 100,
               stop: float = 0.75) -> EvolutionSchedule:
        """Step-counted schedule: every ``interval`` steps, RigL's cosine-decayed ``zeta``, none
        after ``stop`` of the run (see the module docstring)."""
        epochs = check_int(epochs, "epochs")
        spe = check_int(steps_per_epoch, "steps_per_epoch")
        z0 = check_real(zeta, "zeta", 0.0, 1.0, hi_open=True)
        interval = check_int(interval, "interval")
        stop = check_real(stop, "stop", 0.0, 1.0)
        t_end = stop * (epochs * spe)     # as RigL's and SET.cosine's: stop * total steps

        def fn(e: int) -> float:
            t = e * spe
            if t >= t_end or t // interval == (t - spe) // interval:
                return 0.0
            return cosine_fraction(z0, t, t_end)

        return cls("cosine", epochs, fn, {"zeta": z0, "interval": interval, "stop": stop},
                   steps_per_epoch=spe)

    @classmethod
    def none(cls, epochs: int) -> EvolutionSchedule:
        """Static sparse training (no evolution)."""
        return cls("none", epochs, lambda e: 0.0)

    @classmethod
    def custom(cls, spec: Callable[[int], float] | Mapping[int, float] | Sequence[float],
               epochs: int) -> EvolutionSchedule:
        """A callable ``epoch -> zeta``, a dict ``{epoch: zeta}`` or a list whose entry ``i`` is
        the zeta after epoch ``i + 1``. Epochs not covered get 0."""
        if callable(spec):
            return cls("custom", epochs, lambda e: float(spec(e)), spec=spec)
        if isinstance(spec, Mapping):
            table: dict[int, float] = {}
            for k, v in spec.items():
                e = check_int(int(k) if isinstance(k, str) and k.isdigit() else k, "evolution epoch")
                table[e] = check_real(v, f"zeta of epoch {e}", 0.0, 1.0, hi_open=True)
            return cls("custom", epochs, lambda e: table.get(e, 0.0), spec={str(k): v for k, v in table.items()})
        if isinstance(spec, (list, tuple, np.ndarray)):
            values = [check_real(v, f"zeta[{i}]", 0.0, 1.0, hi_open=True) for i, v in enumerate(spec)]
            return cls("custom", epochs, lambda e: values[e - 1] if e <= len(values) else 0.0, spec=values)
        raise TypeError(f"a custom evolution schedule must be a callable, dict or list, got {spec!r}")

    # -- queries -----------------------------------------------------------------------------
    def zeta_at(self, epoch: int) -> float:
        """Prune fraction of the evolution after epoch ``epoch`` (1-indexed); 0.0 = none."""
        e = check_int(epoch, "epoch")
        if e > self.epochs:
            raise ValueError(f"epoch must be in [1, {self.epochs}], got {epoch}")
        if e == self.epochs:
            return 0.0
        z = float(self._fn(e))
        if not (0.0 <= z < 1.0):
            raise ValueError(f"evolution schedule {self.name!r} gave zeta={z!r} after epoch {e}; "
                             "it must be in [0, 1)")
        return z

    def evolution_epochs(self) -> list[int]:
        """The epochs after which evolution runs (zeta > 0)."""
        return [e for e in range(1, self.epochs) if self.zeta_at(e) > 0.0]

    def zetas(self) -> list[float]:
        """``zeta_at(e)`` for ``e = 1 .. epochs``."""
        return [self.zeta_at(e) for e in range(1, self.epochs + 1)]

    def to_config(self) -> Any:
        """A JSON-serialisable description from which :func:`evolution_schedule` rebuilds this
        schedule, or ``None`` for a callable (which cannot be stored)."""
        if self.name in EVOLUTION_PRESETS:
            return {"preset": self.name, **self.params}
        if callable(self._spec):
            return None
        return {"custom": self._spec}

    def __repr__(self) -> str:
        ev = self.evolution_epochs()
        shown = ", ".join(map(str, ev[:6])) + (", ..." if len(ev) > 6 else "")
        return f"EvolutionSchedule({self.name!r}, epochs={self.epochs}, evolves after epochs [{shown}])"


def evolution_schedule(spec: EvolutionSpec, epochs: int, steps_per_epoch: int = 1,
                       **params: Any) -> EvolutionSchedule:
    """Resolve an evolution schedule.

    Parameters
    ----------
    spec : a name of :data:`EVOLUTION_PRESETS`, None, callable, dict, list, EvolutionSchedule or the dict
        returned by :meth:`EvolutionSchedule.to_config`
        ``None`` means ``"none"``. An ``EvolutionSchedule`` must have the same ``epochs``.
    epochs : int
        Length of the run.
    steps_per_epoch : int
        Optimizer steps per epoch (``"cosine"`` counts steps; the other presets ignore it).
    **params
        Preset parameters (``"paper"``: ``zeta, every, warmup, decay_fraction``; ``"set-epoch"``:
        ``zeta``; ``"cosine"``, ``"input-cosine"``, ``"set"``: ``zeta, interval, stop``; ``"cht"``:
        ``zeta, chain_removal, fill, link``).
    """
    epochs = check_int(epochs, "epochs")
    if spec is None:
        spec = "none"
    if isinstance(spec, EvolutionSchedule):
        if spec.epochs != epochs:
            raise ValueError(f"the evolution schedule is for {spec.epochs} epochs, the run has {epochs}")
        if spec.kind == "cosine" and spec.steps_per_epoch != steps_per_epoch:
            again = EvolutionSchedule.cosine(epochs, steps_per_epoch, **spec.params)
            again.name = spec.name
            return again
        return spec
    if isinstance(spec, str):
        if spec not in EVOLUTION_PRESETS:
            raise ValueError(f"evolution schedule must be one of {', '.join(EVOLUTION_PRESETS)}, a callable, "
                             f"a dict or a list, got {spec!r}")
        kind = EVOLUTIONS[spec].schedule
        if kind == "paper":
            out = EvolutionSchedule.paper(epochs, **params)
        elif kind == "set-epoch":
            out = EvolutionSchedule.set(epochs, **params)
        elif kind == "cosine":
            out = EvolutionSchedule.cosine(epochs, steps_per_epoch, **params)
        elif kind == "cht":
            out = EvolutionSchedule.cht(epochs, **params)
        else:
            if params:
                raise TypeError(f"the 'none' evolution schedule takes no parameters, got {sorted(params)}")
            out = EvolutionSchedule.none(epochs)
        out.name = spec
        return out
    if isinstance(spec, Mapping) and ("preset" in spec or set(spec) == {"custom"}):
        # the forms written by EvolutionSchedule.to_config()
        p: dict[str, Any] = {str(k): v for k, v in spec.items()}
        if "custom" in p:
            return EvolutionSchedule.custom(p["custom"], epochs)
        if p["preset"] == "cht":
            # to_config() writes every parameter; a stored CHT schedule without these two was
            # written before the CHT code's removal and restore became the defaults: it resumes
            # with the step it was trained with
            p.setdefault("removal", "magnitude")
            p.setdefault("restore", False)
        return evolution_schedule(p.pop("preset"), epochs, steps_per_epoch, **p)
    return EvolutionSchedule.custom(spec, epochs)
