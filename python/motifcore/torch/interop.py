"""MotifMLP <-> torch models of engine-backed :class:`MotifLinear` layers, bit for bit."""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
from torch import nn

from ..export.pytorch import mlp_chain
from ..nn import MotifMLP
from .layer import MotifLinear
from .sequential import MotifSequential

__all__ = ["from_mlp", "to_mlp"]


def from_mlp(model: MotifMLP, num_threads: Optional[int] = None) -> MotifSequential:
    """A :class:`MotifSequential` (an ``nn.Sequential``) of :class:`MotifLinear` layers holding a
    copy of ``model``'s patterns, weights and biases (hidden layers with the fused ReLU, as in the
    engine): its logits are the model's. Optimizer state is not carried over (torch optimizers keep
    their own)."""
    if not isinstance(model, MotifMLP):
        raise TypeError(f"model must be a MotifMLP, got {type(model).__name__}")
    threads = model.num_threads if num_threads is None else num_threads
    mods = []
    for layer in model.layers:
        c = layer._core
        mods.append(MotifLinear._from_arrays(layer.n_in, layer.n_out, layer.motif, c.indptr, c.indices, c.weights,
                                             c.bias, bias_mode=layer.bias_mode, activation=layer.activation,
                                             input_copies=int(c.input_copies), num_threads=threads))
    return MotifSequential(*mods)


def to_mlp(module: nn.Module, seed: int = 0, num_threads: Optional[int] = None) -> MotifMLP:
    """A :class:`MotifMLP` with the patterns, weights and biases of the :class:`MotifLinear`
    layers of ``module``, read as an MLP: ReLU after every layer but the last (fused, or an
    ``nn.ReLU`` module in between), linear logits. Anything else (another activation, a missing
    one, a layer used twice, another module) is refused naming the module
    (:func:`motifcore.export.pytorch.mlp_chain`). ``from_mlp(to_mlp(m))`` and
    ``to_mlp(from_mlp(model))`` are exact copies."""
    mods = mlp_chain(module, lambda m: (m.in_features, m.out_features, m.activation == "relu")
                     if isinstance(m, MotifLinear) else None, "MotifLinear")
    modes = {m.bias_mode for m in mods}
    if len(modes) > 1:
        raise ValueError(f"all layers must share one bias mode, got {sorted(modes)}")
    sizes = [mods[0].in_features] + [m.out_features for m in mods]
    motifs = [list(m.motif) for m in mods]
    tiny = [min(1.0, 1.0 / (m.groups[0] * m.groups[1])) for m in mods]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # a shared output motif chosen by the module
        model = MotifMLP(sizes, motif=motifs, density=tiny, bias=modes.pop(), seed=seed,
                         num_threads=mods[0].num_threads if num_threads is None else num_threads)
    state = model.get_state()
    empty = np.zeros(0, np.float32)
    for i, m in enumerate(mods):
        m._sync()
        c = m._core
        state.update({f"layer{i}.indptr": c.indptr, f"layer{i}.indices": c.indices, f"layer{i}.weights": c.weights,
                      f"layer{i}.bias": c.bias, f"layer{i}.weight_velocity": empty, f"layer{i}.bias_velocity": empty})
        state.pop(f"layer{i}.weight_sq", None)
        state.pop(f"layer{i}.bias_sq", None)
    model.set_state(state)
    # a layer left with 0 blocks (an all-zero weight) records the density it was built with: the
    # checkpoint loader rebuilds the model from the config, and a density must be in (0, 1]
    model.config["density"] = [layer.density if layer.n_blocks else d for layer, d in zip(model.layers, tiny)]
    return model
