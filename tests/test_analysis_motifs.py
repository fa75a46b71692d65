"""Motif counts against brute-force enumeration and hand-computed cases; exact ER null moments
against enumeration of every random graph; block level against the expanded network; sampled
nulls and chain removal."""

from __future__ import annotations

import itertools
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from motifcore.analysis import motifs as mo
from motifcore.analysis import nulls

NAMES = mo.MOTIFS


def brute(masks, chain_mode="paths"):
    """Every motif by enumerating node tuples of dense 0/1 masks (n_out x n_in, chained)."""
    A = [np.asarray(a, dtype=int) for a in masks]
    out = dict.fromkeys(NAMES, 0)
    for a in A:
        n_out, n_in = a.shape
        out["edges"] += int(a.sum())
        for j in range(n_in):
            for r in (2, 3):
                for S in itertools.combinations(range(n_out), r):
                    out[f"div{r}"] += all(a[i, j] for i in S)
        for i in range(n_out):
            for r in (2, 3):
                for S in itertools.combinations(range(n_in), r):
                    out[f"conv{r}"] += all(a[i, j] for j in S)
        for j1, j2 in itertools.combinations(range(n_in), 2):
            for i1, i2 in itertools.combinations(range(n_out), 2):
                out["bifan"] += a[i1, j1] and a[i1, j2] and a[i2, j1] and a[i2, j2]
    for a0, a1 in zip(A, A[1:]):
        pairs = set()
        for x in range(a0.shape[1]):
            for b in range(a0.shape[0]):
                for c in range(a1.shape[0]):
                    if a0[b, x] and a1[c, b]:
                        out["chain2"] += chain_mode == "paths"
                        pairs.add((x, c))
            for b1, b2 in itertools.combinations(range(a0.shape[0]), 2):
                for c in range(a1.shape[0]):
                    out["bipar"] += a0[b1, x] and a0[b2, x] and a1[c, b1] and a1[c, b2]
        if chain_mode == "pairs":
            out["chain2"] += len(pairs)
    for a0, a1, a2 in zip(A, A[1:], A[2:]):
        pairs = set()
        for x, b, c, d in itertools.product(range(a0.shape[1]), range(a0.shape[0]), range(a1.shape[0]),
                                            range(a2.shape[0])):
            if a0[b, x] and a1[c, b] and a2[d, c]:
                out["chain3"] += chain_mode == "paths"
                pairs.add((x, d))
        if chain_mode == "pairs":
            out["chain3"] += len(pairs)
    return {k: int(v) for k, v in out.items()}


def test_hand_cases():
    diamond = [np.ones((2, 2)), np.array([[1, 1]])]
    c = mo.motif_counts(diamond).total
    assert c == {"edges": 6, "div2": 2, "conv2": 3, "chain2": 4, "div3": 0, "conv3": 0, "chain3": 0,
                 "bifan": 1, "bipar": 2}
    assert mo.motif_counts(diamond, chain_mode="pairs").total["chain2"] == 2
    k33 = mo.motif_counts([np.ones((3, 3))]).total
    assert (k33["div2"], k33["conv2"], k33["div3"], k33["conv3"], k33["bifan"]) == (9, 9, 3, 3, 9)
    path = mo.motif_counts([np.ones((1, 1))] * 3).total
    assert path["chain2"] == 2 and path["chain3"] == 1
    assert all(path[k] == 0 for k in ("div2", "conv2", "div3", "conv3", "bifan", "bipar"))
    star = mo.motif_counts([np.ones((3, 1))]).total
    assert (star["div2"], star["div3"]) == (3, 1)
    # per-anchor values and the table
    c = mo.motif_counts(diamond)
    assert list(c.per_anchor["conv2"]) == [2, 1] and list(c.per_anchor["chain2"]) == [4]
    assert "bipar" in c.table()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("chain_mode", ["paths", "pairs"])
