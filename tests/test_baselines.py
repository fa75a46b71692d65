"""motifcore.baselines: global magnitude pruning and rewinding, knowledge distillation (engine loss),
Deep Compression's storage stages and trained quantization. Values are hand-computed (design file
baselines.md §10) or come from independent NumPy references and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from motifcore import MotifMLP, Trainer
from motifcore.baselines import compress, distill, prune
from motifcore.baselines.compress import CompressedLayer
from motifcore.train.distillation import KD


def _data(n=240, d=12, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X @ rng.standard_normal((d, c))).argmax(axis=1).astype(np.int64)
    return X, y


def _trainer(model, epochs, **kw):
    kw.setdefault("evolution", "none")
    return Trainer(model, epochs=epochs, batch_size=32, progress=False, **kw)


def _stop_at(epoch):
    """A callback that stops training after `epoch` (an interrupted run)."""
    return lambda trainer, e, logs: e >= epoch


def _equal_states(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


# ---- global magnitude pruning ------------------------------------------------------------------

def _two_layer(w0, w1):
    m = MotifMLP([2, 2, 2], density=1.0, num_threads=1)
    m.layers[0].weights = w0
    m.layers[1].weights = w1
    m.layers[0].bias = [0.5, -0.5]
    return m


def test_global_pruning_keeps_the_largest_over_all_layers():
    m = _two_layer([0.1, -0.5, 0.3, 0.05], [-0.2, 0.4, 0.01, -0.02])
    X, y = _data(8, 2, 2)
    m.train_step(X, y, lr=0.0)                        # some momentum to be reset
    assert np.abs(m.layers[0]._core.weight_velocity).sum() > 0
    kept = prune.global_magnitude_prune(m, sparsity=6 / 8)
    assert kept == [1, 1]
    assert m.layers[0].weights.tolist() == [np.float32(-0.5)]
    assert m.layers[1].weights.tolist() == [np.float32(0.4)]
    # (row, col) of what is left: -0.5 was block (0, 1), 0.4 block (0, 1)
    assert m.layers[0].block_rows.tolist() == [0] and m.layers[0].indices.tolist() == [1]
    assert m.layers[1].block_rows.tolist() == [0] and m.layers[1].indices.tolist() == [1]
    assert m.layers[0].bias.tolist() == [0.5, -0.5]   # biases untouched
    state = m.get_state()
    assert not state["layer0.weight_velocity"].any() and not state["layer0.bias_velocity"].any()
    assert m.steps == 0
    assert m.config["density"] == [0.25, 0.25]


def test_global_pruning_exclude_output_and_empty_layer():
    m = _two_layer([0.1, -0.5, 0.3, 0.05], [-0.2, 0.4, 0.01, -0.02])
    assert prune.global_magnitude_prune(m, density=0.5, exclude_output=True) == [2, 4]
    assert m.layers[0].weights.tolist() == [np.float32(-0.5), np.float32(0.3)]
    assert m.layers[1].weights.tolist() == [np.float32(v) for v in (-0.2, 0.4, 0.01, -0.02)]
    # equal |K| everywhere: ties keep the earlier layer, so 3 of 8 would empty layer 1 -> error
    m = _two_layer([0.3, -0.3, 0.3, 0.3], [0.3, 0.3, -0.3, 0.3])
    with pytest.raises(ValueError, match="without blocks"):
        prune.global_magnitude_prune(m, density=3 / 8)


def test_layerwise_pruning_keeps_the_same_fraction_of_every_layer():
    m = _two_layer([0.1, -0.5, 0.3, 0.05], [-0.2, 0.4, 0.01, -0.02])
    assert prune.global_magnitude_prune(m, density=0.5, scope="layer") == [2, 2]
    assert m.layers[0].weights.tolist() == [np.float32(-0.5), np.float32(0.3)]
    assert m.layers[1].weights.tolist() == [np.float32(-0.2), np.float32(0.4)]
    m = _two_layer([0.3, -0.3, 0.3, 0.3], [0.3, 0.3, -0.3, 0.3])      # where global ranking fails
    assert prune.global_magnitude_prune(m, density=0.25, scope="layer") == [1, 1]
    with pytest.raises(ValueError, match="scope"):
        prune.global_magnitude_prune(m, density=0.25, scope="row")


def test_global_pruning_ties_order():
    m = _two_layer([0.3, -0.3, 0.2, 0.3], [0.3, 0.1, -0.3, 0.3])
    prune.global_magnitude_prune(m, density=5 / 8)     # five of the six 0.3s: the last one goes
    assert m.layers[0].weights.tolist() == [np.float32(v) for v in (0.3, -0.3, 0.3)]
    assert m.layers[1].weights.tolist() == [np.float32(v) for v in (0.3, -0.3)]
    assert m.layers[1].block_rows.tolist() == [0, 1] and m.layers[1].indices.tolist() == [0, 0]


def test_global_pruning_errors():
    m = _two_layer([0.1, -0.5, 0.3, 0.05], [-0.2, 0.4, 0.01, -0.02])
    with pytest.raises(ValueError, match="exactly one"):
        prune.global_magnitude_prune(m)
    with pytest.raises(ValueError, match="density"):
        prune.global_magnitude_prune(m, density=0.0)
    prune.global_magnitude_prune(m, density=0.5)
    with pytest.raises(ValueError, match="hold only"):
        prune.global_magnitude_prune(m, density=0.75)
    with pytest.raises(TypeError):
        prune.global_magnitude_prune("model", density=0.5)


def test_pruned_model_matches_masked_dense_reference():
    X, y = _data()
    m = MotifMLP([12, 16, 3], density=1.0, seed=3, num_threads=1)
    dense = [layer.to_dense() for layer in m.layers]
    bias = [layer.bias for layer in m.layers]
    prune.global_magnitude_prune(m, density=0.3)
    mags = np.sort(np.concatenate([np.abs(w).ravel() for w in dense]))[::-1]
    thr = mags[int(round(0.3 * mags.size)) - 1]
    h = X
    for i, (w, b) in enumerate(zip(dense, bias)):
        h = h @ np.where(np.abs(w) >= thr, w, 0).T + b
        if i == 0:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(m.decision_function(X), h, rtol=1e-5, atol=1e-5)
    assert m.n_blocks == int(round(0.3 * mags.size))


def test_pruned_checkpoint_reloads_at_its_own_size(tmp_path):
    from motifcore.train.checkpoint import load_model, save_checkpoint
    m = MotifMLP([12, 16, 3], density=1.0, seed=3, num_threads=1)
    prune.global_magnitude_prune(m, density=0.2)
    save_checkpoint(tmp_path / "p.npz", m)
    back = load_model(tmp_path / "p.npz", num_threads=1)
    _equal_states(m.get_state(), back.get_state())


# ---- iterative schedule ------------------------------------------------------------------------

def test_iterative_densities():
    d = prune.iterative_densities(1 - 0.974889, 4)
    np.testing.assert_allclose(d, [0.58299, 0.15846, 0.04307, 0.025111], atol=2e-5)
    assert d[-1] == pytest.approx(1 - 0.974889, abs=1e-15)
    assert all(a > b for a, b in zip(d, d[1:]))
    assert prune.iterative_densities(0.25, 1) == [0.25]
    with pytest.raises(ValueError):
        prune.iterative_densities(0.0, 3)
    with pytest.raises(ValueError):
        prune.iterative_densities(0.5, 0)


# ---- retraining and rewinding ------------------------------------------------------------------

class _Keep:
    """Callback keeping the model state at the end of given epochs."""

    def __init__(self, epochs):
        self.epochs, self.states = set(epochs), {}

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch in self.epochs:
            self.states[epoch] = trainer.model.get_state()


def _dense_run(epochs=3):
    X, y = _data()
    m = MotifMLP([12, 16, 3], density=1.0, seed=1, num_threads=1)
    keep = _Keep([1])
    t = _trainer(m, epochs, callbacks=[keep], seed=4)
    t.fit(X, y, X, y)
    return X, y, m, keep.states[1]


def test_weight_rewinding_restores_epoch_k_bit_for_bit():
    X, y, m, s1 = _dense_run()
    prune.global_magnitude_prune(m, density=0.4)
    pattern = [(layer.indptr, layer.indices) for layer in m.layers]
    t = prune.retrainer(m, "wr", epochs=3, rewind_epoch=1, rewind_state=s1, seed=4, batch_size=32,
                        progress=False)
    for i, layer in enumerate(m.layers):
        assert np.array_equal(layer.indptr, pattern[i][0]) and np.array_equal(layer.indices, pattern[i][1])
        dense_pos = np.flatnonzero(np.ones(layer.groups[0] * layer.groups[1], bool))   # s1 is dense
        g_in = layer.groups[1]
        at = layer.block_rows * g_in + layer.indices
        assert np.array_equal(layer.weights, s1[f"layer{i}.weights"][dense_pos[at]])
        assert np.array_equal(layer.bias, s1[f"layer{i}.bias"])
        assert not layer._core.weight_velocity.any()
    assert m.steps == 0
    t.fit(X, y)
    assert [r["epoch"] for r in t.history.rows] == [2, 3]
    original = _trainer(MotifMLP([12, 16, 3], density=1.0, num_threads=1), 3).lr_schedule_for(X.shape[0])
    assert t.history.rows[0]["lr_start"] == original.lr_at(2, 0)
    assert [layer.n_blocks for layer in m.layers] == [len(p[1]) for p in pattern]


def test_rewind_rejects_blocks_missing_from_the_state():
    X, y, m, s1 = _dense_run(1)
    sparse_state = dict(s1)
    small = MotifMLP([12, 16, 3], density=1.0, seed=1, num_threads=1)
    prune.global_magnitude_prune(small, density=0.1, exclude_output=True)
    with pytest.raises(ValueError, match="not active"):
        prune.rewind(m, small.get_state())
    with pytest.raises(ValueError, match="missing"):
        prune.rewind(small, {k: v for k, v in sparse_state.items() if k != "layer1.bias"})


def test_retraining_modes():
    X, y, m, s1 = _dense_run(2)
    prune.global_magnitude_prune(m, density=0.5)
    ft = prune.retrainer(m, "ft", epochs=2, seed=4)
    assert ft.epoch == 0 and ft.warmup == 0 and ft.evolution_schedule.name == "none"
    lrr = prune.retrainer(m, "lrr", epochs=2, rewind_epoch=1, seed=4)
    assert lrr.epoch == 1
    with pytest.raises(ValueError, match="mode"):
        prune.retrainer(m, "xx", epochs=2)
    with pytest.raises(ValueError, match="rewind_state"):
        prune.retrainer(m, "wr", epochs=2, rewind_epoch=1)
    with pytest.raises(ValueError, match="rewind_epoch"):
        prune.retrainer(m, "lrr", epochs=2, rewind_epoch=2)
    with pytest.raises(ValueError, match="evolution"):
        prune.retrainer(m, "ft", epochs=2, evolution="set")


def test_retraining_resumes_bit_for_bit(tmp_path):
    from motifcore.train.callbacks import Checkpoint
    X, y, m, s1 = _dense_run(3)
    prune.global_magnitude_prune(m, density=0.4)
    start = m.get_state()
    full = prune.retrainer(m, "lrr", epochs=4, rewind_epoch=1, seed=4, progress=False)
    full.fit(X, y)
    m2 = MotifMLP([12, 16, 3], density=0.4, num_threads=1)
    m2.set_state(start)
    part = prune.retrainer(m2, "lrr", epochs=4, rewind_epoch=1, seed=4,
                           callbacks=[Checkpoint(tmp_path / "c.npz"), _stop_at(2)])
    part.fit(X, y)
    resumed = Trainer.from_checkpoint(tmp_path / "c.npz", progress=False, num_threads=1)
    assert resumed.epoch == 2
    resumed.fit(X, y)
    _equal_states(full.model.get_state(), resumed.model.get_state())


# ---- knowledge distillation --------------------------------------------------------------------

def _logit_model(C=2):
    """One linear layer with zero weights: on x = 0 the logits are the biases."""
    m = MotifMLP([2, C], density=1.0, num_threads=1)
    m.layers[0].weights = np.zeros(m.layers[0].n_blocks)
    return m


@pytest.mark.parametrize("T, lam, loss, g", [(1, 1, 0.130812, 0.25), (2, 1, 0.145363, 0.267949),
                                             (2, 0.5, 0.419255, 0.383975)])
def test_kd_hand_values(T, lam, loss, g):
    m = _logit_model()
    x, y = np.zeros((1, 2), np.float32), np.array([0])
    zt = np.array([[math.log(3), 0.0]], np.float32)
    got = m.train_step(x, y, lr=0.0, weight_decay=0.0, teacher=zt, temperature=T, kd_lambda=lam)
    assert got == pytest.approx(loss, abs=1e-6)
    np.testing.assert_allclose(m.layers[0].grad_bias, [-g, g], atol=1e-6)


def _kd_reference(z, zt, y, T, lam):
    def log_softmax(a):
        a = a - a.max(axis=1, keepdims=True)
        return a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    lp, ls, lt = log_softmax(z), log_softmax(z / T), log_softmax(zt / T)
    ce = -lp[np.arange(len(y)), y]
    kl = (np.exp(lt) * (lt - ls)).sum(axis=1)
    return ((1 - lam) * ce + lam * T * T * kl).mean()


def test_kd_loss_and_gradient_against_numpy_and_finite_differences():
    rng = np.random.default_rng(0)
    C, B = 4, 3
    z0 = rng.standard_normal(C).astype(np.float32)
    zt = rng.standard_normal((B, C)).astype(np.float32) * 3
    y = np.array([0, 2, 3])
    T, lam = 2.5, 0.7
    m = _logit_model(C)
    x = np.zeros((B, 2), np.float32)

    def loss_at(b):
        m.layers[0].bias = b
        return m.train_step(x, y, lr=0.0, weight_decay=0.0, teacher=zt, temperature=T, kd_lambda=lam)

    base = loss_at(z0)
    assert base == pytest.approx(_kd_reference(np.tile(z0, (B, 1)).astype(np.float64), zt.astype(np.float64),
                                               y, T, lam), rel=1e-6)
    grad = m.layers[0].grad_bias.copy()
    for c in range(C):
        h = np.zeros(C, np.float32)
        h[c] = 1e-2
        up, down = (z0 + h).astype(np.float32), (z0 - h).astype(np.float32)
        fd = (loss_at(up) - loss_at(down)) / (float(up[c]) - float(down[c]))
        assert fd == pytest.approx(grad[c], abs=1e-5)


def test_kd_lambda_zero_is_the_cross_entropy_path_bitwise():
    X, y = _data()
    zt = np.random.default_rng(1).standard_normal((X.shape[0], 3)).astype(np.float32)
    a = MotifMLP([12, 16, 3], density=0.5, seed=2, num_threads=1)
    b = MotifMLP([12, 16, 3], density=0.5, seed=2, num_threads=1)
    la = a.train_epoch(X, y, batch_size=32, lr=0.05, seed=1)
    lb = b.train_epoch(X, y, batch_size=32, lr=0.05, seed=1, teacher=zt, temperature=4.0, kd_lambda=0.0)
    assert la == lb
    _equal_states(a.get_state(), b.get_state())


def test_kd_teacher_rows_follow_the_order():
    """train_epoch gathers teacher rows through `order`: permuting the data, the labels and the
    teacher together (with the order permuted to match) gives the same training."""
    X, y = _data()
    zt = np.random.default_rng(1).standard_normal((X.shape[0], 3)).astype(np.float32)
    perm = np.random.default_rng(2).permutation(X.shape[0])
    order = np.random.default_rng(3).permutation(X.shape[0])
    inv = np.argsort(perm)
    a = MotifMLP([12, 16, 3], density=0.5, seed=2, num_threads=1)
    b = MotifMLP([12, 16, 3], density=0.5, seed=2, num_threads=1)
    la = a.train_epoch(X, y, batch_size=32, lr=0.05, order=order, teacher=zt, temperature=3.0, kd_lambda=0.8)
    lb = b.train_epoch(X[perm], y[perm], batch_size=32, lr=0.05, order=inv[order], teacher=zt[perm],
                       temperature=3.0, kd_lambda=0.8)
    assert la == lb
    _equal_states(a.get_state(), b.get_state())


def test_kd_input_errors():
    m = _logit_model()
    x, y = np.zeros((2, 2), np.float32), np.array([0, 1])
    with pytest.raises(ValueError, match="temperature"):
        m.train_step(x, y, teacher=np.zeros((2, 2)), temperature=0.0, kd_lambda=0.5)
    with pytest.raises(ValueError, match="kd_lambda"):
        m.train_step(x, y, teacher=np.zeros((2, 2)), kd_lambda=1.5)
    with pytest.raises(ValueError, match="teacher"):
        m.train_step(x, y, kd_lambda=0.5)
    with pytest.raises(ValueError, match="one row"):
        m.train_step(x, y, teacher=np.zeros((3, 2)), kd_lambda=0.5)
    with pytest.raises(ValueError, match="finite"):
        m.train_step(x, y, teacher=np.full((2, 2), np.nan), kd_lambda=0.5)
    with pytest.raises(ValueError):
        KD(np.zeros(3))
    with pytest.raises(ValueError):
        KD(np.zeros((3, 2)), lam=2.0)
    with pytest.raises(ValueError, match="classes"):
        _trainer(MotifMLP([12, 4, 3], num_threads=1), 1, distill=KD(np.zeros((5, 2))))
    with pytest.raises(ValueError, match="samples"):
        _trainer(MotifMLP([12, 4, 3], num_threads=1), 1, distill=KD(np.zeros((5, 3)))).fit(*_data())


def test_trainer_distills_and_resumes_bit_for_bit(tmp_path):
    from motifcore.train.callbacks import Checkpoint
    X, y = _data()
    teacher = MotifMLP([12, 32, 3], density=1.0, seed=9, num_threads=1)
    _trainer(teacher, 2).fit(X, y)
    kd = KD(distill.teacher_logits(teacher, X), temperature=4.0, lam=0.9)
    np.testing.assert_array_equal(kd.teacher_logits, teacher.decision_function(X))
    full = _trainer(MotifMLP([12, 8, 3], density=0.5, seed=2, num_threads=1), 3, distill=kd, seed=5)
    full.fit(X, y, X, y)
    plain = _trainer(MotifMLP([12, 8, 3], density=0.5, seed=2, num_threads=1), 3, seed=5)
    plain.fit(X, y, X, y)
    assert full.history.rows[0]["train_loss"] != plain.history.rows[0]["train_loss"]
    part = _trainer(MotifMLP([12, 8, 3], density=0.5, seed=2, num_threads=1), 3, distill=kd, seed=5,
                    callbacks=[Checkpoint(tmp_path / "kd.npz"), _stop_at(2)])
    part.fit(X, y, X, y)
    with pytest.raises(ValueError, match="distill"):
        Trainer.from_checkpoint(tmp_path / "kd.npz", progress=False)
    resumed = Trainer.from_checkpoint(tmp_path / "kd.npz", progress=False, num_threads=1, distill=kd)
    assert resumed.config["distill"] == {"temperature": 4.0, "lam": 0.9}
    resumed.fit(X, y, X, y)
    _equal_states(full.model.get_state(), resumed.model.get_state())


def test_student_width_and_paper_arithmetic():
    assert distill.mlp_params([784, 1411, 1411, 1411, 10], biases=False) == 5_102_176
    assert distill.mlp_params([3312, 1217, 1217, 1217, 5], biases=False) == 6_998_967
    assert distill.mlp_params([784, 349, 349, 349, 10]) == 521_765
    assert distill.mlp_params([784, 3000, 3000, 3000, 10], biases=False) == 20_382_000
    assert distill.matched_width(5_100_000, 784, 10, biases=False) == 1411
    assert distill.matched_width(7_000_000, 3312, 5, biases=False) == 1217
    assert distill.matched_width(511_800 + 9_010, 784, 10) == 349
    assert round(84.12 * 5.10 / 20.38, 2) == 21.05          # the paper's Table 7 "measured" time
    assert round(1 - 511_800 / 20_382_000, 5) == 0.97489


# ---- Deep Compression --------------------------------------------------------------------------

def test_kmeans_hand_values():
    c, codes = compress.kmeans_1d([0, 0.2, 4.8, 5, 9.8, 10], [0, 5, 10])
    np.testing.assert_allclose(c, [0.1, 4.9, 9.9])
    assert codes.tolist() == [0, 0, 1, 1, 2, 2]
    c, codes = compress.kmeans_1d([1.0, 1.0, 2.0], [0.0, 1.5, 10.0])   # empty clusters keep their centroid
    np.testing.assert_allclose(c, [0.0, 4 / 3, 10.0])
    assert codes.tolist() == [1, 1, 1]


def test_quantize_model_uses_at_most_2_to_the_b_minus_1_values():
    m = MotifMLP([12, 40, 3], density=0.5, seed=0, num_threads=1)
    before = [layer.weights for layer in m.layers]
    books = compress.quantize_model(m, bits=3)
    for layer, book, w in zip(m.layers, books, before):
        assert book[0] == 0 and book.size == 8
        assert set(layer.weights.tolist()) <= set(book[1:].tolist())
        # each weight went to its nearest centroid
        nearest = book[1:][np.abs(w[:, None] - book[None, 1:]).argmin(axis=1)]
        np.testing.assert_allclose(layer.weights, nearest, atol=1e-6)


def test_relative_index_with_filler_and_bytes():
    gaps, filler = compress.relative_index([0, 1, 40], 5)
    assert gaps.tolist() == [0, 0, 31, 6] and filler.tolist() == [False, False, True, False]
    cl = CompressedLayer(np.zeros(32, np.float32), np.array([3, 4, 0, 5]), gaps, 0, 5, 5)
    assert cl.entries == 4 and cl.bytes_fixed() == 128 + 5          # 4 x 10 bits = 5 bytes
    # decode: positions are the running sum of gap + 1 over all entries, fillers dropped
    pos = np.cumsum(gaps + 1) - 1
    assert pos[~filler].tolist() == [0, 1, 40] and pos[filler].tolist() == [33]
    with pytest.raises(ValueError):
        compress.relative_index([3, 3], 5)


@pytest.mark.parametrize("freqs, bits", [([8, 4, 2, 1, 1], 30), ([1] * 6, 16), ([1] * 32, 160), ([5], 5)])
def test_huffman_sizes_and_round_trip(freqs, bits):
    syms = np.repeat(np.arange(len(freqs)), freqs)
    np.random.default_rng(0).shuffle(syms)
    data, n_bits, lengths = compress.huffman_encode(syms, len(freqs))
    assert n_bits == bits and len(data) == -(-bits // 8)
    assert np.array_equal(compress.huffman_decode(data, n_bits, lengths), syms)
    if freqs == [8, 4, 2, 1, 1]:
        p = np.array(freqs) / 16
        assert n_bits == pytest.approx(16 * -(p * np.log2(p)).sum())      # equal to the entropy


def test_canonical_codes_are_prefix_free():
    lengths = compress.huffman_lengths(np.random.default_rng(0).integers(1, 50, 20))
    codes = compress.canonical_codes(lengths)
    words = [format(int(c), f"0{int(n)}b") for c, n in zip(codes, lengths)]
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    assert sum(2.0 ** -n for n in lengths) == pytest.approx(1.0)           # a complete code


def test_quantization_ratio():
    assert round(compress.quantization_ratio(10**6, 32, 32), 2) == 6.40


def test_compress_model_accounting():
    m = MotifMLP([40, 64, 3], motif=[2, 1], density=0.2, seed=0, num_threads=1)
    r = compress.compress_model(m, bits=4, index_bits=3)
    assert r["dense_fp32_bytes"] == 4 * (40 * 64 + 64 * 3 + 64 + 3)
    assert r["csr_fp32_bytes"] == sum(8 * l.n_blocks + 8 * (l.groups[0] + 1) + 4 * l.bias.size for l in m.layers)
    entries = 0
    for cl, layer in zip(r["layers"], m.layers):
        pos = layer.block_rows * layer.groups[1] + layer.indices
        gaps = np.diff(pos, prepend=-1)
        n = layer.n_blocks + int(((gaps - 1) // 8).sum())
        assert cl.entries == n
        entries += n
        assert cl.bytes_fixed() == 4 * 16 + -(-n * 7 // 8) + 4 * layer.bias.size
    assert r["entries"] == entries and r["fillers"] == entries - m.n_blocks
    assert r["dc_bytes_fixed"] == sum(cl.bytes_fixed() for cl in r["layers"])
    assert r["compression_fixed"] == r["dense_fp32_bytes"] / r["dc_bytes_fixed"]
    assert r["dc_bytes_huffman"] > 0 and r["savez_bytes"] > r["csr_fp32_bytes"] // 2


# ---- trained quantization ----------------------------------------------------------------------

def test_centroid_gradient_hand_values():
    m = MotifMLP([2, 2], density=1.0, num_threads=1)
    layer = m.layers[0]
    layer.set_codebook([0, 1, 0, 1], [1.0, 2.0])
    assert layer.weights.tolist() == [1.0, 2.0, 1.0, 2.0]
    layer.forward(np.array([[1.0, 2.0]], np.float32))
    layer.backward(np.array([[1.0, 3.0]], np.float32))
    assert layer.grad_weights.tolist() == [1.0, 2.0, 3.0, 6.0]
    layer.sgd_step(0.1, momentum=0.0, weight_decay=0.0)
    np.testing.assert_allclose(layer._core.grad_centroids, [4.0, 8.0])
    np.testing.assert_allclose(layer.codebook[1], [0.6, 1.2], rtol=1e-6)
    np.testing.assert_allclose(layer.weights, [0.6, 1.2, 0.6, 1.2], rtol=1e-6)


def test_centroid_gradient_matches_numpy_segment_sum():
    rng = np.random.default_rng(0)
    m = MotifMLP([30, 50], density=0.6, seed=1, num_threads=2)
    layer = m.layers[0]
    codes = rng.integers(0, 7, layer.n_blocks)
    layer.set_codebook(codes, np.linspace(-0.3, 0.3, 7))
    layer.forward(rng.standard_normal((5, 30)).astype(np.float32))
    layer.backward(rng.standard_normal((5, 50)).astype(np.float32))
    ref = np.bincount(codes, weights=layer.grad_weights.astype(np.float64), minlength=7)
    layer.sgd_step(0.0, momentum=0.0, weight_decay=0.0)
    np.testing.assert_allclose(layer._core.grad_centroids, ref, rtol=1e-5, atol=1e-6)


def test_trained_quantization_keeps_the_codebook_and_resumes(tmp_path):
    from motifcore.train.callbacks import Checkpoint
    X, y = _data()

    def model():
        m = MotifMLP([12, 16, 3], density=0.5, seed=2, num_threads=1)
        for layer, book in zip(m.layers, compress.quantize_model(m, bits=2)):
            codes = np.abs(layer.weights[:, None] - book[None, 1:]).argmin(axis=1)
            layer.set_codebook(codes, book[1:])
        return m

    full = _trainer(model(), 3, seed=1)
    full.fit(X, y)
    for layer in full.model.layers:
        codes, cent = layer.codebook
        assert np.array_equal(layer.weights, cent[codes])       # weights are still shared
        assert cent.size == 3
    part = _trainer(model(), 3, seed=1, callbacks=[Checkpoint(tmp_path / "q.npz"), _stop_at(2)])
    part.fit(X, y)
    resumed = Trainer.from_checkpoint(tmp_path / "q.npz", progress=False, num_threads=1)
    resumed.fit(X, y)
    _equal_states(full.model.get_state(), resumed.model.get_state())
    # a new pattern drops the codebook
    full.model.set_state({k: v for k, v in full.model.get_state().items() if "centroid" not in k and "codes" not in k})
    assert all(layer.codebook is None for layer in full.model.layers)


def test_codebook_errors():
    m = MotifMLP([4, 4], density=0.5, num_threads=1)
    layer = m.layers[0]
    with pytest.raises(ValueError, match="one entry per block"):
        layer.set_codebook([0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="codes must be in"):
        layer.set_codebook([0] * 7 + [2], [1.0, 2.0])
    with pytest.raises(ValueError):
        layer.set_codebook([0] * 8, [])
    layer.set_codebook([0] * 8, [0.5])
    layer.prune_regrow(0.25, seed=0)
    layer.forward(np.ones((1, 4), np.float32))
    layer.backward(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="pattern changed"):
        layer.sgd_step(0.1)


def test_iterative_prune_reaches_the_target_and_resumes(tmp_path):
    X, y = _data()
    kw = dict(density=0.2, rounds=3, epochs_per_round=2, exclude_output=True, seed=3, batch_size=32, progress=False)

    def source():
        m = MotifMLP([12, 16, 3], density=1.0, seed=1, num_threads=1)
        _trainer(m, 1).fit(X, y)
        return m

    model, trainers = prune.iterative_prune(source(), X, y, **kw)
    assert len(trainers) == 3 and all(t.epoch == 2 for t in trainers)
    targets = [round(d * 12 * 16) for d in prune.iterative_densities(0.2, 3)]
    assert model.layers[0].n_blocks == targets[-1] and model.layers[1].n_blocks == 16 * 3
    # interrupted in round 2 (after its first epoch was saved), then resumed from the round checkpoints

    def stop(trainer, epoch, logs):
        if (tmp_path / "round2.npz").exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prune.iterative_prune(source(), X, y, checkpoint_dir=tmp_path, callbacks=[stop], **kw)
    assert (tmp_path / "round1.npz").exists() and (tmp_path / "round2.npz").exists()
    resumed, _ = prune.iterative_prune(source(), X, y, checkpoint_dir=tmp_path, **kw)
    _equal_states(model.get_state(), resumed.get_state())


def test_keep_largest_keeps_the_largest_blocks_with_their_state():
    """Layer-wise pruning to the largest |K| keeps exactly those blocks, their weights and their
    momentum (checked against the state before), leaves an already sparser layer alone, and
    refuses a density outside (0, 1]."""
    import numpy as np
    from motifcore import MotifMLP
    from motifcore.baselines.prune import keep_largest

    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 30)).astype(np.float32)
    y = rng.integers(0, 4, 128)
    model = MotifMLP([30, 40, 20, 4], motif=1, density=0.6, seed=1, num_threads=1)
    model.train_epoch(X, y, batch_size=32, lr=0.01, optimizer="sgd", seed=0)
    before = model.get_state()
    kept = keep_largest(model, 0.25, [0, 1])
    after = model.get_state()
    for i, (g_out, g_in) in enumerate([(40, 30), (20, 40)]):
        n = round(0.25 * g_out * g_in)
        assert kept[i] == n == after[f"layer{i}.weights"].size
        K, V = before[f"layer{i}.weights"], before[f"layer{i}.weight_velocity"]
        rows = np.repeat(np.arange(g_out), np.diff(before[f"layer{i}.indptr"]))
        pos = rows * g_in + before[f"layer{i}.indices"]
        top = np.sort(np.argsort(-np.abs(K), kind="stable")[:n])
        new_rows = np.repeat(np.arange(g_out), np.diff(after[f"layer{i}.indptr"]))
        assert np.array_equal(new_rows * g_in + after[f"layer{i}.indices"], pos[top])
        assert np.array_equal(after[f"layer{i}.weights"], K[top])
        assert np.array_equal(after[f"layer{i}.weight_velocity"], V[top])
    assert np.array_equal(after["layer2.weights"], before["layer2.weights"])    # not chosen
    assert keep_largest(model, 0.9, [0]) == [kept[0]]                           # already sparser
    with pytest.raises(ValueError, match="density"):
        keep_largest(model, 0.0, [0])
