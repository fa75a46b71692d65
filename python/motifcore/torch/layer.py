"""MotifLinear: a torch module whose forward and backward run motifcore's engine.

Where the weights live: the engine layer (``motifcore._core.Layer``) owns the block weights ``K``
and the biases ``b``; the module's ``weight`` and ``bias`` parameters are torch tensors over that
same memory (``Layer.weights_view()``, kept alive by the layer), so a torch optimizer updates what
the engine reads, with no copy per call. A change of the block pattern (an evolution step,
``load_state_dict`` of another pattern) may reallocate ``K``; every such change goes through
:meth:`MotifLinear._pattern_change`, which points the parameters at the new memory (the
``Parameter`` objects stay the same, so optimizers keep them) and bumps :attr:`pattern_version`.
A tensor taken from ``weight`` before such a change (``weight.detach()``, ``weight.data``) must not
be used after it; ``state_dict()`` returns copies for that reason.

Gradients go the other way without a copy too: the backward hands the engine NumPy arrays of the
layer (``Layer.backward_handoff``), whose tensors (``torch.from_numpy``) autograd adopts as
``weight.grad`` / ``bias.grad`` or adds to them; a layer reuses such an array, and those of its
outputs and input gradients, once nothing holds it any more (``spare_array``).

If a parameter is pointed elsewhere (``weight.data = t``, ``load_state_dict(..., assign=True)``,
``torch.nn.utils.vector_to_parameters``), the next call copies its values into the engine once and
points it back at the engine's memory.

An optimizer may also make the update of a layer inside its backward (``SGDInBackward`` and the Adam
ones, optim.py): the module then hands the engine that optimizer's settings (``_updater``) instead
of gradient arrays, and the engine updates ``K`` and ``b`` in place in the same call. Between such
steps the engine keeps a copy of ``K`` in transposed order; the parameters are tracked views of
``K`` (``weights_view(tracked=True)``), so every write through torch (it bumps the parameter's
version counter) and every backward without such an update is reported to the engine
(``weights_written``) before the next backward, which then rebuilds the copy.

Two paths call the engine, with the same code (``_run_forward`` / ``_run_backward``): in eager mode
an ``autograd.Function``; under ``torch.compile`` the custom operators ``motifcore::motif_linear``
and ``motifcore::motif_linear_backward`` (``torch.library.custom_op`` with fake and autograd
registrations), which the compiler traces without a graph break. A third, ``MotifSequential``
(sequential.py), runs several layers in one engine call and shares this module's helpers of those
calls (``engine_input``, ``handoff_source``, ``tag_result``, ``spare_array``, ``grad_array``,
``update_in_backward``, ``check_pattern_version``: the package's own, not in ``__all__``).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import warnings
import weakref
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .. import _core
from .._internal.validation import check_motif
from ..export.arrays import LayerArrays, blocks_from_dense
from ..nn import MotifLayer
from ..nn.layer import BlockGeometry, engine_layer

__all__ = ["MotifLinear", "from_linear"]


def _positions(core: Any) -> np.ndarray:
    """Flat positions ``r * G_in + c`` of the active blocks, in ``K`` order (increasing)."""
    indptr = core.indptr
    rows = np.repeat(np.arange(int(core.G_out), dtype=np.int64), np.diff(indptr))
    return rows * int(core.G_in) + core.indices.astype(np.int64)


def engine_input(x: torch.Tensor, n: int, what: str) -> np.ndarray:
    """``x`` of shape ``(*, n)`` as a C-contiguous float32 [rows, n] NumPy view (a copy only if
    ``x`` is not contiguous). Anything the engine cannot take is a clear error."""
    if (isinstance(x, torch.Tensor) and x.dtype is torch.float32 and x.is_cpu and x.layout is torch.strided
            and x.dim() >= 1 and x.shape[-1] == n):          # the usual case, with fewer calls
        a = x.detach()
        if a.dim() != 2 or not a.is_contiguous():
            a = a.reshape(-1, n).contiguous()
        return a.numpy()
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.layout != torch.strided:
        raise TypeError(f"{what} must be a dense (strided) tensor; MotifLinear does not take {x.layout} "
                        "inputs (convert with .to_dense())")
    if x.device.type != "cpu":
        raise TypeError(f"{what} is on {x.device}; MotifLinear runs on the CPU only (move it with .cpu())")
    if x.dtype != torch.float32:
        raise TypeError(f"{what} has dtype {x.dtype}; MotifLinear computes in float32 (convert with .float())")
    if x.dim() < 1 or x.shape[-1] != n:
        raise ValueError(f"{what} must have shape (*, {n}), got {tuple(x.shape)}")
    return x.detach().reshape(-1, n).contiguous().numpy()


# ---- panel handoff between consecutive layers -------------------------------------------------
# The engine computes on feature-major panels; each call converts its row-major input to a panel
# and its result back. Between two MotifLinear layers that is one conversion too many in each
# direction: the next layer's input panel is the panel the previous layer's output was converted
# from, and the previous layer's upstream gradient panel is the one the next layer's input gradient
# was converted from. So every tensor a MotifLinear returns (its output, its input gradient) is
# tagged with the engine call that made it (the engine layer, the call's stamp) and the tensor's
# version counter and address at that time. A layer that receives such a tensor, untouched since
# (same version counter: torch bumps it at every in-place change, through any view; same memory),
# passes the tag to the engine, which takes the other layer's panel instead of converting the
# tensor while that call is still the other layer's last one (otherwise it converts the tensor, as
# without a tag). Anything else (another tensor, a copy, a tensor changed in place, a gradient summed
# from two uses) carries no valid tag and is converted. The panel holds exactly the tensor's values,
# so both routes give the same results, bitwise. Like autograd's own saved-tensor check, this relies
# on the version counter: writes that bypass it (``tensor.data``, a NumPy view) are not seen. The
# compiled path (the custom ops) neither tags nor reads tags: a compiled graph may write into a
# tensor's memory without bumping its counter (inductor reuses buffers in place).

# The tags live in a table of this process, keyed by the tensor's id and holding a weak reference
# to it, not on the tensor: a tag never travels with a pickled, saved or copied tensor (a loaded
# tensor starts at version 0 and may land at a freed tensor's address), and an entry goes when its
# tensor does. Inference tensors (``torch.inference_mode``) have no version counter and are never
# tagged. Entries are set and read under the GIL.
_TAGS: Dict[int, Tuple["weakref.ref[torch.Tensor]", Tuple[int, int, int, int]]] = {}


def _untag(key: int, ref: "weakref.ref[torch.Tensor]") -> None:
    entry = _TAGS.get(key)
    if entry is not None and entry[0] is ref:
        del _TAGS[key]


def tag_result(t: torch.Tensor, mod: "MotifLinear", stamp: int) -> None:
    """Tag ``t`` (just made from the engine call ``stamp`` of ``mod``) with that call."""
    if not stamp or t.is_inference():
        return
    key = id(t)
    ref = weakref.ref(t, lambda r, key=key: _untag(key, r))
    _TAGS[key] = (ref, (mod._handle, stamp, t._version, t.data_ptr()))


def handoff_source(t: torch.Tensor) -> Tuple[Any, int]:
    """``(engine layer, stamp)`` of the call whose panel holds ``t``'s values, or ``(None, 0)``."""
    entry = _TAGS.get(id(t))
    if entry is None or entry[0]() is not t:       # (an inference tensor is never tagged)
        return None, 0
    tag = entry[1]
    if tag[2] != t._version or tag[3] != t.data_ptr():
        return None, 0
    mod = _LAYERS.get(tag[0])
    return (None, 0) if mod is None else (mod._core, tag[1])


