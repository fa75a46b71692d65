"""MotifLayer against the independent NumPy reference (tests/reference.py): forward, backward and
gradients for many motif geometries, thread and SIMD independence, Erdős–Rényi initialisation,
counts, SET prune/regrow invariants, and one very large layer."""

from __future__ import annotations

import itertools
import resource

import numpy as np
import pytest
import reference as ref
from motifcore import MotifLayer, MotifMLP, _core

RTOL = 1e-4  # float32 engine against float64 reference


def assert_close(actual, expected, rtol=RTOL, what=""):
    """Elementwise closeness with an absolute floor of ``rtol * max|expected|`` (float32 sums of
    many terms cancel, so a pure relative test is meaningless for entries near 0)."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-6), err_msg=what)


def round_half_up(v: float) -> int:
    """Rounding of a non-negative number, halves away from zero (C's llround)."""
    return int(np.floor(v + 0.5))


# ---------------------------------------------------------------------------------------------
# Geometry cases: (n_in, n_out, motif (m_out, m_in), bias, activation, batch, density)
# ---------------------------------------------------------------------------------------------

def _cases():
    cases = []
    # Square motifs m = 1..4 on widths divisible or not, both biases, both activations.
    for m, (n_in, n_out), bias, act in itertools.product(
            (1, 2, 3, 4), ((10, 7), (7, 10), (785, 33)), ("neuron", "motif"), ("linear", "relu")):
        cases.append((n_in, n_out, (m, m), bias, act, 5, 0.5 if n_in < 100 else 0.2))
    # Rectangular motifs.
    for i, ((m_out, m_in), (n_in, n_out)) in enumerate(itertools.product(
            ((2, 3), (3, 2), (1, 4), (4, 1), (3, 4)), ((10, 7), (785, 33)))):
        cases.append((n_in, n_out, (m_out, m_in), ("neuron", "motif")[i % 2], ("linear", "relu")[i // 2 % 2], 4,
                      0.5 if n_in < 100 else 0.2))
    # Width 3001 (residual motifs of size 1, 1, 3001 mod 5 = 1), a couple of small batches.
    cases += [
        (3001, 12, (3, 3), "motif", "relu", 2, 0.2),
        (12, 3001, (4, 4), "neuron", "linear", 3, 0.2),
        (3001, 9, (2, 5), "neuron", "relu", 2, 0.2),
    ]
    # Degenerate geometries: a 1 x 1 layer, a single block covering the whole layer.
    cases += [
        (1, 1, (1, 1), "neuron", "relu", 3, 1.0),
        (5, 3, (3, 5), "motif", "linear", 2, 1.0),
        (6, 4, (4, 6), "neuron", "relu", 1, 1.0),
    ]
    return cases


CASES = _cases()


def _case_id(c):
    n_in, n_out, (mo, mi), bias, act, batch, _ = c
    return f"{n_in}x{n_out}-m{mo}x{mi}-{bias}-{act}-B{batch}"


def make_case(case, seed=0):
    """A layer with random non-zero biases, a random input batch and a random upstream gradient."""
    n_in, n_out, motif, bias, act, batch, density = case
    layer = MotifLayer(n_in, n_out, motif=motif, density=density, bias=bias, activation=act,
                       seed=seed + 11, num_threads=2)
    rng = np.random.default_rng(seed)
    layer.bias = rng.normal(0, 0.3, size=layer.bias.shape)
    x = rng.normal(size=(batch, n_in)).astype(np.float32)
    g = rng.normal(size=(batch, n_out)).astype(np.float32)
    return layer, x, g


def check_layer_against(layer: MotifLayer, w: np.ndarray, x: np.ndarray, g: np.ndarray) -> None:
    """Forward, backward, grad_weights and grad_bias of `layer` against the dense reference
    using effective matrix `w`."""
    m_out, m_in = layer.motif
    b_neuron = ref.expand_bias(layer.bias, layer.n_out, m_out, layer.bias_mode)
    z, a = ref.layer_forward(x, w, b_neuron, layer.activation)
    out = layer.forward(x)
    assert out.dtype == np.float32
    assert_close(out, a, what="forward")
    gin_ref, gw_ref, gb_ref = ref.layer_backward(x, w, z, g, layer.activation)
    gin = layer.backward(g)
    assert_close(gin, gin_ref, what="backward (grad_in)")
    assert_close(layer.grad_weights, ref.block_grads_from_dense(gw_ref, layer.motif, layer.indptr, layer.indices),
                 what="grad_weights")
    assert_close(layer.grad_bias, ref.reduce_bias_grad(gb_ref, layer.n_out, m_out, layer.bias_mode),
                 what="grad_bias")


# ---------------------------------------------------------------------------------------------
# 1. Numerics against the reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_reference_built_from_to_dense(case):
    layer, x, g = make_case(case)
    check_layer_against(layer, layer.to_dense().astype(np.float64), x, g)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_reference_built_from_block_pattern(case):
    layer, x, g = make_case(case, seed=1)
    n_in, n_out = layer.n_in, layer.n_out
    w = ref.effective_matrix(n_out, n_in, layer.motif, layer.indptr, layer.indices, layer.weights)
    # The motif partition: blocks tile exactly the rectangles of their groups, with residual groups.
    m_out, m_in = layer.motif
    assert layer.groups == (ref.n_groups(n_out, m_out), ref.n_groups(n_in, m_in))
    check_layer_against(layer, w, x, g)


@pytest.mark.parametrize("case", CASES[::5], ids=_case_id)
def test_to_dense_equals_pattern_matrix(case):
    layer, _, _ = make_case(case)
    w = ref.effective_matrix(layer.n_out, layer.n_in, layer.motif, layer.indptr, layer.indices, layer.weights)
    np.testing.assert_array_equal(layer.to_dense(), w.astype(np.float32))


def test_motif_bias_makes_motif_outputs_equal():
    """With per-motif bias, every neuron of an output motif computes the same value (docs/design.md §4.3)."""
    layer = MotifLayer(13, 11, motif=3, density=0.6, bias="motif", activation="relu", seed=4)
    layer.bias = np.linspace(-0.5, 0.5, layer.bias.size)
    out = layer.forward(np.random.default_rng(0).normal(size=(6, 13)))
    for s in ref.group_slices(11, 3):
        assert np.all(out[:, s] == out[:, s.start:s.start + 1])
    assert np.ptp(out) > 0  # not trivially constant


@pytest.mark.parametrize("shape, motif, density", [((40, 30), 2, 0.5), ((2000, 8), 1, 0.5), ((301, 53), (3, 4), 0.5),
                                                   ((37, 23), 1, 0.5), ((37, 23), 1, 1.0), ((37, 23), (1, 3), 1.0)])
def test_batch_sizes_reuse_workspace(shape, motif, density):
    """One layer driven with growing and shrinking batches (the scratch is reused with a smaller
    leading dimension; batch sizes hit the vector-tile, tail and column-block paths). With m_out = 1
    the block products are computed in the output panel itself, on the sparse and the dense path."""
    n_in, n_out = shape
    layer = MotifLayer(n_in, n_out, motif=motif, density=density, bias="neuron", activation="relu", seed=3,
                       num_threads=2)
    rng = np.random.default_rng(5)
    layer.bias = rng.normal(0, 0.1, n_out)
    w = layer.to_dense().astype(np.float64)
    for batch in (1, 3, 16, 17, 200, 64, 67, 5, 130, 2):
        x = rng.normal(size=(batch, n_in)).astype(np.float32)
        g = rng.normal(size=(batch, n_out)).astype(np.float32)
        check_layer_against(layer, w, x, g)


@pytest.mark.parametrize("density", [0.4, 1.0])
def test_backward_follows_the_last_of_two_forwards(density):
    """A backward after two forwards (other batch sizes) is the last forward's, and the output of
    the first forward, held by the caller, is not overwritten by the second."""
    layer = MotifLayer(37, 23, motif=1, density=density, activation="relu", seed=8, num_threads=2)
    rng = np.random.default_rng(9)
    layer.bias = rng.normal(0, 0.2, 23)
    w = layer.to_dense().astype(np.float64)
    b = ref.expand_bias(layer.bias, 23, 1, layer.bias_mode)
    x1, x2 = rng.normal(size=(130, 37)).astype(np.float32), rng.normal(size=(7, 37)).astype(np.float32)
    out1 = layer.forward(x1)
    kept = out1.copy()
    out2 = layer.forward(x2)
    np.testing.assert_array_equal(out1, kept)
    assert_close(out2, ref.layer_forward(x2, w, b, layer.activation)[1], what="second forward")
    g = rng.normal(size=(7, 23)).astype(np.float32)
    z2, _ = ref.layer_forward(x2, w, b, layer.activation)
    gin_ref, gw_ref, _ = ref.layer_backward(x2, w, z2, g, layer.activation)
    assert_close(layer.backward(g), gin_ref, what="backward after two forwards")
    assert_close(layer.grad_weights, ref.block_grads_from_dense(gw_ref, layer.motif, layer.indptr, layer.indices),
                 what="grad_weights after two forwards")


def test_input_layouts_are_equivalent():
    """Non-contiguous, Fortran-ordered, float64, int and 1-D inputs give the same result as the
    plain C-contiguous float32 batch."""
    layer = MotifLayer(12, 8, motif=2, density=0.5, seed=2)
    rng = np.random.default_rng(0)
    big = rng.normal(size=(5, 24))
    x = np.ascontiguousarray(big[:, ::2], dtype=np.float32)
    expected = layer.forward(x)
    np.testing.assert_array_equal(layer.forward(big[:, ::2]).astype(np.float32), expected)
    np.testing.assert_array_equal(layer.forward(np.asfortranarray(x)), expected)
    np.testing.assert_array_equal(layer.forward(x.astype(np.float64)), expected)
    np.testing.assert_array_equal(layer.forward(x[2]), expected[2:3])
    xi = rng.integers(-3, 3, size=(4, 12))
    assert_close(layer.forward(xi), xi @ layer.to_dense().T.astype(np.float64) + layer.bias)


# ---------------------------------------------------------------------------------------------
# 3. Thread count and SIMD level do not change results
# ---------------------------------------------------------------------------------------------

def _run_layer(layer, x, g):
    out = layer.forward(x)
    gin = layer.backward(g)
    return out, gin, layer.grad_weights, layer.grad_bias


@pytest.mark.parametrize("motif", [1, 2, (3, 2)])
def test_layer_threads_give_same_results(motif):
    layer = MotifLayer(785, 301, motif=motif, density=0.2, activation="relu", seed=8)
    rng = np.random.default_rng(1)
    layer.bias = rng.normal(0, 0.1, layer.bias.size)
    x = rng.normal(size=(70, 785)).astype(np.float32)
    g = rng.normal(size=(70, 301)).astype(np.float32)
    layer.num_threads = 1
    one = _run_layer(layer, x, g)
    layer.num_threads = 2
    two = _run_layer(layer, x, g)
    for a, b, name in zip(one, two, ("forward", "backward", "grad_weights", "grad_bias")):
        np.testing.assert_array_equal(b, a, err_msg=name)   # bitwise, as docs/engine.md promises


def test_layer_simd_levels_agree(simd_levels):
    assert "generic" in simd_levels
    layer = MotifLayer(785, 301, motif=2, density=0.2, activation="relu", seed=9, num_threads=2)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(67, 785)).astype(np.float32)
    g = rng.normal(size=(67, 301)).astype(np.float32)
    results = {}
    for level in simd_levels:
        _core.set_simd_level(level)
        results[level] = _run_layer(layer, x, g)
    for level in simd_levels:
        for a, b, name in zip(results["generic"], results[level], ("forward", "backward", "grad_w", "grad_b")):
            assert_close(b, a, what=f"{name} at {level}")


def test_unknown_simd_level_raises():
    try:
        with pytest.raises(ValueError, match="SIMD level"):
            _core.set_simd_level("sse9")
    finally:
        _core.set_simd_level("auto")
    assert _core.simd_level() == _core.build_info()["simd_best"]


# ---------------------------------------------------------------------------------------------
# 5. Erdős–Rényi initialisation and counts
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_in, n_out, motif, density", [
    (10, 7, 1, 0.3), (7, 10, 3, 0.45), (785, 33, 4, 0.1), (100, 100, (2, 3), 0.77), (3001, 12, 5, 0.05),
    (50, 40, 2, 1.0),
])
def test_er_exact_block_count(n_in, n_out, motif, density):
    layer = MotifLayer(n_in, n_out, motif=motif, density=density, seed=1)
    g_out, g_in = layer.groups
    expected = round_half_up(density * g_out * g_in)
    assert layer.n_blocks == expected
    m_out, m_in = layer.motif
    assert _core.target_blocks(n_in, n_out, m_in, m_out, density, 0.0) == expected
    assert layer.indptr[-1] == len(layer.indices) == len(layer.weights) == expected


