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
from typing import Any, List

import numpy as np

from .arrays import LayerArrays, model_layers, to_scipy_layer

__all__ = ["to_torch", "torch_layers"]     # and MotifLinear, created on first use

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


def torch_layers(module: Any) -> list:
    """The weight layers of a torch MLP, in ``module.modules()`` order: :class:`LayerArrays` for
    a :class:`MotifLinear`, ``(weight [n_out, n_in], bias [n_out])`` NumPy arrays for an
    ``nn.Linear``. Other modules (activations, dropout, containers) are skipped; TypeError if
    there is no weight layer or another kind of weight layer (convolutions, ...)."""
    import torch

    motif_linear = _define()["MotifLinear"]
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    out: list = []
    for m in module.modules():
        if isinstance(m, motif_linear):
            w = m.weight.detach().cpu().numpy().astype(np.float32)
            out.append(LayerArrays(m.n_in, m.n_out, m.m_out, m.m_in, m.indptr.cpu().numpy(), m.indices.cpu().numpy(), w,
                                   m.bias.detach().cpu().numpy().astype(np.float32), m.bias_mode, m.activation))
        elif isinstance(m, torch.nn.Linear):
            b = m.bias.detach().cpu().numpy() if m.bias is not None else np.zeros(m.out_features)
            out.append((m.weight.detach().cpu().numpy().astype(np.float32), b.astype(np.float32)))
        elif len(list(m.parameters(recurse=False))) > 0:
            raise TypeError(f"cannot convert {type(m).__name__}: only nn.Linear and MotifLinear layers are supported")
    if not out:
        raise TypeError("the module has no nn.Linear or MotifLinear layer")
    return out
