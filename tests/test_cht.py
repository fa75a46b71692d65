"""CH3-L3 scores against a direct path-by-path evaluation and hand cases; the CHT evolution step
(chain removal, top-k regrowth, conserved pattern size, seeds, thread counts, the CHT code's
sign-wise removal and restored links) and evolution="cht" in the Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from motifcore import MotifMLP, Trainer
from motifcore.analysis.dst import ch3_l3_scores, cn_l3_scores


def ch3_by_paths(A):
    """CH3-L3 by enumerating the 3-paths of the layer as an undirected graph: for a non-link
    (u, v) the local community LC holds the inner nodes of all u-v paths of length 3, and a path
    u-z1-z2-v adds 1/sqrt((1 + e(z1))(1 + e(z2))), e(z) = deg(z) - |N(z) & LC| - |N(z) & {u, v}|."""
    n_out, n_in = A.shape
    N = n_out + n_in                       # outputs 0..n_out-1, inputs n_out..
    adj = [set() for _ in range(N)]
    for i, j in zip(*np.nonzero(A)):
        adj[i].add(n_out + j)
        adj[n_out + j].add(i)
    S = np.zeros(A.shape)
    for i in range(n_out):
        for j in range(n_in):
            if A[i, j]:
                continue
            u, v = i, n_out + j
            paths = [(z1, z2) for z1 in adj[u] for z2 in adj[z1] if z2 not in (u, v) and v in adj[z2]]
            lc = {z for p in paths for z in p}
            for z1, z2 in paths:
                e1 = len(adj[z1]) - len(adj[z1] & lc) - len(adj[z1] & {u, v})
                e2 = len(adj[z2]) - len(adj[z2] & lc) - len(adj[z2] & {u, v})
                S[i, j] += 1.0 / np.sqrt((1 + e1) * (1 + e2))
    return S


def test_hand_cases():
    A = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0]])
    assert np.allclose(ch3_l3_scores(A).toarray(), [[0, 0, 1], [1, 0, 0], [0, 0, 0]])
    A[2, 1] = 1
    r = 1 / np.sqrt(2)
    assert np.allclose(ch3_l3_scores(A).toarray(), [[0, 0, r], [r, 0, 0], [r, 0, r]])
    assert np.array_equal(cn_l3_scores(A).toarray(), [[0, 0, 1], [1, 0, 0], [1, 0, 1]])
    six = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1]]).T
    assert np.allclose(ch3_l3_scores(six).toarray(), 2 * (six == 0))


@pytest.mark.parametrize("seed", range(8))
def test_against_path_enumeration(seed):
    rng = np.random.default_rng(seed)
    n_out, n_in = rng.integers(5, 13, size=2)
    A = (rng.random((n_out, n_in)) < rng.uniform(0.2, 0.5)).astype(int)
    want = ch3_by_paths(A)
    got = ch3_l3_scores(sp.csr_matrix(A)).toarray()
    assert np.allclose(got, want, atol=1e-12)
    assert np.all(got[A == 1] == 0)
    assert np.all(got <= cn_l3_scores(A).toarray() + 1e-12)
    # relabelling permutes, transposing transposes, threads change nothing
    p, q = rng.permutation(n_out), rng.permutation(n_in)
    assert np.allclose(ch3_l3_scores(A[p][:, q]).toarray(), got[p][:, q])
    assert np.allclose(ch3_l3_scores(A.T).toarray(), got.T)
    assert np.array_equal(ch3_l3_scores(A, num_threads=3).toarray(), got)


def test_block_equivalence():
    rng = np.random.default_rng(1)
    B = (rng.random((5, 6)) < 0.4).astype(int)
    for m in (2, 3):
        big = ch3_l3_scores(np.kron(B, np.ones((m, m), dtype=int))).toarray()
        assert np.allclose(big, m * np.kron(ch3_l3_scores(B).toarray(), np.ones((m, m))))


def _pattern(layer):
    g_out, g_in = layer.groups
    return sp.csr_matrix((np.ones(layer.n_blocks), layer.indices, layer.indptr), shape=(g_out, g_in)).toarray()


def test_chain_removal_hand_case():
    model = MotifMLP([2, 2, 2], density=1.0, seed=0, num_threads=1)
    st = model.get_state()
    st["layer1.indptr"] = np.array([0, 1, 1])
    st["layer1.indices"] = np.array([0], dtype=np.int32)
    for k in ("weights", "weight_velocity"):
        st[f"layer1.{k}"] = st[f"layer1.{k}"][:1]
    model.set_state(st)
    stats = model.evolve_cht([0.01, 0.0], seed=0)       # round(0.04) = 0 blocks by magnitude
    # the layer is full after the removal but for the two removed blocks: the fill draws them again
    assert stats[0] == {"removed": 0, "cr_removed": 2, "regrown_score": 0, "regrown_fill": 2, "restored": 2}
    assert stats[1] == {"removed": 0, "cr_removed": 0, "regrown_score": 0, "regrown_fill": 0, "restored": 0}
    assert model.layers[0].n_blocks == 4 and model.layers[1].n_blocks == 1


def test_regrows_top_scores():
    model = MotifMLP([30, 24, 20, 4], density=[0.15, 0.15, 1.0], seed=2, num_threads=1)
    layer = model.layers[0]
    K = np.abs(layer.weights)
    nnz = layer.n_blocks
    k = round(0.2 * nnz)
    keep = np.ones(nnz, bool)
    keep[np.lexsort((np.arange(nnz), K))[:k]] = False
    rows = layer.block_rows
    g_out, g_in = layer.groups
    after = sp.csr_matrix((np.ones(keep.sum()), (rows[keep], layer.indices[keep])), shape=(g_out, g_in))
    scores = ch3_l3_scores(after).toarray()
    assert np.count_nonzero(scores) > k
    before = _pattern(layer)
    stats = model.evolve_cht([0.2, 0.0, 0.0], seed=5, chain_removal=False)
    assert stats[0]["regrown_score"] == k and stats[0]["regrown_fill"] == 0
    new = (_pattern(layer) == 1) & (after.toarray() == 0)
    assert new.sum() == k and layer.n_blocks == nnz
    thr = np.sort(scores.ravel())[-k]
    assert np.all(scores[new] >= thr) and np.all(scores[(~new) & (after.toarray() == 0)] <= thr)
    assert np.all(layer.weights[new[layer.block_rows, layer.indices]] == 0)     # zero-initialised
    assert not np.array_equal(before, _pattern(layer))


@pytest.mark.parametrize("motif", [1, 2])
def test_reproducible_conserving_thread_independent(motif):
    def run(threads, seed):
        m = MotifMLP([40, 32, 32, 3], motif=motif, density=[0.2, 0.2, 1.0], seed=1, num_threads=threads)
        sizes = [l.n_blocks for l in m.layers]
        for step in range(3):
            m.evolve_cht([0.3, 0.3, 0.0], seed=seed + step)
        assert [l.n_blocks for l in m.layers] == sizes
        return m.get_state()

    a, b, c = run(1, 0), run(2, 0), run(1, 0)
    assert all(np.array_equal(a[k], b[k]) for k in a) and all(np.array_equal(a[k], c[k]) for k in a)
    init = MotifMLP([40, 32, 32, 3], motif=motif, density=[0.2, 0.2, 1.0], seed=1, num_threads=1).get_state()
    assert not np.array_equal(a["layer0.indices"], init["layer0.indices"])


def test_fill_none_and_errors():
    m = MotifMLP([20, 16, 3], density=[0.05, 1.0], seed=0, num_threads=1)
    stats = m.evolve_cht([0.5, 0.0], seed=0, fill="none")
    assert stats[0]["regrown_fill"] == 0
    assert m.layers[0].n_blocks == 16 - stats[0]["removed"] - stats[0]["cr_removed"] + stats[0]["regrown_score"]
    r = MotifMLP([20, 16, 3], density=[0.3, 1.0], seed=0, num_threads=1)
    st = r.evolve_cht([0.5, 0.0], seed=0, link="random")
    assert st[0]["regrown_score"] == 0 and st[0]["regrown_fill"] == st[0]["removed"] + st[0]["cr_removed"]
    assert r.layers[0].n_blocks == round(0.3 * 320)
    with pytest.raises(ValueError, match="fill"):
        m.evolve_cht(0.3, fill="some")
    with pytest.raises(ValueError, match="link"):
        m.evolve_cht(0.3, link="adamic")
    with pytest.raises(TypeError, match="chain_removal"):
        m.evolve_cht(0.3, chain_removal="yes")
    with pytest.raises(TypeError, match="mask"):
        ch3_l3_scores(np.ones(3))
    with pytest.raises(ValueError):
        m.evolve_cht(1.5)


def test_trainer_cht():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 20)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)

    def fit(threads):
        m = MotifMLP([20, 24, 24, 2], density=[0.2, 0.2, 1.0], seed=0, num_threads=threads)
        t = Trainer(m, epochs=3, evolution="cht", evolution_params={"zeta": 0.25}, evolve_layers="hidden",
                    progress=False, seed=1)
        t.fit(X, y)
        return m, t

    m1, t1 = fit(1)
    m2, _ = fit(2)
    s1, s2 = m1.get_state(), m2.get_state()
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    assert t1.history.pruned[1] == t1.history.regrown[1] and t1.history.pruned[1][0] > 0
    assert t1.config["evolution"] == {"preset": "cht", "zeta": 0.25, "chain_removal": True, "fill": "none",
                                      "link": "ch3_l3", "removal": "sign", "restore": True}



def _blocks(layer):
    """{(row, col): weight} of a layer's active blocks."""
    return dict(zip(zip(layer.block_rows.tolist(), layer.indices.tolist()), layer.weights.tolist()))


