"""The engine's thread pool: results independent of the thread count (bitwise), errors raised in a
parallel loop reach Python, concurrent callers, and a clean interpreter exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import motifcore as mc
import numpy as np
import pytest
from motifcore import _core

# Wide enough that every kernel of the step runs in parallel (regions under 65k operations run on
# one thread), with a last batch of 44 samples (a partial SIMD vector).
SIZES = [300, 640, 600, 10]


def _data(n: int = 300):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, SIZES[0])).astype(np.float32),
            rng.integers(0, SIZES[-1], n).astype(np.int64))


def _train(threads: int, motif: int):
    X, y = _data()
    net = mc.MotifMLP(SIZES, motif=motif, density=0.25, seed=3, num_threads=threads)
    net.train_epoch(X, y, batch_size=128, lr=0.05, seed=1, dropout=0.2)
    net.train_epoch(X, y, batch_size=100, lr=0.01, optimizer="adamw", max_grad_norm=0.5, seed=2)
    net.evolve(0.2, seed=5)
    net.train_step(X[:128], y[:128], 0.02, max_grad_norm=1.0)
    return net.get_state(), net.predict_proba(X, batch_size=256)


@pytest.mark.parametrize("motif", [1, 2])
def test_training_and_predict_bitwise_equal_for_1_2_3_threads(motif):
    ref_state, ref_proba = _train(1, motif)
    assert np.isfinite(ref_proba).all()
    for threads in (2, 3):
        state, proba = _train(threads, motif)
        assert state.keys() == ref_state.keys()
        for key in ref_state:
            assert np.array_equal(np.asarray(state[key]), np.asarray(ref_state[key])), (threads, key)
        assert np.array_equal(proba, ref_proba)


def test_layer_forward_backward_bitwise_equal_for_1_2_3_threads():
    X, _ = _data(130)
    outs = []
    for threads in (1, 2, 3):
        layer = mc.MotifLayer(SIZES[0], 2000, motif=2, density=0.2, seed=9, activation="relu", num_threads=threads)
        out = layer.forward(X)
        grad_in = layer.backward(np.ascontiguousarray(out * 0.1))
        outs.append((out, grad_in, layer.grad_weights, layer.grad_bias))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("n,grain,threads",
                         [(0, 1, 2), (1, 1, 2), (1000, 7, 2), (100003, 64, 3), (100003, 1, 2), (5000, 10000, 2)])
def test_parallel_loop_visits_every_index_once(n, grain, threads):
    visits = np.asarray(_core.parallel_visits(n, grain, threads))
    assert visits.shape == (n,)
    assert (visits == 1).all()


def test_error_inside_parallel_loop_reaches_python():
    with pytest.raises(ValueError, match="parallel check: index 5000 failed"):
        _core.parallel_visits(10000, 16, 2, fail_at=5000)
    with pytest.raises(ValueError, match="grain >= 1"):
        _core.parallel_visits(10, 0, 2)
    assert (np.asarray(_core.parallel_visits(10000, 16, 2)) == 1).all()   # the pool still works


def test_models_trained_from_two_python_threads_match_sequential():
    X, y = _data()
    ref = [_train_plain(X, y, seed) for seed in (0, 1)]
    results: dict = {}

    def run(seed: int) -> None:
        results[seed] = _train_plain(X, y, seed)

    workers = [threading.Thread(target=run, args=(s,)) for s in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers)
    for seed in (0, 1):
        assert np.array_equal(results[seed], ref[seed])


def _train_plain(X, y, seed):
    net = mc.MotifMLP(SIZES, motif=1, density=0.25, seed=seed, num_threads=2)
    for _ in range(3):
        net.train_epoch(X, y, batch_size=64, lr=0.05, seed=seed)
    return net.decision_function(X)


def test_pool_shutdown_and_restart():
    _core.parallel_visits(10000, 16, 2)
    _core.pool_shutdown()
    assert _core.pool_workers() == 0
    assert (np.asarray(_core.parallel_visits(10000, 16, 2)) == 1).all()
    _core.pool_shutdown()
    assert _core.pool_workers() == 0


def test_interpreter_exits_cleanly_with_pool_workers_alive():
    # A second Python thread is still training when the main thread ends: the interpreter waits for
    # it, then stops the pool's parked workers at exit.
    code = textwrap.dedent(f"""
        import threading
        import numpy as np
        import motifcore as mc
        X = np.random.default_rng(0).standard_normal((256, {SIZES[0]})).astype(np.float32)
        y = np.arange(256) % {SIZES[-1]}
        def train(epochs):
            net = mc.MotifMLP({SIZES}, density=0.25, num_threads=2)
            for _ in range(epochs):
                net.train_epoch(X, y, batch_size=64)
        threading.Thread(target=train, args=(8,)).start()
        train(1)
        print("done", mc._core.pool_workers() <= 1, flush=True)
    """)
    # the timeout only guards against a hang at exit; a normal run takes about a second
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done True"
    assert proc.stderr == ""


def test_build_info_reports_the_threading_backend():
    assert "motifcore pool" in mc.build_info()["threading"]


# ---- loops of the DST, CHT, codebook and divergence code (converted from OpenMP at the merge) -----

def test_grad_topk_exact_and_sampled_match_numpy_for_1_2_3_threads():
    # Integer inputs and gradients: every score is an exact integer, so the reference is exact. Many
    # small tiles and a k small beside the free positions, so each thread's buffer shrinks.
    rng = np.random.default_rng(4)
    g_in, g_out, B, k = 600, 400, 16, 20000
    x = rng.integers(-2, 3, size=(B, g_in)).astype(np.float32)
    g = rng.integers(-2, 3, size=(B, g_out)).astype(np.float32)
    S = np.abs(g.T.astype(np.int64) @ x.astype(np.int64)).ravel()
    results = []
    for threads in (1, 2, 3):
        layer = mc.MotifLayer(g_in, g_out, density=0.05, seed=4, num_threads=threads)
        layer.forward(x)
        layer.backward(g)
        kept = layer.block_rows.astype(np.int64) * g_in + layer.indices
        results.append((layer.grad_topk(k, tile_rows=8, tile_cols=32),
                        layer.grad_topk(k, topk="sampled", sample_factor=3, seed=2)))
    free = np.setdiff1d(np.arange(S.size), kept)
    ref = np.sort(free[np.lexsort((free, -S[free]))[:k]])
    np.testing.assert_array_equal(results[0][0][0], ref)
    np.testing.assert_array_equal(results[0][0][1], S[ref].astype(np.float32))
    for exact, sampled in results[1:]:
        for got, want in ((exact, results[0][0]), (sampled, results[0][1])):
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    pos, score = results[0][1]
    assert pos.size == k and np.intersect1d(pos.astype(np.int64), kept).size == 0
    np.testing.assert_array_equal(score, S[pos.astype(np.int64)].astype(np.float32))


def test_cht_evolution_bitwise_equal_for_1_2_3_threads():
    states = []
    for threads in (1, 2, 3):
        net = mc.MotifMLP([200, 300, 300, 4], density=[0.05, 0.05, 1.0], seed=6, num_threads=threads)
        stats = net.evolve_cht([0.3, 0.3, 0.0], seed=8)
        assert stats[0]["regrown_score"] > 0
        states.append(net.get_state())
    for state in states[1:]:
        for key in states[0]:
            assert np.array_equal(np.asarray(state[key]), np.asarray(states[0][key])), key


def test_codebook_step_bitwise_equal_for_1_2_3_threads_and_matches_numpy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, SIZES[0])).astype(np.float32)
    g = rng.standard_normal((8, SIZES[1])).astype(np.float32)
    out = []
    for threads in (1, 2, 3):
        layer = mc.MotifLayer(SIZES[0], SIZES[1], density=0.25, seed=2, num_threads=threads)
        codes = np.arange(layer.n_blocks) % 7                     # n_blocks = 48000: 12 chunks of 4096
        layer.set_codebook(codes, np.linspace(-0.3, 0.3, 7))
        layer.forward(x)
        layer.backward(g)
        ref = np.bincount(codes, weights=layer.grad_weights.astype(np.float64), minlength=7)
        layer.sgd_step(0.1, momentum=0.0, weight_decay=0.0)
        np.testing.assert_allclose(layer._core.grad_centroids, ref, rtol=1e-5, atol=1e-5)
        assert np.array_equal(layer.weights, layer.codebook[1][codes])
        out.append((layer._core.grad_centroids, layer.weights))
    for grads, weights in out[1:]:
        assert np.array_equal(grads, out[0][0]) and np.array_equal(weights, out[0][1])


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("row", [0, -1])
def test_divergence_of_blocks_in_the_first_or_last_chunk_is_found(threads, row):
    # Only the blocks of one output row overflow (their inputs are huge, their bias gradient is not):
    # the weight check finds them whichever chunk of the 48000 blocks they are in.
    layer = mc.MotifLayer(SIZES[0], SIZES[1], density=0.25, seed=0, num_threads=threads)
    x = np.full((4, SIZES[0]), 1e30, np.float32)
    grad = np.zeros((4, SIZES[1]), np.float32)
    grad[:, row] = 1.0
    layer.forward(x)
    layer.backward(grad)
    layer.sgd_step(1e10, momentum=0.0, weight_decay=0.0)
    bad = np.flatnonzero(~np.isfinite(layer.weights))
    rows = layer.block_rows[bad]
    assert bad.size > 0 and (rows == rows[0]).all() and np.isfinite(layer.bias).all()
    with pytest.raises(OverflowError, match="NaN or infinite"):
        layer.forward(x)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity (Linux)")
def test_one_cpu_in_the_affinity_mask_runs_every_region_inline():
    # A process pinned to one CPU asks for 2 and 3 threads: the pool starts no worker, every index is
    # still visited once, and a training run is bitwise the one of 1 thread.
    code = textwrap.dedent(f"""
        import os
        os.sched_setaffinity(0, {{sorted(os.sched_getaffinity(0))[0]}})
        import numpy as np
        import motifcore as mc
        from motifcore import _core
        assert mc.build_info()["default_threads"] == "1", mc.build_info()["default_threads"]
        assert (np.asarray(_core.parallel_visits(100003, 7, 3)) == 1).all()
        X = np.random.default_rng(0).standard_normal((256, {SIZES[0]})).astype(np.float32)
        y = np.arange(256) % {SIZES[-1]}
        out = []
        for threads in (1, 2):
            net = mc.MotifMLP({SIZES}, density=0.25, seed=4, num_threads=threads)
            net.train_epoch(X, y, batch_size=128, lr=0.05, seed=1)
            out.append(net.decision_function(X))
        print("workers", _core.pool_workers(), "equal", np.array_equal(out[0], out[1]), flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "workers 0 equal True"
