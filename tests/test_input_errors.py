"""Bad input raises ValueError/TypeError naming the problem -- never a crash, never a silent
wrong answer. Paths that could take the interpreter down (an exception inside a parallel loop,
scratch buffers after a pattern change) run in a subprocess so a crash fails one test, not the run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import motifcore as mc
import numpy as np
import pytest
from motifcore import MotifLayer, MotifMLP, _core

PYTHON_DIR = Path(mc.__file__).resolve().parent.parent  # where the imported motifcore lives (installed or in-tree)


@pytest.fixture
def layer():
    return MotifLayer(10, 7, motif=2, density=0.5, seed=1)


@pytest.fixture
def mlp():
    return MotifMLP([7, 9, 6, 3], motif=[2, 3, 1], density=0.6, seed=1)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 7)).astype(np.float32), rng.integers(0, 3, 8)


def run_python(code: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter with motifcore importable (a crash there cannot kill
    the test session)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PYTHON_DIR), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=env)


# ---------------------------------------------------------------------------------------------
# Arrays: shape, dtype, values
# ---------------------------------------------------------------------------------------------

BAD_SHAPES = [
    (np.zeros(5), ValueError, "2-D"),                         # 1-D of the wrong length
    (np.zeros((2, 3, 10)), ValueError, "2-D"),                # 3-D
    (np.zeros((4, 9)), ValueError, "9 features.*expects 10"),  # wrong number of features
    (np.zeros((0, 10)), ValueError, "no samples"),            # empty batch
    (np.array([["a"] * 10]), TypeError, "numeric"),           # strings
    (np.array([[object()] * 10], dtype=object), TypeError, "numeric"),
    (np.ones((2, 10), dtype=np.complex64), TypeError, "real"),
]


@pytest.mark.parametrize("x, exc, match", BAD_SHAPES)
def test_layer_forward_rejects_bad_x(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        layer.forward(x)


@pytest.mark.parametrize("x, exc, match", BAD_SHAPES)
def test_mlp_rejects_bad_x(x, exc, match):
    mlp = MotifMLP([10, 6, 3], motif=2, density=0.6, seed=1)
    y = np.zeros(x.shape[0], dtype=np.int64)
    for call in (lambda: mlp.train_step(x, y), lambda: mlp.train_epoch(x, y), lambda: mlp.evaluate(x, y),
                 lambda: mlp.predict_proba(x), lambda: mlp.predict(x)):
        with pytest.raises(exc, match=match):
            call()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x_and_grad_out(layer, mlp, data, bad):
    x = np.ones((3, 10), np.float32)
    x[1, 4] = bad
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
        layer.forward(x)
    out = layer.forward(np.ones((3, 10)))
    g = np.ones_like(out)
    g[2, 0] = bad
    with pytest.raises(ValueError, match="grad_out contains 1 NaN or infinite"):
        layer.backward(g)
    X, y = data
    X = X.copy()
    X[0, 0] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        mlp.train_step(X, y)
    with pytest.raises(ValueError, match="NaN or infinite"):
        mlp.train_epoch(X, y)
    with pytest.raises(ValueError, match="NaN or infinite"):
        mlp.evaluate(X, y)
    # float64 values beyond float32 range overflow to inf on conversion: also caught.
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="NaN or infinite"):
        layer.forward(np.full((1, 10), 1e300))


@pytest.mark.parametrize("threads", [1, 2])
def test_train_step_counts_non_finite_x_and_changes_nothing(data, threads):
    # train_step's x is checked by the engine while it copies the batch (not by a Python pass):
    # the message counts every bad value wherever it sits, and the model is left as it was.
    mlp = MotifMLP([7, 9, 6, 3], motif=[2, 3, 1], density=0.6, seed=1, num_threads=threads)
    X, y = data
    before = mlp.get_state()
    bad = X.copy()
    bad[0, 0], bad[3, 6], bad[7, 2] = np.nan, np.inf, -np.inf
    with pytest.raises(ValueError, match="x contains 3 NaN or infinite values"):
        mlp.train_step(bad, y)
    assert mlp.steps == 0
    after = mlp.get_state()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, after[key]), key
    assert np.isfinite(mlp.train_step(X, y))


def test_grad_out_shape_and_batch(layer):
    layer.forward(np.ones((4, 10)))
    with pytest.raises(ValueError, match="grad_out has 3 rows, the last forward had 4"):
        layer.backward(np.ones((3, 7)))
    with pytest.raises(ValueError, match="grad_out has 6 features.*expects 7"):
        layer.backward(np.ones((4, 6)))
    with pytest.raises(TypeError, match="grad_out must be numeric"):
        layer.backward(np.array([["x"] * 7] * 4))


def test_backward_before_forward():
    layer = MotifLayer(10, 7, motif=2, density=0.5, seed=1)
    with pytest.raises(ValueError, match="backward.*before.*forward"):
        layer.backward(np.ones((2, 7)))


def test_native_backward_before_forward():
    core = _core.Layer(10, 7, 2, 2, 0.5, 0.0, "neuron", "linear", 1)
    with pytest.raises(ValueError, match="backward called before forward"):
        core.backward(np.ones((2, 7), np.float32), 1)


def test_backward_after_pattern_change_does_not_crash():
    """forward -> set_state with more blocks -> backward: the layer's scratch (sized for the old
    block count at forward time) must not be overrun. Either refuse (ValueError) or return the
    correct gradient of the current pattern at the last input."""
    res = run_python("""
        import numpy as np
        from motifcore import MotifMLP
        a = MotifMLP([300, 200, 3], density=0.01, seed=1, num_threads=1)
        b = MotifMLP([300, 200, 3], density=1.0, seed=2, num_threads=1)
        layer = a.layers[0]
        layer.forward(np.ones((64, 300)))
        a.set_state(b.get_state())
        g = np.random.default_rng(0).normal(size=(64, 200))
        try:
            gin = layer.backward(g)
        except ValueError as e:
            print("REFUSED", e)
        else:
            ok = np.allclose(gin, g @ layer.to_dense().astype(np.float64), rtol=1e-4, atol=1e-4)
            print("CORRECT" if ok else "WRONG")
        for _ in range(3):  # exercise the heap: overruns show up on later allocations
            [np.ones(1000) for _ in range(1000)]
        print("DONE")
    """)
    assert res.returncode == 0, f"interpreter died (rc={res.returncode}): {res.stderr[-500:]}"
    assert "DONE" in res.stdout and "WRONG" not in res.stdout, res.stdout


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, exc, match", [
    ([0, 1, -1, 2, 0, 1, 2, 0], ValueError, r"outside \[0, 3\)"),
    ([0, 1, 3, 2, 0, 1, 2, 0], ValueError, r"outside \[0, 3\)"),
    (np.array([0.0, 1, 2, 0, 1, 2, 0, 1]), TypeError, "integer class labels"),
    (np.array([True] * 8), TypeError, "integer class labels"),
    (np.array(["0"] * 8), TypeError, "integer class labels"),
    (np.zeros((8, 1), dtype=np.int64), ValueError, "1-D"),
    (np.zeros(7, dtype=np.int64), ValueError, "7 labels for 8 samples"),
])
def test_bad_labels(mlp, data, labels, exc, match):
    X, _ = data
    with pytest.raises(exc, match=match):
        mlp.train_step(X, labels)
    with pytest.raises(exc, match=match):
        mlp.train_epoch(X, labels, batch_size=3)
    with pytest.raises(exc, match=match):
        mlp.evaluate(X, labels)
    assert mlp.steps == 0  # nothing was trained


def test_native_train_epoch_label_error_inside_parallel_loop():
    """An out-of-range label reached only inside the native epoch (order points at it, Python
    checks skipped) throws inside a parallel loop of the engine; it must surface as ValueError."""
    res = run_python("""
        import numpy as np
        from motifcore import MotifMLP
        mlp = MotifMLP([7, 9, 6, 3], motif=[2, 3, 1], density=0.6, seed=1, num_threads=2)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(40, 7)).astype(np.float32)
        y = rng.integers(0, 3, 40)
        y[37] = 3
        order = np.ascontiguousarray(rng.permutation(40), dtype=np.int64)
        lrs = np.full(4, 0.01, np.float32)
        for bad_y, bad_order, what in ((y, order, "label 3"), (y % 3, np.where(order == 5, 40, order), "index 40")):
            try:
                mlp._net.train_epoch(X, bad_y, bad_order, 10, lrs, 0.9, 0.0, 0.0)
            except ValueError as e:
                assert what in str(e), str(e)
                print("VALUEERROR", e)
            else:
                print("NO ERROR")
        # The Python API with check=False goes the same way.
        try:
            mlp.train_epoch(X, y, batch_size=10, check=False)
        except ValueError as e:
            print("VALUEERROR", e)
        loss = mlp.train_epoch(X, y % 3, batch_size=10)  # the model is still usable
        assert np.isfinite(loss)
        print("DONE")
    """)
    assert res.returncode == 0, f"interpreter died (rc={res.returncode}): {res.stderr[-500:]}"
    lines = res.stdout.splitlines()
    assert [l.split()[0] for l in lines] == ["VALUEERROR"] * 3 + ["DONE"], res.stdout
    assert "label 3 of sample 37 is outside [0, 3)" in lines[0]
    assert "sample index 40 out of range [0, 40)" in lines[1]


# ---------------------------------------------------------------------------------------------
# Construction parameters
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(motif=0), ValueError, "motif must be >= 1"),
    (dict(motif=-2), ValueError, "motif must be >= 1"),
    (dict(motif=2.5), TypeError, "motif must be an integer"),
    (dict(motif="2"), TypeError, "motif must be an integer"),
    (dict(motif=(0, 2)), ValueError, r"motif\[0\] \(m_out\) must be >= 1"),
    (dict(motif=(2, 1.5)), TypeError, r"motif\[1\] \(m_in\) must be an integer"),
    (dict(motif=11), ValueError, "motif size larger than the layer"),
    (dict(motif=(8, 2)), ValueError, "motif size larger than the layer"),
    (dict(density=0), ValueError, r"density must be in \(0, 1\]"),
    (dict(density=-0.1), ValueError, r"density must be in \(0, 1\]"),
    (dict(density=1.5), ValueError, r"density must be in \(0, 1\]"),
    (dict(density=float("nan")), ValueError, r"density must be in \(0, 1\]"),
    (dict(density="0.5"), TypeError, "density must be a number"),
    (dict(epsilon=0), ValueError, "epsilon must be > 0"),
    (dict(epsilon=-1.0), ValueError, "epsilon must be > 0"),
    (dict(epsilon=float("inf")), ValueError, "epsilon must be > 0"),
    (dict(density=0.001), ValueError, "gives 0 active blocks"),
    (dict(epsilon=1e-4), ValueError, "gives 0 active blocks"),
    (dict(bias="edge"), ValueError, "bias must be 'neuron' or 'motif'"),
    (dict(activation="tanh"), ValueError, "activation must be 'linear' or 'relu'"),
    (dict(seed=-1), TypeError, "seed must be a non-negative integer"),
    (dict(num_threads=0), ValueError, "num_threads must be >= 1"),
])
def test_layer_bad_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MotifLayer(10, 7, **{"density": 0.5, **kwargs})


@pytest.mark.parametrize("n_in, n_out, exc, match", [
    (0, 5, ValueError, "n_in must be >= 1"), (5, -1, ValueError, "n_out must be >= 1"),
    (5.0, 5, TypeError, "n_in must be an integer"),
])
def test_layer_bad_widths(n_in, n_out, exc, match):
    with pytest.raises(exc, match=match):
        MotifLayer(n_in, n_out)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(sizes=[5]), ValueError, "at least an input and an output"),
    (dict(sizes=[]), ValueError, "at least an input and an output"),
    (dict(sizes=[5, 1]), ValueError, "at least 2 classes"),
    (dict(sizes=[5, 0, 3]), ValueError, r"sizes\[1\] must be >= 1"),
    (dict(sizes="784-10"), TypeError, "sizes must be a sequence"),
    (dict(sizes=12), TypeError, "sizes must be a sequence"),
    (dict(motif=[2, 1]), ValueError, "motif has 2 entries for 3 layers"),
    (dict(motif=[2, 0, 1]), ValueError, r"motif\[1\] must be >= 1"),
    (dict(motif=[2, 2.5, 1]), TypeError, r"motif\[1\] must be an integer"),
    (dict(motif=0), ValueError, "motif must be >= 1"),
    (dict(motif=[10, 1, 1]), ValueError, "motif size larger than the layer"),
    (dict(density=[0.5, 0.5]), ValueError, "density has 2 entries for 3 layers"),
    (dict(density=[0.5, 1.5, 0.5]), ValueError, r"density\[1\] must be in \(0, 1\]"),
    (dict(density=0.0), ValueError, r"density\[0\] must be in \(0, 1\]"),
    (dict(epsilon=[1.0, 2.0, 3.0, 4.0]), ValueError, "epsilon has 4 entries for 3 layers"),
    (dict(epsilon=[1.0, -2.0, 3.0]), ValueError, r"epsilon\[1\] must be > 0"),
    (dict(density=0.01), ValueError, "gives 0 active blocks"),
    (dict(activation="tanh"), ValueError, "activation must be 'relu'"),
    (dict(bias="x"), ValueError, "bias must be 'neuron' or 'motif'"),
    (dict(num_threads=0), ValueError, "num_threads must be >= 1"),
])
def test_mlp_bad_construction(kwargs, exc, match):
    args = {"sizes": [9, 8, 6, 3], "density": 0.6, **kwargs}
    with pytest.raises(exc, match=match):
        MotifMLP(**args)


@pytest.mark.parametrize("zeta", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_zeta(layer, mlp, zeta):
    with pytest.raises(ValueError, match=r"zeta must be in \[0, 1\)"):
        layer.prune_regrow(zeta)
    with pytest.raises(ValueError, match=r"zeta(\[0\])? must be in \[0, 1\)"):
        mlp.evolve(zeta)


def test_bad_zeta_lists(mlp):
    with pytest.raises(ValueError, match="zeta has 2 entries for 3 layers"):
        mlp.evolve([0.1, 0.2])
    with pytest.raises(ValueError, match=r"zeta\[2\] must be in \[0, 1\)"):
        mlp.evolve([0.1, 0.2, 1.0])
    with pytest.raises(TypeError, match="zeta must be a number"):
        mlp.layers[0].prune_regrow("0.1")


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), "lr must be >= 0"), (dict(lr=float("nan")), "lr must be finite"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\)"), (dict(weight_decay=-1e-4), "weight_decay must be >= 0"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"), (dict(dropout=-0.5), r"dropout must be in \[0, 1\)"),
])
def test_bad_optimizer_settings(mlp, data, kwargs, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        mlp.train_step(X, y, **kwargs)
    with pytest.raises(ValueError, match=match):
        mlp.train_epoch(X, y, **kwargs)
    assert mlp.steps == 0


def test_bad_batch_sizes(mlp, data):
    X, y = data
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        mlp.train_epoch(X, y, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        mlp.evaluate(X, y, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        mlp.predict(X, batch_size=2.0)


def test_bad_weights_and_bias(layer):
    with pytest.raises(ValueError, match="weights must have shape"):
        layer.weights = np.zeros(layer.n_blocks + 1)
    with pytest.raises(ValueError, match="weights contains .* NaN"):
        layer.weights = np.full(layer.n_blocks, np.nan)
    with pytest.raises(ValueError, match="bias must have shape"):
        layer.bias = np.zeros((1, 7))
    with pytest.raises(ValueError, match="bias contains .* NaN"):
        layer.bias = np.full(7, np.inf)


# ---------------------------------------------------------------------------------------------
# set_state with corrupted arrays
# ---------------------------------------------------------------------------------------------

def _corrupt(state, key, fn):
    state = dict(state)
    state[key] = fn(np.array(state[key]))
    return state


def _reverse(ix):
    """Every row with two or more blocks becomes strictly decreasing."""
    return ix[::-1].copy()


def _set(a, i, v):
    a = a.copy()
    a[i] = v
    return a


CORRUPTIONS = [
    ("layer0.indices", _reverse, "strictly increasing"),
    ("layer1.indices", lambda ix: _set(ix, 0, 99), "out of range"),
    ("layer0.indices", lambda ix: _set(ix, 0, -1), "out of range"),
    ("layer0.indices", lambda ix: ix[:-1], "indptr must start at 0 and end at len"),
    ("layer0.indptr", lambda ip: ip[:-1], "G_out \\+ 1"),
    ("layer0.indptr", lambda ip: ip + 1, "indptr must start at 0"),
    ("layer0.indptr", lambda ip: _set(ip, 2, ip[1] - 1) if ip[1] > 0 else _set(ip, 1, -1), "indptr must"),
    ("layer0.weights", lambda w: w[:-1], "one entry per block"),
    ("layer2.bias", lambda b: np.append(b, 0.0), "bias must have 3 entries"),
    ("layer1.weight_velocity", lambda v: v[:-1], "momentum buffers have the wrong size"),
    ("layer1.bias_velocity", lambda v: np.append(v, 1.0), "momentum buffers have the wrong size"),
]


@pytest.mark.parametrize("key, fn, match", CORRUPTIONS)
def test_set_state_rejects_corruption(mlp, key, fn, match):
    state = mlp.get_state()
    assert key in state
    with pytest.raises(ValueError, match=match):
        mlp.set_state(_corrupt(state, key, fn))


def test_set_state_rejects_missing_key(mlp):
    state = mlp.get_state()
    for key in ("layer1.weights", "step"):
        broken = dict(state)
        del broken[key]
        with pytest.raises(ValueError, match=f"missing the entry '{key}'"):
            mlp.set_state(broken)


def test_set_state_round_trip(mlp, data):
    X, y = data
    mlp.train_step(X, y, lr=0.1)
    other = MotifMLP([7, 9, 6, 3], motif=[2, 3, 1], density=0.6, seed=99)
    other.set_state(mlp.get_state())
    assert other.steps == mlp.steps
    assert other.train_step(X, y, lr=0.1) == mlp.train_step(X, y, lr=0.1)
    for a, b in zip(mlp.layers, other.layers):
        np.testing.assert_array_equal(a.weights, b.weights)


def test_rejected_set_state_leaves_model_unchanged(mlp):
    """A checkpoint rejected by set_state must not be half applied: restoring another model's state
    whose *last* entries are broken must leave every layer of this model as it was."""
    donor = MotifMLP([7, 9, 6, 3], motif=[2, 3, 1], density=0.6, seed=123)
    before = mlp.get_state()
    broken = _corrupt(donor.get_state(), "layer2.indices", lambda ix: _set(ix, 0, 99))
    with pytest.raises(ValueError, match="out of range"):
        mlp.set_state(broken)
    after = mlp.get_state()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


# ---------------------------------------------------------------------------------------------
# Output-layer motif
# ---------------------------------------------------------------------------------------------

def test_shared_output_layer_warns():
    with pytest.warns(UserWarning, match="output layer shares weights"):
        mlp = MotifMLP([12, 10, 8, 4], motif=[2, 2, 2], density=0.6)
    assert mlp.layers[-1].motif == (2, 2)


def test_scalar_motif_keeps_output_layer_unshared():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlp = MotifMLP([12, 10, 8, 4], motif=2, density=0.6)
        explicit = MotifMLP([12, 10, 8, 4], motif=[2, 2, 1], density=0.6)
    assert [l.motif for l in mlp.layers] == [(2, 2), (2, 2), (1, 1)]
    assert mlp.config["motif"] == [[2, 2], [2, 2], [1, 1]]
    assert [l.motif for l in explicit.layers] == [(2, 2), (2, 2), (1, 1)]