@pytest.mark.parametrize("n_in, n_out, motif, eps", [
    (100, 80, 1, 5.0), (785, 300, 2, 20.0), (1000, 1000, 3, 1.5), (30, 20, 1, 20.0),  # the last one caps at 1
])
def test_er_epsilon_block_count(n_in, n_out, motif, eps):
    layer = MotifLayer(n_in, n_out, motif=motif, epsilon=eps, density=0.9, seed=2)  # epsilon overrides
    g_out, g_in = layer.groups
    p = min(1.0, eps * (g_in + g_out) / (g_in * g_out))
    expected = round_half_up(p * g_out * g_in)
    assert layer.n_blocks == expected
    m_out, m_in = layer.motif
    assert _core.target_blocks(n_in, n_out, m_in, m_out, 0.9, eps) == expected
    if p == 1.0:
        assert layer.n_blocks == g_out * g_in



@pytest.mark.parametrize("args", [(10, 10, 0, 1, 0.1, 0.0), (10, 10, 1, 0, 0.1, 0.0), (0, 10, 1, 1, 0.1, 0.0),
                                  (10, 10, 1, 1, 0.0, 0.0), (10, 10, 11, 1, 0.1, 0.0)])
def test_target_blocks_rejects_what_the_layer_rejects(args):
    # m = 0 used to divide by zero (SIGFPE) instead of raising
    with pytest.raises(ValueError):
        _core.target_blocks(*args)

