"""Property-based tests (hypothesis) over the public API, checkpoints and loaders. Each property
holds for every input hypothesis draws; example counts are bounded so the file runs in seconds.

The contract checked everywhere: an input is either accepted and gives the right answer (checked
against the dense NumPy reference of tests/reference.py, or against the data written), or it is
refused with a ValueError/TypeError (DatasetError for loaders) -- never another exception, a crash,
a silently changed model or non-finite output."""

from __future__ import annotations

import os

import motifcore as mc
import numpy as np
import pytest
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from motifcore.train.checkpoint import checkpoint_bytes, load_model, save_checkpoint
from motifcore.data.datasets import DatasetError
from motifcore.errors import DivergedError

#: examples per property; MOTIFCORE_FUZZ_EXAMPLES=500 for a longer local fuzzing run
FAST = settings(max_examples=int(os.environ.get("MOTIFCORE_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _motif(draw, n_in, n_out):
    return draw(st.integers(1, min(4, n_out))), draw(st.integers(1, min(4, n_in)))


@st.composite
def layers(draw):
    n_in, n_out = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    m_out, m_in = _motif(draw, n_in, n_out)
    g = -(-n_in // m_in) * -(-n_out // m_out)
    density = draw(st.floats(min_value=1.0 / g, max_value=1.0))
    return dict(n_in=n_in, n_out=n_out, motif=(m_out, m_in), density=density,
                bias=draw(st.sampled_from(["neuron", "motif"])), activation=draw(st.sampled_from(["linear", "relu"])),
                seed=draw(st.integers(0, 2**64 - 1)))


@FAST
@given(spec=layers(), batch=st.integers(1, 9), data=st.data())
def test_layer_forward_backward_match_the_dense_reference(spec, batch, data):
    layer = mc.MotifLayer(**spec, num_threads=1)
    floats = st.floats(-4, 4, width=32, allow_subnormal=False)
    x = data.draw(hnp.arrays(np.float32, (batch, spec["n_in"]), elements=floats))
    g = data.draw(hnp.arrays(np.float32, (batch, spec["n_out"]), elements=floats))
    w = ref.effective_matrix(spec["n_out"], spec["n_in"], spec["motif"], layer.indptr, layer.indices, layer.weights)
    b = ref.expand_bias(layer.bias, spec["n_out"], spec["motif"][0], spec["bias"])
    z, a = ref.layer_forward(x, w, b, spec["activation"])
    out = layer.forward(x)
    # float32 sums of at most 40 * 4 terms of size <= 4 * |w|: 1e-5 of the largest possible sum
    scale = 1e-5 * (1 + 4 * np.abs(w).sum(axis=1).max() * 4)
    np.testing.assert_allclose(out, a, rtol=1e-5, atol=scale)
    if spec["activation"] == "relu" and (np.abs(z) < 1e-3).any():
        return   # a pre-activation at the ReLU kink: float32 and float64 may take different sides
    gin, gw, _ = ref.layer_backward(x, w, z, g, spec["activation"])
    np.testing.assert_allclose(layer.backward(g), gin, rtol=1e-5, atol=1e-5 * (1 + 4 * np.abs(w).sum(axis=0).max()))
    dk = ref.block_grads_from_dense(gw, spec["motif"], layer.indptr, layer.indices)
    np.testing.assert_allclose(layer.grad_weights, dk, rtol=1e-5, atol=1e-5 * (1 + 16 * batch * 16))


ODD_INPUTS = st.one_of(
    hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, max_side=6)),
    st.lists(st.one_of(st.floats(), st.integers(-10**30, 10**30), st.text(max_size=2), st.none()), max_size=8),
    st.none(), st.text(max_size=4),
)


@FAST
@given(x=ODD_INPUTS)
def test_any_input_is_answered_or_refused_cleanly(x):
    mlp = mc.MotifMLP([6, 8, 3], motif=2, density=0.5, seed=1, num_threads=1)
    state = mlp.get_state()
    try:
        p = mlp.predict_proba(x)
    except (TypeError, ValueError):
        pass
    else:
        assert p.shape[1] == 3 and np.isfinite(p).all()
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    try:
        mlp.train_step(x, np.zeros(len(np.atleast_2d(np.asarray(x, dtype=object))), np.int64), lr=0.01)
    except DivergedError:
        # accepted, but the update overflowed (inputs near the float32 limit): the model refuses to
        # answer until restored, instead of answering from non-finite weights
        with pytest.raises(DivergedError):
            mlp.predict(np.zeros((1, 6), np.float32))
    except (TypeError, ValueError):
        assert all(np.array_equal(state[k], v) for k, v in mlp.get_state().items())   # refused: untouched


@st.composite
def mlps(draw):
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(2, 24)) for _ in range(n_layers + 1)]
    motif = [[draw(st.integers(1, min(3, sizes[i + 1]))), draw(st.integers(1, min(3, sizes[i])))]
             for i in range(n_layers - 1)] + [[1, 1]]
    return mc.MotifMLP(sizes, motif=motif, density=1.0, bias=draw(st.sampled_from(["neuron", "motif"])),
                       seed=draw(st.integers(0, 2**32)), num_threads=1)


