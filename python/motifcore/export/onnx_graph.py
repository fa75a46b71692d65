"""ONNX form of a motif network, built with the ``onnx`` helper API (no torch needed).

Per layer, with standard operators only (opset 17): ``Pad`` + ``Reshape`` + ``ReduceSum`` sum
the input motifs (GroupSum, skipped for ``m_in = 1``); ``Gather`` picks the input motif of every
active block, ``Mul`` applies the block weights and ``ScatterND`` with ``reduction="add"`` sums
them into their output motif (the sparse block product, O(batch x blocks); with
``blocks="dense"`` a ``MatMul`` with the dense block matrix instead); ``Gather`` expands
the output motifs to neurons; ``Add`` the bias; ``Relu`` on hidden layers. The graph has one
input ``x`` (float32 ``[batch, n_features]``) and one output ``logits`` (``[batch, n_classes]``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Union

import numpy as np

from .._internal.io import atomic_write
from .arrays import LayerArrays, model_layers

__all__ = ["OPSET", "onnx_model", "to_onnx"]

OPSET = 17
MAX_DENSE_BLOCKS = 2**26     # entries of one dense block matrix (256 MiB of float32)


def _layer_nodes(a: LayerArrays, i: int, x: str, batch: str, blocks: str) -> tuple:
    from onnx import helper, numpy_helper

    nodes: List[Any] = []
    inits: List[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, f"l{i}.{name}"))
        return f"l{i}.{name}"

    def node(op: str, inputs: list, name: str, **attrs: Any) -> str:
        out = f"l{i}.{name}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    g_out, g_in = a.groups
    s = x
    if a.m_in > 1:
        pad = g_in * a.m_in - a.n_in
        if pad:
            s = node("Pad", [s, const("pads", np.array([0, 0, 0, pad], dtype=np.int64))], "padded")
        s = node("Reshape", [s, const("motif_shape", np.array([-1, g_in, a.m_in], dtype=np.int64))], "motifs")
        s = node("ReduceSum", [s, const("sum_axis", np.array([2], dtype=np.int64))], "groupsum", keepdims=0)
    if blocks == "dense":
        kt = np.zeros((g_in, g_out), dtype=np.float32)
        kt[a.indices, a.rows] = a.weights
        u = node("MatMul", [s, const("blocks_t", kt)], "u")
    else:
        picked = node("Gather", [s, const("cols", a.indices.astype(np.int64))], "picked", axis=1)
        prod = node("Mul", [picked, const("weights", a.weights)], "prod")
        prod_t = node("Transpose", [prod], "prod_t", perm=[1, 0])
        zshape = node("Concat", [const("g_out", np.array([g_out], dtype=np.int64)), batch], "zshape", axis=0)
        zeros = node("ConstantOfShape", [zshape], "zeros",
                     value=helper.make_tensor("zero", 1, [1], [0.0]))      # 1 = FLOAT
        u_t = node("ScatterND", [zeros, const("rows", a.rows.reshape(-1, 1)), prod_t], "u_t", reduction="add")
        u = node("Transpose", [u_t], "u", perm=[1, 0])
    if a.bias_mode == "motif":
        u = node("Add", [u, const("bias", a.bias)], "biased_motifs")
    if a.m_out > 1:
        u = node("Gather", [u, const("out_group", a.out_group)], "expanded", axis=1)
    if a.bias_mode == "neuron":
        u = node("Add", [u, const("bias", a.bias)], "biased")
    if a.activation == "relu":
        u = node("Relu", [u], "relu")
    return nodes, inits, u


def onnx_model(model: Any, blocks: str = "sparse") -> Any:
    """The ``onnx.ModelProto`` of a :class:`~motifcore.MotifMLP` (checked with ``onnx.checker``);
    ``blocks``: see :func:`to_onnx`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if blocks not in ("sparse", "dense"):
        raise ValueError(f"blocks must be 'sparse' or 'dense', got {blocks!r}")
    layers = model_layers(model)
    if blocks == "dense":
        big = [f"layer {i}: {a.groups[0]} x {a.groups[1]}" for i, a in enumerate(layers)
               if a.groups[0] * a.groups[1] > MAX_DENSE_BLOCKS]
        if big:
            raise ValueError(f"blocks='dense' stores every G_out x G_in block matrix; too large for {', '.join(big)} "
                             f"(limit {MAX_DENSE_BLOCKS:,} entries): use blocks='sparse'")
    nodes = [helper.make_node("Shape", ["x"], ["x_shape"], name="x_shape"),
             helper.make_node("Gather", ["x_shape", "zero_index"], ["batch"], name="batch", axis=0)]
    inits = [numpy_helper.from_array(np.array([0], dtype=np.int64), "zero_index")]
    h = "x"
    for i, a in enumerate(layers):
        n, ini, h = _layer_nodes(a, i, h, "batch", blocks)
        nodes += n
        inits += ini
    nodes.append(helper.make_node("Identity", [h], ["logits"], name="logits"))
    graph = helper.make_graph(
        nodes, "motifcore", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", layers[0].n_in])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", layers[-1].n_out])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="motifcore")
    proto.ir_version = 8          # the IR version of opset 17, read by older runtimes too
    onnx.checker.check_model(proto)
    return proto


def to_onnx(model: Any, path: Union[str, "os.PathLike[str]"], blocks: str = "sparse") -> Path:
    """Write ``model`` as an ONNX file (input ``x`` float32 ``[batch, n_features]``, output
    ``logits``); returns the path.

    ``blocks="sparse"`` (default) stores one weight per active block (file and memory
    proportional to the blocks). ``blocks="dense"`` stores each layer's ``G_out x G_in`` block
    matrix with its zeros and multiplies it with ``MatMul``: ``m_out * m_in`` times smaller than
    the expanded matrix and faster in ONNX Runtime while it fits in cache (see
    docs/performance.md), refused above 2**26 entries per layer."""
    return atomic_write(path, onnx_model(model, blocks).SerializeToString())
