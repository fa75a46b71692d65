"""Regrouping a trained :class:`~motifcore.nn.mlp.MotifMLP` into coarser motifs mid-training: the
step of a motif-size curriculum (the Motif-SET paper, Sec. 8: begin with m = 1 for accuracy, then
increase m for efficiency; docs/curriculum.md).

A layer of motif sizes ``(m_out, m_in)`` becomes one of ``(k_out * m_out, k_in * m_in)``: each new
block covers ``k_out x k_in`` old block positions. The engine (``cpp/regroup.cpp``) computes the new
arrays: a new block is active if any block it covers is; its weight is the mean of the effective
weight matrix over the new block (the least-squares projection onto matrices constant on the new
blocks); its momentum / Adam first moment is the sum of the covered ones (the gradient of the new
weight is the sum of the covered blocks' gradients); its Adam second moment is ``(sum of
sqrt(s))**2``; a per-neuron bias is unchanged, a per-motif bias becomes the size-weighted mean of
the covered motifs' biases. With ``budget="density"`` (the default) a layer keeps as many blocks as
a freshly built layer of the new motif at the layer's configured density (or epsilon) would have:
the ones of largest ``|weight|`` among the covered positions (fewer if fewer are covered). With
``keep_norm=True`` the kept weights of each regrouped layer are then multiplied by one factor,
``||W||_F / ||W'||_F``, so that the layer keeps its gain on uncorrelated inputs, which the averaging
and the budget shrink (docs/curriculum.md has the measurements behind both choices).

The model is changed in place: its native network is rebuilt with the new geometry (through the
same construction and :meth:`MotifMLP.set_state` a checkpoint load uses), so ``model.layers``
afterwards returns new layer objects (layer objects taken before still describe the old layers).
The step counter and the dropout seed carry over, so training continues deterministically.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

from .. import _core
from .._internal.validation import check_motif, per_layer

__all__ = ["BUDGETS", "hidden_motif", "load_state_as", "model_motifs", "regroup_model"]

#: How many blocks a regrouped layer keeps: "density" (as many as a fresh layer of the new motif at
#: the layer's configured density or epsilon, the largest |weight| first) or "covered" (every new
#: block that covers an active old one).
BUDGETS = ("density", "covered")


def model_motifs(motif: Union[int, Sequence[Any]], n_layers: int) -> List[Tuple[int, int]]:
    """Per-layer ``(m_out, m_in)`` of a :class:`MotifMLP` ``motif`` argument: an int ``m`` is
    ``(m, m)`` on the hidden layers and ``(1, 1)`` on the output layer (the constructor's rule);
    a list gives one entry per layer (an int or a pair)."""
    if isinstance(motif, (list, tuple, np.ndarray)):
        return [check_motif(m, f"motif[{i}]") for i, m in enumerate(per_layer(list(motif), n_layers, "motif"))]
    m = check_motif(motif)
    return [m] * (n_layers - 1) + [(1, 1)]


def hidden_motif(model: Any) -> Union[int, List[List[int]]]:
    """The model's motif as a :class:`MotifMLP` ``motif`` argument: ``m`` when the layers are those
    of ``motif=m``, else the per-layer list ``[[m_out, m_in], ...]``."""
    motifs = [tuple(int(v) for v in m) for m in model.config["motif"]]
    m = motifs[0][0]
    if motifs == model_motifs(m, len(motifs)):
        return m
    return [list(t) for t in motifs]


def regroup_model(model: Any, motif: Union[int, Sequence[Any]], budget: str = "density",
                  keep_norm: bool = False) -> List[Dict[str, Any]]:
    """Regroup ``model`` (a :class:`MotifMLP`) in place into ``motif`` (a :class:`MotifMLP`
    ``motif`` argument; every new size a multiple of the layer's present one; see the module
    docstring). Returns per layer
    ``{"from", "to", "blocks_before", "covered", "blocks", "scale"}`` (a layer whose motif does not
    change keeps everything: ``covered == blocks == blocks_before``, ``scale == 1``; ``scale`` is
    the factor of ``keep_norm``, 1 without it)."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    n_layers = len(model.layers)
    target = model_motifs(motif, n_layers)
    cfg = model.config
    with model._lock:
        layers = model.layers
        state = model.get_state()
        new_state: Dict[str, Any] = {"step": state["step"], "dropout_seed": state["dropout_seed"]}
        report: List[Dict[str, Any]] = []
        for i, (layer, (t_out, t_in)) in enumerate(zip(layers, target)):
            m_out, m_in = layer.motif
            if t_out % m_out or t_in % m_in:
                raise ValueError(f"layer {i}: motif ({m_out}, {m_in}) cannot be regrouped into ({t_out}, {t_in}): "
                                 "each new size must be a whole multiple of the present one")
            if t_out > layer.n_out or t_in > layer.n_in:
                raise ValueError(f"layer {i}: motif ({t_out}, {t_in}) is wider than the {layer.n_in} -> "
                                 f"{layer.n_out} layer")
            k_out, k_in = t_out // m_out, t_in // m_in
            keys = [k for k in state if k.startswith(f"layer{i}.")]
            before = layer.n_blocks
            if (k_out, k_in) == (1, 1):
                new_state.update({k: state[k] for k in keys})
                blocks = covered = before
                scale = 1.0
            else:
                if f"layer{i}.centroids" in state:
                    raise ValueError(f"layer {i} shares its weights through a codebook; clear it "
                                     "(MotifLayer.clear_codebook) before regrouping")
                eps = cfg["epsilon"][i]
                quota = (int(_core.target_blocks(layer.n_in, layer.n_out, t_in, t_out, float(cfg["density"][i]),
                                                 float(eps or 0.0))) if budget == "density" else -1)
                r = _core.regroup_blocks(
                    layer.n_out, layer.n_in, m_out, m_in, layer.bias_mode, k_out, k_in,
                    state[f"layer{i}.indptr"], state[f"layer{i}.indices"], state[f"layer{i}.weights"],
                    state[f"layer{i}.bias"], state[f"layer{i}.weight_velocity"], state[f"layer{i}.bias_velocity"],
                    state.get(f"layer{i}.weight_sq", np.zeros(0, np.float32)),
                    state.get(f"layer{i}.bias_sq", np.zeros(0, np.float32)), quota, bool(keep_norm),
                    model.num_threads)
                for k in ("indptr", "indices", "weights", "bias", "weight_velocity", "bias_velocity"):
                    new_state[f"layer{i}.{k}"] = r[k]
                if r["weight_sq"].size or r["bias_sq"].size:
                    new_state[f"layer{i}.weight_sq"] = r["weight_sq"]
                    new_state[f"layer{i}.bias_sq"] = r["bias_sq"]
                blocks, covered, scale = int(r["kept"]), int(r["covered"]), float(r["scale"])
            report.append({"from": [m_out, m_in], "to": [t_out, t_in], "blocks_before": before,
                           "covered": covered, "blocks": blocks, "scale": scale})
        load_state_as(model, target, new_state)
    return report


def load_state_as(model: Any, motif: Union[int, Sequence[Any]], state: Dict[str, Any]) -> None:
    """Give ``model`` (a :class:`MotifMLP`) the layout ``motif`` and the :meth:`MotifMLP.get_state`
    arrays ``state`` of a model of that layout, in place: a fresh native network of the same widths,
    activation, bias and seed is built (each layer at the block count ``state`` holds) and loaded
    with :meth:`MotifMLP.set_state` -- what a checkpoint load does -- and the model takes it. Its
    configuration keeps its densities and epsilons (what it was asked for). All or nothing."""
    cfg = model.config
    n_layers = len(model.sizes) - 1
    target = model_motifs(motif, n_layers)
    densities = []
    for i, (m_out, m_in) in enumerate(target):
        grid = -(-model.sizes[i + 1] // m_out) * -(-model.sizes[i] // m_in)
        blocks = int(np.asarray(state[f"layer{i}.indices"]).size) if f"layer{i}.indices" in state else grid
        densities.append(min(1.0, max(blocks, 1) / grid))
    with model._lock:
        with warnings.catch_warnings():
            # a shared output layer warned when the model was first built; do not repeat it
            warnings.simplefilter("ignore", UserWarning)
            fresh = type(model)(model.sizes, motif=target, density=densities, activation=cfg["activation"],
                                bias=cfg["bias"], seed=cfg["seed"], num_threads=model.num_threads)
        fresh.set_state(state)
        model._net, model._layers = fresh._net, fresh._layers
        model.config = {**cfg, "motif": fresh.config["motif"]}
