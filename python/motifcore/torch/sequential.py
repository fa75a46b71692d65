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
from typing import Any, Iterator, List, Optional, Sequence, Tuple

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


def _run_backward(chain: Tuple[MotifLinear, ...], grad_out: torch.Tensor, x: torch.Tensor, tokens: Tuple[int, ...],
                  versions: Tuple[int, ...], need_x: bool,
                  need: Sequence[Tuple[bool, bool]]) -> List[Optional[torch.Tensor]]:
    """``[dL/dx, dL/dweight_0, dL/dbias_0, ...]`` of the forward ``tokens`` (None where not needed,
    or where an optimizer made the update inside the backward)."""
    first, last = chain[0], chain[-1]
    with _locked(chain):
        for m, v in zip(chain, versions):
            check_pattern_version(m, v)
        if any(m._last_forward != t for m, t in zip(chain, tokens)):
            # another forward of a layer ran since: the engine keeps only the last one, so redo the chain's
            xa = engine_input(x, first.in_features, "input")
            try:
                _core.chain_forward([m._core for m in chain], xa, [m._num_threads for m in chain])
            except BaseException:
                _forget_forwards(chain)
                raise
            for m, t in zip(chain, tokens):
                m._last_forward = t
                m._layer._last_batch = xa.shape[0]
        updates = [update_in_backward(m, w, b, True) for m, (w, b) in zip(chain, need)]
        aws = [grad_array(m, "grad_w", m.n_blocks, True) if w and u is None else None
               for m, (w, _), u in zip(chain, need, updates)]
        abs_ = [grad_array(m, "grad_b", int(m._core.n_bias), True) if b and u is None else None
                for m, (_, b), u in zip(chain, need, updates)]
        g = grad_out if grad_out.dtype == torch.float32 else grad_out.float()
        ga = engine_input(g, last.out_features, "grad_output")
        nxt, stamp = handoff_source(g)
        spare = spare_array(first, "grad_in", (ga.shape[0], first.in_features)) if need_x else None
        done = np.zeros(len(chain), np.uint8)
        try:
            gin, stamp, handed = _core.chain_backward([m._core for m in chain], ga, aws, abs_, updates,
                                                      [m._num_threads for m in chain], bool(need_x), nxt, stamp,
                                                      spare, done)
        finally:
            for m, u, d in zip(chain, updates, done):
                if u is not None and d:      # an update made counts, as after the layers' own backwards
                    m._updated = m._kt_kept = True   # (the parameters get no .grad: the update is made)
        for k, m in enumerate(chain):
            m._handed_grad = handed if k + 1 == len(chain) else True
        if gin is not None:
            first._rows["grad_in"] = gin
    grads: List[Optional[torch.Tensor]] = [None]
    for aw, ab in zip(aws, abs_):
        grads += [None if aw is None else torch.from_numpy(aw), None if ab is None else torch.from_numpy(ab)]
    if need_x:
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
        ctx.save_for_backward(x)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:  # type: ignore[override]
        needs = ctx.needs_input_grad
        need = [(needs[3 + 2 * k], needs[4 + 2 * k]) for k in range(len(ctx.chain))]
        (x,) = ctx.saved_tensors
        grads = _run_backward(ctx.chain, grad_out, x, ctx.tokens, ctx.versions, needs[0], need)
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
