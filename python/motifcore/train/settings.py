"""The Trainer's settings that need a model or the registries to check: the evolution entry behind
an ``evolution`` value, the evolved layers, the paper's 1/m block-gradient factor and the fit of a
motif schedule (:class:`~motifcore.train.trainer.Trainer` reads them; nothing here trains)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._internal.validation import check_int
from ..defaults import BLOCK_GRADS, EVOLUTIONS, EVOLVE_LAYER_SETS, Evolution
from ..nn import MotifMLP
from ..nn.regroup import hidden_motif, model_motifs
from .curriculum import MotifSchedule
from .schedules import EvolutionSchedule

__all__ = ["check_evolve_layers", "check_schedule_fits", "evolution_entry", "evolved_layers", "hidden_fan_in",
           "weight_grad_factor"]


def evolution_entry(evolution: Any) -> Evolution | None:
    """The registry entry (:data:`motifcore.defaults.EVOLUTIONS`) behind an ``evolution`` value:
    a name, the stored form of a preset or updater, or a preset ``EvolutionSchedule``."""
    if isinstance(evolution, str):
        return EVOLUTIONS.get(evolution)
    if isinstance(evolution, Mapping):
        name = evolution.get("preset", evolution.get("updater"))
        return EVOLUTIONS.get(name) if isinstance(name, str) else None
    if isinstance(evolution, EvolutionSchedule):
        return EVOLUTIONS.get(evolution.name)
    return None


def check_evolve_layers(value: Any, n_layers: int) -> str | tuple[int, ...]:
    if isinstance(value, str):
        if value not in EVOLVE_LAYER_SETS:
            raise ValueError(f"evolve_layers must be one of {', '.join(EVOLVE_LAYER_SETS)} or a list of layer "
                             f"indices, got {value!r}")
        return value
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(f"evolve_layers must be one of {', '.join(EVOLVE_LAYER_SETS)} or a non-empty list of layer "
                        f"indices, got {value!r}")
    idx = tuple(check_int(i, "evolve_layers entry", 0) for i in value)
    bad = [i for i in idx if i >= n_layers]
    if bad:
        raise ValueError(f"evolve_layers {bad} out of range: the model has {n_layers} weight layers")
    return idx


def evolved_layers(spec: str | tuple[int, ...], n_layers: int) -> set[int]:
    if spec == "all" or (spec == "hidden" and n_layers == 1):
        return set(range(n_layers))
    if spec == "hidden":
        return set(range(n_layers - 1))
    if spec == "input":
        return {0}
    return set(spec)


def hidden_fan_in(model: MotifMLP) -> float:
    """The largest mean fan-in (active edges per output neuron, ``n_edges / n_out``) of the
    model's hidden-to-hidden layers (every layer but the first and the last); 0 without one. What
    the ``"motifcore"`` recipe scales its learning rate by (:func:`motifcore.defaults.recipe_lr`)."""
    return max((layer.n_edges / layer.n_out for layer in model.layers[1:-1]), default=0.0)


def weight_grad_factor(block_grad: Any, model: MotifMLP) -> list[float] | None:
    """The engine's per-layer ``weight_grad_factor`` of ``block_grad``: ``None`` for ``"sum"``
    (the untouched path), ``[1/m per layer]`` for ``"paper"``."""
    if not isinstance(block_grad, str) or block_grad not in BLOCK_GRADS:
        raise ValueError(f"block_grad must be one of {', '.join(BLOCK_GRADS)}, got {block_grad!r}")
    if block_grad == "sum":
        return None
    factors = []
    for i, layer in enumerate(model.layers):
        m_out, m_in = layer.motif
        if m_out != m_in:
            raise ValueError(f"block_grad='paper' scales by 1/m for square m x m motifs (the paper's); layer {i} "
                             f"has {m_out} x {m_in} motifs")
        factors.append(1.0 / m_in)
    return factors


def check_schedule_fits(schedule: MotifSchedule, model: MotifMLP) -> None:
    """Every stage of ``schedule`` is a layout ``model`` can take: its motif fits every layer and
    the model's present motif is one of the stages."""
    if len(model.layers) < 2:
        raise ValueError("a motif schedule changes the motif of the hidden layers; this model has none")
    have = hidden_motif(model)
    if have not in schedule.motifs:
        raise ValueError(f"the model has motif {have!r}, which is no stage of the motif schedule ({schedule}); "
                         f"build it with motif={schedule.motifs[0]}")
    for m in schedule.motifs:
        for i, (layer, (m_out, m_in)) in enumerate(zip(model.layers, model_motifs(m, len(model.layers)))):
            if m_out > layer.n_out or m_in > layer.n_in:
                raise ValueError(f"motif schedule stage m = {m} does not fit layer {i} ({layer.n_in} -> "
                                 f"{layer.n_out})")
