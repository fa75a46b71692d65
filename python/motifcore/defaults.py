"""The one owner of motifcore's defaults and registries.

The Trainer, the estimator, ``motifcore train``/``motifcore sweep``, the sweep spec and the run
configuration read their defaults here; the CLI builds its ``choices=`` from the registries. This
module imports nothing but the standard library, so any part of the package (and tools outside
it) can read it without loading the engine.

**Recipes** (:data:`RECIPES`) are complete sets of training settings plus the network layout they
were chosen with. A recipe fills every setting a caller leaves unset (``Trainer(model,
recipe="paper", lr=0.05)`` is the paper's recipe with another learning rate).

``"motifcore"`` (:data:`DEFAULT_RECIPE`: the Trainer, the CLI and the estimator)
    What measured best across Fashion-MNIST and six scikit-feature sets (docs/results.md has the
    ablation that chose it): AdamW (lr 3e-3, betas 0.9/0.999, decoupled weight decay 0.1; the
    learning rate is 3x scikit-learn's 1e-3 because a sparse layer's He weights are
    ``1/sqrt(density)`` larger than a dense layer's, so the same Adam step moves them relatively
    less: issue 22's ablation; on networks with wide hidden layers it is scaled down, see
    :data:`LR_FAN_IN`, and the decay up in proportion, :data:`DECOUPLED`. Decoupled, not L2 in
    the gradient: Adam normalises the gradient of each weight, so for a neuron that is rarely
    active the L2 term alone sets its step, a fixed step of about ``lr`` towards zero; on the
    paper's 3000-wide layers that collapsed a third of the hidden neurons to all-zero incoming
    weights over 50 epochs (dead, and their weights subnormal), where AdamW leaves at most 1.3
    %: docs/results.md, section 5), dropout 0.2 on hidden activations, label smoothing 0.2
    (:data:`LABEL_SMOOTHING`), batch 128, a cosine learning rate whose warmup is 5 % of the
    run's steps, the ``"input-cosine"`` evolution (below), the gradient clipped to a global norm
    of 10 (it acts only on rare exploding steps), on the ``"output-dense"`` network (hidden
    layers at the density, the output layer dense), on inputs standardised per feature and
    clipped to ``input_clip`` = 3 standard deviations (:data:`INPUT_CLIP`; issue 22's ablation
    in docs/results.md: a rare feature, a word in 1 % of the documents or a pixel almost always
    0, is a value of 10 to 245 standard deviations after the paper's z-score).
``"paper"`` (Motif-SET, Table 3 and Sec. 3.2-3.3; kept for reproductions)
    SGD momentum 0.9, weight decay 5e-4, lr 0.01, 5-epoch linear warmup then cosine, batch 128,
    the ``"paper"`` evolution, no clipping, no dropout, no label smoothing, on the ``"uniform"``
    network (every layer at the density, the output layer included), as the paper's Table 4
    network, on inputs standardised per feature and not clipped (``input_clip`` = 0, Table 3).

``input_clip`` is applied where motifcore prepares the data: ``motifcore train`` (the loaders'
z-score, then the clip; ``--input-clip``) and :class:`~motifcore.sklearn.MotifSETClassifier`
(``input_clip``: its inputs are clipped to the training mean ± that many standard deviations,
which is the same thing on standardised features). :class:`~motifcore.train.trainer.Trainer`
trains on the arrays it is given: ``motifcore.datasets.load(name, clip=INPUT_CLIP)`` gives them
clipped.

**Evolutions** (:data:`EVOLUTIONS`): every value of ``evolution=`` / ``--evolution`` by name. Each
says how it changes the block pattern (a SET-style schedule between epochs, or a mask updater
inside epochs) and, where the method defines them, the value of regrown blocks (``regrow``) and
the layers it changes (``evolve_layers``). A setting given explicitly wins over the preset's,
which wins over the generic fallback (:data:`FALLBACK_REGROW`, :data:`FALLBACK_EVOLVE_LAYERS`); the resolved values
are what the Trainer records in its config (and checkpoints, and ``config.json``).

``"input-cosine"`` -- motifcore's method (the default recipe's)
    RigL's cosine-decayed fraction (from 0.3) every 100 optimizer steps, none in the last quarter
    of the run, on the input layer only, regrown blocks starting at zero.
``"set"`` -- SET (Mocanu et al., 2018) with its fraction annealed
    Between epochs, in every layer, a fraction ``zeta`` of the layer's blocks with the smallest
    ``|weight|`` is removed and as many are regrown at random free positions with fresh random
    weights (a new draw from the He-uniform initialisation). ``zeta`` is annealed as Evci et al.
    (2020, Sec. 4) anneal the update fraction of every dynamic sparse method, SET included: from
    0.3 by a cosine, none after 75 % of the run (the ``"cosine"`` schedule: after every epoch
    of the first 75 % on a set of 100 or more steps per epoch, with ``zeta`` of the epoch's last
    step; on a smaller set after the epochs that cross a multiple of 100 steps). Under a decaying
    learning rate SET's fixed 0.3 after every epoch keeps regrowing a third of every layer with
    random weights while the rate goes to zero: on MNIST 512-512, 6 epochs, the motifcore recipe,
    97.49 +- 0.11 % against 96.62 +- 0.07 %, and +1.62 against +1.12 mean points on the
    development sets (issue 22, docs/results.md, "Round five").
``"set-epoch"`` -- SET as Mocanu et al. (2018) schedule it
    ``zeta = 0.3`` after every epoch but the last (on a set of one batch per epoch: after every
    step), otherwise as ``"set"``. The baselines experiments of the papers' tables keep it.
``"paper"`` -- Motif-SET (the paper's Sec. 3.2-3.3)
    ``zeta = 0.2`` every 10 epochs after a 5-epoch warmup, decayed by a cosine over the last
    third of the run, in every layer, fresh He-uniform regrowth.
``"cht"`` -- Cannistraci-Hebb training (Zhang et al., 2024)
    ``zeta = 0.3`` after every epoch but the last, in every layer, removal of ``zeta`` of the
    negative and of the positive weights, chain removal, regrowth at the top positive CH3-L3
    link-prediction scores, new links at zero and a removed link that is regrown at once keeping
    its weight (all as the CHT code does).
``"rigl"``, ``"dsr"`` -- the mask updaters RigL (Evci et al., 2020) and DSR (Mostafa & Wang, 2019)
    Every few optimizer steps inside an epoch (:mod:`motifcore.train.updaters`), every layer.
``"cosine"`` -- the schedule of ``"input-cosine"`` alone
    Layers and regrowth from ``evolve_layers``/``regrow`` (default: every layer, He-uniform).
    Run folders written before ``"input-cosine"`` existed store ``"cosine"`` with their
    ``regrow``/``evolve_layers``, and resume unchanged.
``"none"`` -- static sparse training.

**Networks** (:data:`DISTRIBUTIONS`): how a scalar density is spread over the layers of a
:class:`~motifcore.nn.mlp.MotifMLP`.

``"output-dense"`` (:data:`DISTRIBUTION`, the default)
    Every hidden layer at the density, the output layer dense. At uniform density ``d`` an
    ``n -> k`` output layer links each class to a fraction ``d`` of the last hidden layer, so
    ``(1 - d) ** k`` of its neurons (35 % at ``d = 0.1``, ``k = 10``) have no path to the loss and
    never learn; a dense output layer gives every hidden neuron one (SET's own epsilon rule makes
    such a small layer dense too). The output layer costs ``k`` blocks per last-hidden neuron.
``"uniform"``
    Every layer at the density (the paper's network).
``"erk"``
    Erdős–Rényi-Kernel (:mod:`motifcore.nn.sparsity`): denser small layers, the same total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = [
    "BATCH_SIZE",
    "BIAS_MODES",
    "BLOCK_GRAD",
    "BLOCK_GRADS",
    "DEFAULT_RECIPE",
    "DECOUPLED",
    "DENSITY",
    "DISTRIBUTION",
    "DISTRIBUTIONS",
    "EPOCHS",
    "INPUT_CLIP",
    "LABEL_SMOOTHING",
    "EVOLUTIONS",
    "LR_FAN_IN",
    "EVOLVE_LAYER_SETS",
    "FALLBACK_EVOLVE_LAYERS",
    "FALLBACK_REGROW",
    "LR_SCHEDULES",
    "MIN_STEPS",
    "OPTIMIZERS",
    "OUTPUT_MOTIFS",
    "RECIPES",
    "REGROW_MODES",
    "SCHEDULE_PRESETS",
    "UPDATERS",
    "WEIGHT_DECAY_OF",
    "Evolution",
    "decoupled_decay",
    "evolution",
    "recipe",
    "recipe_lr",
    "resolve_recipe",
]

#: Epochs of a run that does not give them (the Trainer, ``motifcore train``, sweeps). The
#: estimator has its own (:class:`motifcore.sklearn.MotifSETClassifier`, which says why).
EPOCHS = 50
#: ``motifcore train`` and the estimator raise the epochs of a run on small data so that it takes
#: at least this many optimizer steps (a 100-sample set is one batch per epoch).
MIN_STEPS = 1000
#: Block density of a network that does not give one.
DENSITY = 0.1
#: Batch size of both recipes (a recipe may set its own; read ``recipe(name)["batch_size"]``).
BATCH_SIZE = 128

#: The ``"motifcore"`` recipe's learning rate holds for hidden layers whose neurons have up to this
#: many incoming edges on average (a hidden-to-hidden layer's ``n_edges / n_out``); a network with a
#: wider one trains at ``lr * LR_FAN_IN / fan_in`` of its widest (:func:`recipe_lr`). Adam moves
#: every weight by about ``lr`` per step whatever its gradient's size, and a hidden neuron's inputs
#: are non-negative ReLU outputs, so one step can move its pre-activation by ``lr`` times its
#: fan-in: 3e-3 was chosen on 256- and 512-wide layers (fan-in 26-51 at density 0.1) and costs
#: half a point on three 3000-wide ones (fan-in 300) over 50 epochs, where 1e-3 recovers it
#: (issue 22, docs/results.md). Inputs are not counted (their scale is the data's, and a text
#: set's rows are mostly zero); the estimator's and the MNIST checks' networks stay at 3e-3.
LR_FAN_IN = 100.0

#: Standardised inputs of the ``"motifcore"`` recipe are clipped to this many standard deviations
#: (``"paper"``: 0, not clipped).
INPUT_CLIP = 3.0

#: The ``"motifcore"`` recipe trains against ``(1 - e) onehot(y) + e / n_classes`` with this ``e``
#: (label smoothing, Szegedy et al., 2016; ``"paper"``: 0). Chosen on the development sets
#: (issue 22's ablation, 3 seeds: +2.45 mean points over round one's default at 0.2, +2.18 at
#: 0.1, +2.04 without); on the paper's network, with the decay of :data:`DECOUPLED`, 50 epochs,
#: 3 seeds: m = 2 91.01 % and m = 4 90.11 % (0.1: 90.97 %, 90.30 %; none: 90.54 %, 89.48 % with
#: round three's decay) (docs/results.md, section 5, "Round four").
LABEL_SMOOTHING = 0.2

DEFAULT_RECIPE = "motifcore"

RECIPES: dict[str, dict[str, Any]] = {
    "motifcore": {
        "batch_size": BATCH_SIZE, "optimizer": "adamw", "lr": 3e-3, "momentum": 0.9, "weight_decay": 0.1,
        "betas": (0.9, 0.999), "eps": 1e-8, "max_grad_norm": 10.0, "lr_schedule": "cosine", "warmup": 0.05,
        "dropout": 0.2, "label_smoothing": LABEL_SMOOTHING, "evolution": "input-cosine",
        "distribution": "output-dense", "input_clip": INPUT_CLIP, "lr_fan_in": LR_FAN_IN,
    },
    "paper": {
        "batch_size": BATCH_SIZE, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
        "betas": (0.9, 0.999), "eps": 1e-8, "max_grad_norm": 0.0, "lr_schedule": "cosine", "warmup": 5,
        "dropout": 0.0, "label_smoothing": 0.0, "evolution": "paper", "distribution": "uniform", "input_clip": 0.0,
        "lr_fan_in": None,
    },
}

#: Learning-rate schedule presets (:func:`motifcore.train.schedules.lr_schedule`): ``"cosine"``
#: counts warmup and decay in optimizer steps, ``"cosine-epoch"`` in epochs (one lr per epoch).
LR_SCHEDULES = ("cosine", "cosine-epoch", "constant", "step")
#: Optimizers of the engine (SGD with momentum, Adam with L2 in the gradient, AdamW).
OPTIMIZERS = ("sgd", "adam", "adamw")
#: The weight decay of an optimizer that a caller picks over the recipe's without giving a decay:
#: L2 in the gradient for SGD and Adam (the paper's 5e-4), decoupled for AdamW (the motifcore
#: recipe's 0.1). A decay means a different thing to each: Adam with the recipe's 0.1 as L2 would
#: regularise 200 times as hard as round two's recipe did.
WEIGHT_DECAY_OF = {"sgd": 5e-4, "adam": 5e-4, "adamw": 0.1}
#: Optimizers whose decay is decoupled from the gradient (AdamW: each step shrinks every weight by
#: ``lr * weight_decay``). When the recipe lowers its rate for wide hidden layers
#: (:func:`recipe_lr`), a decay the caller did not give rises in proportion
#: (:func:`decoupled_decay`), so the shrink per step stays the one chosen on the development sets:
#: the paper's network (lr 1e-3) trains with 0.3. At 0.1 there it overfitted (training loss 0.01),
#: and 0.3 alone gives 90.88 % against 90.55 % at m = 2 (seed 0) and 90.04 ± 0.13 % against
#: 89.48 ± 0.21 % at m = 4 (3 seeds) over 50 epochs (issue 22, docs/results.md, "Round four").
DECOUPLED = ("adamw",)
#: Values of regrown blocks (:meth:`motifcore.MotifLayer.prune_regrow`); ``"normal"`` is
#: N(0, sigma^2) with sigma the standard deviation of the He initialisation (Algorithm 3).
REGROW_MODES = ("he", "zero", "pruned", "normal")
#: Gradient of a block weight (``Trainer(block_grad=)``): ``"sum"`` (the exact gradient of the
#: block-constant network, the sum over the block's edges, the default) or ``"paper"`` (that sum
#: times 1/m, the Motif-SET paper's equation for ``dL/dW_sub``).
BLOCK_GRADS = ("sum", "paper")
BLOCK_GRAD = "sum"
#: Bias granularity of a network (``MotifMLP(bias=)``): one per output neuron (the default) or
#: one per output motif (the paper's wording).
BIAS_MODES = ("neuron", "motif")
#: Motif of the output layer of a network given one motif size ``m`` (``motifcore train
#: --output-motif``): ``"one"`` (m = 1, the default) or ``"divisible"`` (m when m divides the
#: number of classes, else 1: the paper's Table 4 network, "block-shared only if divisible by m").
OUTPUT_MOTIFS = ("one", "divisible")
#: Layer sets of ``evolve_layers`` by name (or a list of layer indices).
EVOLVE_LAYER_SETS = ("all", "hidden", "input")
#: Fallbacks of an evolution that does not define them: SET's (every layer, fresh He draws).
FALLBACK_REGROW = "he"
FALLBACK_EVOLVE_LAYERS = "all"
#: Ways to spread a scalar density over the layers (see the module docstring).
DISTRIBUTIONS = ("output-dense", "uniform", "erk")
DISTRIBUTION = "output-dense"


@dataclass(frozen=True)
class Evolution:
    """One entry of :data:`EVOLUTIONS`.

    ``kind`` is ``"schedule"`` (SET-style evolution between epochs, built by
    :func:`motifcore.train.schedules.evolution_schedule` from ``schedule``) or ``"updater"`` (a
    mask updater of :mod:`motifcore.train.updaters` named ``schedule``). ``regrow`` and
    ``evolve_layers`` are the method's own (``None``: the caller's, else the fallback).
    """

    kind: str
    schedule: str
    regrow: str | None
    evolve_layers: str | None
    summary: str


EVOLUTIONS: dict[str, Evolution] = {
    "input-cosine": Evolution("schedule", "cosine", "zero", "input",
                              "motifcore's: every 100 steps a cosine-decayed fraction from 0.3, none in the last "
                              "quarter, input layer only, regrowth at zero"),
    "set": Evolution("schedule", "cosine", "he", "all",
                     "SET: after every epoch the smallest blocks of every layer removed, as many regrown at random "
                     "with fresh He-uniform weights, the fraction annealed as RigL's (from 0.3 by a cosine, none in "
                     "the last quarter)"),
    "set-epoch": Evolution("schedule", "set-epoch", "he", "all",
                           "SET on its paper's schedule: zeta 0.3 of every layer's blocks after every epoch"),
    "paper": Evolution("schedule", "paper", "he", "all",
                       "Motif-SET: zeta 0.2 every 10 epochs after a 5-epoch warmup, cosine decay over the last "
                       "third, every layer, fresh He-uniform regrowth"),
    "cht": Evolution("schedule", "cht", "zero", "all",
                     "CHT: as set, but removal by sign, chain removal, regrowth at the top positive CH3-L3 "
                     "scores, new links at zero, a removed-and-regrown link keeps its weight (the CHT code)"),
    "rigl": Evolution("updater", "rigl", None, "all",
                      "RigL / Motif-RigL: every 100 steps drop the smallest blocks and grow those of largest "
                      "gradient, until 75% of the run, every layer"),
    "dsr": Evolution("updater", "dsr", None, "all",
                     "DSR: adaptive global threshold, blocks reallocated across layers, every layer"),
    "cosine": Evolution("schedule", "cosine", None, None,
                        "the schedule of input-cosine alone, on --evolve-layers with --regrow (default: all, he)"),
    "none": Evolution("schedule", "none", None, None, "static sparse training"),
}

#: Names of the SET-style schedules (values of ``EvolutionSchedule.name`` for presets).
SCHEDULE_PRESETS = tuple(k for k, v in EVOLUTIONS.items() if v.kind == "schedule")
#: Names of the mask updaters.
UPDATERS = tuple(k for k, v in EVOLUTIONS.items() if v.kind == "updater")


def recipe_lr(lr: float, lr_fan_in: float | None, hidden_fan_in: float) -> float:
    """The learning rate a recipe gives a network whose widest hidden-to-hidden layer has
    ``hidden_fan_in`` incoming edges per neuron: ``lr`` up to ``lr_fan_in`` (None: no scaling),
    ``lr * lr_fan_in / hidden_fan_in`` above it (:data:`LR_FAN_IN`)."""
    if lr_fan_in is None or hidden_fan_in <= lr_fan_in:
        return float(lr)
    return float(lr) * float(lr_fan_in) / float(hidden_fan_in)


def resolve_recipe(name: str, given: Mapping[str, Any], hidden_fan_in: float) -> dict[str, Any]:
    """The settings a run of recipe ``name`` trains with: the caller's settings that are not
    ``None`` (``given``) over the recipe's, where an ``optimizer`` other than the recipe's given
    without a ``weight_decay`` brings its own decay (:data:`WEIGHT_DECAY_OF`), an ``lr`` not given
    is the recipe's for a network of that ``hidden_fan_in`` (:func:`recipe_lr`), and a decoupled
    decay not given keeps its shrink per step at that rate (:func:`decoupled_decay`). The one place
    the Trainer and the baselines experiment resolve a recipe."""
    r = recipe(name)
    optimizer = given.get("optimizer")
    if optimizer is not None and given.get("weight_decay") is None and optimizer != r["optimizer"]:
        r["weight_decay"] = WEIGHT_DECAY_OF.get(optimizer, r["weight_decay"])
    r.update({k: v for k, v in given.items() if v is not None})
    if given.get("lr") is None:
        base = r["lr"]
        r["lr"] = recipe_lr(base, r.get("lr_fan_in"), hidden_fan_in)
        if given.get("weight_decay") is None and r["optimizer"] in DECOUPLED and r["lr"] != base:
            r["weight_decay"] = decoupled_decay(r["weight_decay"], base, r["lr"])
    return r


def decoupled_decay(weight_decay: float, base_lr: float, lr: float) -> float:
    """The decoupled decay that keeps a recipe's shrink per step, ``lr * weight_decay``, when
    :func:`recipe_lr` lowers its rate from ``base_lr`` to ``lr`` (:data:`DECOUPLED`); rounded to
    10 significant digits, so 0.1 at 3e-3 becomes 0.3 at 1e-3, not 0.30000000000000004."""
    return float(f"{float(weight_decay) * float(base_lr) / float(lr):.10g}")


def recipe(name: str) -> dict[str, Any]:
    """The settings of recipe ``name`` (a copy); ValueError for an unknown name."""
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    return dict(RECIPES[name])


def evolution(name: str) -> Evolution:
    """The registry entry of evolution ``name``; ValueError for an unknown name."""
    if not isinstance(name, str) or name not in EVOLUTIONS:
        raise ValueError(f"evolution must be one of {', '.join(EVOLUTIONS)}, got {name!r}")
    return EVOLUTIONS[name]