# ---- result arrays handed back -----------------------------------------------------------------
# Each backward writes the block gradient (one float per block: 3.6 MB for a 3000 x 3000 layer at
# density 0.1) into a new tensor, which autograd adopts as ``weight.grad``; each call writes its rows
# (the output, the input gradient) into a new array. New memory of that size costs a page fault per
# 4 KiB page when it is first written (the weight gradient's were 99 % of the page faults of a
# MotifLinear step, about 300 a step at 1 thread). So a layer keeps the NumPy array behind each of
# its last results and writes the next one into it when nothing else holds it any more: no tensor,
# view or array made from it is alive, in Python or in torch (a tensor made by ``torch.from_numpy``
# keeps its array referenced as long as its storage lives, ``weight.grad`` included), so the array's
# only references are the layer's slot and the local name. ``dict.pop`` takes the array out of its
# slot in one step under the GIL: two threads calling the same layer never get the same array.

def _pop_counted(slots: Dict[str, np.ndarray], kind: str) -> Tuple[Optional[np.ndarray], int]:
    """``slots.pop(kind)`` and the reference count of what it took, as ``spare_array`` reads it."""
    buf = slots.pop(kind, None)
    return buf, (0 if buf is None else sys.getrefcount(buf))


def _free_count() -> Optional[int]:
    """The reference count ``_pop_counted`` reports for an array nothing else holds, if one that
    something else holds reports one more; else None (never reuse). Reference counts are not the
    same from one CPython version to the next (3.14 borrows more references), so they are read
    here, once, on this interpreter, through the same call ``spare_array`` makes."""
    free = _pop_counted({"a": np.empty(1, np.float32)}, "a")[1]
    held = np.empty(1, np.float32)
    return free if _pop_counted({"a": held}, "a")[1] == free + 1 else None


_FREE_REFS = _free_count()