def _pattern(layer):
    return layer.indptr.copy(), layer.indices.copy(), layer.weights.copy()


def test_er_reproducible_by_seed():
    a = MotifLayer(200, 150, motif=2, density=0.2, seed=42)
    b = MotifLayer(200, 150, motif=2, density=0.2, seed=42)
    c = MotifLayer(200, 150, motif=2, density=0.2, seed=43)
    for u, v in zip(_pattern(a), _pattern(b)):
        np.testing.assert_array_equal(u, v)
    assert not (np.array_equal(a.indptr, c.indptr) and np.array_equal(a.indices, c.indices))
    assert not np.array_equal(a.weights, c.weights)


@pytest.mark.parametrize("density", [0.3, 0.8])  # sparse (rejection) and dense (selection) sampling
def test_er_positions_roughly_uniform(density):
    """Pattern well formed; every row and column hit; row counts near their mean; and over many
    seeds every position of a small grid is active about density * n_seeds times."""
    layer = MotifLayer(240, 180, motif=3, density=density, seed=7)
    g_out, g_in = layer.groups
    counts = np.diff(layer.indptr)
    assert counts.mean() == layer.n_blocks / g_out
    sd = np.sqrt(g_in * density * (1 - density))
    assert np.abs(counts - density * g_in).max() < 5 * sd
    assert (counts > 0).all() and np.bincount(layer.indices, minlength=g_in).min() > 0
    for r in range(g_out):  # sorted, no duplicates, in range
        row = layer.indices[layer.indptr[r]:layer.indptr[r + 1]]
        assert (np.diff(row) > 0).all() and row.min() >= 0 and row.max() < g_in

    n_seeds = 300
    hits = np.zeros((10, 10))
    for s in range(n_seeds):
        small = MotifLayer(10, 10, motif=1, density=density, seed=s)
        hits[small.block_rows, small.indices] += 1
    mean, sd = n_seeds * density, np.sqrt(n_seeds * density * (1 - density))
    assert np.abs(hits - mean).max() < 5 * sd, hits


