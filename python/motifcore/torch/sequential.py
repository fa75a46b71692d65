"""MotifSequential: an ``nn.Sequential`` that runs each run of consecutive :class:`MotifLinear`
layers as one engine call per direction.

Between two ``MotifLinear`` layers of an ``nn.Sequential`` each layer's output is a tensor of rows
that the next layer reads back as its input panel (the panel handoff of layer.py): the engine still
writes those rows, and autograd, the module calls and the handoff bookkeeping run once per layer.
Inside a sequential container nobody else sees those intermediate tensors, so ``MotifSequential``
runs a run of such layers as one autograd node over ``motifcore._core.chain_forward`` and
``chain_backward``: the engine hands each layer's output panel (and, backwards, its input-gradient
panel) to the next inside one call, under one guard, and writes rows only for the run's input
gradient and output. The calls and panels are those of the per-layer path, so the results (outputs,
gradients, updates made inside the backward by :class:`SGDInBackward` and the Adam ones) are the
same, bit for bit; tests/test_torch_sequential.py checks it.

A run is cut, and its layers called one by one as in ``nn.Sequential``, wherever the fused call
could differ from module calls: a layer with hooks (or global module hooks), a layer listed twice,
a subclass that overrides ``forward``, a layer that keeps its inputs for RigL under
``torch.distributed``, an empty batch, and anything under ``torch.compile`` (whose custom ops
already see the whole graph).
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules import module as _module

from .. import _core
from .layer import (
    MotifLinear,
    check_pattern_version,
    engine_input,
    grad_array,
    handoff_source,
    spare_array,
    tag_result,
    update_in_backward,
)

__all__ = ["MotifSequential"]

_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks")


def _global_hooks() -> bool:
    """Whether module hooks registered for every module (``register_module_forward_hook`` ...) exist."""
    return any(getattr(_module, name, None) for name in _GLOBAL_HOOKS)


def _fusable(m: nn.Module) -> bool:
    """Whether ``m`` may run inside a chain: a plain ``MotifLinear`` call with nothing that would
    see, or change, what happens between the chain's layers."""
    return (isinstance(m, MotifLinear) and type(m).forward is MotifLinear.forward and not m._keep_io
            and not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks))


@contextlib.contextmanager
def _locked(chain: Sequence[MotifLinear]) -> Iterator[None]:
    """Every layer's lock, in one global order (their handles), for the chain's engine call."""
    with contextlib.ExitStack() as stack:
        for m in sorted(chain, key=lambda m: m._handle):
            stack.enter_context(m._lock)
        yield


def _forget_forwards(chain: Sequence[MotifLinear]) -> None:
    """After a chain call that failed part-way: the engine's last forward of some layers is no
    longer the one their modules recorded, so every pending backward through them redoes its own."""
    for m in chain:
        m._last_forward = -1


def _run_forward(chain: Tuple[MotifLinear, ...], x: torch.Tensor,
                 training: bool) -> Tuple[torch.Tensor, Tuple[int, ...]]:
    """``(y, tokens)``: the chain on ``x`` in one engine call (the tokens as layer.py's forward)."""
    first, last = chain[0], chain[-1]
    xa = engine_input(x, first.in_features, "input")
    lead = tuple(x.shape[:-1])
    prev, stamp = handoff_source(x)
    spare = spare_array(last, "out", (xa.shape[0], last.out_features)) if training else None
    with _locked(chain):
        try:
            out, stamps, handed = _core.chain_forward([m._core for m in chain], xa, [m._num_threads for m in chain],
                                                      prev, stamp, spare)
        except BaseException:
            _forget_forwards(chain)
            raise
        for k, m in enumerate(chain):
            m._forwards += 1
            m._last_forward = m._forwards
            m._layer._last_batch = xa.shape[0]
            m._handed_in = handed if k == 0 else True
        tokens = tuple(m._forwards for m in chain)
    if training:
        last._rows["out"] = out
    y = torch.from_numpy(out if len(lead) == 1 else out.reshape(lead + (last.out_features,)))
    tag_result(y, last, stamps[-1])
    return y, tokens