def spare_array(mod: "MotifLinear", kind: str, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """The layer's last ``kind`` array if nothing else holds it and it has ``shape``."""
    buf, refs = _pop_counted(mod._rows, kind)
    if buf is None or _FREE_REFS is None or refs != _FREE_REFS or buf.shape != shape:
        return None
    return buf


def _aligned_empty(n: int) -> np.ndarray:
    """``np.empty(n, float32)`` starting on a 64-byte boundary (as torch's own tensors do)."""
    raw = np.empty(n + 16, np.float32)
    first = (-raw.ctypes.data % 64) // 4
    return raw[first:first + n]


def grad_array(mod: "MotifLinear", kind: str, n: int, reuse: bool) -> np.ndarray:
    """A float32 array of ``n`` for a gradient the engine writes (the last one when free)."""
    buf = spare_array(mod, kind, (n,)) if reuse else None
    if buf is None:
        buf = _aligned_empty(n)
    if reuse:
        mod._rows[kind] = buf
    return buf


# ---- the engine calls behind both paths (eager autograd.Function, torch.library custom op) ------
# A forward returns a token (the layer's forward count; 0 for an empty batch); the backward of that
# forward checks it: the engine keeps the panels of its last forward only, so when another forward
# of the layer ran in between (a layer used twice, an evaluation pass) the backward first redoes
# its own forward. A change of the block pattern in between is refused.

def _run_forward(mod: "MotifLinear", x: torch.Tensor, handoff: bool = True,
                 training: bool = False) -> Tuple[torch.Tensor, int]:
    """``(y, token)`` of the layer on ``x`` through the engine (``handoff``: read and write the tags
    of the panel handoff, see above), under the layer's lock: a forward and a backward of the same
    layer from two threads take turns, so a backward's check that its forward is still the engine's
    last one holds while it runs."""
    with mod._lock:
        return _forward_locked(mod, x, handoff, training)


def _forward_locked(mod: "MotifLinear", x: torch.Tensor, handoff: bool, training: bool) -> Tuple[torch.Tensor, int]:
    xa = engine_input(x, mod.in_features, "input")
    lead = tuple(x.shape[:-1])
    if xa.shape[0] == 0:
        return x.new_zeros(lead + (mod.out_features,)), 0
    prev, stamp = handoff_source(x) if handoff else (None, 0)
    # ``training``: the caller's grad mode (inside an autograd.Function's forward grad mode is always
    # off). Only then is the output array kept for reuse: an evaluation of a large batch keeps none
    # of its size. The rows go through the caches (no stream_rows): streaming them past, as the
    # input gradients are, measured no faster (docs/performance-log.md, window 17).
    keep = handoff and training
    spare = spare_array(mod, "out", (xa.shape[0], mod.out_features)) if keep else None
    try:
        out, stamp, mod._handed_in = mod._core.forward_handoff(xa, mod._num_threads, prev, stamp, out=spare)
    except BaseException:
        mod._last_forward = -1   # the engine dropped its last forward: a pending backward redoes its own
        raise
    if keep:
        mod._rows["out"] = out
    mod._forwards += 1
    mod._last_forward = mod._forwards
    mod._layer._last_batch = xa.shape[0]
    # not a torch view: in-place changes are allowed
    y = torch.from_numpy(out if len(lead) == 1 else out.reshape(lead + (mod.out_features,)))
    if handoff:
        tag_result(y, mod, stamp)
    return y, mod._forwards


_Grads = Tuple[Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]


def _run_backward(mod: "MotifLinear", grad_out: torch.Tensor, x: torch.Tensor, token: int, version: int,
                  need_x: bool, need_w: bool = True, need_b: bool = True, handoff: bool = True) -> _Grads:
    """``(dL/dx, dL/dweight, dL/dbias)`` of the forward ``token`` on ``x`` (None where not needed;
    ``handoff`` and the lock as in :func:`_run_forward`)."""
    with mod._lock:
        return _backward_locked(mod, grad_out, x, token, version, need_x, need_w, need_b, handoff)


def update_in_backward(mod: "MotifLinear", need_w: bool, need_b: bool, handoff: bool) -> Optional[Dict[str, Any]]:
    """The update an optimizer makes inside this backward of ``mod`` (eager path only; None
    otherwise), with the engine told of any write to ``weight`` since the last backward."""
    update = mod._update_config(need_w, need_b) if handoff and mod._updater is not None else None
    w = mod._parameters["weight"]
    if mod._kt_kept and (update is None or w._version != mod._seen_weight_version):
        # The engine's transposed copy of K (kept only after an update inside the backward) is
        # trusted only from one such update to the next with no write through torch in between
        # (torch bumps the version counter at every in-place write, but its fused optimizers do
        # not): otherwise stale.
        mod._core.weights_written()
        mod._kt_kept = False
    mod._seen_weight_version = w._version
    return update


def check_pattern_version(mod: "MotifLinear", version: int) -> None:
    """Refuse a backward whose forward saw another block pattern."""
    if mod._version != version:
        raise RuntimeError("the block pattern of this MotifLinear changed between its forward and its backward "
                           "(an evolution step or load_state_dict); run the forward again")


def _backward_locked(mod: "MotifLinear", grad_out: torch.Tensor, x: torch.Tensor, token: int, version: int,
                     need_x: bool, need_w: bool, need_b: bool, handoff: bool) -> _Grads:
    update = update_in_backward(mod, need_w, need_b, handoff)
    if token == 0:
        f32 = torch.float32       # never the default dtype: the engine's gradients are float32
        if update is not None:        # an empty batch: the update of zero gradients, as torch's optimizers make it
            mod._core.update_from(np.zeros(mod.n_blocks, np.float32), np.zeros(int(mod._core.n_bias), np.float32),
                                  update, mod._num_threads)
            mod._updated = True
            need_w = need_b = False
        return (torch.zeros(tuple(x.shape), dtype=f32) if need_x else None,
                torch.zeros(mod.n_blocks, dtype=f32) if need_w else None,
                torch.zeros(int(mod._core.n_bias), dtype=f32) if need_b else None)
    check_pattern_version(mod, version)
    xa = None
    if mod._last_forward != token:
        # another forward of this layer ran since: the engine keeps only the last one, so redo ours
        xa = engine_input(x, mod.in_features, "input")
        mod._core.forward(xa, mod._num_threads)
        mod._last_forward = token
        mod._layer._last_batch = xa.shape[0]
    g = grad_out if grad_out.dtype == torch.float32 else grad_out.float()
    ga = engine_input(g, mod.out_features, "grad_output")
    nxt, stamp = handoff_source(g) if handoff else (None, 0)
    # The engine writes dL/dweight and dL/dbias straight into arrays of this layer (new ones, or its
    # last ones when nothing holds them: spare_array), with no copy of the layer's own gradients; autograd
    # then adopts their tensors as ``.grad`` when that is None, or adds them to it (accumulation
    # across backward calls, as for any torch parameter).
    aw = grad_array(mod, "grad_w", mod.n_blocks, handoff) if need_w and update is None else None
    ab = grad_array(mod, "grad_b", int(mod._core.n_bias), handoff) if need_b and update is None else None
    spare = spare_array(mod, "grad_in", (ga.shape[0], mod.in_features)) if handoff and need_x else None
    gin, stamp, mod._handed_grad = mod._core.backward_handoff(ga, aw, ab, mod._num_threads, bool(need_x), nxt, stamp,
                                                              handoff, spare, update)
    if update is not None:
        mod._updated = mod._kt_kept = True   # (the parameters get no .grad: the update is made)
    gw = None if aw is None else torch.from_numpy(aw)
    gb = None if ab is None else torch.from_numpy(ab)
    if handoff and gin is not None:
        mod._rows["grad_in"] = gin
    if mod._keep_io:       # RigL under torch.distributed recomputes the global batch's panels from these
        xs = x.detach().reshape(-1, mod.in_features) if xa is None else torch.from_numpy(xa)
        mod._io = (xs, torch.from_numpy(ga), mod._core.weights, mod._core.bias)      # the values of this pass
    gx = None
    if need_x:
        gx = torch.from_numpy(gin)
        if x.dim() != 2:
            gx = gx.view(tuple(x.shape))
        if handoff:
            tag_result(gx, mod, stamp)
    return gx, gw, gb


class _MotifFunction(torch.autograd.Function):
    """y = layer(x) through the engine (eager mode). The module is passed along (not a tensor);
    the weight and bias are passed so that autograd routes their gradients (the engine reads its
    own K)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],  # type: ignore[override]
                mod: "MotifLinear", training: bool) -> torch.Tensor:
        y, ctx.token = _run_forward(mod, x, True, training)
        ctx.mod, ctx.version = mod, mod._version
        ctx.save_for_backward(x)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:  # type: ignore[override]
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        (x,) = ctx.saved_tensors
        gx, gw, gb = _run_backward(ctx.mod, grad_out, x, ctx.token, ctx.version, need_x, need_w, need_b)
        return gx, gw, gb, None, None


# ---- torch.compile: the same calls as custom operators -----------------------------------------
# A custom op takes tensors and numbers only, so the module travels as an integer handle into a
# registry of live layers (a constant of the traced graph). The compiled graph passes the module's
# parameters in; the engine reads its own memory, which they are views of (``_sync`` adopts a
# parameter that was pointed elsewhere, as in eager mode). The forward's second output holds the
# token and the pattern version for the backward.

_LAYERS: "weakref.WeakValueDictionary[int, MotifLinear]" = weakref.WeakValueDictionary()
_HANDLES = itertools.count(1)
# The MotifLinear of each parameter, by the parameter's id (checked against the layer: a parameter
# replaced by another one, or an id reused, finds none).
_OWNERS: "weakref.WeakValueDictionary[int, MotifLinear]" = weakref.WeakValueDictionary()


def owner_of(p: torch.Tensor) -> Optional["MotifLinear"]:
    """The MotifLinear whose ``weight`` or ``bias`` is ``p``, or None."""
    mod = _OWNERS.get(id(p))
    if mod is None or not any(q is p for q in mod._parameters.values()):
        return None
    return mod


def _layer_of(handle: int) -> "MotifLinear":
    mod = _LAYERS.get(handle)
    if mod is None:
        raise RuntimeError("the MotifLinear of this compiled graph no longer exists")
    return mod


@torch.library.custom_op("motifcore::motif_linear", mutates_args=())
def _op_forward(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], handle: int,
                out_features: int) -> Tuple[torch.Tensor, torch.Tensor]:
    mod = _layer_of(handle)
    mod._sync()
    y, token = _run_forward(mod, x, handoff=False)
    return y, torch.tensor([token, mod._version], dtype=torch.int64)


@_op_forward.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], handle: int,
      out_features: int) -> Tuple[torch.Tensor, torch.Tensor]:
    return x.new_empty((*x.shape[:-1], out_features)), x.new_empty((2,), dtype=torch.int64)


@torch.library.custom_op("motifcore::motif_linear_backward", mutates_args=())
def _op_backward(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                 token: torch.Tensor, handle: int, need_x: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tok, version = (int(v) for v in token.tolist())
    gx, gw, gb = _run_backward(_layer_of(handle), grad, x, tok, version, need_x, True, bias is not None,
                               handoff=False)
    return (x.new_empty((0,)) if gx is None else gx), gw, (x.new_empty((0,)) if gb is None else gb)


@_op_backward.register_fake
def _(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], token: torch.Tensor,
      handle: int, need_x: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (x.new_empty(x.shape) if need_x else x.new_empty((0,)), weight.new_empty(weight.shape),
            bias.new_empty(bias.shape) if bias is not None else x.new_empty((0,)))


def _op_setup(ctx: Any, inputs: Tuple[Any, ...], output: Tuple[torch.Tensor, torch.Tensor]) -> None:
    x, weight, bias, handle, _ = inputs
    ctx.handle, ctx.has_bias = handle, bias is not None
    ctx.save_for_backward(x, weight, output[1], *([bias] if bias is not None else []))


def _op_grad(ctx: Any, grad_y: torch.Tensor, grad_token: Any) -> Tuple[Optional[torch.Tensor], ...]:
    x, weight, token, *rest = ctx.saved_tensors
    bias = rest[0] if ctx.has_bias else None
    need_x = bool(ctx.needs_input_grad[0])
    gx, gw, gb = torch.ops.motifcore.motif_linear_backward(grad_y, x, weight, bias, token, ctx.handle, need_x)
    return gx if need_x else None, gw, gb if ctx.has_bias else None, None, None


_op_forward.register_autograd(_op_grad, setup_context=_op_setup)


class MotifLinear(BlockGeometry, nn.Module):
    """A block-sparse linear layer whose ``m_out x m_in`` blocks each share one weight (Motif-SET),
    computed by motifcore's engine: ``y = x W^T + b`` with ``W[i, j] = weight[p]`` when the block
    ``p`` holding ``(i, j)`` is active, else 0.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths; a width not divisible by the motif size ends in a smaller
        residual motif.
    motif : int or (m_out, m_in)
        Motif size (``1``: edge-level sparsity).
    density : float
        Fraction of active blocks in ``(0, 1]`` (ignored when ``epsilon`` is given).
    bias : bool
        Whether the layer has a (trainable) bias.
    seed : int, optional
        Seed of the Erdős–Rényi pattern and the He-uniform weights; ``None`` draws one from
        torch's generator (so ``torch.manual_seed`` makes the model reproducible).
    epsilon : float, optional
        SET's ``p = epsilon * (G_in + G_out) / (G_in * G_out)``, overrides ``density``.
    bias_mode : {"neuron", "motif"}
        One bias per output neuron or one per output motif.
    activation : {"linear", "relu"}
        ``"relu"`` fuses a ReLU into the layer (one engine pass instead of two torch ops).
    input_copies : int
        See :class:`motifcore.MotifLayer` (the init bound of a layer fed by an aligned motif layer).
    num_threads : int, optional
        Threads of the engine's kernels (default: ``$MOTIFCORE_NUM_THREADS`` or all cores).
        Results do not depend on it.

    The input is a float32 CPU tensor of shape ``(*, in_features)``; ``weight`` holds one value per
    active block (in the order of :attr:`indices`, CSR over output motifs), ``bias`` one per output
    neuron (or motif). Both are ordinary ``nn.Parameter`` objects over the engine's memory.
    """

    def __init__(self, in_features: int, out_features: int, motif: Union[int, Tuple[int, int]] = 1,
                 density: float = 0.1, bias: bool = True, seed: Optional[int] = None, *,
                 epsilon: Optional[float] = None, bias_mode: str = "neuron", activation: str = "linear",
                 input_copies: int = 1, num_threads: Optional[int] = None) -> None:
        super().__init__()
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        core = engine_layer(in_features, out_features, motif, density, epsilon, bias_mode, activation, seed,
                            input_copies, names=("in_features", "out_features", "bias_mode"))
        self._setup(core, bool(bias), num_threads)

    # Plain bookkeeping set on every call (not parameters, buffers or modules): stored directly,
    # without nn.Module.__setattr__'s checks, which cost more than the rest of a small call.
    _PLAIN_ATTRS = frozenset({"_forwards", "_last_forward", "_handed_in", "_handed_grad", "_io", "_seen_weight_version",
                              "_updated", "_kt_kept"})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in MotifLinear._PLAIN_ATTRS:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # ---- construction helpers ------------------------------------------------------------------
    def _setup(self, core: Any, has_bias: bool, num_threads: Optional[int]) -> None:
        self._core = core
        self._layer = MotifLayer._wrap(core, 1)
        self._layer.num_threads = num_threads          # checked there (None: the engine's default)
        self.in_features, self.out_features = int(core.n_in), int(core.n_out)
        self._num_threads = self._layer.num_threads
        self._version = 0
        self._forwards = 0
        self._last_forward = -1
        self._lock = threading.RLock()
        self._keep_io, self._io = False, None
        self._handed_in = self._handed_grad = False    # whether the last call took a panel handoff
        self._rows: Dict[str, np.ndarray] = {}         # the last result arrays, for reuse (spare_array)
        self._reset_updater()
        self.weight = nn.Parameter(torch.from_numpy(core.weights_view(tracked=True)))
        if has_bias:
            self.bias = nn.Parameter(torch.from_numpy(core.bias_view()))
        else:
            self.register_parameter("bias", None)
        self._register()
        self._pointers = self._current_pointers()

    @classmethod
    def _from_arrays(cls, n_in: int, n_out: int, motif: Tuple[int, int], indptr: Any, indices: Any, weights: Any,
                     bias: Optional[Any], *, bias_mode: str = "neuron", activation: str = "linear",
                     input_copies: int = 1, num_threads: Optional[int] = None) -> "MotifLinear":
        """A layer with the given pattern and values (``bias=None``: no bias)."""
        m_out, m_in = check_motif(motif)
        g_out, g_in = -(-n_out // m_out), -(-n_in // m_in)
        core = _core.Layer(n_in, n_out, m_in, m_out, min(1.0, 1.0 / (g_out * g_in)), 0.0, bias_mode, activation, 0,
                           input_copies)
        n_bias = int(core.n_bias)
        b = np.zeros(n_bias, np.float32) if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
        empty = np.zeros(0, np.float32)
        core.set_state(np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(indices, dtype=np.int32),
                       np.ascontiguousarray(weights, dtype=np.float32), b, empty, empty)
        obj = cls.__new__(cls)
        nn.Module.__init__(obj)
        obj._setup(core, bias is not None, num_threads)
        return obj

    def _register(self) -> None:
        """A handle of this layer for the compiled graphs' custom ops (see ``_op_forward``), and the
        layer as the owner of its parameters (:func:`owner_of`)."""
        self._handle = next(_HANDLES)
        _LAYERS[self._handle] = self
        for p in self._parameters.values():
            if p is not None:
                _OWNERS[id(p)] = self

    def _reset_updater(self) -> None:
        """No optimizer updates this layer inside its backward (yet); the engine has seen no write."""
        self._updater: Optional[Tuple["weakref.ref[Any]", int]] = None   # (optimizer, its group index)
        self._updated = False              # an update inside the backward since the optimizer's step()
        self._seen_weight_version = -1     # weight._version at the last backward
        self._kt_kept = False              # the engine may hold a transposed copy of K (an update was made)

    def _update_config(self, need_w: bool, need_b: bool) -> Optional[Dict[str, Any]]:
        """The update the optimizer that holds this layer makes inside its backward (its settings
        now), or None (no such optimizer any more, or the weight and bias need no gradient)."""
        opt = self._updater[0]() if self._updater is not None else None
        if opt is None:
            self._updater = None
            return None
        return opt._backward_update(self, need_w, need_b)

    # ---- geometry and pattern ------------------------------------------------------------------
    @property
    def activation(self) -> str:
        return str(self._core.activation)

    @property
    def bias_mode(self) -> str:
        return str(self._core.bias_mode)

    @property
    def n_blocks(self) -> int:
        """Active blocks (= entries of ``weight``)."""
        return int(self._core.n_blocks)

    @property
    def density(self) -> float:
        g_out, g_in = self.groups
        return self.n_blocks / (g_out * g_in)

    @property
    def indptr(self) -> np.ndarray:
        """CSR row pointer over output motifs, int64 [G_out + 1] (a copy)."""
        return self._core.indptr

    @property
    def indices(self) -> np.ndarray:
        """Input motif of each active block, int32 [n_blocks] (a copy, aligned with ``weight``)."""
        return self._core.indices

    @property
    def positions(self) -> np.ndarray:
        """Flat positions ``r * G_in + c`` of the active blocks, int64, increasing."""
        return _positions(self._core)

    @property
    def pattern_version(self) -> int:
        """Bumped by every change of the block pattern."""
        return self._version

    @property
    def num_threads(self) -> int:
        return self._num_threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        self._layer.num_threads = value
        self._num_threads = self._layer.num_threads

    # ---- parameters <-> engine memory ----------------------------------------------------------
    def _current_pointers(self) -> Tuple[int, int]:
        w, b = self._parameters["weight"], self._parameters["bias"]     # as self.weight, without __getattr__
        return (w.data_ptr(), b.data_ptr() if b is not None else 0)

    def _engine_pointer(self) -> int:
        return int(self._core.weights_address)

    def _repoint(self) -> None:
        """Point the parameters at the engine's current K and b (after a pattern change)."""
        with torch.no_grad():
            self.weight.data = torch.from_numpy(self._core.weights_view(tracked=True))
            if self.bias is not None:
                self.bias.data = torch.from_numpy(self._core.bias_view())
        self._pointers = self._current_pointers()

    @staticmethod
    def _check_param(p: torch.Tensor, n: int, what: str) -> None:
        if p.device.type != "cpu" or p.dtype != torch.float32 or p.layout != torch.strided:
            raise TypeError(f"MotifLinear.{what} must stay a float32 CPU tensor (the engine computes in float32 on "
                            f"the CPU); it is {p.dtype} on {p.device} ({p.layout})")
        if tuple(p.shape) != (n,):
            raise ValueError(f"MotifLinear.{what} must have shape ({n},) (one value per "
                             f"{'active block' if what == 'weight' else 'bias entry'}), got {tuple(p.shape)}")

    def _sync(self) -> None:
        """Adopt parameters that were pointed elsewhere: copy their values into the engine once and
        point them back at its memory. A no-op (three pointer reads) in the normal case."""
        if self._engine_pointer() != self._pointers[0]:
            # the engine's pattern was changed behind the module's back (through ``_core`` or
            # ``_layer`` directly): the parameter would read freed memory. Follow the engine.
            warnings.warn("the block pattern of a MotifLinear was changed outside its DST objects; its "
                          "parameters now follow the engine, but optimizer state was not remapped",
                          RuntimeWarning, stacklevel=3)
            self._version += 1
            self._last_forward = -1
            self._repoint()
            return
        if self._current_pointers() == self._pointers:
            return
        for name in ("weight", "bias"):
            p = self._parameters[name]
            if p is not None and not isinstance(p, nn.Parameter):
                # torch.func.functional_call and torch.nn.utils.stateless put plain tensors there for
                # one call; adopting them would make that call's values the layer's own
                raise TypeError(f"MotifLinear.{name} was replaced by a plain tensor (torch.func.functional_call or "
                                "another reparametrization): the engine holds the layer's weights, one copy per "
                                "layer, and cannot compute with weights passed in for one call; load them "
                                "(load_state_dict) or copy them into the parameters instead")
        self._check_param(self.weight, self.n_blocks, "weight")
        if self.bias is not None:
            self._check_param(self.bias, int(self._core.n_bias), "bias")
        with torch.no_grad():
            if self.weight.data_ptr() != self._pointers[0]:
                self._core.set_weights(self.weight.detach().contiguous().numpy().copy())
            if self.bias is not None and self.bias.data_ptr() != self._pointers[1]:
                self._core.set_bias(self.bias.detach().contiguous().numpy().copy())
        self._repoint()

    @contextlib.contextmanager
    def _pattern_change(self) -> Iterator[Dict[str, np.ndarray]]:
        """Context of a change of the block pattern through the engine layer: yields a dict that
        holds ``old`` (positions before) and, on exit, ``new`` (positions after); the parameters are
        re-pointed and the version bumped even if the change fails half-way."""
        with self._lock:
            self._sync()
            info: Dict[str, np.ndarray] = {"old": _positions(self._core)}
            try:
                yield info
            finally:
                self._version += 1
                self._last_forward = -1
                self._io = None
                self._repoint()
                info["new"] = _positions(self._core)

    # ---- compute -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            # one custom op, traced without a graph break (the checks run when the graph runs)
            return torch.ops.motifcore.motif_linear(x, self.weight, self.bias, self._handle, self.out_features)[0]
        self._sync()
        return _MotifFunction.apply(x, self.weight, self.bias, self, torch.is_grad_enabled())

    def weights_written(self) -> None:
        """Report a write of ``weight`` that bypassed torch's version counter (through ``weight.data``
        or a NumPy view of it). Needed only while an optimizer updates this layer inside its
        backward (:class:`motifcore.torch.SGDInBackward` and the Adam ones): the engine then keeps
        a transposed copy of the weights from one step to the next, and an unreported write of that
        kind would be undone by the next update. Writes through torch ops are seen without it."""
        with self._lock:
            self._core.weights_written()

    def to_dense(self) -> torch.Tensor:
        """The effective ``(out_features, in_features)`` weight matrix (a new tensor)."""
        self._sync()
        if self.in_features * self.out_features > 2**31:
            raise ValueError(f"to_dense() of a {self.out_features} x {self.in_features} layer needs too much memory")
        return torch.from_numpy(self._core.to_dense())

    def to_layer_arrays(self) -> LayerArrays:
        """The layer as plain arrays (copies of the pattern, the block weights and the engine's
        biases): what ``MotifMLP.from_torch`` and ``motifcore.export`` read."""
        self._sync()
        c = self._core
        return LayerArrays(self.in_features, self.out_features, self.motif[0], self.motif[1], c.indptr,
                           c.indices.astype(np.int64), c.weights, c.bias, self.bias_mode, self.activation)

    def dense_bias(self) -> torch.Tensor:
        """The bias per output neuron (expanded from per-motif biases; zeros without a bias)."""
        if self.bias is None:
            return torch.zeros(self.out_features)
        b = self.bias.detach().clone()
        if self.bias_mode == "motif":
            b = b.repeat_interleave(self.motif[0])[: self.out_features]
        return b

    def extra_repr(self) -> str:
        m_out, m_in = self.motif
        m = str(m_out) if m_out == m_in else f"({m_out}, {m_in})"
        extra = "" if self.activation == "linear" else f", activation={self.activation!r}"
        extra += "" if self.bias_mode == "neuron" else ", bias_mode='motif'"
        return (f"in_features={self.in_features}, out_features={self.out_features}, motif={m}, "
                f"blocks={self.n_blocks}, density={self.density:.4g}, bias={self.bias is not None}{extra}")

    # ---- state_dict: the pattern travels with the weights --------------------------------------
    def _save_to_state_dict(self, destination: Dict[str, Any], prefix: str, keep_vars: bool) -> None:
        self._sync()
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if not keep_vars:
            # copies: a view of the engine's memory would dangle after the next pattern change
            destination[prefix + "weight"] = self.weight.detach().clone()
            if self.bias is not None:
                destination[prefix + "bias"] = self.bias.detach().clone()
        destination[prefix + "indptr"] = torch.from_numpy(self._core.indptr)
        destination[prefix + "indices"] = torch.from_numpy(self._core.indices.astype(np.int64))

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str, local_metadata: Any, strict: bool,
                              missing_keys: List[str], unexpected_keys: List[str], error_msgs: List[str]) -> None:
        ki, kx, kw, kb = (prefix + k for k in ("indptr", "indices", "weight", "bias"))
        if ki in state_dict and kx in state_dict and kw in state_dict:
            try:
                indptr = np.ascontiguousarray(torch.as_tensor(state_dict[ki]).cpu().numpy(), dtype=np.int64)
                indices = np.ascontiguousarray(torch.as_tensor(state_dict[kx]).cpu().numpy(), dtype=np.int32)
                w = np.ascontiguousarray(torch.as_tensor(state_dict[kw]).detach().cpu().numpy(), dtype=np.float32)
                if self.bias is not None and kb in state_dict:
                    b = np.ascontiguousarray(torch.as_tensor(state_dict[kb]).detach().cpu().numpy(), dtype=np.float32)
                else:
                    b = self._core.bias
                c = self._core
                if np.array_equal(indptr, c.indptr) and np.array_equal(indices, c.indices):
                    # the same pattern: the optimizer state of an update inside the backward stays
                    state = (c.weight_velocity, c.bias_velocity, c.weight_sq, c.bias_sq)
                else:
                    state = (np.zeros(0, np.float32),) * 4
                with self._pattern_change():
                    c.set_state(indptr, indices, w, b, *state)
            except (ValueError, TypeError, RuntimeError) as exc:
                error_msgs.append(f"cannot load the block pattern of {prefix or 'the MotifLinear'}: {exc}")
                return
        elif strict:
            for k in (ki, kx):
                if k not in state_dict:
                    missing_keys.append(k)
        rest = {k: v for k, v in state_dict.items() if k not in (ki, kx)}
        super()._load_from_state_dict(rest, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._sync()

    # ---- pickling (torch.save(module), copy.deepcopy) -----------------------------------------
    def __getstate__(self) -> Dict[str, Any]:
        self._sync()
        state = dict(super().__getstate__())
        c = self._core
        state["_engine"] = {"n_in": int(c.n_in), "n_out": int(c.n_out), "motif": (int(c.m_out), int(c.m_in)),
                            "indptr": c.indptr, "indices": c.indices, "bias_mode": str(c.bias_mode),
                            "activation": str(c.activation), "input_copies": int(c.input_copies)}
        for k in ("_core", "_layer", "_lock", "_pointers", "_io", "_handle", "_rows", "_updater", "_updated",
                  "_seen_weight_version", "_kt_kept"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        eng = state.pop("_engine")
        super().__setstate__(state)
        w, b = self._parameters["weight"], self._parameters.get("bias")
        tmp = MotifLinear._from_arrays(eng["n_in"], eng["n_out"], eng["motif"], eng["indptr"], eng["indices"],
                                       w.detach().numpy(), None if b is None else b.detach().numpy(),
                                       bias_mode=eng["bias_mode"], activation=eng["activation"],
                                       input_copies=eng["input_copies"], num_threads=self._num_threads)
        self._core, self._layer, self._lock = tmp._core, tmp._layer, threading.RLock()
        self._last_forward = -1
        self._keep_io, self._io = False, None
        self._handed_in = self._handed_grad = False
        self._rows = {}
        self._reset_updater()
        self._register()
        self._repoint()


def from_linear(linear: nn.Linear, motif: Union[int, Tuple[int, int]] = 1, density: Optional[float] = 0.1, *,
                activation: str = "linear", num_threads: Optional[int] = None) -> MotifLinear:
    """A :class:`MotifLinear` from a trained ``nn.Linear``: the ``round(density * G_out * G_in)``
    blocks of largest mean ``|w|`` are kept (``density=None``: every block holding a non-zero
    weight), each with the mean of its entries (:func:`motifcore.export.blocks_from_dense`)."""
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    W = linear.weight.detach().cpu().double().numpy()
    indptr, indices, weights = blocks_from_dense(W, motif, density)
    b = None if linear.bias is None else linear.bias.detach().cpu().float().numpy()
    return MotifLinear._from_arrays(W.shape[1], W.shape[0], check_motif(motif), indptr, indices, weights, b,
                                    activation=activation, num_threads=num_threads)