@pytest.mark.parametrize("n_in, n_out, motif, density", [(785, 60, 4, 0.3), (100, 90, (2, 3), 0.5), (33, 17, 1, 0.9)])
def test_er_he_uniform_bound_per_row(n_in, n_out, motif, density):
    layer = MotifLayer(n_in, n_out, motif=motif, density=density, seed=3)
    bounds = ref.he_bounds(n_in, layer.motif, layer.indptr, layer.indices)
    ratio = np.abs(layer.weights) / bounds[layer.block_rows]
    assert ratio.max() <= 1 + 1e-6
    # Uniform on [-bound, bound]: |K| / bound is ~U(0, 1), so the bound is really used (not a
    # smaller one, e.g. from the block count instead of the edge fan-in).
    assert ratio.max() > 0.9 and 0.4 < ratio.mean() < 0.6
    assert (layer.weights > 0).any() and (layer.weights < 0).any()


@pytest.mark.parametrize("n_in, n_out, motif, bias", [(10, 7, 3, "neuron"), (10, 7, (3, 4), "motif"),
                                                      (785, 33, 4, "motif"), (29, 31, 1, "neuron")])
def test_counts(n_in, n_out, motif, bias):
    layer = MotifLayer(n_in, n_out, motif=motif, density=0.5, bias=bias, seed=5)
    layer.weights = np.arange(1, layer.n_blocks + 1, dtype=np.float32)  # all non-zero
    g_out, _ = layer.groups
    n_bias = n_out if bias == "neuron" else g_out
    assert layer.bias.shape == (n_bias,)
    assert layer.n_params == layer.n_blocks + n_bias
    assert layer.n_edges == np.count_nonzero(layer.to_dense())
    assert layer.macs_per_sample == layer.n_blocks
    assert layer.dense_params == n_in * n_out + n_out


