"""Engine paths that were only tested engine-against-engine, now against independent NumPy
references (code review 2026-11-29, findings 1 and 8): the huge-panel prefetch path of the kernels,
the He bound of copied inputs (``input_copies``) and inverted dropout; plus bitwise thread-count
independence of the fused training step."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from motifcore import MotifLayer, MotifMLP, _core
from test_mlp import assert_close, specs_of

KHUGE_PANEL = 24 << 20      # cpp/kernels_impl.hpp: input panels beyond this take the huge path


def panel_ld(batch: int) -> int:
    """cpp/kernels.hpp's row stride of a feature-major panel."""
    ld = (batch + 15) // 16 * 16
    return ld + 16 if ld >= 64 and (ld // 16) % 2 == 0 else ld


# ---- huge-panel path -----------------------------------------------------------------------------

def _sparse_reference(layer, x, g):
    """Forward, input gradient and block gradients of a linear motif layer (neuron bias) from its
    block list alone: group sums and bincounts over the blocks, O(blocks * batch), nothing dense."""
    (m_out, m_in), (g_out, g_in) = layer.motif, layer.groups
    rows = layer.block_rows
    cols = layer.indices.astype(np.int64)
    k = layer.weights.astype(np.float64)
    g64 = g.astype(np.float64)
    S = np.add.reduceat(x, np.arange(0, layer.n_in, m_in), axis=1, dtype=np.float64)   # [B, G_in]
    dU = np.add.reduceat(g64, np.arange(0, layer.n_out, m_out), axis=1)                # [B, G_out]
    out, gin, mag_out, mag_in = [], [], [], []
    for b in range(x.shape[0]):
        u = np.bincount(rows, weights=k * S[b, cols], minlength=g_out)
        out.append(np.repeat(u, m_out)[:layer.n_out] + layer.bias)
        mag = np.bincount(rows, weights=np.abs(k * S[b, cols]), minlength=g_out)
        mag_out.append(np.repeat(mag, m_out)[:layer.n_out])
        ds = np.bincount(cols, weights=k * dU[b, rows], minlength=g_in)
        gin.append(np.repeat(ds, m_in)[:layer.n_in])
        mag_in.append(np.repeat(np.bincount(cols, weights=np.abs(k * dU[b, rows]), minlength=g_in), m_in)[:layer.n_in])
    dk = np.einsum("bp,bp->p", dU[:, rows], S[:, cols])
    dk_mag = np.einsum("bp,bp->p", np.abs(dU[:, rows]), np.abs(S[:, cols]))
    return (np.array(out), np.array(mag_out)), (np.array(gin), np.array(mag_in)), (dk, dk_mag), g64.sum(axis=0)


def _close(actual, expected_and_scale, what):
    """|actual - expected| <= 1e-5 * (sum of |terms| of that entry) + 1e-6: a float32 sum of the
    same terms in any order stays within this bound."""
    expected, scale = expected_and_scale
    err = np.abs(actual.astype(np.float64) - expected)
    bound = 1e-5 * scale + 1e-6
    assert (err <= bound).all(), f"{what}: worst excess {np.max(err - bound):.3g}"


def _check_huge_paths(layer, x, g, simd_levels, bias: bool) -> None:
    """Forward, input gradient and block gradients (and the bias gradient) of `layer` on every SIMD
    level against the sparse reference."""
    fwd, bwd, dk, db = _sparse_reference(layer, x, g)
    for level in simd_levels:
        _core.set_simd_level(level)
        out = layer.forward(x)
        gin = layer.backward(g)
        _close(out, fwd, f"forward at {level}")
        _close(gin, bwd, f"input gradient at {level}")
        _close(layer.grad_weights, dk, f"block gradients at {level}")
        if bias:
            assert_close(layer.grad_bias, db, what=f"bias gradient at {level}")


@pytest.mark.parametrize("batch", [20, 64])
def test_huge_panel_path_matches_a_sparse_reference(batch, simd_levels):
    """A 400k-wide input in 2-neuron motifs: its group-sum panel is 200000 * ld * 4 bytes > 24 MiB,
    so the SpMM and the SDDMM take the prefetching huge-panel branch; batches 20 and 64 give the
    1-, 2- and 4-vector tiles of the SIMD levels (and their scalar tails)."""
    n_in = 400_000
    layer = MotifLayer(n_in, 48, motif=2, density=0.004, seed=3, num_threads=2)
    assert layer.groups[1] * panel_ld(batch) * 4 > KHUGE_PANEL
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, n_in), dtype=np.float32)
    g = rng.standard_normal((batch, 48), dtype=np.float32)
    layer.bias = rng.standard_normal(48).astype(np.float32)
    _check_huge_paths(layer, x, g, simd_levels, bias=True)


