"""Dynamic sparse training: the engine's prune/grow primitives, RigL / Motif-RigL block scores and
their top-k, DSR, ERK densities, and bit-exact resume of runs with a mask updater. Expected
values are worked out by hand (docs: design of the baselines, section 10) or come from NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from motifcore import MotifLayer, MotifMLP, Trainer, load_model
from motifcore.nn import erk_densities, erk_epsilon
from motifcore.train.updaters import DSR, RigL, apportion, make_updater
from motifcore.train.callbacks import Checkpoint


def layer_with(n_in, n_out, blocks, K, motif=1, vK=None):
    """A linear MotifLayer whose active blocks are `blocks` [(r, c), ...] (sorted) with weights K."""
    layer = MotifLayer(n_in, n_out, motif=motif, density=1.0, num_threads=1)
    g_out, _ = layer.groups
    indptr = np.zeros(g_out + 1, np.int64)
    for r, _c in blocks:
        indptr[r + 1] += 1
    indptr = np.cumsum(indptr).astype(np.int64)
    idx = np.array([c for _r, c in blocks], np.int32)
    w = np.array(K, np.float32)
    v = np.zeros_like(w) if vK is None else np.array(vK, np.float32)
    nb = layer._core.n_bias
    layer._core.set_state(indptr, idx, w, np.zeros(nb, np.float32), v, np.zeros(nb, np.float32))
    return layer


def positions(layer):
    g_in = layer.groups[1]
    return (layer.block_rows * g_in + layer.indices).tolist()


# ---- ERK -----------------------------------------------------------------------------------------

def test_erk_small_hand_values():
    # grids 4x4 and 4x2 at d = 0.5: p = eps * (8/16, 6/8), eps = 12 / 14
    d = erk_densities([(4, 4), (2, 4)], 0.5)
    assert erk_epsilon([(4, 4), (2, 4)], 0.5) == pytest.approx(12 / 14)
    assert d == pytest.approx([6 / 14, 9 / 14])
    m = MotifMLP([4, 4, 2], density=0.5, distribution="erk")
    assert [layer.n_blocks for layer in m.layers] == [7, 5]


def test_erk_paper_network():
    g1 = [(3000, 784), (3000, 3000), (3000, 3000), (10, 3000)]
    assert erk_densities(g1, 0.1) == pytest.approx([0.2047, 0.0848, 0.0848, 1.0], abs=5e-5)
    assert erk_epsilon(g1, 0.1) == pytest.approx(127.230, abs=1e-3)
    g2 = [(1500, 392), (1500, 1500), (1500, 1500), (10, 3000)]   # m = 2, output layer m = 1
    blocks = [round(p * a * b) for p, (a, b) in zip(erk_densities(g2, 0.1), g2)]
    assert blocks == [115505, 183147, 183147, 30000]
    assert abs(sum(blocks) - 511800) <= 1


def test_erk_rejects_per_layer_density():
    with pytest.raises(ValueError, match="scalar density"):
        MotifMLP([4, 4, 2], density=[0.5, 0.5], distribution="erk")
    with pytest.raises(ValueError, match="distribution"):
        MotifMLP([4, 4, 2], density=0.5, distribution="normal")


# ---- primitives ----------------------------------------------------------------------------------

def test_keep_where_then_grow_at_restores_state():
    layer = layer_with(3, 2, [(0, 0), (0, 2), (1, 1)], [0.5, -0.25, 0.125], vK=[0.1, 0.2, 0.3])
    assert layer.keep_where(np.array([True, False, True])) == 1
    assert positions(layer) == [0, 4] and layer.last_removed.tolist() == [2]
    with pytest.raises(ValueError, match="boolean"):
        layer.keep_where(np.ones(5, bool))
    layer.grow_at([1, 2])                          # (0,1) is new, (0,2) was just removed
    assert positions(layer) == [0, 1, 2, 4]
    assert layer.weights.tolist() == [0.5, 0.0, -0.25, 0.125]
    assert layer._core.weight_velocity.tolist() == pytest.approx([0.1, 0.0, 0.2, 0.3])
    with pytest.raises(ValueError, match="already active"):
        layer.grow_at([0])


def test_prune_below_keeps_one_and_grow_random_skips_pruned():
    layer = layer_with(4, 4, [(0, 0), (1, 1), (2, 2), (3, 3)], [0.01, -0.02, 0.03, 0.005])
    assert layer.prune_below(1.0, keep_min=1) == 3
    assert positions(layer) == [10]                  # the largest |K| stays
    removed = set(layer.last_removed.tolist())
    assert layer.grow_random(20, seed=3) == 12       # 16 - 1 active - 3 just removed
    assert removed.isdisjoint(positions(layer)) and layer.n_blocks == 13


# ---- RigL (design 10.8) --------------------------------------------------------------------------

def test_rigl_m1_hand_example():
    layer = layer_with(3, 2, [(0, 0), (1, 1)], [0.5, 0.01])
    x = np.array([[1, 2, 3]], np.float32)
    before = layer.forward(x)
    layer.backward(np.array([[1, -1]], np.float32))   # G = [[1, 2, 3], [-1, -2, -3]]
    pos, score = layer.grad_topk(1, drop=1)
    assert pos.tolist() == [2] and score.tolist() == [3.0]   # (0,2) ties (1,2) and wins on the row
    layer.prune_smallest(1)
    layer.grow_at(pos)
    assert positions(layer) == [0, 2] and layer.weights.tolist() == [0.5, 0.0]
    after = layer.forward(x)
    np.testing.assert_array_equal(after, before - np.array([[0.0, 0.01 * 2]], np.float32))


def test_rigl_regrows_the_dropped_block_with_its_state():
    layer = layer_with(3, 2, [(0, 0), (1, 2)], [0.5, 0.01], vK=[0.3, 0.7])
    layer.forward(np.array([[1, 2, 3]], np.float32))
    layer.backward(np.array([[1, -5]], np.float32))
    pos, score = layer.grad_topk(1, drop=1)
    assert pos.tolist() == [5] and score.tolist() == [15.0]
    layer.prune_smallest(1)
    layer.grow_at(pos)
    assert positions(layer) == [0, 5]
    assert layer.weights.tolist() == pytest.approx([0.5, 0.01])
    assert layer._core.weight_velocity.tolist() == pytest.approx([0.3, 0.7])


def test_rigl_schedule():
    r = RigL()
    T = 20 * 469
    assert r.fraction(0, T) == pytest.approx(0.3)
    assert r.fraction(3517.5, T) == pytest.approx(0.15)
    assert r.fraction(7035, T) == pytest.approx(0.0, abs=1e-15)
    assert r.is_update_step(7000, T) and not r.is_update_step(7100, T) and not r.is_update_step(50, T)
    assert sum(len(r.update_batches(e, 469, 20)) for e in range(1, 21)) == 71
    assert not RigL(update_at_step0=False).is_update_step(0, T)
    with pytest.raises(ValueError, match="topk"):
        RigL(topk="fast")


def test_motif_rigl_hand_example():
    layer = layer_with(4, 2, [], [], motif=2)         # G_out = 1, G_in = 2, nothing active
    layer.forward(np.array([[1, -1, 2, 2]], np.float32))     # S = [0, 4]
    layer.backward(np.array([[1, 1]], np.float32))           # dU = [2]
    pos, score = layer.grad_topk(2)
    assert pos.tolist() == [0, 1] and score.tolist() == [0.0, 8.0]
    # block (0,0) has sum |edge gradients| = 4 but |sum| = 0: (0,1) is chosen
    assert layer.grad_topk(1)[0].tolist() == [1]


def block_sums(G, m_out, m_in):
    n_out, n_in = G.shape
    go, gi = -(-n_out // m_out), -(-n_in // m_in)
    out = np.zeros((go, gi))
    for r in range(go):
        for c in range(gi):
            out[r, c] = G[r * m_out:(r + 1) * m_out, c * m_in:(c + 1) * m_in].sum()
    return out


@pytest.mark.parametrize("motif", [1, 2, 3])
def test_network_block_scores_match_numpy(motif):
    """grad_step's scores of every free position equal |block sums of dZ^T X| of a NumPy
    forward/backward through the dense matrices."""
    rng = np.random.default_rng(motif)
    sizes = [10, 12, 4]
    m = MotifMLP(sizes, motif=motif, density=0.4, seed=5, num_threads=1)
    for layer in m.layers:
        layer.bias = rng.normal(size=layer._core.n_bias).astype(np.float32)
    X = rng.normal(size=(9, 10)).astype(np.float32)
    y = rng.integers(0, 4, size=9).astype(np.int64)
    Ws = [layer.to_dense().astype(np.float64) for layer in m.layers]
    bs = [np.repeat(layer.bias, layer.motif[0])[:layer.n_out] if layer.bias.size != layer.n_out else layer.bias
          for layer in m.layers]
    a0 = X.astype(np.float64)
    z1 = a0 @ Ws[0].T + bs[0]
    a1 = np.maximum(z1, 0)
    z2 = a1 @ Ws[1].T + bs[1]
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz2 = (p - np.eye(4)[y]) / 9
    dz1 = (dz2 @ Ws[1]) * (z1 > 0)
    grads = [dz1.T @ a0, dz2.T @ a1]
    free = [layer.groups[0] * layer.groups[1] - layer.n_blocks for layer in m.layers]
    steps = m.steps
    loss, res = m.grad_step(X, y, np.arange(9), free, [0, 0], ["exact", "exact"], [0, 0])
    assert m.steps == steps                              # no optimizer step
    assert loss == pytest.approx(float(-np.log(p[np.arange(9), y]).mean()), rel=1e-5)
    for layer, G, (pos, score) in zip(m.layers, grads, res):
        ref = np.abs(block_sums(G, *layer.motif)).ravel()
        active = set(positions(layer))
        assert sorted(set(pos.tolist()) | active) == list(range(ref.size))
        np.testing.assert_allclose(score, ref[pos.astype(np.int64)], rtol=1e-4, atol=1e-6)
    # with every active block dropped, all positions compete; an active block scores its own |dK|
    _, full = m.grad_step(X, y, np.arange(9), [layer.groups[0] * layer.groups[1] for layer in m.layers],
                          [layer.n_blocks for layer in m.layers], ["exact", "exact"], [0, 0])
    for layer, (pos, score) in zip(m.layers, full):
        assert pos.tolist() == list(range(layer.groups[0] * layer.groups[1]))
        np.testing.assert_allclose(score[positions(layer)], np.abs(layer.grad_weights), rtol=1e-5, atol=1e-7)


def integer_layer(seed, g_out=120, g_in=300, B=7):
    """Layer + batch with small integer inputs and gradients: every score is an exact integer."""
    rng = np.random.default_rng(seed)
    layer = MotifLayer(g_in, g_out, density=0.1, seed=seed, num_threads=1)
    x = rng.integers(-2, 3, size=(B, g_in)).astype(np.float32)
    g = rng.integers(-2, 3, size=(B, g_out)).astype(np.float32)
    layer.forward(x)
    layer.backward(g)
    return layer, np.abs(g.T.astype(np.int64) @ x.astype(np.int64))


@pytest.mark.parametrize("seed", [0, 1])
def test_topk_kernel_against_lexsort(seed):
    layer, S = integer_layer(seed)
    drop, k = 300, 2000
    dropped = set()
    w = np.abs(layer.weights)
    order = np.lexsort((np.arange(w.size), w))[:drop]      # k smallest |K|, ties by position
    act = positions(layer)
    dropped = {act[i] for i in order}
    kept = set(act) - dropped
    cand = np.array([p for p in range(S.size) if p not in kept])
    sc = S.ravel()[cand]
    ref = np.sort(cand[np.lexsort((cand, -sc))[:k]])
    results = []
    for tile in (1, 7, 64):
        for threads in (1, 2):
            layer.num_threads = threads
            results.append(layer.grad_topk(k, drop=drop, tile_rows=tile, tile_cols=tile))
    for pos, score in results:
        np.testing.assert_array_equal(pos, ref)
        np.testing.assert_array_equal(score, S.ravel()[ref].astype(np.float32))
    # sampled equals exact once the candidates cover every free position
    n_free = len(cand)
    pos, score = layer.grad_topk(k, drop=drop, topk="sampled", sample_factor=-(-n_free // k))
    np.testing.assert_array_equal(pos, ref)
    # with fewer candidates it still returns k distinct free positions, scored exactly
    pos, score = layer.grad_topk(k, drop=drop, topk="sampled", sample_factor=2, seed=9)
    assert pos.size == k and len(set(pos.tolist()) & kept) == 0
    np.testing.assert_array_equal(score, S.ravel()[pos.astype(np.int64)].astype(np.float32))


def test_grad_topk_needs_backward():
    layer = MotifLayer(6, 4, density=0.5)
    with pytest.raises(ValueError, match="backward"):
        layer.grad_topk(1)
    layer.forward(np.ones((2, 6), np.float32))
    with pytest.raises(ValueError, match="backward"):
        layer.grad_topk(1)


# ---- DSR (design 10.7) ---------------------------------------------------------------------------

def dsr_toy():
    m = MotifMLP([4, 4, 4], density=1.0, seed=0, num_threads=1)
    st = m.get_state()
    for i, (cols, K) in enumerate([([0, 1, 2, 3], [0.05, 0.2, 0.01, 0.5]),
                                   ([0, 1, 2, 3, 0, 1], [0.03, 0.3, 0.4, 0.6, 0.7, 0.8])]):
        rows = [0, 0, 0, 0] if i == 0 else [0, 0, 0, 0, 1, 1]
        indptr = np.searchsorted(np.array(rows), np.arange(5), side="left").astype(np.int64)
        st[f"layer{i}.indptr"] = indptr
        st[f"layer{i}.indices"] = np.array(cols, np.int32)
        st[f"layer{i}.weights"] = np.array(K, np.float32)
        st[f"layer{i}.weight_velocity"] = np.full(len(K), 0.5, np.float32)
    m.set_state(st)
    return m


def test_dsr_one_step():
    m = dsr_toy()
    dsr = DSR(threshold=0.1, n_prune=4)
    before = [set(positions(layer)) for layer in m.layers]
    removed, grown = dsr.reallocate(m, {0, 1}, seed=1, t=100)
    assert removed == [2, 1] and grown == [1, 2]
    assert [layer.n_blocks for layer in m.layers] == [3, 7]
    assert dsr.step_threshold(sum(removed)) == pytest.approx(0.2)          # 3 < 0.9 * 4
    for layer, old in zip(m.layers, before):
        new = set(positions(layer)) - old
        pos = positions(layer)
        for p in new:
            i = pos.index(p)
            assert layer.weights[i] == 0 and layer._core.weight_velocity[i] == 0
        assert not new & set(old)         # nothing grown where something was just pruned


def test_dsr_threshold_sequence_and_keep_one():
    dsr = DSR(threshold=1e-3, n_prune=4)
    assert [dsr.step_threshold(k) for k in (0, 0, 5, 4, 3)] == pytest.approx([2e-3, 4e-3, 2e-3, 2e-3, 4e-3])
    m = dsr_toy()
    removed, _ = DSR(threshold=10.0, n_prune=4).reallocate(m, {0, 1}, seed=0, t=1)
    assert removed == [3, 5]              # each layer keeps exactly its largest block
    assert sum(layer.n_blocks for layer in m.layers) == 10


def test_apportion_largest_remainder_with_caps():
    assert apportion(3, [2, 5]) == [1, 2]
    assert apportion(5, [1, 1, 1]) == [2, 2, 1]          # ties to the lower index
    assert apportion(10, [1, 1], caps=[2, 100]) == [2, 8]
    assert apportion(4, [0, 3]) == [0, 4]


def test_make_updater_round_trip():
    for up in (RigL(alpha=0.2, topk="sampled"), DSR(periods=(50, 60), starts=(0.0, 0.5))):
        again = make_updater(up.to_config())
        assert type(again) is type(up) and again.to_config() == up.to_config()
    with pytest.raises(ValueError, match="updater"):
        make_updater("magic")


# ---- Trainer integration (design 10.2, 10.16 at small size) ---------------------------------------

def blobs(n=400, d=16, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


def small_model(motif=1):
    return MotifMLP([16, 24, 24, 3], motif=motif, density=0.3, seed=2, num_threads=1)


def test_static_sparse_pattern_unchanged():
    X, y = blobs()
    m = MotifMLP([16, 24, 24, 3], density=0.3, distribution="erk", seed=2, num_threads=1)
    pat = [(layer.indptr.copy(), layer.indices.copy()) for layer in m.layers]
    Trainer(m, epochs=3, batch_size=64, evolution="none", progress=False).fit(X, y)
    for layer, (ip, ix) in zip(m.layers, pat):
        np.testing.assert_array_equal(layer.indptr, ip)
        np.testing.assert_array_equal(layer.indices, ix)


@pytest.mark.parametrize("skip_sgd", [True, False])
def test_rigl_trainer_skips_sgd_on_update_batches(skip_sgd):
    X, y = blobs()
    m = small_model()
    n0 = m.n_blocks
    tr = Trainer(m, epochs=4, batch_size=64, evolution="rigl", evolve_layers="all", progress=False,
                 evolution_params={"interval": 3, "skip_sgd": skip_sgd})
    tr.fit(X, y)
    spe = math.ceil(400 / 64)
    n_updates = sum(len(tr.updater.update_batches(e, spe, 4)) for e in range(1, 5))
    assert n_updates == tr.updater.updates == 7        # t = 0, 3, ..., 18 < 0.75 * 28
    assert m.steps == 4 * spe - (n_updates if skip_sgd else 0)
    assert m.n_blocks == n0
    assert any(p and sum(p) > 0 for p in tr.history["pruned"])


@pytest.mark.parametrize("evolution, motif", [("rigl", 1), ("rigl", 2), ("dsr", 1), ("dsr", 2)])
def test_updater_resume_is_bit_exact(tmp_path, evolution, motif):
    X, y = blobs()
    params = {"interval": 2} if evolution == "rigl" else {"periods": (2, 3), "starts": (0.0, 0.5)}
    kw = {"epochs": 5, "batch_size": 64, "evolution": evolution, "evolution_params": params, "dropout": 0.1,
          "evolve_layers": "all", "seed": 4, "progress": False}
    full = Trainer(small_model(motif), **kw)
    full.fit(X, y)
    path = tmp_path / "ck.npz"
    part = Trainer(small_model(motif), callbacks=[Checkpoint(path), lambda t, e, logs: e == 2], **kw)
    part.fit(X, y)
    resumed = Trainer.resume(path, X, y, progress=False, num_threads=2)
    a, b = full.model.get_state(), resumed.model.get_state()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if not k.endswith("_time")} for r in full.history.rows]
    assert strip == [{k: v for k, v in r.items() if not k.endswith("_time")} for r in resumed.history.rows]
    assert resumed.updater.get_state() == full.updater.get_state()
    assert resumed.config["evolution"] == full.config["evolution"]
    # the pattern really changed on both sides of the cut; |P| is conserved
    pruned = resumed.history["pruned"]
    assert any(p and sum(p) for p in pruned[:2]) and any(p and sum(p) for p in pruned[2:])
    assert resumed.model.n_blocks == small_model(motif).n_blocks
    assert load_model(path).n_blocks == resumed.model.n_blocks


def test_scores_bitwise_equal_across_tiles_threads_and_modes():
    """Float data: every tile size, thread count and the sampled kernel give the same bits."""
    rng = np.random.default_rng(7)
    layer = MotifLayer(130, 70, motif=(1, 2), density=0.2, seed=1, num_threads=1)
    layer.forward(rng.normal(size=(13, 130)).astype(np.float32))
    layer.backward(rng.normal(size=(13, 70)).astype(np.float32))
    g_out, g_in = layer.groups
    k = g_out * g_in
    ref = layer.grad_topk(k, drop=5)
    for tile in ((1, 1), (3, 17), (64, 0)):
        for threads in (1, 2):
            layer.num_threads = threads
            pos, score = layer.grad_topk(k, drop=5, tile_rows=tile[0], tile_cols=tile[1])
            np.testing.assert_array_equal(pos, ref[0])
            np.testing.assert_array_equal(score, ref[1])
    pos, score = layer.grad_topk(k, drop=5, topk="sampled", sample_factor=1)
    np.testing.assert_array_equal(pos, ref[0])
    np.testing.assert_array_equal(score, ref[1])


def test_auto_topk_picks_sampled_for_wide_sparse_layers():
    r = RigL()
    assert r.topk_mode(MotifLayer(784, 300, density=0.1)) == "exact"        # 1 / (3 d) = 3.3 steps <= 5
    assert r.topk_mode(MotifLayer(2000, 2000, density=0.01)) == "sampled"   # 33 steps of scoring
    assert RigL(topk="exact").topk_mode(MotifLayer(2000, 2000, density=0.01)) == "exact"


@pytest.mark.slow
def test_fashion_mnist_smoke_every_method(data_dir):
    """784-256-256-10 on 2,000 Fashion-MNIST samples, 2 epochs: static uniform and ERK, SET, RigL and
    DSR at m = 1 and 2 finish, learn, and keep the number of blocks."""
    from motifcore import datasets

    X, y, Xt, yt = datasets.load("fashion-mnist", data_dir=data_dir)
    X, y, Xt, yt = X[:2000], y[:2000], Xt[:1000], yt[:1000]
    for motif in (1, 2):
        for evolution, dist in (("none", "uniform"), ("none", "erk"), ("set-epoch", "uniform"), ("rigl", "erk"),
                                ("dsr", "uniform")):
            m = MotifMLP([784, 256, 256, 10], motif=motif, density=0.1, distribution=dist, seed=0, num_threads=1)
            n0 = m.n_blocks
            params = {"interval": 5} if evolution == "rigl" else {"periods": (5,), "starts": (0.0,)} \
                if evolution == "dsr" else {}
            # regrow="zero": SET's own fresh He-uniform draw in every layer after epoch 1 costs more
            # than the one remaining epoch recovers (measured 0.455 at m = 2); this smoke test is
            # about the machinery of each method (tests/test_defaults.py checks SET's regrowth)
            tr = Trainer(m, epochs=2, lr=3e-3, evolution=evolution, evolution_params=params, evolve_layers="all",
                         regrow="zero", progress=False)
            h = tr.fit(X, y, Xt, yt)
            assert m.n_blocks == n0, (evolution, motif)
            assert h.last["val_accuracy"] > 0.5, (evolution, dist, motif, h.last["val_accuracy"])


def test_bad_inputs_raise_clear_errors():
    layer = layer_with(3, 2, [(0, 0), (1, 1)], [0.5, 0.01])
    with pytest.raises(ValueError, match="increasing"):
        layer.grow_at([2, 2])
    with pytest.raises(ValueError, match="out of range"):
        layer.grow_at([6])
    with pytest.raises(ValueError, match="non-negative"):
        layer.grow_at([-1])
    with pytest.raises(ValueError, match="cannot prune"):
        layer.prune_smallest(3)
    with pytest.raises(ValueError, match="threshold"):
        layer.prune_below(-1.0)
    with pytest.raises(ValueError, match="regrow"):
        layer.grow_random(1, regrow="big")
    m = small_model()
    with pytest.raises(ValueError, match="alpha"):
        Trainer(m, evolution="rigl", evolution_params={"alpha": 2.0})
    with pytest.raises(TypeError, match="bogus"):
        Trainer(m, evolution="dsr", evolution_params={"bogus": 1})
    X, y = blobs(20)
    with pytest.raises(ValueError, match="entries"):
        m.grad_step(X, y, np.arange(4), [1], [1], ["exact"], [0])
    with pytest.raises(ValueError, match="topk"):
        m.grad_step(X, y, np.arange(4), [1, 1, 1], [1, 1, 1], ["fast"] * 3, [0] * 3)


def test_adam_moments_follow_dropped_and_grown_blocks():
    layer = layer_with(3, 2, [(0, 0), (1, 1)], [0.5, 0.01])
    layer.forward(np.array([[1, 2, 3]], np.float32))
    layer.backward(np.array([[1, -1]], np.float32))
    layer.optimizer_step("adam", 0.1)                   # creates the second moments
    sq = layer._core.weight_sq.copy()
    assert sq.size == 2 and (sq > 0).all()
    layer.prune_smallest(1)                             # drops (1,1): |K| ~ 0.01 - 0.1 < 0.5
    assert layer._core.weight_sq.tolist() == [sq[0]]
    layer.grow_at([3, 4])                               # (1,0) new, (1,1) restored
    assert layer._core.weight_sq.tolist() == [sq[0], 0.0, sq[1]]


def test_prune_smallest_against_lexsort_with_ties_zeros_and_subnormals():
    # The selection works on the bit patterns of |K| (a radix selection): values that share their
    # high 16 bits, exact ties of either sign, +0 and -0 and the largest floats must be ordered as
    # by value, ties to the lower position; subnormals count as 0 (the engine computes with them
    # flushed, float_mode.hpp, and so did the comparisons of the selection this replaced).
    rng = np.random.default_rng(3)
    layer = MotifLayer(90, 70, density=0.6, seed=2, num_threads=1)
    n = layer.n_blocks
    pool = np.array([0.0, -0.0, 1e-42, -1e-42, 1e-39, 0.5, -0.5, 0.50000006, 0.5000001, 1.0, -1.0, 3e38, -3e38,
                     np.float32(0.5) + np.float32(2 ** -20)], dtype=np.float32)
    w = np.where(rng.random(n) < 0.5, rng.choice(pool, n), rng.standard_normal(n)).astype(np.float32)
    for k in (1, 7, n // 3, n // 2, n - 1, n):
        layer._core.set_weights(w)
        before = np.array(positions(layer))
        mag = np.abs(w)
        mag[mag < np.finfo(np.float32).tiny] = 0.0
        order = np.lexsort((np.arange(n), mag))[:k]           # the k smallest |K|, ties by position
        assert layer.prune_smallest(k) == k
        np.testing.assert_array_equal(np.sort(layer.last_removed), np.sort(before[order]))
        layer.grow_at(layer.last_removed)                     # back to the same pattern and weights
        np.testing.assert_array_equal(layer.weights, w)
