"""The engine computes with subnormal floats flushed to zero, and only inside its own calls.

Subnormal arithmetic is microcoded on x86 (a third of a layer's weights in that range made whole
epochs 3-5x slower, cpp/float_mode.hpp). Every product here is 1e-20 * 1e-20 = 1e-40, which IEEE
arithmetic keeps as a subnormal; flushed, it is exactly 0. NumPy's own arithmetic, after an engine
call, must still be IEEE.
"""

from __future__ import annotations

import motifcore as mc
import numpy as np
import pytest

SUBNORMAL = np.float32(1e-40)
TINY = np.float32(1e-20)  # normal, but TINY * TINY is subnormal

pytestmark = pytest.mark.skipif("IEEE" in mc.build_info()["subnormals"],
                                reason="no flush-to-zero control on this CPU")


def _numpy_keeps_subnormals() -> bool:
    a = np.array([TINY], np.float32)
    return bool((a * a)[0] != 0) and bool(np.array([SUBNORMAL], np.float32)[0] * np.float32(1) != 0)


def _layer(threads: int, motif: int = 1) -> mc.MotifLayer:
    layer = mc.MotifLayer(64, 300, motif=motif, density=1.0, seed=0)
    layer.num_threads = threads
    layer.bias = np.zeros(300, np.float32)
    return layer


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("motif", [1, 2])
def test_products_that_would_be_subnormal_are_zero(threads: int, motif: int) -> None:
    assert _numpy_keeps_subnormals()
    layer = _layer(threads, motif)
    layer.weights = np.full(layer.n_blocks, TINY, np.float32)
    y = layer.forward(np.full((130, 64), TINY, np.float32))   # batch 130: both threads take chunks
    assert np.count_nonzero(y) == 0
    g = layer.backward(np.full_like(y, TINY))
    assert np.count_nonzero(g) == 0
    assert np.count_nonzero(layer.grad_weights) == 0
    assert _numpy_keeps_subnormals(), "an engine call left the caller's thread in flush-to-zero mode"


@pytest.mark.parametrize("threads", [1, 2])
def test_subnormal_inputs_and_weights_read_as_zero(threads: int) -> None:
    layer = _layer(threads)
    layer.weights = np.full(layer.n_blocks, SUBNORMAL, np.float32)
    assert np.count_nonzero(layer.forward(np.ones((130, 64), np.float32))) == 0
    layer.weights = np.ones(layer.n_blocks, np.float32)
    assert np.count_nonzero(layer.forward(np.full((130, 64), SUBNORMAL, np.float32))) == 0
    assert _numpy_keeps_subnormals()


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizer_never_leaves_a_subnormal_weight(optimizer: str) -> None:
    layer = _layer(1)
    w0 = np.full(layer.n_blocks, 2e-38, np.float32)   # just above the subnormal range
    layer.weights = w0
    layer.forward(np.ones((4, 64), np.float32))
    layer.backward(np.zeros((4, 300), np.float32))    # no gradient: only the decay acts
    assert np.count_nonzero(layer.grad_weights) == 0
    for t in range(1, 4):
        layer.optimizer_step(optimizer, lr=0.9, momentum=0.0, weight_decay=0.9, t=t)
    w = layer.weights
    assert not np.any((w != 0) & (np.abs(w) < np.finfo(np.float32).tiny)), "a weight ended subnormal"


def test_results_do_not_depend_on_the_thread_count_near_the_subnormal_range() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((130, 64)) * 1e-19).astype(np.float32)
    w = (rng.standard_normal(64 * 300) * 1e-19).astype(np.float32)   # products straddle the range
    outs = []
    for threads in (1, 2):
        layer = _layer(threads)
        layer.weights = w
        outs.append(layer.forward(x).tobytes())
    assert outs[0] == outs[1]