@pytest.mark.parametrize("batch", [8, 20, 32])
def test_huge_gradient_panel_path_matches_a_sparse_reference(batch, simd_levels):
    """A 400k-wide output: the output-gradient panel that the transposed SpMM gathers from is
    400000 * ld * 4 bytes > 24 MiB, so the transposed SpMM takes the prefetching huge-panel branch
    too; batch 8 is narrower than an AVX-512 vector (its tail columns in 8-wide vectors, prefetched),
    20 and 32 give one tile plus a tail or one tile of two vectors."""
    n_out = 400_000
    layer = MotifLayer(64, n_out, motif=1, density=0.004, seed=3, num_threads=2)
    assert layer.groups[0] * panel_ld(batch) * 4 > KHUGE_PANEL
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 64), dtype=np.float32)
    g = rng.standard_normal((batch, n_out), dtype=np.float32)
    layer.bias = rng.standard_normal(n_out).astype(np.float32)
    _check_huge_paths(layer, x, g, simd_levels, bias=False)


# ---- input_copies: the He bound of copied inputs -------------------------------------------------

def test_he_bounds_count_copied_inputs():
    """Hidden layers fed by a motif layer of the same size see each input motif as m identical
    copies; their He-uniform bound uses fan_in = sum s * min(s, m). Every initial weight lies within
    the reference bound, and the largest ones reach it (so a bound sqrt(m) too wide would fail)."""
    mlp = MotifMLP([301, 400, 400, 10], motif=[3, 3, 1], density=0.3, seed=1)
    copies = [1, 3, 1]      # layer 1 is fed by layer 0's 3-neuron output motifs
    for layer, c in zip(mlp.layers, copies):
        assert layer._core.input_copies == c
        bound = ref.he_bounds(layer.n_in, layer.motif, layer.indptr, layer.indices, copies=c)
        ratio = np.abs(layer.weights) / np.repeat(bound, np.diff(layer.indptr))
        assert ratio.max() <= 1 + 1e-6
        assert ratio.max() > 0.99                      # uniform draws: thousands of blocks reach it
    # blocks regrown by evolution follow the same bound, for the row's new pattern
    layer = mlp.layers[1]
    old = set(zip(layer.block_rows.tolist(), layer.indices.tolist()))
    mlp.evolve(0.3, seed=2, regrow="he")
    bound = np.repeat(ref.he_bounds(layer.n_in, layer.motif, layer.indptr, layer.indices, copies=3),
                      np.diff(layer.indptr))
    new = np.array([(r, c) not in old for r, c in zip(layer.block_rows.tolist(), layer.indices.tolist())])
    assert new.sum() > 1000
    ratio = np.abs(layer.weights[new]) / bound[new]
    assert ratio.max() <= 1 + 1e-6 and ratio.max() > 0.99