def test_brute_force(seed, chain_mode):
    rng = np.random.default_rng(seed)
    n_layers = int(rng.integers(1, 4)) + 1
    widths = rng.integers(3, 7, size=n_layers + 1)
    d = rng.uniform(0.3, 0.8)
    masks = [(rng.random((widths[i + 1], widths[i])) < d).astype(int) for i in range(n_layers)]
    want = brute(masks, chain_mode)
    got = mo.motif_counts([sp.csr_matrix(m) for m in masks], chain_mode=chain_mode).total
    assert got == want


def _expand(B, m_out, m_in, n_out, n_in):
    out = np.zeros((n_out, n_in), dtype=int)
    for g, h in zip(*np.nonzero(B)):
        out[g * m_out:(g + 1) * m_out, h * m_in:(h + 1) * m_in] = 1
    return out


def _layer(B, m_out, m_in, n_out, n_in):
    B = sp.csr_matrix(B)
    return SimpleNamespace(n_in=n_in, n_out=n_out, motif=(m_out, m_in), indptr=B.indptr.astype(np.int64),
                           indices=B.indices.astype(np.int32))


@pytest.mark.parametrize("seed", range(3))
def test_edge_level_of_blocks_with_residual_motifs(seed):
    # motifs (m_out, m_in) = (2, 3), (3, 1), (1, 2) on widths 13-10-9-7: unequal, misaligned partitions
    rng = np.random.default_rng(seed)
    widths, motifs = [13, 10, 9, 7], [(2, 3), (3, 1), (1, 2)]
    layers, dense = [], []
    for i, (mo_, mi) in enumerate(motifs):
        n_in, n_out = widths[i], widths[i + 1]
        B = (rng.random((-(-n_out // mo_), -(-n_in // mi))) < 0.45).astype(int)
        layers.append(_layer(B, mo_, mi, n_out, n_in))
        dense.append(_expand(B, mo_, mi, n_out, n_in))
    for mode in ("paths", "pairs"):
        assert mo.motif_counts(layers, level="edge", chain_mode=mode).total == brute(dense, mode)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_uniform_motif_linear_combinations(m):
    rng = np.random.default_rng(m)
    Bs = [(rng.random((4, 5)) < 0.5).astype(int), (rng.random((3, 4)) < 0.6).astype(int)]
    b = mo.motif_counts(Bs).total
    e = mo.motif_counts([np.kron(B, np.ones((m, m), dtype=int)) for B in Bs]).total
    assert e["div2"] == m**3 * b["div2"] + (m**3 - m**2) * b["edges"] // 2
    assert e["chain2"] == m**3 * b["chain2"]
    assert e["bipar"] == m**4 * b["bipar"] + (m**4 - m**3) * b["chain2"] // 2
    assert e["bifan"] == (m**4 * b["bifan"] + (m**4 - m**3) * (b["div2"] + b["conv2"]) // 2
                          + (m**4 - 2 * m**3 + m**2) * b["edges"] // 4)
    # the same expanded network from its block pattern, at edge and block level
    layers = [_layer(B, m, m, B.shape[0] * m, B.shape[1] * m) for B in Bs]
    assert mo.motif_counts(layers, level="edge").total == e
    assert mo.motif_counts(layers, level="block").total == b


def test_single_block_bifan():
    layer = _layer(np.ones((1, 1), dtype=int), 2, 2, 2, 2)
    assert mo.motif_counts([layer], level="edge").total["bifan"] == 1
    assert mo.motif_counts([layer], level="block").total["bifan"] == 0


def test_block_level_refines_misaligned_partitions():
    # hidden motif 2 followed by an m = 1 output layer: the block graph's last hidden node layer
    # is at neuron resolution, i.e. layer 0's block rows are duplicated
    rng = np.random.default_rng(5)
    B0 = (rng.random((3, 4)) < 0.6).astype(int)
    B1 = (rng.random((3, 6)) < 0.6).astype(int)
    layers = [_layer(B0, 2, 2, 6, 8), _layer(B1, 1, 1, 3, 6)]
    want = brute([np.kron(B0, np.ones((2, 1), dtype=int)), B1])
    assert mo.motif_counts(layers, level="block").total == want


def _all_graphs(widths, E):
    """Every layered graph with E[l] edges in layer l."""
    per_layer = []
    for l, e in enumerate(E):
        n_out, n_in = widths[l + 1], widths[l]
        cells = list(itertools.product(range(n_out), range(n_in)))
        opts = []
        for chosen in itertools.combinations(cells, e):
            a = np.zeros((n_out, n_in), dtype=int)
            for c in chosen:
                a[c] = 1
            opts.append(a)
        per_layer.append(opts)
    return itertools.product(*per_layer)


@pytest.mark.parametrize("widths, E", [([2, 3, 3], [3, 4]), ([2, 3, 2, 2], [3, 3, 2]), ([2, 2], [2])])
def test_exact_er_moments_against_enumeration(widths, E):
    counts = [brute(g) for g in _all_graphs(widths, E)]
    n = len(counts)
    net = [np.eye(widths[l + 1], widths[l], dtype=int) for l in range(len(E))]
    for l, e in enumerate(E):            # any graph with those edge counts gives the same null
        a = np.zeros((widths[l + 1], widths[l]), dtype=int)
        a.flat[:e] = 1
        net[l] = a
    mom = nulls.null_moments(net)
    for name in NAMES:
        vals = [c[name] for c in counts]
        mean = Fraction(sum(vals), n)
        var = Fraction(sum(v * v for v in vals), n) - mean**2
        assert mom[name] == (mean, var), name


def test_exact_moments_design_values():
    mom = nulls.null_moments([np.array([[1, 1], [1, 0], [0, 0]]), np.array([[1, 1, 0], [0, 1, 0], [1, 0, 0]])])
    assert mom["div2"] == (Fraction(27, 10), Fraction(627, 700))
    assert mom["bipar"] == (Fraction(3, 5), Fraction(72, 175))
    assert mom["bifan"] == (Fraction(1, 14), Fraction(13, 196))


def test_er_sampler_matches_exact_moments():
    rng = np.random.default_rng(0)
    widths, E = [5, 6, 5, 4], [12, 14, 9]
    net = []
    for l, e in enumerate(E):
        a = np.zeros(widths[l + 1] * widths[l], dtype=int)
        a[rng.choice(a.size, e, replace=False)] = 1
        net.append(a.reshape(widths[l + 1], widths[l]))
    n = 1500
    samples = nulls.sample_null(net, "er", n_samples=n, seed=1)
    mom = nulls.null_moments(net, exact=False)
    for i, name in enumerate(NAMES):
        mean, var = mom[name]
        se = np.sqrt(var / n)
        assert abs(samples[:, i].mean() - mean) <= 5 * se + 1e-12, name
        if var > 0:
            assert abs(samples[:, i].var(ddof=1) / var - 1) < 0.2, name
    # every sample has exactly E edges per layer: the edges count never varies
    assert np.all(samples[:, 0] == sum(E))


def test_degree_null_keeps_degrees_and_zscores():
    rng = np.random.default_rng(2)
    net = [(rng.random((8, 7)) < 0.4).astype(int), (rng.random((6, 8)) < 0.4).astype(int)]
    samples = nulls.sample_null(net, "degree", n_samples=30, seed=0)
    real = mo.motif_counts(net).total
    for name in ("edges", "div2", "conv2", "div3", "conv3", "chain2"):
        assert np.all(samples[:, NAMES.index(name)] == real[name]), name
    zs = {z.motif: z for z in nulls.motif_zscores(net, null="degree", n_samples=30)}
    assert zs["div2"].fixed and np.isnan(zs["div2"].z)
    assert zs["bifan"].method == "mc" and zs["bifan"].n_samples == 30
    # seeded: the same samples again
    assert np.array_equal(samples, nulls.sample_null(net, "degree", n_samples=30, seed=0))


def test_zscores_analytic():
    net = [np.ones((3, 3), dtype=int), np.eye(3, dtype=int)]
    zs = {z.motif: z for z in nulls.motif_zscores(net)}
    assert zs["edges"].fixed and np.isnan(zs["edges"].z)
    mom = nulls.null_moments(net, exact=False)
    m, v = mom["bipar"]
    assert zs["bipar"].z == pytest.approx((mo.motif_counts(net).total["bipar"] - m) / np.sqrt(v))
    assert zs["bipar"].null_mean == pytest.approx(m) and zs["bipar"].method == "analytic"
    sp_ = nulls.significance_profile(list(zs.values()))
    ok = np.isfinite(sp_)
    assert np.linalg.norm(sp_[ok]) == pytest.approx(1.0)


def test_chain_removal_hand_case_and_idempotent():
    net = [np.ones((2, 2), dtype=int), np.array([[1, 0]])]
    g, removed = mo.chain_removal(net)
    assert removed == [2, 0]
    assert g.B[0].toarray().tolist() == [[1, 1], [0, 0]]
    g2, removed2 = mo.chain_removal(g)
    assert removed2 == [0, 0]
    rng = np.random.default_rng(3)
    net = [(rng.random((6, 5)) < 0.25).astype(int) for _ in range(3)]
    net = [net[0], (rng.random((6, 6)) < 0.2).astype(int), (rng.random((4, 6)) < 0.3).astype(int)]
    g, _ = mo.chain_removal(net)
    assert mo.chain_removal(g)[1] == [0, 0, 0]
    for l in range(2):       # every hidden unit has either no links or both in- and out-links
        has_in = np.asarray(g.B[l].sum(axis=1)).ravel() > 0
        has_out = np.asarray(g.B[l + 1].sum(axis=0)).ravel() > 0
        assert np.array_equal(has_in, has_out)


def test_model_input_and_errors():
    from motifcore import MotifMLP

    model = MotifMLP([20, 16, 16, 4], motif=2, density=0.3, seed=0, num_threads=1)
    c = mo.motif_counts(model)
    assert c.level == "block"
    e = mo.motif_counts(model, level="edge")
    assert e.total["edges"] == model.n_edges
    with pytest.raises(ValueError, match="chain"):
        mo.motif_counts([np.ones((3, 2)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="unknown motif"):
        mo.motif_counts([np.ones((3, 2))], motifs=["triangle"])
    with pytest.raises(ValueError, match="ordinary layered graph"):
        nulls.null_moments(model, level="edge")
    with pytest.raises(ValueError, match="level"):
        mo.motif_counts(model, level="neuron")
    with pytest.raises(TypeError, match="non-empty"):
        mo.motif_counts([])
    with pytest.raises(ValueError, match="null"):
        nulls.motif_zscores(model, null="config")
    with pytest.raises(ValueError, match="n_samples"):
        nulls.sample_null(model, n_samples=1)


def test_curveball_samples_uniformly():
    # all 0/1 3x3 matrices with row sums (2, 1, 1) and column sums (2, 1, 1)
    from scipy.stats import chisquare

    start = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    mats = (np.reshape(g, (3, 3)) for g in itertools.product([0, 1], repeat=9))
    graphs = [tuple(m.ravel()) for m in mats if (m.sum(1) == [2, 1, 1]).all() and (m.sum(0) == [2, 1, 1]).all()]
    index = {g: i for i, g in enumerate(graphs)}
    chain = nulls._Curveball(sp.csr_matrix(start), np.random.default_rng(0))
    chain.trade(30)
    counts = np.zeros(len(graphs))
    for _ in range(3000):
        chain.trade(3)
        counts[index[tuple(chain.matrix().toarray().ravel())]] += 1
    assert len(graphs) == 5 and counts.min() > 0
    assert chisquare(counts).pvalue > 1e-3


def test_er_live_is_er_on_the_live_network():
    # hidden unit 2 has no output: chain removal drops its in-links, and it leaves the null
    A0 = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]])
    A1 = np.array([[1, 1, 0], [0, 1, 0]])
    live = [A0[:2], A1[:, :2]]
    assert nulls.null_moments([A0, A1], null="er_live") == nulls.null_moments(live)
    assert mo.motif_counts([A0, A1], prune_inactive=True).total == mo.motif_counts(live).total
