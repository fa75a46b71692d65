"""Named training recipes: complete sets of optimizer, schedule and evolution settings.

A recipe fills every hyper-parameter of :class:`~motifcore.trainer.Trainer` that is not given
explicitly (``Trainer(model, recipe="paper", lr=0.05)`` is the paper's recipe with another
learning rate). Two recipes exist:

``"motifcore"`` (the default of the Trainer, the CLI and the estimator)
    What measured best across Fashion-MNIST and six scikit-feature sets (docs/results.md has
    the ablation that chose it): Adam (lr 1e-3, betas 0.9/0.999, L2 weight decay 5e-4 in the
    gradient), dropout 0.2 on hidden activations, batch 128, a cosine learning rate whose
    warmup is 5 % of the run's steps (so it fits any run length), the step-counted
    ``"cosine"`` evolution schedule (every 100 steps, RigL's cosine-decayed fraction from 0.3,
    no evolution in the last quarter) of the input layer only, with regrown blocks starting at
    zero, and the gradient
    clipped to a global norm of 10 (which only acts on rare exploding steps, e.g. at batch
    size 2 with SGD).
``"paper"`` (Motif-SET, Table 3 and Sec. 3.2-3.3; kept for reproductions)
    SGD momentum 0.9, weight decay 5e-4, lr 0.01, 5-epoch linear warmup then cosine, batch
    128, the ``"paper"`` evolution schedule (zeta 0.2 every 10 epochs after the warmup) with
    regrown blocks drawn fresh from the He-uniform init, no clipping.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RECIPES", "DEFAULT_RECIPE", "recipe"]

DEFAULT_RECIPE = "motifcore"

RECIPES: dict[str, dict[str, Any]] = {
    "motifcore": {
        "batch_size": 128, "optimizer": "adam", "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4,
        "betas": (0.9, 0.999), "eps": 1e-8, "max_grad_norm": 10.0, "lr_schedule": "cosine", "warmup": 0.05,
        "dropout": 0.2, "evolution": "cosine", "regrow": "zero", "evolve_layers": "input",
    },
    "paper": {
        "batch_size": 128, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
        "betas": (0.9, 0.999), "eps": 1e-8, "max_grad_norm": 0.0, "lr_schedule": "cosine", "warmup": 5,
        "dropout": 0.0, "evolution": "paper", "regrow": "he", "evolve_layers": "all",
    },
}


def recipe(name: str) -> dict[str, Any]:
    """The settings of recipe ``name`` (a copy); ValueError for an unknown name."""
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    return dict(RECIPES[name])