def test_mlp_counts_are_sums():
    mlp = MotifMLP([23, 17, 11, 4], motif=[(2, 3), 3, 1], density=[0.5, 0.6, 0.7], bias="motif", seed=1)
    layers = mlp.layers
    for attr in ("n_blocks", "n_params", "n_edges", "macs_per_sample", "dense_params"):
        assert getattr(mlp, attr) == sum(getattr(l, attr) for l in layers), attr
    for layer in layers:
        layer.weights = np.full(layer.n_blocks, 0.5, np.float32)
    assert mlp.n_edges == sum(np.count_nonzero(l.to_dense()) for l in layers)
    assert mlp.n_params == sum(l.n_blocks + l.bias.size for l in layers)


# ---------------------------------------------------------------------------------------------
# 4. SET prune / regrow
# ---------------------------------------------------------------------------------------------

def _distinct_weights(n, seed=0):
    """n weights with pairwise distinct magnitudes and random signs, in random order."""
    rng = np.random.default_rng(seed)
    mags = (rng.permutation(n) + 1) / (n + 1)
    return (mags * rng.choice([-1.0, 1.0], n)).astype(np.float32)


def _snapshot(layer):
    """{(row group, col group): (weight, velocity)} of the active blocks."""
    vel = layer._core.weight_velocity
    return {pos: (w, v) for pos, w, v in zip(ref.block_positions(layer.indptr, layer.indices), layer.weights, vel)}


def _check_pattern(layer):
    g_out, g_in = layer.groups
    ip, ix = layer.indptr, layer.indices
    assert ip.shape == (g_out + 1,) and ip[0] == 0 and ip[-1] == ix.size == layer.weights.size
    assert (np.diff(ip) >= 0).all()
    for r in range(g_out):
        row = ix[ip[r]:ip[r + 1]]
        assert (np.diff(row) > 0).all(), f"row {r} not sorted / has duplicates"
        assert row.size == 0 or (row[0] >= 0 and row[-1] < g_in)


