"""The engine's thread pool: results independent of the thread count (bitwise), errors raised in a
parallel loop reach Python, concurrent callers, and a clean interpreter exit."""

from __future__ import annotations

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


@pytest.mark.parametrize("n,grain,threads", [(0, 1, 2), (1, 1, 2), (1000, 7, 2), (100003, 64, 3), (5000, 10000, 2)])
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