def _runs(node: Any) -> bool:
    """Whether this backward pass runs ``node``, the node an input of the run's own node hands its
    gradient to (None: the input needs none); not when ``backward(inputs=...)`` leaves it out."""
    if node is None:
        return False
    will = getattr(torch._C, "_will_engine_execute_node", None)
    if will is None:
        return True
    try:
        return bool(will(node))
    except RuntimeError:     # a parameter's node under torch.autograd.grad: torch cannot tell; counted as run
        return True


def _run_backward(chain: Tuple[MotifLinear, ...], grad_out: torch.Tensor, x: torch.Tensor, ctx: Any,
                  need_x: bool, need: Sequence[Tuple[bool, bool]]) -> List[Optional[torch.Tensor]]:
    """``[dL/dx, dL/dweight_0, dL/dbias_0, ...]`` of the forward recorded in ``ctx`` (None where not
    needed, or where an optimizer made the update inside the backward).

    The layers' own nodes in an nn.Sequential would run from the last one down to the first one
    whose weight, bias or input gradient this pass computes (``backward(inputs=...)`` can leave the
    lower ones out), each making its update inside it; so does the run here. An optimizer that
    refuses the update of one layer (update_in_backward raises) has the layers above it run first,
    as their own nodes would have."""
    n = len(chain)
    # the nodes the run's own node hands gradients to: one edge per tensor input (x, then each weight
    # and each bias that is not None), in order
    edges = iter(ctx.next_functions)
    node = next(edges)[0]
    runs, below = [], _runs(node)
    for has_bias in ctx.has_bias:
        below = below or _runs(next(edges)[0])
        if has_bias:
            below = below or _runs(next(edges)[0])
        runs.append(below)
    lo = runs.index(True) if True in runs else n     # the lowest layer whose node would run
    with _locked(chain):
        for m, v in zip(chain, ctx.versions):
            check_pattern_version(m, v)
        if any(m._last_forward != t for m, t in zip(chain, ctx.tokens)):
            # another forward of a layer ran since: the engine keeps only the last one, so redo the run's
            # (from its input, so only with the weights of the forward this backward belongs to)
            for k, (m, pv) in enumerate(zip(chain, ctx.param_versions)):
                if k + 1 < n and _param_versions(m) != pv:
                    raise RuntimeError("another forward ran through the layers of this MotifSequential since the "
                                       "forward of this backward, and the weights of a layer changed in between: "
                                       "the run cannot redo its forward as it was; run the forward again")
            first = chain[0]
            xa = engine_input(x, first.in_features, "input")
            try:
                _core.chain_forward([m._core for m in chain], xa, [m._num_threads for m in chain])
            except BaseException:
                _forget_forwards(chain)
                raise
            for m, t in zip(chain, ctx.tokens):
                m._last_forward = t
                m._layer._last_batch = xa.shape[0]
        updates: List[Optional[Dict[str, Any]]] = [None] * n
        refused: Optional[BaseException] = None
        top = lo                      # the run's layers [top, n) make their backward
        for k in range(n - 1, lo - 1, -1):
            try:
                updates[k] = update_in_backward(chain[k], need[k][0], need[k][1], True)
            except BaseException as exc:      # (after the layers above it: see the docstring)
                refused, top = exc, k + 1
                break
        grads: List[Optional[torch.Tensor]] = [None] * (1 + 2 * n)
        if top < n:
            # the input gradient of layer top: the refusing layer's node below would have taken it;
            # otherwise wanted only for the run's own input
            need_in = refused is not None or (top == 0 and need_x)
            grads = _backward_part(chain, top, grad_out, x, updates, need, need_in, grads)
        if refused is not None:
            raise refused
    return grads


def _param_versions(m: MotifLinear) -> Tuple[int, int]:
    b = m._parameters["bias"]
    return (m._parameters["weight"]._version, -1 if b is None else b._version)


