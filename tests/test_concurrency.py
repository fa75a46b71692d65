"""Concurrency stress tests: Python threads sharing one model (the engine releases the GIL, so these
calls really overlap). A writer runs a fixed program of train_step / evolve / set_state calls while
readers call predict_proba, get_state and a layer's forward; every answer a reader gets must be the
answer of one of the states a serial replay of the program passes through, and the final state must
equal the serial one bit for bit."""

from __future__ import annotations

import threading

import motifcore as mc
import numpy as np

SIZES = [32, 48, 48, 6]


def _model():
    return mc.MotifMLP(SIZES, motif=2, density=0.3, seed=4, num_threads=1)


def _data():
    r = np.random.default_rng(9)
    X = r.standard_normal((40, SIZES[0]), dtype=np.float32)
    return X, np.arange(40) % SIZES[-1], r.standard_normal((25, SIZES[0]), dtype=np.float32)


def _program(model, X, y, snapshot):
    """The writer's calls: step k trains, evolves or restores an earlier state."""
    ops = []
    for k in range(24):
        if k % 3 == 0:
            ops.append(lambda k=k: model.train_step(X[k % 4 * 10:(k % 4 + 1) * 10], y[k % 4 * 10:(k % 4 + 1) * 10],
                                                    lr=0.05))
        elif k % 3 == 1:
            ops.append(lambda k=k: model.evolve(0.25, seed=k))
        else:
            ops.append(lambda: model.set_state(snapshot))
    return ops


def _same_state(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_threads_mixing_predict_train_evolve_set_state_match_the_serial_run():
    X, y, Xq = _data()
    snapshot = _model().get_state()          # a valid state to restore from (the initial one)

    serial = _model()
    probs, states, layer_out = [], [], []

    def record():
        probs.append(serial.predict_proba(Xq))
        states.append(serial.get_state())
        layer_out.append(serial.layers[1].forward(np.maximum(Xq @ np.ones((SIZES[0], SIZES[1]), np.float32), 0)))

    record()
    for op in _program(serial, X, y, snapshot):
        op()
        record()

    model = _model()
    done = threading.Event()
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    answers = {"probs": [], "states": [], "layer": []}
    h = np.maximum(Xq @ np.ones((SIZES[0], SIZES[1]), np.float32), 0)

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                done.set()
        return run

    @guarded
    def writer():
        start.wait()
        for op in _program(model, X, y, snapshot):
            op()
        done.set()

    @guarded
    def predictor():
        start.wait()
        while True:                  # at least one answer, however fast the writer is
            answers["probs"].append(model.predict_proba(Xq))
            if done.is_set():
                break

    @guarded
    def state_reader():
        start.wait()
        while True:
            answers["states"].append(model.get_state())
            answers["layer"].append(model.layers[1].forward(h))
            if done.is_set():
                break

    threads = [threading.Thread(target=f) for f in (writer, predictor, predictor, state_reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert answers["probs"] and answers["states"]
    for p in answers["probs"]:
        assert any(np.array_equal(p, q) for q in probs)
    for s in answers["states"]:
        assert any(_same_state(s, t) for t in states)
    for out in answers["layer"]:
        assert any(np.array_equal(out, o) for o in layer_out)
    assert _same_state(model.get_state(), states[-1])
    assert np.array_equal(model.predict_proba(Xq), probs[-1])


def test_concurrent_training_of_one_model_is_serialised():
    """Two threads each take 10 training steps on one model: the steps never interleave, so the
    result is that of one of the serial orders (here the batches are equal, so all orders agree)."""
    X, y, Xq = _data()
    serial = _model()
    for _ in range(20):
        serial.train_step(X[:10], y[:10], lr=0.05)
    model = _model()
    threads = [threading.Thread(target=lambda: [model.train_step(X[:10], y[:10], lr=0.05) for _ in range(10)])
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert model.steps == 20
    assert _same_state(model.get_state(), serial.get_state())
