"""The training loop: one native call per epoch, schedules, evaluation, evolution and callbacks.

One pass of :meth:`Trainer.fit`'s loop for epoch ``e`` (1-indexed) does, in this order:

0. with a ``motif_schedule``, the regrouping of the model into the motif of epoch ``e``'s stage,
   if it differs from the model's (:mod:`motifcore.train.curriculum`, :meth:`MotifMLP.regroup`);
1. the SET evolution scheduled after epoch ``e - 1`` (if ``zeta_at(e - 1) > 0``), seeded from
   ``(seed, e - 1)``;
2. training epoch ``e`` in one native call, with the sample order drawn from
   ``np.random.SeedSequence([seed, e])`` and one learning rate per batch;
3. evaluation on the held-out set if ``e % eval_every == 0`` or ``e`` is the last epoch;
4. the callbacks (``on_epoch_end``); any of them returning ``True`` stops training.

So evolution never runs after the final epoch or after an early stop, and the state at the end
of an epoch (what a checkpoint holds) is the trained network before its next evolution. Everything
random is derived from ``seed`` and the epoch number, so a run resumed from a checkpoint gives
bit-for-bit the same weights as an uninterrupted one (same thread count not even required: the
engine's results do not depend on it).

With a mask updater (``evolution="rigl"`` or ``"dsr"``, :mod:`motifcore.train.updaters`) there is
no step 1; step 2 is split at the updater's update batches into several native calls, with the
update run between them, seeded from ``(seed, step, layer)``; its state goes into checkpoints.

Row ``e`` of :attr:`Trainer.history` (:class:`~motifcore.train.history.History`, which lists its
columns) records the motif of epoch ``e`` and the switch of step 0, the evolution of step 1, the
training of step 2 and the evaluation of step 3; the callbacks are in
:mod:`motifcore.train.callbacks`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, cast

import numpy as np

from .._internal.io import PathLike
from .._internal.validation import (
    as_float_matrix,
    as_labels,
    check_betas,
    check_chunk,
    check_int,
    check_optimizer,
    check_positive,
    check_real,
    check_regrow,
    check_seed,
)
from ..defaults import (
    BLOCK_GRAD,
    DEFAULT_RECIPE,
    EPOCHS,
    FALLBACK_EVOLVE_LAYERS,
    FALLBACK_REGROW,
    resolve_recipe,
)
from ..errors import DivergedError, TrainingDivergedError
from ..nn import MotifMLP
from ..nn.regroup import hidden_motif
from .callbacks import Callback, as_callback
from .checkpoint import load_checkpoint, save_checkpoint, trainer_settings
from .curriculum import MotifSchedule, check_motif_schedule
from .distillation import KD
from .history import History
from .schedules import EvolutionSchedule, LRSchedule, check_warmup, evolution_schedule, lr_schedule
from .settings import (
    check_evolve_layers,
    check_schedule_fits,
    evolution_entry,
    evolved_layers,
    hidden_fan_in,
    weight_grad_factor,
)
from .updaters import DSR, UPDATERS, MaskUpdater, make_updater

__all__ = ["Trainer", "TrainingDivergedError"]


#: rows of the held-out set on which an evaluation counts dead ReLU neurons (the first ones)
DEAD_SAMPLES = 2048

# ------------------------------------------------------------------------------------------------
# settings
# ------------------------------------------------------------------------------------------------


def _derive(seed: int, *words: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, *words])


_EVOLUTION_TAG = 0x5E7


class Trainer:
    """Train a :class:`MotifMLP` with the Motif-SET recipe (docs/design.md §3).

    Parameters
    ----------
    model : MotifMLP
    epochs : int, default 50 (:data:`motifcore.defaults.EPOCHS`)
        Length of the run (the paper uses 300).
    recipe : {"motifcore", "paper"}, default "motifcore"
        Named settings (:data:`motifcore.defaults.RECIPES`) for every hyper-parameter below left as
        ``None``; the defaults quoted below are the ``"motifcore"`` recipe's.
    batch_size : int, default 128
    lr : float, default 0.003
        Peak learning rate. Left as ``None``, the recipe's: ``"motifcore"`` gives 3e-3 to networks
        whose hidden-to-hidden layers have at most 100 incoming edges per neuron and scales it by
        ``100 / fan_in`` above (:data:`motifcore.defaults.LR_FAN_IN`: 1e-3 for three 3000-wide
        layers at density 0.1); the resolved value is :attr:`lr` and what ``config`` stores.
    lr_schedule : {"cosine", "cosine-epoch", "constant", "step"} or callable ``f(epoch, batch) -> lr``
        See :mod:`motifcore.train.schedules`. ``"cosine"`` has a linear warmup of ``warmup``
        and moves the lr at every step; ``"cosine-epoch"`` is the same curve counted in epochs
        (one lr per epoch, the paper's Table 3 read literally).
    warmup : int or float, default 0.05
        Warmup of ``"cosine"``/``"cosine-epoch"``: epochs (an int; the paper's 5) or a fraction
        of the run (a float in [0, 1)).
    step_size, gamma : int, float
        ``"step"`` schedule: multiply the lr by ``gamma`` every ``step_size`` epochs.
    optimizer : {"sgd", "adam", "adamw"}, default "adamw"
        SGD with momentum (the paper's), Adam with L2 ``weight_decay`` in the gradient, or AdamW
        with decoupled ``weight_decay``. All run in place in the engine.
    momentum, weight_decay : float, default 0.9, 0.1 (the paper recipe: 5e-4, L2)
        An ``optimizer`` other than the recipe's, given without ``weight_decay``, gets the decay
        that belongs to it (:data:`motifcore.defaults.WEIGHT_DECAY_OF`: 5e-4 L2 for SGD and Adam,
        0.1 decoupled for AdamW). A decoupled decay not given rises as the recipe scales the
        learning rate down for wide hidden layers, keeping ``lr * weight_decay``
        (:data:`motifcore.defaults.DECOUPLED`: 0.3 at 1e-3).
    betas, eps : (float, float), float, default (0.9, 0.999), 1e-8
        Adam/AdamW moment decays and denominator term.
    max_grad_norm : float, default 10.0
        If > 0, each step's gradient (all layers together) is rescaled to at most this L2 norm.
    block_grad : {"sum", "paper"}, default "sum"
        The gradient of a block weight. ``"sum"``: the exact gradient of the block-constant
        network, the sum of the gradients of the block's edges. ``"paper"``: that sum times
        ``1/m`` in every layer with ``m x m`` motifs (the Motif-SET paper's ``dL/dW_sub =
        (1/m) A^T delta_sub``; layers with ``m = 1`` unchanged; a rectangular motif is a
        ValueError, the paper defines none). The factor scales the data gradient of the block
        weights only (not the biases), before clipping, weight decay and momentum
        (:meth:`MotifMLP.train_epoch` ``weight_grad_factor``). With SGD, momentum and L2 weight
        decay in the gradient this is *not* ``lr / m``: in exact arithmetic it equals ``lr / m``
        with ``weight_decay * m`` in those layers only. Not part of either recipe.
    dropout : float, default 0.2
        Inverted dropout on hidden activations.
    label_smoothing : float, default 0.2 (the paper recipe: 0)
        Train against ``(1 - label_smoothing) onehot(y) + label_smoothing / n_classes``
        (:meth:`MotifMLP.train_epoch`); the reported training loss is then ``(1 - e) CE + e KL(u
        || p)`` (the smoothed cross-entropy less ``e log n_classes``), the evaluation loss stays
        the cross-entropy, so training losses of runs with and without it do not compare. A run
        with ``distill`` and no label smoothing given trains without it (the two are not
        combined).
    evolution : a name of :data:`motifcore.defaults.EVOLUTIONS`, callable, dict, list or EvolutionSchedule
        How the block pattern changes, default ``"input-cosine"`` (the recipe's). By name:
        ``"input-cosine"`` (motifcore's method: a cosine-decayed fraction every 100 steps, input
        layer, regrowth at zero), ``"set"`` (SET: after every epoch the smallest blocks of every
        layer removed and as many regrown with fresh He-uniform weights, the fraction annealed as
        RigL's, from 0.3 by a cosine, none in the last quarter), ``"set-epoch"`` (SET on its
        paper's schedule, 0.3 after every epoch), ``"paper"`` (Motif-SET's schedule, every layer, He
        regrowth), ``"cht"`` (CH3-L3 regrowth with chain removal, :meth:`MotifMLP.evolve_cht`,
        every layer, at zero), ``"rigl"``/``"dsr"`` (mask updaters that run every few optimizer
        steps inside an epoch, every layer: :mod:`motifcore.train.updaters`), ``"cosine"`` (the
        schedule of ``"input-cosine"`` alone) and ``"none"``; or a custom schedule (see
        :mod:`motifcore.train.schedules`). ``evolution_params`` are passed to the preset (e.g.
        ``{"zeta": 0.3}``, ``{"alpha": 0.3}``).
    regrow : {"he", "zero", "pruned", "normal"}, optional
        Value of regrown blocks (see :meth:`MotifLayer.prune_regrow`; ``"normal"`` is the paper's
        Algorithm 3, N(0, sigma^2) with sigma the std of the He initialisation). Default: the evolution's
        own (``"zero"`` for ``"input-cosine"`` and ``"cht"``, ``"he"`` for ``"set"``,
        ``"set-epoch"`` and ``"paper"``), else ``"he"``. The resolved value is in :attr:`config`.
    zero_init : bool, default False
        Same as ``regrow="zero"`` (kept for existing code).
    evolve_layers : {"all", "hidden", "input"} or sequence of int, optional
        Which weight layers evolution changes: every layer, all but the output layer, only the
        first (input) layer, or the given layer indices (0 = input layer). Default: the
        evolution's own (``"input"`` for ``"input-cosine"``, ``"all"`` for every other method),
        else ``"all"``. The resolved value is in :attr:`config`.
    motif_schedule : list of (fraction, m), or "0:1,0.5:2,0.8:4", optional
        A motif-size curriculum (:mod:`motifcore.train.curriculum`, docs/curriculum.md): from
        ``fraction`` of the run on, the hidden layers have motif ``m``; the first stage (fraction 0)
        is the model's motif, each later ``m`` a multiple of the one before. The model is
        regrouped (:meth:`MotifMLP.regroup`, block budget at each layer's density) at the start of
        a stage's first epoch; the history records the motif of every epoch and each switch. Not
        with ``evolution="dsr"`` (its prune count is a block count of the first update).
    motif_keep_norm : bool, default False
        At each motif switch, rescale every regrouped layer's weights to the Frobenius norm the
        layer had (``MotifMLP.regroup(keep_norm=True)``).
    distill : KD, optional
        Knowledge distillation from a teacher's logits (:class:`motifcore.train.distillation.KD`;
        one row per training sample): the engine trains on ``(1 - lam) CE + lam T² KL`` and
        ``train_loss`` reports that loss. Not stored in checkpoints beyond ``temperature`` and
        ``lam``: pass it again to :meth:`from_checkpoint`.
    eval_every : int, default 1
        Evaluate on the held-out set every this many epochs (and always after the last epoch).
    eval_batch_size : int or "auto", default "auto"
        Chunk of the held-out evaluation; ``"auto"`` sizes it by memory
        (:meth:`MotifMLP.eval_chunk`: the largest chunk, up to 256, whose inference panels fit
        the model's ``eval_memory``, 256 MiB by default). The result does not depend on the chunk.
    seed : int, default 0
        Seed of the shuffling and of the evolution (the model has its own init seed).
    shuffle : bool, default True
        Visit the training samples in a new random order every epoch (``False``: in the given order).
    callbacks : sequence of Callback or functions ``f(trainer, epoch, logs)``
        See :mod:`motifcore.train.callbacks`.
    progress : bool, default True
        Show a tqdm progress bar (epochs, loss, accuracy, s/epoch, ETA) on stderr.

    When :meth:`fit` returns (or raises), the model's training workspace is released
    (:meth:`MotifMLP.release_workspace`): a trained model holds its weights and optimizer state,
    not the panels of its last batch. A further ``fit`` allocates them again.
    """

    def __init__(
        self,
        model: MotifMLP,
        *,
        epochs: int = EPOCHS,
        recipe: str = DEFAULT_RECIPE,
        batch_size: int | None = None,
        lr: float | None = None,
        lr_schedule: str | Callable[[int, int], float] | None = None,
        warmup: int | float | None = None,
        step_size: int = 30,
        gamma: float = 0.1,
        optimizer: str | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        betas: tuple[float, float] | None = None,
        eps: float | None = None,
        max_grad_norm: float | None = None,
        block_grad: str = BLOCK_GRAD,
        dropout: float | None = None,
        label_smoothing: float | None = None,
        evolution: Any = None,
        evolution_params: Mapping[str, Any] | None = None,
        regrow: str | None = None,
        zero_init: bool = False,
        evolve_layers: str | Sequence[int] | None = None,
        motif_schedule: MotifSchedule | Sequence[tuple[float, int]] | str | None = None,
        motif_keep_norm: bool = False,
        distill: KD | None = None,
        eval_every: int = 1,
        eval_batch_size: int | str = "auto",
        seed: int = 0,
        shuffle: bool = True,
        callbacks: Sequence[Callback | Callable[..., bool | None]] | None = None,
        progress: bool = True,
    ) -> None:
        if not isinstance(model, MotifMLP):
            raise TypeError(f"model must be a MotifMLP, got {type(model).__name__}")
        self.model = model
        self.recipe = recipe
        if zero_init and regrow is None:
            regrow = "zero"
        if distill is not None and label_smoothing is None:
            label_smoothing = 0.0          # distillation replaces the recipe's label smoothing
        given = {"batch_size": batch_size, "lr": lr, "lr_schedule": lr_schedule, "warmup": warmup,
                 "optimizer": optimizer, "momentum": momentum, "weight_decay": weight_decay, "betas": betas,
                 "eps": eps, "max_grad_norm": max_grad_norm, "dropout": dropout,
                 "label_smoothing": label_smoothing, "evolution": evolution}
        r = resolve_recipe(recipe, given, hidden_fan_in(model))
        batch_size, lr, lr_schedule, warmup = r["batch_size"], r["lr"], r["lr_schedule"], r["warmup"]
        optimizer, momentum, weight_decay, betas = r["optimizer"], r["momentum"], r["weight_decay"], r["betas"]
        eps, max_grad_norm, dropout, evolution = r["eps"], r["max_grad_norm"], r["dropout"], r["evolution"]
        # regrowth and layers: the caller's, else the evolution method's own, else SET's
        entry = evolution_entry(evolution)
        if regrow is None:
            regrow = entry.regrow if entry is not None and entry.regrow is not None else FALLBACK_REGROW
        if evolve_layers is None:
            evolve_layers = (entry.evolve_layers if entry is not None and entry.evolve_layers is not None
                             else FALLBACK_EVOLVE_LAYERS)
        self.epochs = check_int(epochs, "epochs")
        self.batch_size = check_int(batch_size, "batch_size")
        if not callable(lr_schedule) and not isinstance(lr_schedule, str):
            raise TypeError(f"lr_schedule must be a preset name or a callable, got {lr_schedule!r}")
        self.lr = float(lr)
        self.lr_schedule = lr_schedule
        self.warmup = check_warmup(warmup, self.epochs)
        self.step_size = check_int(step_size, "step_size")
        self.gamma = float(gamma)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.dropout = float(dropout)
        self.label_smoothing = check_real(r["label_smoothing"], "label_smoothing", 0.0, 1.0, hi_open=True)
        for name, v, ok in (("lr", self.lr, self.lr > 0), ("momentum", self.momentum, 0 <= self.momentum < 1),
                            ("weight_decay", self.weight_decay, self.weight_decay >= 0),
                            ("dropout", self.dropout, 0 <= self.dropout < 1)):
            if not (math.isfinite(v) and ok):
                raise ValueError(f"{name}={v} is out of range")
        self.optimizer = check_optimizer(optimizer)
        self.betas = check_betas(betas)
        self.eps = check_positive(eps, "eps")
        self.max_grad_norm = check_real(max_grad_norm, "max_grad_norm", 0.0)
        self.block_grad = block_grad
        self.weight_grad_factor = weight_grad_factor(block_grad, model)
        self.evolution = evolution
        self.evolution_params = dict(evolution_params or {})
        self.updater: MaskUpdater | None = None
        if (isinstance(evolution, str) and evolution in UPDATERS) or (
                isinstance(evolution, Mapping) and "updater" in evolution):
            self.updater = make_updater(evolution, **self.evolution_params)
        self.regrow = check_regrow(regrow, bool(zero_init))
        self.zero_init = self.regrow == "zero"
        self.evolve_layers = check_evolve_layers(evolve_layers, len(model.layers))
        self.motif_schedule = check_motif_schedule(motif_schedule)
        if not isinstance(motif_keep_norm, (bool, np.bool_)):
            raise TypeError(f"motif_keep_norm must be a bool, got {motif_keep_norm!r}")
        self.motif_keep_norm = bool(motif_keep_norm)
        if self.motif_schedule is not None:
            check_schedule_fits(self.motif_schedule, model)
            if isinstance(self.updater, DSR):
                raise ValueError("motif_schedule cannot be combined with evolution='dsr': DSR's prune count is a "
                                 "block count of its first update, which a motif switch changes")
        if distill is not None and not isinstance(distill, KD):
            raise TypeError(f"distill must be a motifcore.train.distillation.KD, got {type(distill).__name__}")
        if distill is not None and distill.teacher_logits.shape[1] != model.n_classes:
            raise ValueError(f"distill has {distill.teacher_logits.shape[1]} teacher logits per sample, the model "
                             f"has {model.n_classes} classes")
        if distill is not None and self.label_smoothing > 0:
            raise ValueError(f"label_smoothing={self.label_smoothing} cannot be combined with distill (a teacher's "
                             "soft targets replace the smoothed ones)")
        self.distill = distill
        self.eval_every = check_int(eval_every, "eval_every")
        self.eval_batch_size: int | str = check_chunk(eval_batch_size, "eval_batch_size")
        self.seed = check_seed(seed)
        self.shuffle = bool(shuffle)
        self.callbacks: list[Any] = [as_callback(c) for c in callbacks or []]
        self.progress = bool(progress)
        # resolve the schedules now so bad values fail at construction, not after an epoch
        self.lr_schedule_for(self.batch_size)
        self.evolution_schedule = self.evolution_schedule_for(self.batch_size)

        self.history = History()
        self.epoch = 0                 # completed epochs
        self.evolved_through = 0       # last epoch whose scheduled evolution has been applied
        self.n_train: int | None = None
        self.stopped_early = False
        self.checkpoint_extra: dict[str, Any] = {}   # ``extra`` of the checkpoint resumed from
        self._dirty = False            # True while the model is between consistent states

    # ---- schedules ---------------------------------------------------------------------------
    def lr_schedule_for(self, n_samples: int) -> LRSchedule:
        """The per-batch learning-rate schedule of a run on ``n_samples`` training samples."""
        steps = -(-check_int(n_samples, "n_samples") // self.batch_size)
        return lr_schedule(self.lr_schedule, self.lr, self.epochs, steps, warmup=self.warmup,
                           step_size=self.step_size, gamma=self.gamma)

    def evolution_schedule_for(self, n_samples: int) -> EvolutionSchedule:
        """The evolution schedule of a run on ``n_samples`` training samples."""
        steps = -(-check_int(n_samples, "n_samples") // self.batch_size)
        if self.updater is not None:     # the updater changes the pattern; no SET between epochs
            return evolution_schedule("none", self.epochs, steps)
        return evolution_schedule(self.evolution, self.epochs, steps, **self.evolution_params)

    @property
    def config(self) -> dict[str, Any]:
        """The hyper-parameters as a JSON-serialisable dict (what a checkpoint stores).
        Callable schedules are stored as ``None`` and must be passed again on resume."""
        evo = self.updater.to_config() if self.updater is not None else self.evolution_schedule.to_config()
        return {
            "epochs": self.epochs, "recipe": self.recipe, "batch_size": self.batch_size, "lr": self.lr,
            "lr_schedule": self.lr_schedule if isinstance(self.lr_schedule, str) else None,
            "warmup": self.warmup, "step_size": self.step_size, "gamma": self.gamma,
            "optimizer": self.optimizer, "momentum": self.momentum, "weight_decay": self.weight_decay,
            "betas": list(self.betas), "eps": self.eps, "max_grad_norm": self.max_grad_norm,
            "block_grad": self.block_grad, "dropout": self.dropout, "label_smoothing": self.label_smoothing,
            "evolution": evo, "regrow": self.regrow,
            "evolve_layers": self.evolve_layers if isinstance(self.evolve_layers, str) else list(self.evolve_layers),
            "motif_schedule": self.motif_schedule.to_config() if self.motif_schedule is not None else None,
            "motif_keep_norm": self.motif_keep_norm,
            "distill": self.distill.to_config() if self.distill is not None else None,
            "eval_every": self.eval_every,
            "eval_batch_size": self.eval_batch_size, "seed": self.seed,
            "shuffle": self.shuffle,
        }

    # ---- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self, path: PathLike, extra: Mapping[str, Any] | None = None) -> Path:
        """Save model, optimizer state, epoch, config and history (see :mod:`motifcore.train.checkpoint`)."""
        if self._dirty:
            raise RuntimeError("the trainer was interrupted inside an epoch; its state is not a "
                               "consistent point to checkpoint (use the last saved checkpoint)")
        state: dict[str, Any] = {"evolved_through": self.evolved_through, "n_train": self.n_train,
                                 "stopped_early": self.stopped_early}
        if self.updater is not None:
            state["updater"] = self.updater.get_state()
        return save_checkpoint(path, self.model, epoch=self.epoch, trainer=self.config, trainer_state=state,
                               history=self.history.to_dict(), extra=extra)

    @classmethod
    def from_checkpoint(cls, path: PathLike, *, callbacks: Sequence[Any] | None = None,
                        progress: bool = True, num_threads: int | None = None, **overrides: Any) -> Trainer:
        """A trainer restored from a checkpoint written by :meth:`save_checkpoint`, ready to
        continue with :meth:`fit` (same data). ``overrides`` replace stored hyper-parameters
        (required for callable schedules, which are not stored; any other change makes the
        continued run differ from an uninterrupted one)."""
        ck = load_checkpoint(path, num_threads=num_threads)
        cfg = trainer_settings(ck, path, overrides)
        try:
            trainer = cls(ck.model, callbacks=callbacks, progress=progress, **cfg)
        except TypeError as exc:
            raise ValueError(f"{path}: invalid trainer configuration: {exc}") from None
        trainer.epoch = int(ck.epoch)
        state = ck.trainer_state or {}
        trainer.evolved_through = int(state.get("evolved_through", 0))
        trainer.n_train = state.get("n_train")
        trainer.stopped_early = bool(state.get("stopped_early", False))
        if trainer.updater is not None and "updater" in state:
            trainer.updater.set_state(state["updater"])
        trainer.history = History.from_dict(ck.history) if ck.history else History()
        trainer.checkpoint_extra = ck.extra
        return trainer

    @classmethod
    def resume(cls, path: PathLike, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
               **kwargs: Any) -> Trainer:
        """``from_checkpoint(path, **kwargs)`` then ``fit(X, y, X_val, y_val)``; returns the trainer
        (its ``model`` and ``history``)."""
        trainer = cls.from_checkpoint(path, **kwargs)
        trainer.fit(X, y, X_val, y_val)
        return trainer

    # ---- training ----------------------------------------------------------------------------
    def _order(self, epoch: int, n: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return np.random.default_rng(_derive(self.seed, epoch)).permutation(n)

    def _evolve(self, after_epoch: int) -> dict[str, Any]:
        zeta = self.evolution_schedule.zeta_at(after_epoch)
        out: dict[str, Any] = {"zeta": 0.0, "pruned": None, "regrown": None, "evolution_time": 0.0}
        if zeta <= 0.0 or self.evolved_through >= after_epoch:
            return out
        seed = int(_derive(self.seed, after_epoch, _EVOLUTION_TAG).generate_state(1, np.uint64)[0])
        self._dirty = True
        t0 = time.perf_counter()
        n_layers = len(self.model.layers)
        chosen = evolved_layers(self.evolve_layers, n_layers)
        zetas = [zeta if i in chosen else 0.0 for i in range(n_layers)]
        sched = self.evolution_schedule
        if sched.kind == "cht":
            cht = self.model.evolve_cht(zetas, seed=seed, chain_removal=sched.params["chain_removal"],
                                        fill=sched.params["fill"], regrow=self.regrow,
                                        link=sched.params.get("link", "ch3_l3"),
                                        removal=sched.params.get("removal", "magnitude"),
                                        restore=sched.params.get("restore", False))
            pruned = [s["removed"] + s["cr_removed"] for s in cht]
            regrown = [s["regrown_score"] + s["regrown_fill"] for s in cht]
        else:
            pruned = regrown = list(self.model.evolve(zetas, seed=seed, regrow=self.regrow))
        dt = time.perf_counter() - t0
        self.evolved_through = after_epoch
        self._dirty = False
        # SET keeps |P| constant; CHT too unless fill="none" finds too few scored positions
        out.update(zeta=zeta, pruned=pruned, regrown=regrown, evolution_time=dt)
        return out

    def _switch_motif(self, e: int) -> tuple[dict[str, Any] | None, float]:
        """Regroup the model into the motif the schedule has for epoch ``e`` if it has another one;
        returns (the switch for the history row, or None; seconds)."""
        if self.motif_schedule is None:
            return None, 0.0
        want = self.motif_schedule.motif_for_epoch(e, self.epochs)
        have = hidden_motif(self.model)
        if have == want:
            return None, 0.0
        t0 = time.perf_counter()
        layers = self.model.regroup(want, keep_norm=self.motif_keep_norm)   # all or nothing
        self.weight_grad_factor = weight_grad_factor(self.block_grad, self.model)   # 1/m of the new motifs
        dt = time.perf_counter() - t0
        return {"from": have, "to": want, "blocks_before": [r["blocks_before"] for r in layers],
                "covered": [r["covered"] for r in layers], "blocks": [r["blocks"] for r in layers],
                "scale": [r["scale"] for r in layers]}, dt

    def _loss_args(self) -> dict[str, Any]:
        kd = self.distill
        if kd is None:
            return {"label_smoothing": self.label_smoothing} if self.label_smoothing > 0 else {}
        return {"teacher": kd.teacher_logits, "temperature": kd.temperature, "kd_lambda": kd.lam}

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> History:
        """Train from the current epoch up to ``epochs``; returns :attr:`history`.

        ``X``/``y`` are validated once here (float32 features, integer labels in
        ``[0, n_classes)``); ``X_val``/``y_val`` (both or neither) are the held-out set.
        """
        model = self.model
        X = as_float_matrix(X, model.n_features, "X")
        y = as_labels(y, X.shape[0], model.n_classes, "y")
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        if X_val is not None:
            X_val = as_float_matrix(X_val, model.n_features, "X_val")
            y_val = as_labels(y_val, X_val.shape[0], model.n_classes, "y_val")
        n = X.shape[0]
        if self.n_train is not None and self.epoch > 0 and n != self.n_train:
            raise ValueError(f"this run was trained on {self.n_train} samples so far, got {n}: "
                             "resume with the same training data")
        if self.distill is not None and self.distill.teacher_logits.shape[0] != n:
            raise ValueError(f"distill holds teacher logits for {self.distill.teacher_logits.shape[0]} samples, "
                             f"the training set has {n}")
        self.n_train = n
        lr_sched = self.lr_schedule_for(n)
        self.evolution_schedule = self.evolution_schedule_for(n)
        if self._dirty:
            raise RuntimeError("the trainer was interrupted inside an epoch; restart from a checkpoint")
        if self.motif_schedule is not None:
            want = self.motif_schedule.motif_after(self.epoch, self.epochs)
            if hidden_motif(model) != want:
                raise ValueError(f"the model has motif {hidden_motif(model)!r} but the motif schedule "
                                 f"({self.motif_schedule}) has m = {want} after epoch {self.epoch}")
        self.stopped_early = False

        for c in self.callbacks:
            getattr(c, "on_train_begin", lambda t: None)(self)
        bar = None
        if self.progress and self.epoch < self.epochs:
            from tqdm.auto import tqdm

            # disable=None: no bar when stderr is not a terminal (it would glue to the lines of a log)
            bar = tqdm(total=self.epochs, initial=self.epoch, unit="epoch", desc="train", dynamic_ncols=True,
                       disable=None)
        try:
            for e in range(self.epoch + 1, self.epochs + 1):
                row = self._run_epoch(e, X, y, X_val, y_val, lr_sched)
                if bar is not None:
                    post = {"loss": f"{row['train_loss']:.4f}"}
                    if row["val_accuracy"] is not None:
                        post["acc"] = f"{row['val_accuracy']:.4f}"
                    post["s/ep"] = f"{row['train_time']:.2f}"
                    bar.set_postfix(post, refresh=False)
                    bar.update(1)
                stop = False
                for c in self.callbacks:
                    stop = bool(c.on_epoch_end(self, e, dict(row))) or stop
                if stop:
                    self.stopped_early = e < self.epochs
                    break
        finally:
            if bar is not None:
                bar.close()
            model.release_workspace()
        for c in self.callbacks:
            getattr(c, "on_train_end", lambda t: None)(self)
        return self.history

    def _run_epoch(self, e: int, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None,
                   y_val: np.ndarray | None, lr_sched: LRSchedule) -> dict[str, Any]:
        model = self.model
        switch, switch_time = self._switch_motif(e)
        evo = self._evolve(e - 1) if e > 1 else {"zeta": 0.0, "pruned": None, "regrown": None,
                                                  "evolution_time": 0.0}
        order = self._order(e, X.shape[0])
        lrs = lr_sched.lr_for_epoch(e)
        self._dirty = True
        try:
            if self.updater is None:
                loss, train_time = self._train_chunk(X, y, order, lrs)
            else:
                loss, train_time, evo = self._train_with_updates(e, X, y, order, lrs)
        except DivergedError as exc:
            raise TrainingDivergedError(f"training diverged in epoch {e} ({exc}); lower the learning rate "
                                        f"(lr={self.lr})") from None
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"training diverged in epoch {e} (loss {loss}); lower the learning "
                                        f"rate (lr={self.lr})")
        val_loss = val_acc = None
        eval_time = 0.0
        disconnected = dead = None
        if e % self.eval_every == 0 or e == self.epochs:
            disconnected = model.disconnected_neurons()
            if X_val is not None:
                t0 = time.perf_counter()
                val_loss, val_acc = model.evaluate(X_val, y_val, batch_size=self.eval_batch_size, check=False)
                eval_time = time.perf_counter() - t0
                dead = model.dead_neurons(X_val[:DEAD_SAMPLES])
        row = {
            "epoch": e, "train_loss": float(loss), "val_loss": val_loss, "val_accuracy": val_acc,
            "train_time": train_time, "eval_time": eval_time, "evolution_time": evo["evolution_time"],
            "lr_start": float(lrs[0]), "lr_end": float(lrs[-1]), "zeta": evo["zeta"],
            "pruned": evo["pruned"], "regrown": evo["regrown"], "steps": model.steps,
            "disconnected": disconnected, "dead": dead,
            "motif": hidden_motif(model), "motif_switch": switch, "switch_time": switch_time,
        }
        self.history.append(row)
        self.epoch = e
        self._dirty = False
        return row

    def _train_chunk(self, X: np.ndarray, y: np.ndarray, order: np.ndarray, lrs: np.ndarray) -> tuple[float, float]:
        """One native call over the batches of ``order``; (mean loss, seconds)."""
        t0 = time.perf_counter()
        loss = self.model.train_epoch(X, y, batch_size=self.batch_size, lr=cast("Sequence[float]", lrs),
                                      momentum=self.momentum, weight_decay=self.weight_decay, dropout=self.dropout,
                                      order=order, check=False, optimizer=self.optimizer, betas=self.betas,
                                      eps=self.eps, max_grad_norm=self.max_grad_norm,
                                      weight_grad_factor=self.weight_grad_factor, **self._loss_args())
        return loss, time.perf_counter() - t0

    def _train_with_updates(self, e: int, X: np.ndarray, y: np.ndarray, order: np.ndarray,
                            lrs: np.ndarray) -> tuple[float, float, dict[str, Any]]:
        """Epoch ``e`` split at the mask updater's update batches: native calls for the batches in
        between, the update before each of them. Returns (mean loss over the batches, training
        seconds, the evolution columns of the history row)."""
        assert self.updater is not None
        B, spe = self.batch_size, len(lrs)
        n_layers = len(self.model.layers)
        chosen = evolved_layers(self.evolve_layers, n_layers)
        total_steps = self.epochs * spe
        loss_sum, train_time, evo_time = 0.0, 0.0, 0.0
        pruned, regrown = [0] * n_layers, [0] * n_layers
        fraction, n_updates, b0 = 0.0, 0, 0

        def chunk(b_lo: int, b_hi: int) -> None:
            nonlocal loss_sum, train_time
            part = order[b_lo * B:b_hi * B]
            if part.size:
                loss, dt = self._train_chunk(X, y, part, lrs[b_lo:b_hi])
                loss_sum += loss * part.size
                train_time += dt

        for u in self.updater.update_batches(e, spe, self.epochs):
            chunk(b0, u)
            rows = order[u * B:(u + 1) * B]
            t0 = time.perf_counter()
            info = self.updater.update(self.model, (e - 1) * spe + u, rows, X, y, layers=chosen,
                                       total_steps=total_steps, seed=self.seed, dropout=self.dropout)
            evo_time += time.perf_counter() - t0
            n_updates += 1
            fraction = float(info["fraction"])
            pruned = [a + b for a, b in zip(pruned, info["pruned"])]
            regrown = [a + b for a, b in zip(regrown, info["regrown"])]
            if self.updater.consumes_batch:
                loss_sum += float(info["loss"]) * rows.size
                b0 = u + 1
            else:
                b0 = u
        chunk(b0, spe)
        evo = {"zeta": fraction, "pruned": pruned if n_updates else None,
               "regrown": regrown if n_updates else None, "evolution_time": evo_time}
        return loss_sum / max(order.size, 1), train_time, evo

    def __repr__(self) -> str:
        return (f"Trainer(epoch {self.epoch}/{self.epochs}, batch_size={self.batch_size}, lr={self.lr}, "
                f"lr_schedule={self.lr_schedule!r}, "
                f"evolution={self.updater.name if self.updater is not None else self.evolution_schedule!r})")
