"""The fused backward of sparse layers whose input gradient is needed (KernelTable::fused_backward,
docs/engine.md): weight and input gradients of whole networks against the dense NumPy reference on
every SIMD level, with residual motifs and batches that leave scalar tail columns or span several
register tiles; a sample's input gradient independent of its place in the batch and of the batch
size; training bitwise independent of the thread count on layers large enough for several row
blocks."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from motifcore import MotifLayer, MotifMLP, _core
from test_mlp import assert_close, engine_gradients


@pytest.mark.parametrize("motif", [1, 2, 3])
def test_network_gradients_match_the_dense_reference(simd_levels, motif):
    """dK and db of every layer from one SGD step against the float64 backward of the dense
    matrices: the layers below the top one receive their upstream gradient from the fused
    kernel's input gradient, so a wrong dS shows in their dK. Widths 257 and 130 leave residual
    motifs for m = 2 and 3; B = 150 spans two AVX-512 tiles and tail columns."""
    rng = np.random.default_rng(motif)
    for level in simd_levels:
        _core.set_simd_level(level)
        for B in (1, 4, 17, 150):
            mlp = MotifMLP([40, 300, 257, 130, 5], motif=motif, density=0.2, seed=motif, num_threads=2)
            for layer in mlp.layers:
                layer.bias = rng.normal(0, 0.1, layer.bias.size)
            x = rng.normal(size=(B, 40)).astype(np.float32)
            y = rng.integers(0, 5, B)
            _, before, eng = engine_gradients(mlp, x, y)
            ana = ref.mlp_gradients(before, x, y)
            for l, ((ek, eb), (ak, ab)) in enumerate(zip(eng, ana)):
                assert_close(ek, ak, what=f"{level} B={B} layer {l} dK")
                assert_close(eb, ab, what=f"{level} B={B} layer {l} db")
                assert np.abs(ak).max() > 0   # not vacuous


def test_a_samples_input_gradient_does_not_depend_on_its_place_in_the_batch(simd_levels):
    """Every sample's input gradient is the same sum, in the same order, whether its column of the
    panel is a vector lane or a scalar tail column: rolling the batch rolls grad_in, bitwise."""
    rng = np.random.default_rng(5)
    for level in simd_levels:
        _core.set_simd_level(level)
        for m in (1, 2):
            layer = MotifLayer(301, 259, motif=m, density=0.3, activation="relu", seed=4, num_threads=2)
            x = rng.normal(size=(150, 301)).astype(np.float32)
            g = rng.normal(size=(150, 259)).astype(np.float32)
            layer.forward(x)
            gin = layer.backward(g)
            layer.forward(np.roll(x, 37, axis=0))
            rolled = layer.backward(np.roll(g, 37, axis=0))
            assert np.roll(gin, 37, axis=0).tobytes() == rolled.tobytes(), f"{level} m={m}"


def test_a_samples_input_gradient_does_not_depend_on_the_batch_size(simd_levels):
    """Each sample's input gradient is the same per-lane sum whatever the batch of 4 or more samples
    (batches of 1-3 take the split kernels, whose sum for a sample is the transposed SpMM's; so do
    layers whose output-gradient panel is huge at the largest batch their workspace holds)."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(150, 301)).astype(np.float32)
    g = rng.normal(size=(150, 259)).astype(np.float32)
    for level in simd_levels:
        _core.set_simd_level(level)
        layer = MotifLayer(301, 259, motif=2, density=0.3, activation="relu", seed=4, num_threads=2)
        layer.forward(x)
        full = layer.backward(g)
        for B in (4, 5, 17, 131):
            layer.forward(x[:B])
            assert layer.backward(g[:B]).tobytes() == full[:B].tobytes(), f"{level} B={B}"


def test_a_short_last_batch_keeps_the_layers_route():
    """A layer whose output-gradient panel is huge at its full batch (32) but not at the short last
    one (8) takes the split kernels for both: the route follows the largest batch its workspace
    holds, so the short batch's input gradient is the full batch's rows, bit for bit."""
    rng = np.random.default_rng(8)
    n_out = 200_000                       # 200,000 x 32 floats = 25.6 MB > 24 MiB; x 8 floats: 6.4 MB
    x = rng.normal(size=(32, 64)).astype(np.float32)
    g = rng.normal(size=(32, n_out)).astype(np.float32)
    layer = MotifLayer(64, n_out, density=0.004, seed=0, num_threads=1)
    layer.forward(x)
    full = layer.backward(g)
    layer.forward(x[:8])
    assert layer.backward(g[:8]).tobytes() == full[:8].tobytes()


@pytest.mark.parametrize("B", [128, 150])
def test_training_bitwise_independent_of_threads_with_several_row_blocks(B):
    """Hidden layers of 1500 output groups: their output-gradient panels (1500 x 144 or 176 floats)
    are visited in two row blocks, the cursors of every column carried between them."""
    rng = np.random.default_rng(B)
    x = rng.normal(size=(B, 60)).astype(np.float32)
    y = rng.integers(0, 4, B)
    states = []
    for t in (1, 2, 3):
        mlp = MotifMLP([60, 1500, 1500, 4], motif=1, density=0.05, seed=2, num_threads=t)
        for _ in range(2):
            mlp.train_step(x, y, lr=0.05, momentum=0.9)
        states.append([np.concatenate([layer.weights, layer.bias]) for layer in mlp.layers])
    for other in states[1:]:
        for a, b in zip(states[0], other):
            assert a.tobytes() == b.tobytes()
