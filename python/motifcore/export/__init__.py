"""Export a trained :class:`~motifcore.MotifMLP` to other libraries: SciPy matrices
(:func:`to_scipy`), a PyTorch module (:func:`to_torch`), an ONNX file (:func:`to_onnx`) and a
plain ``.npz`` of arrays (:func:`to_npz`); :func:`save` writes any of the files. torch and onnx
are optional dependencies (``pip install motifcore[torch]`` / ``[onnx]``), imported on use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Union

import numpy as np

from .._internal.io import atomic_write
from .arrays import LayerArrays, ScipyLayer, blocks_from_dense, model_layers, to_npz_dict, to_scipy_layer
from .onnx_graph import onnx_model, to_onnx
from .pytorch import to_torch, torch_layers

__all__ = ["FORMATS", "LayerArrays", "ScipyLayer", "blocks_from_dense", "onnx_model", "save", "to_npz", "to_onnx",
           "to_scipy", "to_torch", "torch_layers"]

FORMATS = {"onnx": ".onnx", "torch": ".pt", "npz": ".npz"}


def to_scipy(model: Any, format: str = "auto") -> List[ScipyLayer]:
    """Per layer a :class:`ScipyLayer`: the effective weight matrix (BSR with ``m_out x m_in``
    blocks where the layer has no residual motif, else CSR; ``format="csr"`` always CSR), the
    ``[G_out, G_in]`` block pattern (CSR of the shared weights), the per-neuron bias, the motif
    and the activation. ``relu(x @ W.T + b)`` through the layers gives the logits."""
    return [to_scipy_layer(a, format) for a in model_layers(model)]


def to_npz(model: Any, path: Union[str, "os.PathLike[str]"]) -> Path:
    """Write the model's arrays (:func:`motifcore.export.arrays.to_npz_dict`) as an uncompressed
    ``.npz`` that NumPy and SciPy read without motifcore; returns the path."""
    arrays = to_npz_dict(model_layers(model), list(model.sizes))
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def save(model: Any, path: Union[str, "os.PathLike[str]"], format: str, onnx_blocks: str = "sparse") -> Path:
    """Write ``model`` as ``format`` (``"onnx"`` with ``blocks=onnx_blocks``, see :func:`to_onnx`;
    ``"torch"``: ``torch.save`` of :func:`to_torch`, loaded back with
    ``torch.load(path, weights_only=False)`` where motifcore is installed; or ``"npz"``); returns
    the path."""
    if format == "onnx":
        return to_onnx(model, path, onnx_blocks)
    if format == "npz":
        return to_npz(model, path)
    if format == "torch":
        import torch

        module = to_torch(model)
        return atomic_write(path, lambda f: torch.save(module, f))
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
