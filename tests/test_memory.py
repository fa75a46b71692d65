"""Memory that follows the work: the forward-only inference path (logits, evaluate) against the
training path's forward and a NumPy reference, its independence of the chunk, the memory-sized
chunk ``batch_size="auto"`` against panel sizes computed here, and releasing the training workspace."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from motifcore import MotifMLP, Trainer
from motifcore.nn import DEFAULT_EVAL_MEMORY, MAX_EVAL_CHUNK
from test_mlp import assert_close, specs_of
from test_references import panel_ld

SIZES = [23, 40, 31, 17, 5]
# m = 1; square motifs; rectangular ones where U (m_out > 1) and S (m_in > 1) differ per layer
MOTIFS = [1, 2, [(3, 1), (2, 3), (1, 2), 1]]


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], n)


def _trained(motif, seed: int = 0, threads: int = 1) -> MotifMLP:
    X, y = _data(64, seed + 10)
    mlp = MotifMLP(SIZES, motif=motif, density=0.5, seed=seed, num_threads=threads)
    mlp.train_epoch(X, y, batch_size=16, lr=0.1, seed=0)   # away from the init (biases nonzero)
    return mlp


def _panel_bytes(mlp: MotifMLP, chunk: int) -> int:
    """Inference panels of a chunk, from the layer shapes: two activation panels of the widest
    width (input included), the group sums of the widest m_in > 1 input, the block products of the
    widest m_out > 1 output; float32 rows of panel_ld(chunk)."""
    widest = max([mlp.n_features] + [layer.n_out for layer in mlp.layers])
    s = max([layer.groups[1] for layer in mlp.layers if layer.motif[1] > 1], default=0)
    u = max([layer.groups[0] for layer in mlp.layers if layer.motif[0] > 1], default=0)
    return 4 * panel_ld(chunk) * (2 * widest + s + u)


@pytest.mark.parametrize("motif", MOTIFS)
def test_inference_equals_training_forward(motif):
    mlp = _trained(motif)
    X, y = _data(37, 1)
    z = mlp.decision_function(X, batch_size=37)
    # the row-major layer API runs each layer's training-path forward kernels, layer by layer
    h = X
    for layer in mlp.layers:
        h = layer.forward(h)
    assert np.array_equal(z, h)
    assert_close(z, ref.mlp_logits(specs_of(mlp), X), rtol=1e-5, what="logits")
    # the fused training step's loss is computed on its own forward; lr = 0 leaves the weights alone
    loss, _ = mlp.evaluate(X, y, batch_size=37)
    step_loss = mlp.train_step(X, y, lr=0.0, momentum=0.0, weight_decay=0.0)
    assert loss == step_loss
    assert loss == pytest.approx(ref.cross_entropy(ref.mlp_logits(specs_of(mlp), X), y), rel=1e-5)


@pytest.mark.parametrize("motif", MOTIFS)
def test_results_do_not_depend_on_the_chunk(motif):
    mlp = _trained(motif, seed=3, threads=2)
    X, y = _data(70, 2)
    z = mlp.decision_function(X, batch_size=70)
    evals = set()
    for chunk in (1, 5, 16, 17, 33, 48, 69, 70, 500, "auto"):
        assert np.array_equal(mlp.decision_function(X, batch_size=chunk), z), chunk
        evals.add(mlp.evaluate(X, y, batch_size=chunk))
    assert len(evals) == 1      # the mean loss is one running sum over the samples: bitwise equal
    loss, acc = evals.pop()
    assert acc == np.mean(z.argmax(axis=1) == y)
    assert loss == pytest.approx(ref.cross_entropy(z.astype(np.float64), y), rel=1e-6)


@pytest.mark.parametrize("motif", MOTIFS)
def test_auto_chunk_fits_its_budget(motif):
    mlp = MotifMLP(SIZES, motif=motif, density=0.5, seed=0, num_threads=1)
    for chunk in (1, 16, 17, 100, 1000):
        assert mlp.inference_bytes(chunk) == _panel_bytes(mlp, chunk)
    assert mlp.eval_memory == DEFAULT_EVAL_MEMORY == 256 * 2**20
    assert mlp.eval_chunk() == MAX_EVAL_CHUNK          # tiny panels: the cap, not the budget
    for budget in (1, 2_000, 20_000, 48_000, 100_000, 1_000_000):
        chunk = mlp.eval_chunk(budget)
        fits = _panel_bytes(mlp, chunk) <= budget
        assert chunk >= 1 and (fits or chunk == 1)
        assert chunk == MAX_EVAL_CHUNK or _panel_bytes(mlp, chunk + 1) > budget   # the largest that fits
    # the model's budget is what batch_size="auto" uses
    mlp.eval_memory = 20_000
    assert mlp.eval_chunk() == mlp.eval_chunk(20_000) < MAX_EVAL_CHUNK


def test_auto_chunk_of_a_wide_network():
    # 3 x 300,000 (issue 12; a few blocks per layer, the panels do not depend on them): 256 MiB of
    # panels hold a chunk of 80 samples, where the Trainer's old chunk of 1024 needs 2.5 GB in this
    # path (7.5 GB in the training workspace it used to grow)
    mlp = MotifMLP([3312, 300_000, 300_000, 300_000, 5], density=[1e-6, 1e-8, 1e-8, 1e-4], seed=0, num_threads=1)
    chunk = mlp.eval_chunk()
    assert chunk == 80 and _panel_bytes(mlp, 80) == 4 * 80 * 600_000 <= 256 * 2**20 < _panel_bytes(mlp, 81)
    assert mlp.inference_bytes(1024) == 4 * 1040 * 600_000


def test_bad_chunks_are_refused():
    mlp = MotifMLP([4, 6, 3], seed=0, num_threads=1)
    X, y = _data(3)
    with pytest.raises(ValueError, match="'auto'"):
        mlp.decision_function(X[:, :4], batch_size="big")
    with pytest.raises(TypeError, match="batch_size"):
        mlp.evaluate(X[:, :4], y % 3, batch_size=2.5)
    with pytest.raises(ValueError, match="eval_memory"):
        mlp.eval_memory = 0
    with pytest.raises(ValueError, match="eval_batch_size"):
        Trainer(mlp, eval_batch_size="max")


@pytest.mark.parametrize("motif", MOTIFS)
def test_release_workspace_then_train_and_predict(motif):
    X, y = _data(64, 4)
    a, b = _trained(motif, seed=5), _trained(motif, seed=5)
    assert a.workspace_bytes > 0
    a.release_workspace()
    assert a.workspace_bytes == 0
    assert np.array_equal(a.decision_function(X), b.decision_function(X))
    assert a.workspace_bytes == 0                       # inference does not grow it
    for mlp in (a, b):
        mlp.train_epoch(X, y, batch_size=16, lr=0.1, seed=1, dropout=0.2)
    assert a.workspace_bytes == b.workspace_bytes > 0
    assert np.array_equal(a.decision_function(X), b.decision_function(X))
    for k, v in a.get_state().items():
        assert np.array_equal(v, b.get_state()[k]), k


def test_trainer_releases_the_workspace_and_evaluates_in_auto_chunks():
    X, y = _data(96, 6)
    Xv, yv = _data(40, 7)
    mlp = MotifMLP(SIZES, motif=2, density=0.5, seed=0, num_threads=1)
    tr = Trainer(mlp, epochs=2, batch_size=16, progress=False, evolution="none")
    assert tr.eval_batch_size == "auto" and tr.config["eval_batch_size"] == "auto"
    h = tr.fit(X, y, Xv, yv)
    assert mlp.workspace_bytes == 0
    assert h["val_loss"][-1] == mlp.evaluate(Xv, yv, batch_size=1)[0]
    tr2 = Trainer(MotifMLP(SIZES, motif=2, density=0.5, seed=0, num_threads=1), epochs=2, batch_size=16,
                  progress=False, evolution="none", eval_batch_size=3)
    assert tr2.fit(X, y, Xv, yv)["val_loss"] == h["val_loss"]


def test_a_layer_over_the_block_limit_is_refused():
    # The transposed index stores CSR positions as int32: more than 2^31 - 1 blocks in one layer is
    # refused before anything of that size is drawn.
    from motifcore import MotifLayer
    with pytest.raises(ValueError, match="at most 2147483647 active blocks"):
        MotifLayer(50000, 50000, density=1.0)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_evolution_keeps_the_layer_whole(optimizer):
    # An evolution step frees its old arrays before rebuilding the transposed index: afterwards every
    # per-block array has |P| entries, the prune record is gone and training and the input gradient
    # (which reads the transposed index) still match a NumPy reference.
    X, y = _data(64, 3)
    mlp = MotifMLP(SIZES, motif=1, density=0.5, seed=4, num_threads=1)
    mlp.train_epoch(X, y, batch_size=16, lr=0.1, seed=0, optimizer=optimizer)
    before = [layer.n_blocks for layer in mlp.layers]
    mlp.evolve(0.3, seed=5)
    for layer, nb in zip(mlp.layers, before):
        assert layer.n_blocks == nb
        assert layer.last_removed.size == 0
        assert layer._core.grad_weights.size == nb
    mlp.train_epoch(X, y, batch_size=16, lr=0.1, seed=1, optimizer=optimizer)
    layer = mlp.layers[1]
    x = np.random.default_rng(6).standard_normal((5, layer._core.n_in)).astype(np.float32)
    g = np.random.default_rng(7).standard_normal((5, layer._core.n_out)).astype(np.float32)
    relu = (layer.forward(x) > 0) if layer._core.activation == "relu" else np.ones_like(g, bool)
    layer.forward(x)
    gx = layer.backward(g)
    np.testing.assert_allclose(gx, (g * relu) @ layer.to_dense(), rtol=1e-4, atol=1e-5)


def _dense_top(motif) -> MotifMLP:
    # the last layer fully dense (its GEMM packing buffer shares the backward scratch)
    return MotifMLP(SIZES, motif=motif, density=[0.5, 0.5, 0.5, 1.0], seed=8, num_threads=1)


@pytest.mark.parametrize("motif", MOTIFS)
def test_transposed_index_is_built_when_a_backward_needs_it(motif):
    X, y = _data(64, 8)
    mlp = _dense_top(motif)
    assert mlp.layers[-1]._core.uses_dense and not mlp.layers[1]._core.uses_dense
    assert not any(layer._core.transposed_index_held for layer in mlp.layers)   # construction builds none
    mlp.train_epoch(X, y, batch_size=16, lr=0.1, seed=0)
    held = [layer._core.transposed_index_held for layer in mlp.layers]
    # the first layer needs no input gradient, the dense layer runs GEMMs: neither ever builds one
    assert held == [False, True, True, False]
    mlp.evaluate(X, y)
    assert [layer._core.transposed_index_held for layer in mlp.layers] == held
    mlp.evolve(0.3, seed=1)
    assert not any(layer._core.transposed_index_held for layer in mlp.layers)   # freed by the change
    mlp.evaluate(X, y)                                  # inference goes without it
    assert not any(layer._core.transposed_index_held for layer in mlp.layers)
    mlp.train_epoch(X, y, batch_size=16, lr=0.1, seed=1)
    assert [layer._core.transposed_index_held for layer in mlp.layers] == held


@pytest.mark.parametrize("motif", MOTIFS)
def test_released_scratch_and_lazy_index_leave_results_bitwise_equal(motif):
    # `a` frees its scratch, workspace and transposed indices whenever it can and evaluates between
    # steps (inference without the index); `b` keeps everything and runs on 2 threads. Training,
    # evolution (SET and CHT), the gradients and the predictions must stay bitwise equal.
    X, y = _data(64, 9)
    Xv, yv = _data(30, 10)
    a, b = _dense_top(motif), _dense_top(motif)
    b.num_threads = 2
    for epoch in range(3):
        for mlp in (a, b):
            mlp.train_epoch(X, y, batch_size=16, lr=0.05, seed=epoch, dropout=0.1)
        ws = a.workspace_bytes
        a._net.release_scratch()
        assert 0 < a.workspace_bytes < ws                  # the activation panels stay
        assert a.evaluate(Xv, yv) == b.evaluate(Xv, yv)
        assert a.train_step(X[:9], y[:9], lr=0.05) == b.train_step(X[:9], y[:9], lr=0.05)
        if epoch == 1:
            a.release_workspace()
        for mlp in (a, b):
            if epoch == 2:
                mlp.evolve_cht(0.2, seed=epoch)
            else:
                mlp.evolve(0.3, seed=epoch)
        assert a.evaluate(Xv, yv) == b.evaluate(Xv, yv)
        for la, lb in zip(a.layers, b.layers):
            assert np.array_equal(la._core.grad_weights, lb._core.grad_weights)
    for mlp in (a, b):
        mlp.train_epoch(X, y, batch_size=16, lr=0.05, seed=9)
    assert np.array_equal(a.decision_function(Xv), b.decision_function(Xv))
    sa, sb = a.get_state(), b.get_state()
    for k, v in sa.items():
        assert np.array_equal(v, sb[k]), k


def test_evolution_frees_the_backward_scratch():
    X, y = _data(64, 11)
    mlp = _dense_top(1)
    mlp.train_epoch(X, y, batch_size=16, lr=0.1, seed=0)
    full = mlp.workspace_bytes
    mlp.evolve(0.3, seed=0)
    # the scratch: one input-gradient panel of the widest layer input, the largest sparse layer's
    # transposed weights (or the dense layer's packing buffer) and cursors
    assert 0 < mlp.workspace_bytes <= full - 4 * panel_ld(16) * max(SIZES[1:-1])
    mlp.train_epoch(X, y, batch_size=16, lr=0.1, seed=1)
    assert mlp.workspace_bytes == full