def test_input_copies_keep_the_second_moment():
    """What the correction is for: at initialisation the pre-activations of the copied-input layer
    have about the second moment that He's rule targets, 2 * E[a^2] of its inputs; the
    uncorrected bound would give m times that."""
    mlp = MotifMLP([300, 600, 600, 10], motif=[3, 3, 1], density=0.5, seed=0)
    x = np.random.default_rng(0).standard_normal((256, 300), dtype=np.float32)
    h1 = mlp.layers[0].forward(x)
    z2 = mlp.layers[1].forward(h1)     # ReLU(z) of the copied-input layer
    ratio = np.mean(z2.astype(np.float64) ** 2) / np.mean(h1.astype(np.float64) ** 2)
    # E[relu(z)^2] = E[z^2] / 2 and He keeps E[z^2] = 2 E[a^2]: the ratio is 1 (uncorrected: 3)
    assert 0.6 < ratio < 1.6


# ---- dropout ------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 11, 16, 17, 33])
def test_dropout_step_matches_the_reference(simd_levels, batch):
    """One SGD step with dropout 0.3 at every SIMD level (the dropout kernel is per level; batches
    below, at and past a vector, odd and even): the masks rebuilt in NumPy from the documented
    hash, the gradient by backpropagation through the masked dense network, against the engine's
    update."""
    p, lr = 0.3, 0.5
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch, 9)).astype(np.float32)
    y = rng.integers(0, 4, batch)
    for level in simd_levels:
        _core.set_simd_level(level)
        mlp = MotifMLP([9, 14, 12, 4], motif=[2, 2, 1], density=0.6, seed=7, num_threads=1)
        mlp._net.step = 5
        seed = int(mlp._net.dropout_seed)
        masks = [ref.dropout_mask(seed, 5, layer, n, batch, p) for layer, n in enumerate((14, 12))]
        before = specs_of(mlp)
        loss = mlp.train_step(x, y, lr=lr, momentum=0.0, weight_decay=0.0, dropout=p)
        after = specs_of(mlp)
        _, zs = ref.mlp_forward(before, x, masks)
        assert loss == pytest.approx(ref.cross_entropy(zs[-1], y), rel=1e-5), level
        grads = ref.mlp_gradients(before, x, y, masks)
        for l, (a, b, (gk, gb)) in enumerate(zip(before, after, grads)):
            assert_close((a["weights"] - b["weights"]) / lr, gk, what=f"{level}: layer {l} block gradients")
            assert_close((a["bias"] - b["bias"]) / lr, gb, what=f"{level}: layer {l} bias gradients")
    if batch >= 11:
        rate = np.mean(np.concatenate([m.ravel() for m in masks]) == 0)
        assert 0.15 < rate < 0.45                      # 26 x batch draws at p = 0.3
        # the same step without the masks is a different step (the check is not vacuous)
        plain = ref.mlp_gradients(before, x, y)
        assert not np.allclose(plain[0][0], grads[0][0], rtol=1e-3)


# ---- thread-count independence, bitwise -------------------------------------------------------------

def test_training_is_bitwise_independent_of_the_thread_count():
    """Large enough that every parallel region of the step runs multi-threaded (>= 65536
    operations: batch gather 600 x 128, dropout 1200 x 128, SpMM/SDDMM, 72k-block optimizer)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((384, 600), dtype=np.float32)
    y = rng.integers(0, 10, 384)
    results = []
    for threads in (1, 2, 3):
        mlp = MotifMLP([600, 1200, 600, 10], motif=[2, 3, 1], density=0.4, seed=5, num_threads=threads)
        loss = mlp.train_epoch(X, y, batch_size=128, lr=0.05, seed=1, dropout=0.2)
        mlp.evolve(0.2, seed=3)
        loss2 = mlp.train_epoch(X, y, batch_size=128, lr=0.05, seed=2, dropout=0.2)
        results.append((loss, loss2, mlp.get_state(), mlp.decision_function(X)))
    for loss, loss2, state, logits in results[1:]:
        assert (loss, loss2) == results[0][:2]
        assert all(np.array_equal(state[k], results[0][2][k]) for k in state)
        assert np.array_equal(logits, results[0][3])