@pytest.mark.parametrize("n_in, n_out, motif, density, zeta", [
    (23, 17, (3, 2), 0.4, 0.3),      # few free positions relative to k: dense regrowth path
    (18, 18, 3, 0.75, 0.3),           # 27 of 36 active, k = 8 of 9 free: pruned ones must stay out
    (785, 300, 2, 0.05, 0.2),        # sparse regrowth path
    (40, 30, 1, 0.5, 0.55),
])
def test_prune_regrow_invariants(n_in, n_out, motif, density, zeta):
    mlp = MotifMLP([n_in, n_out, 3], motif=[motif, 1], density=[density, 0.5], seed=2, num_threads=2)
    rng = np.random.default_rng(0)
    mlp.train_step(rng.normal(size=(8, n_in)), rng.integers(0, 3, 8), lr=0.1, momentum=0.9)  # velocity != 0
    layer = mlp.layers[0]
    p = layer.n_blocks
    layer.weights = _distinct_weights(p)
    before = _snapshot(layer)
    assert any(v != 0 for _, v in before.values())
    old_positions = list(before)
    order = sorted(range(p), key=lambda i: (abs(float(layer.weights[i])), i))
    k_expected = round_half_up(zeta * p)
    expected_removed = {old_positions[i] for i in order[:k_expected]}

    k = layer.prune_regrow(zeta, seed=5)

    assert k == k_expected
    assert layer.n_blocks == p
    _check_pattern(layer)
    after = _snapshot(layer)
    removed = set(before) - set(after)
    new = set(after) - set(before)
    assert removed == expected_removed
    assert len(new) == k
    for pos in set(after) & set(before):  # survivors keep weight and momentum
        assert after[pos] == before[pos]
    bounds = ref.he_bounds(n_in, layer.motif, layer.indptr, layer.indices)
    for pos in new:
        w, v = after[pos]
        assert v == 0.0
        assert abs(w) <= bounds[pos[0]] * (1 + 1e-6)
    assert any(after[pos][0] != 0 for pos in new)
    # The layer still computes what its (new) pattern says, forward and backward (the transposed
    # index must have been rebuilt), and the network still trains.
    x = rng.normal(size=(6, n_in)).astype(np.float32)
    g = rng.normal(size=(6, n_out)).astype(np.float32)
    check_layer_against(layer, ref.effective_matrix(n_out, n_in, layer.motif, layer.indptr, layer.indices,
                                                    layer.weights), x, g)
    assert np.isfinite(mlp.train_step(rng.normal(size=(8, n_in)), rng.integers(0, 3, 8), lr=0.1))


def test_prune_ties_broken_by_position():
    layer = MotifLayer(20, 20, motif=2, density=0.3, seed=1)
    p = layer.n_blocks
    layer.weights = np.where(np.arange(p) % 2 == 0, 0.25, -0.25).astype(np.float32)
    old = ref.block_positions(layer.indptr, layer.indices)
    k = layer.prune_regrow(0.25, seed=0)
    assert k == round_half_up(0.25 * p)
    survivors = set(ref.block_positions(layer.indptr, layer.indices))
    assert set(old) - survivors == set(old[:k])


def test_regrown_positions_were_inactive():
    """Repeated over seeds on a nearly full grid: a regrown block is never an old one (active or
    just pruned), and together the regrown blocks reach every previously free position."""
    reached = set()
    for s in range(40):
        layer = MotifLayer(12, 12, motif=2, density=0.75, seed=3)  # 27 of 36 blocks
        layer.weights = _distinct_weights(layer.n_blocks, seed=s)
        old = set(ref.block_positions(layer.indptr, layer.indices))
        k = layer.prune_regrow(0.3, seed=s)
        new = set(ref.block_positions(layer.indptr, layer.indices)) - old
        assert len(new) == k == 8
        assert not (new & old)
        reached |= new
    free = {(r, c) for r in range(6) for c in range(6)} - old
    assert reached == free


def test_prune_zero_init():
    layer = MotifLayer(60, 50, motif=2, density=0.3, seed=4)
    layer.weights = _distinct_weights(layer.n_blocks)
    before = _snapshot(layer)
    k = layer.prune_regrow(0.2, seed=1, zero_init=True)
    after = _snapshot(layer)
    new = set(after) - set(before)
    assert len(new) == k > 0
    assert all(after[pos] == (0.0, 0.0) for pos in new)
    assert all(after[pos] == before[pos] for pos in set(after) & set(before))