def test_sign_removal_counts_and_sets():
    model = MotifMLP([30, 24, 20, 4], density=[0.3, 0.3, 1.0], seed=3, num_threads=1)
    layer = model.layers[0]
    st = model.get_state()
    K = st["layer0.weights"].copy()
    K[:4] = 0.0                                     # blocks at exactly zero are always removed
    st["layer0.weights"] = K
    model.set_state(st)
    old = _blocks(layer)
    neg = sorted((abs(w), i) for i, w in enumerate(K) if w < 0)
    pos = sorted((abs(w), i) for i, w in enumerate(K) if w > 0)
    zeta = 0.25
    drop = {i for i in range(4)} | {i for _, i in neg[:round(zeta * len(neg))]} | {
        i for _, i in pos[:round(zeta * len(pos))]}
    keys = list(old)
    kept = {keys[i] for i in range(len(keys)) if i not in drop}
    stats = model.evolve_cht([zeta, 0.0, 0.0], seed=4, chain_removal=False, removal="sign", link="random")
    assert stats[0]["removed"] == len(drop) and stats[0]["cr_removed"] == 0
    new = _blocks(layer)
    assert kept <= set(new) and all(new[b] == old[b] for b in kept)
    back = {keys[i] for i in drop} & set(new)       # removed and drawn again
    assert len(back) == stats[0]["restored"] and all(new[b] == 0 for b in back)
    assert len(new) == len(old)
    # the magnitude rule removes the round(zeta |P|) smallest |K| instead
    m2 = MotifMLP([30, 24, 20, 4], density=[0.3, 0.3, 1.0], seed=3, num_threads=1)
    m2.set_state(st)
    assert m2.evolve_cht([zeta, 0.0, 0.0], seed=4, chain_removal=False)[0]["removed"] == round(zeta * len(K))