@FAST
@given(mlp=mlps(), steps=st.integers(0, 3), optimizer=st.sampled_from(["sgd", "adam"]))
def test_checkpoint_round_trip_is_exact(mlp, steps, optimizer, tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, mlp.n_features), dtype=np.float32)
    y = rng.integers(0, mlp.n_classes, 10)
    for _ in range(steps):
        mlp.train_step(X, y, lr=0.01, optimizer=optimizer, dropout=0.2)
    path = tmp_path_factory.mktemp("ck") / "m.npz"
    save_checkpoint(path, mlp)
    back = load_model(path, num_threads=1)
    a, b = mlp.get_state(), back.get_state()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert np.array_equal(mlp.decision_function(X), back.decision_function(X))


@FAST
@given(data=st.data())
def test_corrupted_checkpoints_load_exactly_or_fail_with_value_error(data, tmp_path_factory):
    mlp = mc.MotifMLP([7, 9, 3], motif=[(3, 1), 1], density=0.7, seed=2, num_threads=1)
    blob = bytearray(checkpoint_bytes(mlp))
    how = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
    pos = data.draw(st.integers(0, len(blob) - 1))
    if how == "flip":
        blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        del blob[pos:]
    else:
        blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path_factory.mktemp("bad") / "c.npz"
    path.write_bytes(bytes(blob))
    try:
        back = load_model(path, num_threads=1)
    except ValueError as exc:
        assert "c.npz" in str(exc)
    else:   # a change the format does not read (e.g. a zip timestamp): the model is the original
        a, b = mlp.get_state(), back.get_state()
        assert all(np.array_equal(a[k], b[k]) for k in a)


STATE_EDITS = st.sampled_from(["dtype", "nan", "scale", "shape", "drop", "shuffle"])


@FAST
@given(key=st.integers(0, 11), edit=STATE_EDITS, dtype=hnp.scalar_dtypes(), data=st.data())
def test_edited_states_are_applied_whole_or_refused(key, edit, dtype, data):
    mlp = mc.MotifMLP([7, 9, 3], motif=[(3, 1), 1], density=0.7, seed=2, num_threads=1)
    state = mlp.get_state()
    name = sorted(k for k in state if k.startswith("layer"))[key % 12]
    arr = state[name]
    if edit == "dtype":
        try:
            state[name] = arr.astype(dtype)
        except (TypeError, ValueError):
            return
    elif edit == "nan":
        state[name] = arr.astype(np.float64) * np.nan
    elif edit == "scale":
        state[name] = arr.astype(np.float64) * data.draw(st.sampled_from([-1, 2**31, 1e39, 0]))
    elif edit == "shape":
        state[name] = np.resize(arr, arr.size + data.draw(st.integers(-2, 2)))
    elif edit == "drop":
        del state[name]
    else:
        state[name] = np.random.default_rng(0).permutation(arr)
    before = mlp.get_state()
    try:
        mlp.set_state(state)
    except (ValueError, TypeError):
        after = mlp.get_state()
        assert all(np.array_equal(before[k], after[k]) for k in before)     # all or nothing
    else:
        for layer in mlp.layers:
            assert np.isfinite(layer.weights).all() and np.isfinite(layer.bias).all()
            ref.effective_matrix(layer.n_out, layer.n_in, layer.motif, layer.indptr, layer.indices, layer.weights)
        assert np.isfinite(mlp.decision_function(np.ones((2, 7), np.float32))).all()


@FAST
@given(X=hnp.arrays(np.float64, st.tuples(st.integers(6, 30), st.integers(1, 5)),
                    elements=st.floats(-1e6, 1e6, allow_nan=False)),
       dtype=st.sampled_from([np.float64, np.float32, np.int32, np.uint8]), data=st.data())
def test_npz_loader_returns_the_stored_values(X, dtype, data, tmp_path_factory):
    X = X.astype(dtype) if np.issubdtype(dtype, np.floating) else np.clip(X, 0, 200).astype(dtype)
    n = X.shape[0]
    y = np.arange(n) % 2
    cut = n // 2
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    np.savez(path, X_train=X[:cut], y_train=y[:cut], X_test=X[cut:], y_test=y[cut:])
    Xtr, ytr, Xte, yte = mc.datasets.load(f"npz:{path}", normalize=False)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64
    np.testing.assert_array_equal(Xtr, X[:cut].astype(np.float32))
    np.testing.assert_array_equal(Xte, X[cut:].astype(np.float32))
    np.testing.assert_array_equal(ytr, y[:cut])


@FAST
@given(text=st.text(alphabet="0123456789.,-eEx \n", max_size=200))
def test_csv_loader_never_fails_unexpectedly(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    path.write_text(text)
    try:
        Xtr, ytr, Xte, yte = mc.datasets.load(f"csv:{path}", normalize=False)
    except (DatasetError, ValueError):
        return
    assert np.isfinite(Xtr).all() and np.isfinite(Xte).all()
    rows = [r for r in text.splitlines() if r.strip()]
    assert len(Xtr) + len(Xte) in (len(rows), len(rows) - 1)     # a header row at most
    assert ytr.min() >= 0 and yte.min() >= 0
