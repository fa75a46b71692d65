"""The transposed block product of the backward, the tiled (4 x 4 register blocks) row-major <->
panel transposes of MotifLayer.forward/backward, the NaN/inf check that rides on them, and the
divergence flag computed inside the optimizer pass: each against NumPy references, on odd batch
sizes and widths that are not a multiple of the transpose tile (256 features), on every SIMD level
this CPU has, and for thread-count independence (bitwise)."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from motifcore import MotifLayer, MotifMLP, _core
from motifcore.errors import DivergedError

BATCHES = (1, 3, 17, 130)


def _layer(n_in, n_out, m, threads=1, act="relu", bias="neuron", density=0.3, seed=4):
    layer = MotifLayer(n_in, n_out, motif=m, density=density, bias=bias, activation=act, seed=seed,
                       num_threads=threads)
    layer.bias = np.random.default_rng(seed).normal(0, 0.2, size=layer.bias.shape)
    return layer


def _close(actual, expected, what):
    expected = np.asarray(expected, np.float64)
    scale = max(float(np.abs(expected).max()), 1e-6)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=1e-4, atol=1e-5 * scale,
                               err_msg=what)


@pytest.mark.parametrize("m", [1, 2, 3])
def test_grad_input_matches_dense_transpose_on_every_simd_level(simd_levels, m):
    """grad_in = (g * act') @ W: the transposed product over the transposed index, with residual
    motifs on both sides (widths 301 and 259 are not multiples of 2 or 3)."""
    rng = np.random.default_rng(m)
    for level in simd_levels:
        _core.set_simd_level(level)
        for B in BATCHES:
            layer = _layer(301, 259, m)
            w = layer.to_dense().astype(np.float64)
            x = rng.normal(size=(B, 301)).astype(np.float32)
            g = rng.normal(size=(B, 259)).astype(np.float32)
            b = ref.expand_bias(layer.bias, 259, m, "neuron")
            z, a = ref.layer_forward(x, w, b, "relu")
            _close(layer.forward(x), a, f"{level} B={B} forward")
            gin_ref, gw_ref, _ = ref.layer_backward(x, w, z, g, "relu")
            # Independent of the reference module: the ReLU mask applied by hand.
            np.testing.assert_allclose(gin_ref, ((z > 0) * g) @ w, rtol=1e-12, atol=1e-12)
            _close(layer.backward(g), gin_ref, f"{level} B={B} grad_in")
            _close(layer.grad_weights, ref.block_grads_from_dense(gw_ref, (m, m), layer.indptr, layer.indices),
                   f"{level} B={B} grad_weights")


def test_grad_input_hand_computed_single_block():
    """A 3 x 5 layer that is one 3 x 5 motif: every input gets sum(g) * K."""
    layer = MotifLayer(5, 3, motif=(3, 5), density=1.0, activation="linear", seed=0)
    layer.weights = np.array([0.5], np.float32)
    layer.forward(np.ones((2, 5), np.float32))
    gin = layer.backward(np.array([[1, 2, 3], [-1, 0, 4]], np.float32))
    np.testing.assert_array_equal(gin, np.array([[3.0] * 5, [1.5] * 5], np.float32))


@pytest.mark.parametrize("shape", [(1, 1), (255, 257), (513, 7), (7, 600)])
@pytest.mark.parametrize("B", BATCHES)
def test_rowmajor_api_on_odd_shapes_linear_identity_pattern(shape, B):
    """With density 1 and m = 1, weights set to a known matrix: forward is x @ W.T + b exactly
    representable (small integers), so the transposes are checked for exact equality."""
    n_in, n_out = shape
    layer = MotifLayer(n_in, n_out, motif=1, density=1.0, activation="linear", seed=0, num_threads=2)
    rng = np.random.default_rng(B + n_in)
    wd = rng.integers(-2, 3, size=(n_out, n_in)).astype(np.float32)
    layer.weights = wd.ravel()          # density 1: CSR order is row-major
    layer.bias = rng.integers(-3, 4, size=n_out).astype(np.float32)
    x = rng.integers(-3, 4, size=(B, n_in)).astype(np.float32)
    g = rng.integers(-3, 4, size=(B, n_out)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), x @ wd.T + layer.bias)
    np.testing.assert_array_equal(layer.backward(g), g @ wd)
    np.testing.assert_array_equal(layer.grad_weights, (g.T @ x).ravel())
    np.testing.assert_array_equal(layer.grad_bias, g.sum(axis=0))


@pytest.mark.parametrize("m", [1, 2, 3])
def test_rowmajor_results_bitwise_independent_of_threads(m):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(130, 700)).astype(np.float32)
    g = rng.normal(size=(130, 517)).astype(np.float32)
    got = []
    for t in (1, 2, 3):
        layer = _layer(700, 517, m, threads=t, density=0.2)
        got.append((layer.forward(x), layer.backward(g), layer.grad_weights, layer.grad_bias))
    for other in got[1:]:
        for a, b in zip(got[0], other):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("pos", [(0, 0), (16, 255), (16, 256), (129, 299)])
def test_nonfinite_input_is_counted_and_discards_the_last_forward(pos):
    layer = _layer(300, 40, 2)
    x = np.zeros((130, 300), np.float32)
    layer.forward(x)
    x[pos] = np.nan
    x[-1, -1] = np.inf if pos != (129, 299) else np.nan
    n_bad = int(np.count_nonzero(~np.isfinite(x)))
    with pytest.raises(ValueError, match=f"x contains {n_bad} NaN or infinite values"):
        layer.forward(x)
    with pytest.raises(ValueError, match="before forward"):
        layer.backward(np.ones((130, 40)))


def test_nonfinite_grad_out_leaves_the_layer_usable():
    layer = _layer(50, 30, 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(17, 50)).astype(np.float32)
    g = rng.normal(size=(17, 30)).astype(np.float32)
    layer.forward(x)
    gin = layer.backward(g)
    gw = layer.grad_weights
    bad = g.copy()
    bad[16, 29] = -np.inf
    with pytest.raises(ValueError, match="grad_out contains 1 NaN or infinite values"):
        layer.backward(bad)
    np.testing.assert_array_equal(layer.grad_weights, gw)
    np.testing.assert_array_equal(layer.backward(g), gin)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_divergence_flag_from_the_update_pass(optimizer):
    """The update itself reports NaN/inf weights, or weights of magnitude >= 2^64 that the next
    forward cannot use: such a step raises DivergedError, ordinary steps never do."""
    net = MotifMLP([20, 33, 3], motif=2, density=0.5, seed=1, num_threads=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 20)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    for _ in range(3):
        assert np.isfinite(net.train_step(x, y, lr=0.01, optimizer=optimizer))
    lr = 1e38 if optimizer == "sgd" else 3e38
    with pytest.raises(DivergedError):
        for _ in range(5):
            net.train_step(x, y, lr=lr, optimizer=optimizer)
    assert not all((np.abs(layer.weights) < 2.0 ** 64).all() and (np.abs(layer.bias) < 2.0 ** 64).all()
                   for layer in net.layers)      # NaN compares False too