def test_restore_keeps_value_of_regrown_removed_links():
    def step(restore):
        m = MotifMLP([30, 24, 20, 4], density=[0.2, 0.2, 1.0], seed=0, num_threads=1)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(64, 30)).astype(np.float32)
        m.train_epoch(X, rng.integers(0, 4, 64), batch_size=16, lr=0.05, seed=0)   # nonzero momentum
        old = _blocks(m.layers[0])
        vel = dict(zip(old, m.get_state()["layer0.weight_velocity"].tolist()))
        stats = m.evolve_cht([0.3, 0.3, 0.0], seed=1, restore=restore)
        new = _blocks(m.layers[0])
        nvel = dict(zip(new, m.get_state()["layer0.weight_velocity"].tolist()))
        return old, vel, new, nvel, stats[0]

    old, vel, new, nvel, st = step(True)
    assert st["restored"] > 0                           # CH3-L3 picks some of the links it just removed
    both = set(old) & set(new)
    assert all(new[b] == old[b] and nvel[b] == vel[b] for b in both)
    assert all(new[b] == 0 and nvel[b] == 0 for b in set(new) - set(old))
    old0, _, new0, nvel0, st0 = step(False)
    assert st0 == st                                    # the same pattern either way
    changed = [b for b in set(old0) & set(new0) if new0[b] != old0[b]]
    assert len(changed) == st0["restored"] and all(new0[b] == 0 and nvel0[b] == 0 for b in changed)
    m = MotifMLP([20, 16, 3], density=[0.3, 1.0], seed=0, num_threads=1)
    with pytest.raises(ValueError, match="removal"):
        m.evolve_cht(0.3, removal="gradient")
    with pytest.raises(TypeError, match="restore"):
        m.evolve_cht(0.3, restore="yes")
