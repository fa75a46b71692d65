"""RunConfig: what defines one training run. ``motifcore train`` builds one from its flags, a sweep
builds one per grid point, and checkpoints store it (``extra["run"]``) so a run can be resumed or
evaluated on the data it was trained on."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._internal import motif_spec
from ..defaults import BLOCK_GRAD, DEFAULT_RECIPE, OUTPUT_MOTIFS, recipe

__all__ = ["RunConfig"]


@dataclass(frozen=True)
class RunConfig:
    """One run. ``None`` hyper-parameters take the value of ``recipe`` (see motifcore.recipes).

    ``seed`` drives init, shuffling and evolution; ``data_seed`` the 2:1 split of datasets without
    an official one and the ``limit_train`` subsample. ``data_dir`` and ``threads`` say only where
    and how a run executes, not what it computes.
    """

    dataset: str
    hidden: tuple[int, ...] = (3000, 3000, 3000)
    motif: Any = 1                      #: int, or a per-layer list in JSON form (motif_spec)
    #: output layer of a scalar motif m: "one" (m = 1) or "divisible" (m if it divides the class
    #: count, else 1; motifcore.defaults.OUTPUT_MOTIFS)
    output_motif: str = "one"
    bias: str = "neuron"                #: "neuron" or "motif" (MotifMLP's bias)
    density: float | None = None        #: None: motifcore.defaults.DENSITY (ignored when epsilon is given)
    epsilon: float | None = None
    #: "output-dense", "uniform" or "erk" (motifcore.defaults.DISTRIBUTIONS); None: the recipe's
    distribution: str | None = None
    seed: int = 0
    data_seed: int = 0
    limit_train: int | None = None
    #: standardised inputs clipped to [-c, c]; None: the recipe's (motifcore 3, paper 0 = not clipped)
    input_clip: float | None = None
    epochs: int | None = None           #: None: motifcore.experiments.run.default_epochs
    recipe: str = DEFAULT_RECIPE
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    warmup: int | float | None = None
    step_size: int = 30
    gamma: float = 0.1
    optimizer: str | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    max_grad_norm: float | None = None
    block_grad: str = BLOCK_GRAD         #: "sum" or "paper" (Trainer's block_grad)
    dropout: float | None = None
    label_smoothing: float | None = None
    evolution: str | None = None
    evolution_params: Mapping[str, Any] = field(default_factory=dict)
    regrow: str | None = None
    evolve_layers: str | tuple[int, ...] | None = None   #: "all", "hidden", "input" or layer indices
    #: motif-size curriculum ((fraction, m), ...) (motifcore.train.curriculum); None: ``motif`` throughout
    motif_schedule: tuple[tuple[float, int], ...] | None = None
    motif_keep_norm: bool = False       #: rescale regrouped layers to their former Frobenius norm
    eval_every: int = 1
    checkpoint_every: int = 1
    data_dir: str | None = None
    threads: int | None = None

    def network_distribution(self) -> str | None:
        """How the run spreads its density over the layers: ``distribution``, else the recipe's
        (``None`` with ``epsilon``, whose per-layer densities are SET's rule)."""
        if self.distribution is not None:
            return self.distribution
        return None if self.epsilon is not None else str(recipe(self.recipe)["distribution"])

    def network_motif(self, n_classes: int) -> Any:
        """The motif spec of the network (:func:`motif_spec.for_model` form): ``motif``, with the
        output layer sharing ``m x m`` blocks when ``output_motif == "divisible"``, ``motif`` is
        one size ``m`` and ``m`` divides ``n_classes``. ValueError for an unknown
        ``output_motif``, or ``"divisible"`` with a per-layer list (which sets the output layer
        itself)."""
        if self.output_motif not in OUTPUT_MOTIFS:
            raise ValueError(f"output_motif must be one of {', '.join(OUTPUT_MOTIFS)}, got {self.output_motif!r}")
        motif = motif_spec.for_model(self.motif)
        if self.output_motif == "one":
            return motif
        if not isinstance(motif, int):
            raise ValueError("output_motif='divisible' applies to one motif size; a per-layer motif list sets the "
                             "output layer's motif itself")
        if motif == 1 or n_classes % motif != 0:
            return motif
        return [motif] * (len(self.hidden) + 1)

    def clip(self) -> float:
        """The run's input clip: ``input_clip``, else the recipe's (0: not clipped)."""
        return float(recipe(self.recipe)["input_clip"] if self.input_clip is None else self.input_clip)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["motif"] = motif_spec.to_json(self.motif)
        d["evolution_params"] = dict(self.evolution_params)
        if isinstance(self.evolve_layers, tuple):
            d["evolve_layers"] = list(self.evolve_layers)
        if self.motif_schedule is not None:
            d["motif_schedule"] = [list(s) for s in self.motif_schedule]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys (e.g. results stored beside it) are ignored. A
        dict without ``input_clip`` was stored before inputs were clipped: its run is not; one
        without ``label_smoothing`` was stored before label smoothing: its run had none."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw.setdefault("input_clip", 0.0)
        kw.setdefault("label_smoothing", 0.0)
        if "hidden" in kw:
            kw["hidden"] = tuple(kw["hidden"])
        if isinstance(kw.get("evolve_layers"), list):
            kw["evolve_layers"] = tuple(kw["evolve_layers"])
        if kw.get("motif_schedule") is not None:
            kw["motif_schedule"] = tuple((float(f), int(m)) for f, m in kw["motif_schedule"])
        return cls(**kw)

    @classmethod
    def from_checkpoint_extra(cls, extra: Mapping[str, Any] | None) -> RunConfig | None:
        """The run stored in a checkpoint's ``extra``: ``"run"`` (this format), ``"cli"`` (written by
        ``motifcore train`` before RunConfig: its data seed was the model seed) or ``"sweep_run"``."""
        extra = extra or {}
        if "run" in extra:
            return cls.from_dict(extra["run"])
        if "cli" in extra:
            old = dict(extra["cli"])
            return cls.from_dict({**old, "data_seed": old.get("seed", 0)})
        if "sweep_run" in extra:
            return cls.from_sweep(extra["sweep_run"])
        return None

    @classmethod
    def from_sweep(cls, config: Mapping[str, Any], threads: int | None = None) -> RunConfig:
        """The run of one sweep point (a config dict of :func:`motifcore.sweep.expand_runs`)."""
        return cls.from_dict({**config, "recipe": config.get("recipe", "paper"),
                              "evolution_params": dict(config.get("evolution_params") or {}),
                              "threads": threads or config.get("threads_per_run")})

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`motifcore.Trainer` (without ``epochs``)."""
        return {"recipe": self.recipe, "batch_size": self.batch_size, "lr": self.lr, "optimizer": self.optimizer,
                "momentum": self.momentum, "weight_decay": self.weight_decay, "max_grad_norm": self.max_grad_norm,
                "block_grad": self.block_grad,
                "lr_schedule": self.lr_schedule, "warmup": self.warmup, "step_size": self.step_size,
                "gamma": self.gamma, "dropout": self.dropout, "label_smoothing": self.label_smoothing,
                "evolution": self.evolution,
                "evolution_params": dict(self.evolution_params), "regrow": self.regrow,
                "evolve_layers": self.evolve_layers, "eval_every": self.eval_every, "seed": self.seed,
                "motif_schedule": self.motif_schedule, "motif_keep_norm": self.motif_keep_norm}