def _backward_part(chain: Tuple[MotifLinear, ...], top: int, grad_out: torch.Tensor, x: torch.Tensor,
                   updates: List[Optional[Dict[str, Any]]], need: Sequence[Tuple[bool, bool]], need_in: bool,
                   grads: List[Optional[torch.Tensor]]) -> List[Optional[torch.Tensor]]:
    """The engine's backward of layers ``[top, n)`` of the run (under the run's locks)."""
    part = chain[top:]
    first, last = part[0], part[-1]
    ups = updates[top:]
    aws = [grad_array(m, "grad_w", m.n_blocks, True) if w and u is None else None
           for m, (w, _), u in zip(part, need[top:], ups)]
    abs_ = [grad_array(m, "grad_b", int(m._core.n_bias), True) if b and u is None else None
            for m, (_, b), u in zip(part, need[top:], ups)]
    g = grad_out if grad_out.dtype == torch.float32 else grad_out.float()
    ga = engine_input(g, last.out_features, "grad_output")
    nxt, stamp = handoff_source(g)
    want_x = need_in and top == 0
    spare = spare_array(first, "grad_in", (ga.shape[0], first.in_features)) if want_x else None
    done = np.zeros(len(part), np.uint8)
    try:
        gin, stamp, handed = _core.chain_backward([m._core for m in part], ga, aws, abs_, ups,
                                                  [m._num_threads for m in part], need_in, nxt, stamp, spare, done)
    finally:
        for m, u, d in zip(part, ups, done):
            if u is not None and d:      # an update made counts, as after the layers' own backwards
                m._updated = m._kt_kept = True   # (the parameters get no .grad: the update is made)
    for k, m in enumerate(part):
        m._handed_grad = handed if k + 1 == len(part) else True
    for k, (aw, ab) in enumerate(zip(aws, abs_)):
        j = 1 + 2 * (top + k)
        grads[j] = None if aw is None else torch.from_numpy(aw)
        grads[j + 1] = None if ab is None else torch.from_numpy(ab)
    if want_x and gin is not None:
        first._rows["grad_in"] = gin
        gx = torch.from_numpy(gin)
        if x.dim() != 2:
            gx = gx.view(tuple(x.shape))
        tag_result(gx, first, stamp)
        grads[0] = gx
    return grads


class _ChainFunction(torch.autograd.Function):
    """y = the chain of layers on x through the engine (eager mode). The weights and biases are passed
    so that autograd routes their gradients (the engine reads its own memory)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, chain: Tuple[MotifLinear, ...], training: bool,  # type: ignore[override]
                *params: Optional[torch.Tensor]) -> torch.Tensor:
        y, ctx.tokens = _run_forward(chain, x, training)
        ctx.chain, ctx.versions = chain, tuple(m._version for m in chain)
        ctx.param_versions = tuple(_param_versions(m) for m in chain)
        ctx.has_bias = tuple(b is not None for b in params[1::2])
        ctx.save_for_backward(x)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:  # type: ignore[override]
        needs = ctx.needs_input_grad
        need = [(needs[3 + 2 * k], needs[4 + 2 * k]) for k in range(len(ctx.chain))]
        (x,) = ctx.saved_tensors
        grads = _run_backward(ctx.chain, grad_out, x, ctx, needs[0], need)
        return (grads[0], None, None, *grads[1:])


class MotifSequential(nn.Sequential):
    """``nn.Sequential`` (same constructor, indexing and ``state_dict`` keys) that runs each run of
    two or more consecutive :class:`MotifLinear` layers in one engine call per direction, with
    no row-major tensor between them: the results are those of ``nn.Sequential``, bit for bit, in
    less time (docs/torch.md, "MotifSequential"). Other modules run as in ``nn.Sequential``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mods = list(self._modules.values())
        if (torch.compiler.is_compiling() or not isinstance(x, torch.Tensor) or x.numel() == 0
                or _global_hooks()):
            return super().forward(x)
        training = torch.is_grad_enabled()
        i = 0
        while i < len(mods):
            j = i
            while j < len(mods) and _fusable(mods[j]) and all(mods[j] is not m for m in mods[i:j]):
                j += 1
            if j - i < 2:
                x = mods[i](x)
                i += 1
                continue
            chain = tuple(mods[i:j])
            params: List[Optional[torch.Tensor]] = []
            for m in chain:
                m._sync()
                params += [m.weight, m.bias]
            x = _ChainFunction.apply(x, chain, training, *params)
            i = j
        return x
