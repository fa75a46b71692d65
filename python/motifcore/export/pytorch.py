"""PyTorch form of a motif network (torch is imported only when this is used).

:class:`MotifLinear` computes one motif layer compactly, as the engine does: the input motifs are
summed (``GroupSum``), multiplied by the sparse ``G_out x G_in`` block matrix (one trainable
weight per active block, a ``torch.sparse`` CSR product) and expanded to the output neurons, plus
the bias. The pattern is fixed (buffers); the block weights and the biases are parameters, so the
module can be fine-tuned with any torch optimizer. ``to_torch(model, dense=True)`` gives plain
``nn.Linear`` layers with the expanded matrices instead (small models only).

The module classes are created on first use (PEP 562 ``__getattr__``), so importing this module
does not import torch, yet a module saved with ``torch.save`` loads again by its class path.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .._internal.validation import check_motif, per_layer
from .arrays import LayerArrays, blocks_from_dense, model_layers, to_scipy_layer

__all__ = ["from_torch", "mlp_chain", "to_torch", "torch_layers"]     # and MotifLinear, created on first use

_CLASSES: dict = {}


def _define() -> dict:
    if _CLASSES:
        return _CLASSES
    import torch
    import torch.nn.functional as F

    # torch warns once per process that CSR tensors are "beta"; take that one warning here, where
    # it says nothing to the user (the CSR product is what the module is tested with)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64),
                                torch.zeros(0), (1, 1))

    class MotifLinear(torch.nn.Module):
        """``act(Expand(K · GroupSum(x)) + b)`` with a sparse block matrix ``K``."""

        def __init__(self, a: LayerArrays) -> None:
            super().__init__()
            g_out, g_in = a.groups
            self.n_in, self.n_out, self.m_out, self.m_in = a.n_in, a.n_out, a.m_out, a.m_in
            self.g_out, self.g_in = g_out, g_in
            self.bias_mode, self.activation = a.bias_mode, a.activation
            self.register_buffer("indptr", torch.from_numpy(a.indptr.astype(np.int64)))     # CSR over output motifs
            self.register_buffer("indices", torch.from_numpy(a.indices.astype(np.int64)))
            self.register_buffer("out_group", torch.from_numpy(a.out_group))
            self.weight = torch.nn.Parameter(torch.from_numpy(a.weights.copy()))
            self.bias = torch.nn.Parameter(torch.from_numpy(a.bias.copy()))

        def block_matrix(self) -> Any:
            """The sparse CSR ``[G_out, G_in]`` block matrix (differentiable in ``weight``)."""
            return torch.sparse_csr_tensor(self.indptr, self.indices, self.weight, (self.g_out, self.g_in),
                                           check_invariants=False)

        def forward(self, x: Any) -> Any:
            if self.m_in > 1:
                pad = self.g_in * self.m_in - self.n_in
                if pad:
                    x = F.pad(x, (0, pad))
                x = x.reshape(x.shape[0], self.g_in, self.m_in).sum(dim=2)
            u = (self.block_matrix() @ x.t()).t()
            if self.bias_mode == "motif":
                u = u + self.bias
            if self.m_out > 1:
                u = u.index_select(1, self.out_group)
            if self.bias_mode == "neuron":
                u = u + self.bias
            return torch.relu(u) if self.activation == "relu" else u

        def extra_repr(self) -> str:
            return (f"{self.n_in} -> {self.n_out}, motif=({self.m_out}, {self.m_in}), "
                    f"blocks={self.weight.shape[0]}, activation={self.activation!r}")

    MotifLinear.__qualname__ = "MotifLinear"     # pickled by its module path (see __getattr__)
    _CLASSES["MotifLinear"] = MotifLinear
    return _CLASSES


def __getattr__(name: str) -> Any:
    if name == "MotifLinear":
        return _define()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_torch(model: Any, dense: bool = False) -> Any:
    """A ``torch.nn.Sequential`` computing the logits of ``model`` (see the module docstring);
    ``dense=True`` uses ``nn.Linear`` layers holding the expanded ``n_out x n_in`` matrices."""
    import torch

    layers = model_layers(model)
    mods: List[Any] = []
    for a in layers:
        if dense:
            lin = torch.nn.Linear(a.n_in, a.n_out)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(to_scipy_layer(a, "csr").weight.toarray()))
                lin.bias.copy_(torch.from_numpy(a.neuron_bias))
            mods += [lin, torch.nn.ReLU()] if a.activation == "relu" else [lin]
        else:
            mods.append(_define()["MotifLinear"](a))
    return torch.nn.Sequential(*mods)


def _reading_order(module: Any, torch: Any) -> List[Tuple[str, Any]]:
    """The leaf modules of ``module`` in the order its forward runs them, with their paths
    (``"0"``, ``"encoder.2"``): ``nn.Sequential`` containers are walked (a module listed twice
    appears twice); any other container has a forward this reading cannot see, so it is refused."""
    leaves: List[Tuple[str, Any]] = []

    def walk(m: Any, path: str) -> None:
        if isinstance(m, torch.nn.Sequential):
            for name, child in m._modules.items():       # what Sequential.forward runs, repeats included
                if child is not None:
                    walk(child, f"{path}.{name}" if path else str(name))
        else:
            leaves.append((path, m))

    walk(module, "")
    return leaves


def _where(path: str, m: Any) -> str:
    return f"{type(m).__name__} at {path!r}" if path else f"the {type(m).__name__} module itself"


def mlp_chain(module: Any, layer_io: Callable[[Any], Optional[Tuple[int, int, bool]]], kinds: str) -> List[Any]:
    """The weight layers of the torch MLP ``module`` in the order its forward runs them, checked to
    compute exactly what a :class:`~motifcore.MotifMLP` does; ``layer_io(m)`` gives ``(n_in,
    n_out, applies_relu)`` for a weight layer and ``None`` for any other module, ``kinds`` names
    the weight layers in messages (``"nn.Linear or MotifLinear"``).

    Read: ``nn.Sequential`` containers (nested or not) of weight layers with ReLU between
    consecutive layers (an ``nn.ReLU`` module or the layer's own ReLU) and linear logits after the
    last; ``nn.Dropout`` (the identity at inference) and ``nn.Identity`` anywhere, an
    ``nn.Flatten`` before the first layer. Anything else is refused with the module's path in
    ``module``: TypeError for another module kind (``Tanh``, ``LayerNorm``, ``Conv1d``, a custom
    container whose forward cannot be read, ...), ValueError for two layers with no ReLU between
    them, an activation before the first layer or after the logits, a layer used twice, or layers
    whose sizes do not chain.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not any(layer_io(m) is not None for m in module.modules()):
        raise TypeError(f"the module has no {kinds} layer")
    identity = (torch.nn.Dropout, torch.nn.AlphaDropout, torch.nn.Identity)     # at inference
    out: List[Any] = []
    seen: dict = {}              # id of a layer -> its first path
    last: Optional[Tuple[str, Any, int, bool]] = None     # the previous weight layer
    relu_since: Optional[Tuple[str, Any]] = None    # a ReLU module after the previous weight layer
    for path, m in _reading_order(module, torch):
        io = layer_io(m)
        if io is not None:
            if id(m) in seen:
                raise ValueError(f"cannot convert {_where(path, m)}: it is the layer {seen[id(m)]!r} used a "
                                 f"second time (a MotifMLP has its own weights in every layer)")
            seen[id(m)] = path
            n_in, n_out, own_relu = io
            if last is not None:
                p_path, p_mod, p_out, p_relu = last
                if p_out != n_in:
                    raise ValueError(f"layer {len(out)} ({_where(path, m)}) has {n_in} inputs but layer "
                                     f"{len(out) - 1} ({_where(p_path, p_mod)}) has {p_out} outputs")
                if not p_relu and relu_since is None:
                    raise ValueError(f"cannot convert {_where(path, m)}: no activation between it and "
                                     f"{_where(p_path, p_mod)} (a MotifMLP applies ReLU between layers)")
            last, relu_since = (path, m, n_out, own_relu), None
            out.append(m)
        elif isinstance(m, torch.nn.ReLU):
            if last is None:
                raise ValueError(f"cannot convert {_where(path, m)}: an activation before the first layer "
                                 f"(a MotifMLP reads its input linearly)")
            relu_since = (path, m)
        elif isinstance(m, identity):
            continue
        elif isinstance(m, torch.nn.Flatten) and last is None and m.start_dim == 1 and m.end_dim == -1:
            continue             # flattens each sample before the first layer, as the MotifMLP's input is
        else:
            has_params = len(list(m.parameters(recurse=False))) > 0
            kind = "a layer with parameters" if has_params else (
                "a container whose forward cannot be read" if len(m._modules) else "an operation other than ReLU")
            raise TypeError(f"cannot convert {_where(path, m)} ({kind}): a MotifMLP is {kinds} layers with ReLU "
                            f"between them (nn.Sequential containers, nn.Dropout and nn.Identity are read too)")
    assert last is not None
    p_path, p_mod, _, p_relu = last
    if p_relu or relu_since is not None:
        what = _where(*relu_since) if relu_since is not None else f"the ReLU of {_where(p_path, p_mod)}"
        raise ValueError(f"cannot convert {what}: an activation after the last layer (a MotifMLP gives linear "
                         f"logits)")
    return out


def torch_layers(module: Any) -> list:
    """The weight layers of a torch MLP in the order its forward runs them: :class:`LayerArrays`
    for a :class:`MotifLinear` (this module's, or any module with a ``to_layer_arrays()`` giving
    them, as the engine-backed ``motifcore.torch.MotifLinear``),
    ``(weight [n_out, n_in], bias [n_out])`` NumPy arrays for an ``nn.Linear``. Only what a
    :class:`~motifcore.MotifMLP` computes exactly is read; anything else is refused naming the
    module (:func:`mlp_chain` lists what is read)."""
    import torch

    motif_linear = _define()["MotifLinear"]

    def engine_layer(m: Any) -> bool:
        # motifcore.torch.MotifLinear (which this package may not import): a module that gives its
        # pattern and values as LayerArrays
        return callable(getattr(m, "to_layer_arrays", None))

    def layer_io(m: Any) -> Optional[Tuple[int, int, bool]]:
        if isinstance(m, motif_linear):
            return m.n_in, m.n_out, m.activation == "relu"
        if engine_layer(m):
            a = m.to_layer_arrays()
            return a.n_in, a.n_out, a.activation == "relu"
        if isinstance(m, torch.nn.Linear):
            return m.in_features, m.out_features, False
        return None

    out: list = []
    for m in mlp_chain(module, layer_io, "nn.Linear or MotifLinear"):
        if engine_layer(m):
            out.append(m.to_layer_arrays())
        elif isinstance(m, motif_linear):
            w = m.weight.detach().cpu().numpy().astype(np.float32)
            out.append(LayerArrays(m.n_in, m.n_out, m.m_out, m.m_in, m.indptr.cpu().numpy(), m.indices.cpu().numpy(), w,
                                   m.bias.detach().cpu().numpy().astype(np.float32), m.bias_mode, m.activation))
        else:
            b = m.bias.detach().cpu().numpy() if m.bias is not None else np.zeros(m.out_features)
            out.append((m.weight.detach().cpu().numpy().astype(np.float32), b.astype(np.float32)))
    return out


def from_torch(model_cls: Any, module: Any, motif: Union[int, Sequence[Any], None] = None,
               density: Union[None, float, Sequence[Optional[float]]] = None, bias: str = "neuron",
               seed: int = 0, num_threads: Optional[int] = None) -> Any:
    """A ``model_cls`` (:class:`~motifcore.MotifMLP`) built from a torch MLP; see
    :meth:`motifcore.MotifMLP.from_torch`, which calls this. The model is made through the class's
    constructor, ``get_state`` and ``set_state`` only, so this module stays below ``nn/``."""
    found = torch_layers(module)
    n = len(found)
    if motif is None or not isinstance(motif, (list, tuple, np.ndarray)):
        m = check_motif(1 if motif is None else motif)
        motifs = [m] * (n - 1) + [(1, 1)]
    else:
        motifs = [check_motif(x, f"motif[{i}]") for i, x in enumerate(per_layer(list(motif), n, "motif"))]
    densities = per_layer(density, n, "density")
    sizes: List[int] = []
    biases: List[str] = []
    arrays: List[Tuple[Any, Any, Any, Any]] = []
    for i, item in enumerate(found):
        if isinstance(item, tuple):
            W, b = item
            indptr, indices, weights = blocks_from_dense(W, motifs[i], densities[i])
            if bias == "motif":
                raise ValueError("bias='motif' needs MotifLinear layers; an nn.Linear has one bias per neuron")
            arrays.append((indptr, indices, weights, b))
            shape, mm = W.shape, motifs[i]
        else:
            arrays.append((item.indptr, item.indices, item.weights, item.bias))
            shape, mm = (item.n_out, item.n_in), (item.m_out, item.m_in)
            motifs[i] = mm
            biases.append(item.bias_mode)
        if sizes and sizes[-1] != shape[1]:
            raise ValueError(f"layer {i} has {shape[1]} inputs but layer {i - 1} has {sizes[-1]} outputs")
        sizes += [shape[1], shape[0]] if not sizes else [shape[0]]
    modes = set(biases) | ({bias} if len(biases) < n else set())
    if len(modes) > 1:
        raise ValueError(f"all layers must share one bias mode, got {sorted(modes)}")
    # built with (about) one block per layer, then given the pattern: no dense intermediate
    tiny = [min(1.0, 1.0 / (-(-sizes[i + 1] // mo) * -(-sizes[i] // mi))) for i, (mo, mi) in enumerate(motifs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # a shared output motif was chosen by the module
        model = model_cls(sizes, motif=[list(m) for m in motifs], density=tiny, bias=modes.pop(), seed=seed,
                          num_threads=num_threads)
    state = model.get_state()
    for i, (indptr, indices, weights, b) in enumerate(arrays):
        state.update({f"layer{i}.indptr": indptr, f"layer{i}.indices": indices, f"layer{i}.weights": weights,
                      f"layer{i}.bias": b, f"layer{i}.weight_velocity": np.zeros(0, np.float32),
                      f"layer{i}.bias_velocity": np.zeros(0, np.float32)})     # empty: zero momentum
        state.pop(f"layer{i}.weight_sq", None)
        state.pop(f"layer{i}.bias_sq", None)
    model.set_state(state)
    # a layer left with 0 blocks (an all-zero weight) records the density it was built with: the
    # checkpoint loader rebuilds the model from the config, and a density must be in (0, 1]
    model.config["density"] = [layer.density if layer.n_blocks else d for layer, d in zip(model.layers, tiny)]
    return model