def test_prune_reproducible_by_seed():
    def run(seed):
        layer = MotifLayer(60, 50, motif=2, density=0.3, seed=4)
        layer.weights = _distinct_weights(layer.n_blocks)
        layer.prune_regrow(0.3, seed=seed)
        return _pattern(layer)

    a, b, c = run(9), run(9), run(10)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not (np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1]))


def test_prune_zeta_zero_and_dense_layer():
    layer = MotifLayer(30, 20, motif=2, density=0.4, seed=1)
    before = _pattern(layer)
    assert layer.prune_regrow(0.0, seed=3) == 0
    for u, v in zip(before, _pattern(layer)):
        np.testing.assert_array_equal(u, v)
    # round(zeta * |P|) == 0 also changes nothing.
    assert layer.prune_regrow(0.4 / layer.n_blocks, seed=3) == 0
    for u, v in zip(before, _pattern(layer)):
        np.testing.assert_array_equal(u, v)
    dense = MotifLayer(10, 9, motif=3, density=1.0, seed=1)
    before = _pattern(dense)
    assert dense.prune_regrow(0.5, seed=1) == 0  # capped: no inactive position
    for u, v in zip(before, _pattern(dense)):
        np.testing.assert_array_equal(u, v)
    # Nearly dense: capped by the number of inactive positions.
    nearly = MotifLayer(10, 10, motif=1, density=0.97, seed=1)
    assert nearly.prune_regrow(0.5, seed=1) == 3
    assert nearly.n_blocks == 97


def test_mlp_evolve_counts_and_keeps_training():
    mlp = MotifMLP([30, 40, 20, 5], motif=[2, (2, 1), 1], density=[0.3, 0.4, 0.5], seed=3, num_threads=2)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 30)).astype(np.float32)
    y = rng.integers(0, 5, 64)
    mlp.train_epoch(X, y, batch_size=16, lr=0.05, seed=0)
    sizes = [l.n_blocks for l in mlp.layers]
    counts = mlp.evolve([0.2, 0.3, 0.1], seed=7)
    assert counts == [round_half_up(z * p) for z, p in zip([0.2, 0.3, 0.1], sizes)]
    assert [l.n_blocks for l in mlp.layers] == sizes
    for layer in mlp.layers:
        _check_pattern(layer)
    loss = mlp.train_epoch(X, y, batch_size=16, lr=0.05, seed=1)
    assert np.isfinite(loss)
    assert np.isfinite(mlp.evaluate(X, y)[0])


# ---------------------------------------------------------------------------------------------
# 6. A 300,000 x 300,000 layer (never densified)
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_huge_layer_forward_backward():
    n = 300_000
    assert _core.target_blocks(n, n, 1, 1, 0.1, 20.0) == 12_000_000
    layer = MotifLayer(n, n, epsilon=20, seed=1, num_threads=2)
    assert layer.n_blocks == 12_000_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, n)).astype(np.float32)
    g = rng.normal(size=(4, n)).astype(np.float32)
    out = layer.forward(x)
    gin = layer.backward(g)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB
    assert out.shape == (4, n) and gin.shape == (4, n)
    assert np.isfinite(out).all() and np.isfinite(gin).all()
    assert peak_gb < 4.0, f"peak RSS {peak_gb:.2f} GB (a dense matrix would need 360 GB)"

    # Spot-check the numbers with bincount over the 12 M blocks (m = 1: blocks are edges).
    rows = layer.block_rows
    cols = layer.indices.astype(np.int64)
    k = layer.weights.astype(np.float64)
    gw = layer.grad_weights
    sample = rng.choice(layer.n_blocks, 2000, replace=False)
    gw_ref = np.zeros(sample.size)
    for b in range(4):
        z = np.bincount(rows, weights=k * x[b, cols], minlength=n)
        assert_close(out[b], z, what=f"forward sample {b}")
        gi = np.bincount(cols, weights=k * g[b, rows], minlength=n)
        assert_close(gin[b], gi, what=f"backward sample {b}")
        gw_ref += g[b, rows[sample]].astype(np.float64) * x[b, cols[sample]]
    assert_close(gw[sample], gw_ref, what="grad_weights")
    assert_close(layer.grad_bias, g.sum(axis=0, dtype=np.float64), what="grad_bias")
