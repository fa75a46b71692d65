"""Paper 002's null (live units, every unit linked, sampled) and the live ER sampler: the samples'
invariants, the exact distribution of the generator on tiny layers, agreement with the exact ER
moments, the dense counting path, and z-scores of networks drawn from the null itself."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp

from motifcore.analysis import motif_counts, motif_zscores, null_moments, nulls, sample_null
from motifcore.analysis.motifs import MOTIFS, count_graph, layered_graph


# ------------------------------------------------------------------------------------------------
# the generator
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,E", [((1, 1), 1), ((1, 5), 5), ((5, 1), 5), ((3, 4), 4), ((3, 4), 6),
                                     ((3, 4), 7), ((3, 4), 12), ((20, 30), 30), ((20, 30), 49),
                                     ((20, 30), 50), ((20, 30), 400), ((40, 7), 45), ((7, 40), 250)])
def test_min1_sample_invariants(shape, E):
    rng = np.random.default_rng(7)
    for _ in range(20):
        M = nulls.min1_sample(shape, E, rng)
        assert M.shape == shape and M.dtype == bool
        assert int(M.sum()) == E
        assert M.any(axis=0).all() and M.any(axis=1).all()


def test_min1_sample_rejects_impossible_edge_counts():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="between 4 and 12"):
        nulls.min1_sample((3, 4), 3, rng)
    with pytest.raises(ValueError, match="between 4 and 12"):
        nulls.min1_sample((3, 4), 13, rng)
    with pytest.raises(ValueError, match="at least one unit"):
        nulls.min1_sample((0, 4), 4, rng)


def _key(M):
    return np.asarray(M, dtype=bool).tobytes()


def _fill(M, k):
    """All ways to set k free cells (uniform k-subsets): [(M', p)]."""
    free = list(zip(*np.nonzero(~M)))
    subsets = list(itertools.combinations(free, k))
    out = []
    for sub in subsets:
        N = M.copy()
        for c in sub:
            N[c] = True
        out.append((N, Fraction(1, len(subsets))))
    return out


def _one_per_line(M):
    """All outcomes of one uniformly chosen free cell per row: [(M', extra, p)]."""
    options = []
    for row in M:
        free = np.flatnonzero(~row)
        options.append([None] if free.size == 0 else list(free))
    out = []
    for pick in itertools.product(*options):
        N = M.copy()
        p = Fraction(1)
        extra = 0
        for i, j in enumerate(pick):
            if j is None:
                extra += 1
            else:
                N[i, j] = True
                p /= len(options[i])
        out.append((N, extra, p))
    return out


def _exact_distribution(shape, E):
    """The distribution of the procedure of ``min1_sample``, by enumerating every random choice."""
    n_out, n_in = shape
    dist = Counter()
    if E >= n_out + n_in:
        for M0, p0 in _fill(np.zeros(shape, dtype=bool), E - n_out - n_in):
            for M1t, x1, p1 in _one_per_line(M0.T.copy()):             # sources (columns) first
                for M2, x2, p2 in _one_per_line(M1t.T.copy()):         # then targets (rows)
                    for M3, p3 in _fill(M2, x1 + x2):
                        dist[_key(M3)] += p0 * p1 * p2 * p3
    else:
        big, small = max(shape), min(shape)
        perms = list(itertools.permutations(range(big)))
        for perm in perms:
            matched, rest = perm[:small], perm[small:]
            for other in itertools.product(range(small), repeat=len(rest)):
                M = np.zeros(shape, dtype=bool)
                for a, b in zip(range(small), matched):
                    M[(a, b) if n_in >= n_out else (b, a)] = True
                for a, b in zip(other, rest):
                    M[(a, b) if n_in >= n_out else (b, a)] = True
                p = Fraction(1, len(perms) * small ** len(rest))
                for M3, p3 in _fill(M, E - big):
                    dist[_key(M3)] += p * p3
    assert sum(dist.values()) == 1
    return dist


@pytest.mark.parametrize("shape,E", [((2, 3), 5), ((3, 3), 7), ((2, 3), 3), ((2, 3), 4), ((3, 2), 4)])
def test_min1_sample_follows_its_procedure_exactly(shape, E):
    """On tiny layers every admissible graph appears with the probability of the procedure (exact
    enumeration of its random choices), within 5 binomial standard errors, and nothing else does."""
    dist = _exact_distribution(shape, E)
    n = 12000
    rng = np.random.default_rng(2026)
    seen = Counter(_key(nulls.min1_sample(shape, E, rng)) for _ in range(n))
    assert set(seen) <= set(dist)
    for key, p in dist.items():
        p = float(p)
        assert abs(seen[key] / n - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-9, (key, seen[key] / n, p)
    # every admissible graph of the shape (all units linked) has positive probability
    cells = list(itertools.product(range(shape[0]), range(shape[1])))
    admissible = 0
    for sub in itertools.combinations(cells, E):
        M = np.zeros(shape, dtype=bool)
        M[tuple(np.array(sub).T)] = True
        admissible += bool(M.any(0).all() and M.any(1).all())
    assert len(dist) == admissible


def test_min1_procedure_is_not_uniform():
    """002's procedure favours some admissible graphs (the reason the docs call it 002's null and
    not "uniform over min-degree-1 graphs")."""
    for shape, E in (((3, 3), 7), ((2, 3), 4)):          # one case of each branch
        probs = sorted(set(_exact_distribution(shape, E).values()))
        assert len(probs) > 1 and probs[-1] / probs[0] >= Fraction(4, 3)


# ------------------------------------------------------------------------------------------------
# live graphs and the live samplers
# ------------------------------------------------------------------------------------------------


def _net_with_dead_units(seed=0):
    rng = np.random.default_rng(seed)
    A0 = (rng.random((7, 6)) < 0.5).astype(int)
    A1 = (rng.random((6, 7)) < 0.4).astype(int)
    A2 = (rng.random((4, 6)) < 0.5).astype(int)
    A0[0] = 0                  # hidden unit 0 of layer 1: no input (ghost)
    A2[:, 1] = 0               # hidden unit 1 of layer 2: no output (dead)
    A0[:, 5] = 0               # input 5 unused
    return [A0, A1, A2]


def test_live_graph_drops_unlinked_units_and_keeps_counts():
    net = _net_with_dead_units()
    g = nulls.live_graph(net)
    pruned = motif_counts(net, prune_inactive=True, chain_mode="pairs").total
    assert motif_counts(g, chain_mode="pairs").total == pruned
    for b in g.B:
        assert (np.diff(b.indptr) > 0).all() and (np.diff(b.tocsc().indptr) > 0).all()
    assert g.widths == nulls.live_widths(nulls.chain_removal(net)[0])


@pytest.mark.parametrize("null", ["er_live", "er_live_min1"])
def test_live_samples_keep_the_live_edge_counts(null):
    net = _net_with_dead_units(3)
    live_edges = motif_counts(net, prune_inactive=True).total["edges"]
    s = sample_null(net, null, n_samples=40, seed=5, chain_mode="pairs")
    assert (s[:, MOTIFS.index("edges")] == live_edges).all()
    assert np.array_equal(s, sample_null(net, null, n_samples=40, seed=5, chain_mode="pairs"))
    assert not np.array_equal(s, sample_null(net, null, n_samples=40, seed=6, chain_mode="pairs"))


def test_er_live_sampler_matches_the_exact_moments():
    net = _net_with_dead_units(1)
    n = 6000
    s = sample_null(net, "er_live", n_samples=n, seed=11)
    mom = null_moments(net, null="er_live", exact=False)
    for i, name in enumerate(MOTIFS):
        mean, var = mom[name]
        if var == 0:
            assert np.all(s[:, i] == mean)
            continue
        assert abs(s[:, i].mean() - mean) <= 4.5 * math.sqrt(var / n), name
        assert abs(s[:, i].var(ddof=1) / var - 1) <= 0.12, name


def test_min1_null_differs_from_er_live_where_units_can_be_unlinked():
    """Sparse live layers: ER over the live units often leaves a unit unlinked and piles edges on
    others; 002's null links every unit, so its degrees are more even and its div2 and conv2
    means are lower."""
    rng = np.random.default_rng(4)
    net = [nulls.min1_sample((12, 10), 14, rng), nulls.min1_sample((9, 12), 14, rng)]
    a = sample_null(net, "er_live", n_samples=2000, seed=1, motifs=["div2", "conv2"])
    b = sample_null(net, "er_live_min1", n_samples=2000, seed=1, motifs=["div2", "conv2"])
    se = np.sqrt(a.var(axis=0) / 2000 + b.var(axis=0) / 2000)
    assert (a.mean(axis=0) - b.mean(axis=0) > 10 * se).all()


@pytest.mark.parametrize("mode", ["paths", "pairs"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_counts_equal_sparse_counts(mode, seed):
    rng = np.random.default_rng(seed)
    widths = [int(v) for v in rng.integers(3, 30, size=5)]
    D = [rng.random((widths[i + 1], widths[i])) < rng.uniform(0.05, 0.9) for i in range(4)]
    g = layered_graph([d.astype(int) for d in D])
    ref = count_graph(g, MOTIFS, mode)
    assert nulls._dense_counts(D, MOTIFS, mode) == [int(sum(int(v) for v in ref[n])) for n in MOTIFS]


def test_dense_and_sparse_sampling_paths_agree():
    """The sampled counts do not depend on whether a sample is counted densely or sparsely."""
    rng = np.random.default_rng(8)
    net = [nulls.min1_sample((15, 12), 40, rng), nulls.min1_sample((10, 15), 30, rng)]
    dense = sample_null(net, "er_live_min1", n_samples=20, seed=3, chain_mode="pairs")
    old = nulls.DENSE_CELLS
    try:
        nulls.DENSE_CELLS = 0          # force the sparse path (the generator is the same)
        with pytest.raises(ValueError, match="too large"):
            sample_null(net, "er_live_min1", n_samples=2, seed=3)
    finally:
        nulls.DENSE_CELLS = old
    g = nulls.live_graph(net)
    r = np.random.default_rng(3)
    for k in range(20):
        B = [sp.csr_matrix(nulls.min1_sample(b.shape, b.nnz, r).astype(int)) for b in g.B]
        per = count_graph(g.copy_with(B), MOTIFS, "pairs")
        assert list(dense[k]) == [float(sum(int(v) for v in per[n])) for n in MOTIFS]


# ------------------------------------------------------------------------------------------------
# z-scores
# ------------------------------------------------------------------------------------------------


def test_zscores_of_every_null_in_both_chain_modes():
    rng = np.random.default_rng(0)
    net = [nulls.min1_sample((8, 6), 20, rng), nulls.min1_sample((7, 8), 20, rng),
           nulls.min1_sample((5, 7), 15, rng)]
    for null in nulls.SAMPLED_NULLS:
        for mode in ("paths", "pairs"):
            zs = motif_zscores(net, null=null, chain_mode=mode, n_samples=30, seed=1)
            assert [z.motif for z in zs] == list(MOTIFS)
            analytic = null in ("er", "er_live") and mode == "paths"
            assert all(z.null == null and z.n_samples == (0 if analytic else 30) for z in zs)
            assert zs[0].fixed                       # the edge count is fixed by every null
            assert (zs[0].method == "analytic") == analytic
    with pytest.raises(ValueError, match="analytic moments"):
        motif_zscores(net, null="er_live_min1", method="analytic")
    with pytest.raises(ValueError, match="er_live_min1"):
        motif_zscores(net, null="min1")
    zs = motif_zscores(net, null="er_live_min1", motifs=["chain2"], chain_mode="pairs")
    assert zs[0].n_samples == 1000 and zs[0].method == "mc"          # 002's sample size by default


@pytest.mark.parametrize("null", ["er_live_min1", "er"])
def test_zscores_against_the_own_generator_are_standard(null):
    """Networks drawn from a null have z-scores against that null with mean ~0 and std ~1 over
    repetitions (tolerance from the number of repetitions R and of null samples n)."""
    R, n = 30, 60
    rng = np.random.default_rng(99)
    shapes = [((9, 8), 24), ((9, 9), 25), ((6, 9), 18)]
    zs = []
    for r in range(R):
        if null == "er":
            net = [nulls._er_sample(s, e, rng).toarray() for s, e in shapes]
        else:
            net = [nulls.min1_sample(s, e, rng) for s, e in shapes]
        zs.append([z.z for z in motif_zscores(net, null=null, chain_mode="pairs", n_samples=n, seed=1000 + r)])
    Z = np.array(zs)
    checked = 0
    for i, name in enumerate(MOTIFS):
        col = Z[:, i][np.isfinite(Z[:, i])]
        if col.size < R // 2:
            continue
        checked += 1
        assert abs(col.mean()) <= 4 * math.sqrt((1 + 1 / n) / col.size) + 0.1, (name, col.mean())
        assert 0.6 <= col.std(ddof=1) <= 1.5, (name, col.std(ddof=1))
    assert checked >= 6


def test_live_hidden_fraction_by_hand():
    from motifcore import MotifMLP
    from motifcore.analysis import live_hidden_fraction

    # m = 1, 4-4-4-2: layer 0 keeps blocks into hidden neurons 0, 1, 2 only (neuron 3 has no
    # incoming block); layer 1 keeps blocks from inputs 0, 1 only (hidden-1 neurons 2, 3 have no
    # outgoing block): live = {0, 1} of 4. Layer 1 then feeds only its outputs 0 and 1, and the
    # output layer reads only hidden-2 neuron 1: live = {1} of 4.
    m = MotifMLP([4, 4, 4, 2], density=1.0, num_threads=1)
    l0, l1, l2 = m.layers
    l0.keep_where(l0.block_rows <= 2)
    l1.keep_where(np.isin(l1.indices, [0, 1]) & (l1.block_rows <= 1))
    l2.keep_where(l2.indices == 1)
    assert live_hidden_fraction(m) == [0.5, 0.25]
    # motif 2 in layers 0 and 1, m = 1 output layer: layer 0 (2 x 2 motif grid) keeps only
    # output motif 0 (neurons 0, 1); layer 1 keeps only input motif 1 (neurons 2, 3) -> no neuron
    # of hidden layer 1 has both; every neuron of hidden layer 2 feeds the dense output
    m2 = MotifMLP([4, 4, 4, 2], motif=[2, 2, 1], density=1.0, num_threads=1)
    a, b, _ = m2.layers
    a.keep_where(a.block_rows == 0)
    b.keep_where(b.indices == 1)
    assert live_hidden_fraction(m2) == [0.0, 1.0]
    with pytest.raises(ValueError, match="at least two layers"):
        live_hidden_fraction(MotifMLP([4, 2], density=1.0, num_threads=1))
