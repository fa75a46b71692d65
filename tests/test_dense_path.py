"""The dense path of the engine: a layer whose every block is active runs its forward, input-gradient
and weight-gradient products as GEMMs (``KernelTable::gemm``, docs/engine.md).

Contract tested here: against a float64 NumPy reference and against the sparse kernels on the same
layer (``_core.Layer.dense_path = False``) within the summation bound ``2 n 2^-24 (|A| |B|)`` of a
float32 dot product of length n, elementwise; bitwise the same for 1 and 2 threads; on every SIMD
level this CPU has; and a layer that pruning makes sparse switches back to the sparse kernels.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest

from motifcore import MotifLayer, MotifMLP, _core

U = 2.0 ** -24  # float32 unit roundoff


def simd_levels() -> Iterator[str]:
    """Every SIMD level this build and CPU run; the automatic choice is restored afterwards."""
    try:
        for level in ("generic", "avx2", "avx512"):
            try:
                _core.set_simd_level(level)
            except ValueError:
                continue
            yield level
    finally:
        _core.set_simd_level("auto")


def group_matrix(n: int, m: int) -> np.ndarray:
    """[n, G] 0/1 membership of neuron j in motif j // m."""
    g = -(-n // m)
    a = np.zeros((n, g))
    a[np.arange(n), np.arange(n) // m] = 1.0
    return a


def reference(layer: MotifLayer, x: np.ndarray, g: np.ndarray):
    """float64 forward output, input gradient and block-weight gradient (CSR order) of `layer`
    (ReLU, per-neuron bias), with the magnitudes |.| of each product for the error bound."""
    W = layer.to_dense().astype(np.float64)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    z = x64 @ W.T + layer.bias.astype(np.float64)
    out = np.maximum(z, 0.0)
    out_mag = np.abs(x64) @ np.abs(W).T + np.abs(layer.bias)
    gz = g64 * (z > 0)
    gin, gin_mag = gz @ W, np.abs(gz) @ np.abs(W)
    m_out, m_in = layer.motif
    Po, Pi = group_matrix(layer.n_out, m_out), group_matrix(layer.n_in, m_in)
    gK = (Po.T @ (gz.T @ x64) @ Pi).ravel()            # block sums of dL/dW, row-major = CSR at density 1
    gK_mag = (Po.T @ (np.abs(gz).T @ np.abs(x64)) @ Pi).ravel()
    return out, out_mag, gin, gin_mag, gK, gK_mag


def within(a: np.ndarray, ref: np.ndarray, mag: np.ndarray, n: int) -> bool:
    return bool(np.all(np.abs(a.astype(np.float64) - ref) <= 2 * n * U * mag + 1e-30))


def run(layer: MotifLayer, x: np.ndarray, g: np.ndarray, threads: int):
    layer.num_threads = threads
    out = layer.forward(x)
    gin = layer.backward(g)
    return out, gin, layer.grad_weights, layer.grad_bias


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("batch", [1, 3, 130])
def test_dense_layer_matches_reference_sparse_and_threads(m: int, batch: int) -> None:
    n_in, n_out = 601, 523  # odd: residual motifs at m = 2, edge tiles, more than one K block of the GEMM
    rng = np.random.default_rng(batch + 10 * m)
    x = rng.standard_normal((batch, n_in)).astype(np.float32)
    g = rng.standard_normal((batch, n_out)).astype(np.float32)
    for level in simd_levels():
        layer = MotifLayer(n_in, n_out, motif=m, density=1.0, activation="relu", seed=5)
        layer.bias = rng.uniform(-0.1, 0.1, layer.bias.size).astype(np.float32)
        core = layer._core
        assert core.uses_dense and core.dense_path
        dense1 = run(layer, x, g, 1)
        dense2 = run(layer, x, g, 2)
        for a, b in zip(dense1, dense2):
            assert np.array_equal(a, b), level      # bitwise independent of the thread count
        core.dense_path = False
        assert not core.uses_dense
        sparse = run(layer, x, g, 1)
        core.dense_path = True
        out, out_mag, gin, gin_mag, gK, gK_mag = reference(layer, x, g)
        G_in = -(-n_in // m)
        for got in (dense1, sparse):
            assert within(got[0], out, out_mag, G_in + 1), level
            assert within(got[1], gin, gin_mag, n_out), level
            assert within(got[2], gK, gK_mag, batch * m * m), level
        # dense against sparse: both within the bound of the reference, so within twice of each other
        assert within(dense1[0], sparse[0].astype(np.float64), 2 * out_mag, G_in + 1)
        assert within(dense1[1], sparse[1].astype(np.float64), 2 * gin_mag, n_out)
        assert within(dense1[2], sparse[2].astype(np.float64), 2 * gK_mag, batch * m * m)
        assert np.array_equal(dense1[3], sparse[3])   # the bias gradient is not a GEMM


def test_dense_logits_do_not_depend_on_the_batch() -> None:
    """A sample's logits are bitwise the same alone and inside a batch (the GEMM treats every
    batch column alike), as on the sparse path."""
    X = np.random.default_rng(0).standard_normal((37, 50)).astype(np.float32)
    for level in simd_levels():
        net = MotifMLP([50, 70, 40, 3], density=1.0, seed=2, num_threads=2)
        assert all(layer._core.uses_dense for layer in net.layers)
        full = net.decision_function(X, batch_size=37)
        for i in (0, 17, 36):
            assert np.array_equal(net.decision_function(X[i:i + 1], batch_size=1)[0], full[i]), level
        assert np.array_equal(net.decision_function(X, batch_size=5), full), level


def mixed_net(threads: int) -> MotifMLP:
    return MotifMLP([61, 83, 47, 5], motif=[1, 2, 1], density=[0.2, 1.0, 1.0], seed=3, num_threads=threads)


def train(net: MotifMLP, steps: int = 8) -> list:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((96, 61)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0).astype(np.int64)
    return [net.train_step(X, y, lr=0.05, momentum=0.9) for _ in range(steps)]


def test_mixed_dense_and_sparse_network_trains() -> None:
    a, b = mixed_net(1), mixed_net(2)
    assert [layer._core.uses_dense for layer in a.layers] == [False, True, True]
    la, lb = train(a), train(b)
    assert la == lb                                   # bitwise, 1 vs 2 threads
    for x, y in zip(a.layers, b.layers):
        assert np.array_equal(x.weights, y.weights) and np.array_equal(x.bias, y.bias)
    assert la[-1] < 0.7 * la[0]                       # it learns
    # The same network with the dense layers forced onto the sparse kernels follows the same
    # trajectory up to rounding.
    c = mixed_net(1)
    for layer in c.layers:
        layer._core.dense_path = False
    lc = train(c)
    np.testing.assert_allclose(la, lc, rtol=1e-4)
    for x, y in zip(a.layers, c.layers):
        np.testing.assert_allclose(x.weights, y.weights, rtol=1e-3, atol=1e-5)


def test_pruning_switches_back_to_the_sparse_path() -> None:
    x = np.random.default_rng(1).standard_normal((130, 45)).astype(np.float32)
    g = np.random.default_rng(2).standard_normal((130, 33)).astype(np.float32)
    for m in (1, 2):
        layer = MotifLayer(45, 33, motif=m, density=1.0, activation="relu", seed=4)
        full = layer.n_blocks
        assert layer._core.uses_dense
        assert layer.prune_smallest(7) == 7
        assert not layer._core.uses_dense and layer.n_blocks == full - 7
        after = run(layer, x, g, 2)
        layer._core.dense_path = False               # what the sparse kernels give: bitwise the same
        forced = run(layer, x, g, 2)
        layer._core.dense_path = True
        for a, b in zip(after, forced):
            assert np.array_equal(a, b)
        out, out_mag, gin, gin_mag, _, _ = reference(layer, x, g)
        assert within(after[0], out, out_mag, 46) and within(after[1], gin, gin_mag, 33)
        # Growing the pruned blocks back (RigL-style, old weights) makes it dense again: the dense
        # path resumes.
        assert layer.grow_at(layer.last_removed) == 7
        assert layer._core.uses_dense
        dense = run(layer, x, g, 1)
        out, out_mag, gin, gin_mag, _, _ = reference(layer, x, g)
        assert within(dense[0], out, out_mag, 46) and within(dense[1], gin, gin_mag, 33)


def test_network_evolution_of_a_dense_layer() -> None:
    """MotifMLP training across a prune of its full-density layer: the step after the prune runs
    the sparse kernels (the same result as a copy forced onto them)."""
    nets = [mixed_net(2), mixed_net(2)]
    for layer in nets[1].layers:
        layer._core.dense_path = False
    for net in nets:
        train(net, 2)
        net.layers[1].prune_smallest(40)
        net.layers[2].prune_below(0.05, keep_min=10)
    assert not nets[0].layers[1]._core.uses_dense and not nets[0].layers[2]._core.uses_dense
    # Training so far differed by rounding; restore one state into the other, then step both.
    for a, b in zip(nets[0].layers, nets[1].layers):
        b._core.set_state(a._core.indptr, a._core.indices, a._core.weights, a._core.bias,
                          a._core.weight_velocity, a._core.bias_velocity)
    la, lb = train(nets[0], 3), train(nets[1], 3)
    assert la == lb
