"""motifcore.export: SciPy matrices, the PyTorch module and the ONNX file compute the logits of
the engine (parity within 1e-5 relative), for m in {1, 2, 4}, residual motifs and mixed
per-layer motifs; the torch module fine-tunes; from_torch imports exactly and prunes by blocks."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
from motifcore import MotifMLP, export
from motifcore.cli import main
from reference import effective_matrix, expand_bias, mlp_gradients

# (sizes, motif, bias): every motif size of the issue, widths not divisible by m (residual
# motifs) and per-layer motifs mixing m_out != m_in
CASES = {
    "m1": ([13, 20, 7], 1, "neuron"),
    "m2": ([14, 22, 6], 2, "neuron"),
    "m4": ([32, 24, 16, 5], 4, "neuron"),
    "m2-residual": ([13, 21, 9], 2, "neuron"),
    "m4-residual-motif-bias": ([30, 37, 18, 5], 4, "motif"),
    "mixed": ([17, 22, 10, 4], [(2, 3), (3, 1), (1, 1)], "neuron"),
}


def _model(case: str, seed: int = 3) -> MotifMLP:
    sizes, motif, bias = CASES[case]
    return MotifMLP(sizes, motif=motif, density=0.5, bias=bias, seed=seed, num_threads=1)


def _x(model: MotifMLP, n: int = 9) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, model.n_features)).astype(np.float32)


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    # 1e-5 relative to the size of the logits (a logit near 0 has no meaningful relative error)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * float(np.abs(expected).max()))


def _spec(layer) -> dict:
    return {"n_in": layer.n_in, "n_out": layer.n_out, "motif": layer.motif, "indptr": layer.indptr,
            "indices": layer.indices, "weights": layer.weights.astype(np.float64),
            "bias": layer.bias.astype(np.float64), "bias_mode": layer.bias_mode}


# ---- SciPy -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_to_scipy_matrices_are_the_effective_matrices(case):
    model = _model(case)
    mats = model.to_scipy()
    for layer, s, c in zip(model.layers, mats, model.to_scipy("csr")):
        m_out, m_in = layer.motif
        expected = effective_matrix(layer.n_out, layer.n_in, layer.motif, layer.indptr, layer.indices, layer.weights)
        residual = layer.n_out % m_out or layer.n_in % m_in
        assert sp.issparse(s.weight) and s.weight.format == ("csr" if residual else "bsr")
        if not residual:
            assert s.weight.blocksize == (m_out, m_in)
        assert s.weight.nnz == layer.n_edges
        np.testing.assert_array_equal(s.weight.toarray(), expected)
        assert c.weight.format == "csr" and c.weight.has_sorted_indices
        np.testing.assert_array_equal(c.weight.toarray(), expected)
        assert s.blocks.shape == layer.groups and s.blocks.nnz == layer.n_blocks
        np.testing.assert_array_equal(s.blocks.indptr, layer.indptr)
        np.testing.assert_array_equal(s.blocks.data, layer.weights)
        np.testing.assert_array_equal(s.bias, expand_bias(layer.bias, layer.n_out, m_out, layer.bias_mode))
        assert s.motif == layer.motif and s.activation == layer.activation
    X = _x(model)
    h = X.astype(np.float64)
    for s in mats:
        h = h @ s.weight.T + s.bias
        h = np.maximum(h, 0) if s.activation == "relu" else h
    _close(h, model.decision_function(X))


def test_to_scipy_rejects_bsr_for_a_residual_motif_and_unknown_formats():
    model = _model("m2-residual")
    with pytest.raises(ValueError, match="residual"):
        model.to_scipy("bsr")
    with pytest.raises(ValueError, match="format"):
        model.to_scipy("coo")
    with pytest.raises(TypeError, match="MotifMLP"):
        export.to_scipy(object())


# ---- PyTorch -----------------------------------------------------------------------------------
def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dense", [False, True], ids=["compact", "dense"])
def test_to_torch_gives_the_engine_logits(case, dense):
    torch = _torch()
    model = _model(case)
    module = model.to_torch(dense=dense)
    X = _x(model)
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    _close(out, model.decision_function(X))
    probs = torch.softmax(torch.from_numpy(out), dim=1).numpy()
    np.testing.assert_allclose(probs, model.predict_proba(X), rtol=1e-5, atol=1e-6)
    if not dense:   # compact: one parameter per block and per stored bias, not per edge
        n_params = sum(p.numel() for p in module.parameters())
        assert n_params == model.n_params == model.n_blocks + sum(layer.bias.size for layer in model.layers)


@pytest.mark.parametrize("case", ["m1", "m4-residual-motif-bias", "mixed"])
def test_a_torch_fine_tuning_step_matches_the_reference_gradient_and_the_engine_step(case):
    torch = _torch()
    model = _model(case)
    specs = [_spec(layer) for layer in model.layers]
    X = _x(model, 16)
    y = np.arange(16) % model.n_classes
    module = model.to_torch()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(X)), torch.from_numpy(y))
    opt.zero_grad()
    loss.backward()
    ref = mlp_gradients(specs, X.astype(np.float64), y)
    for lin, (g_w, g_b) in zip(module, ref):
        np.testing.assert_allclose(lin.weight.grad.numpy(), g_w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(lin.bias.grad.numpy(), g_b, rtol=1e-4, atol=1e-6)
    opt.step()
    # the same plain SGD step in the engine (no momentum, decay or dropout)
    model.train_step(X, y, lr=0.1, momentum=0.0, weight_decay=0.0, optimizer="sgd")
    for lin, layer in zip(module, model.layers):
        np.testing.assert_allclose(lin.weight.detach().numpy(), layer.weights, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(lin.bias.detach().numpy(), layer.bias, rtol=1e-5, atol=1e-6)
    # and the fine-tuned module comes back exactly
    back = MotifMLP.from_torch(module, num_threads=1)
    with torch.no_grad():
        _close(back.decision_function(X), module(torch.from_numpy(X)).numpy())


def test_to_torch_module_saves_and_loads(tmp_path):
    torch = _torch()
    model = _model("mixed")
    path = export.save(model, tmp_path / "m.pt", "torch")
    module = torch.load(path, weights_only=False)
    X = _x(model)
    with torch.no_grad():
        _close(module(torch.from_numpy(X)).numpy(), model.decision_function(X))


@pytest.mark.parametrize("case", sorted(CASES))
def test_from_torch_of_to_torch_is_exact(case):
    _torch()
    model = _model(case)
    for dense in (False, True):
        motif = None if not dense else [layer.motif for layer in model.layers]
        back = MotifMLP.from_torch(model.to_torch(dense=dense), motif=motif, num_threads=1,
                                   bias="neuron" if dense else CASES[case][2])
        assert back.sizes == model.sizes and back.config["motif"] == model.config["motif"]
        for a, b in zip(back.layers, model.layers):
            np.testing.assert_array_equal(a.indptr, b.indptr)
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_array_equal(a.weights, b.weights)
        X = _x(model)
        _close(back.decision_function(X), model.decision_function(X))


def test_from_torch_prunes_a_dense_linear_by_block_magnitude():
    torch = _torch()
    lin1, lin2 = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
    W = np.array([[1, 1, 0, 0], [1, 3, 0, 0], [0, 0, -0.5, 0.1], [0, 0, 0.3, -0.1]], dtype=np.float32)
    with torch.no_grad():
        lin1.weight.copy_(torch.from_numpy(W))
    module = torch.nn.Sequential(lin1, torch.nn.ReLU(), torch.nn.Dropout(0.1), lin2)
    # 2x2 blocks: mean |w| = 1.5 (block 0,0), 0.25 (block 1,1), 0 elsewhere; keep the best 1 of 4
    model = MotifMLP.from_torch(module, motif=2, density=[0.25, 1.0], num_threads=1)
    first = model.layers[0]
    np.testing.assert_array_equal(first.indptr, [0, 1, 1])
    np.testing.assert_array_equal(first.indices, [0])
    np.testing.assert_allclose(first.weights, [1.5])           # the mean of the block's entries
    np.testing.assert_allclose(first.bias, lin1.bias.detach().numpy())
    # density None keeps the two non-zero blocks, each at its mean
    exact = MotifMLP.from_torch(module, motif=2, num_threads=1).layers[0]
    np.testing.assert_array_equal(exact.indices, [0, 1])
    np.testing.assert_allclose(exact.weights, [1.5, -0.05])
    assert model.layers[1].motif == (1, 1) and model.layers[1].n_blocks == 8


def test_from_torch_errors():
    torch = _torch()
    with pytest.raises(TypeError, match="torch.nn.Module"):
        MotifMLP.from_torch(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="Conv1d"):
        MotifMLP.from_torch(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 3), torch.nn.Linear(3, 2)))
    with pytest.raises(TypeError, match="no nn.Linear"):
        MotifMLP.from_torch(torch.nn.ReLU())
    with pytest.raises(ValueError, match="inputs"):
        MotifMLP.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(6, 2)))


# ---- ONNX --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("blocks", ["sparse", "dense"])
def test_onnx_file_gives_the_engine_logits(case, blocks, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _model(case)
    path = export.to_onnx(model, tmp_path / "model.onnx", blocks=blocks)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"] and [o.name for o in session.get_outputs()] == ["logits"]
    for n in (1, 9):      # the batch dimension is dynamic
        X = _x(model, n)
        _close(session.run(None, {"x": X})[0], model.decision_function(X))


def test_onnx_errors(tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="blocks"):
        export.to_onnx(_model("m1"), tmp_path / "x.onnx", blocks="coo")
    with pytest.raises(TypeError, match="MotifMLP"):
        export.to_onnx(object(), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


# ---- npz and the CLI ---------------------------------------------------------------------------
def test_npz_holds_a_runnable_network(tmp_path):
    model = _model("m4-residual-motif-bias")
    with np.load(export.to_npz(model, tmp_path / "m.npz")) as f:
        d = dict(f)
    X = _x(model)
    h = X.astype(np.float64)
    for i in range(int(d["n_layers"])):
        W = sp.csr_matrix((d[f"{i}.csr_data"], d[f"{i}.csr_indices"], d[f"{i}.csr_indptr"]),
                          shape=tuple(d[f"{i}.shape"]))
        h = h @ W.T + d[f"{i}.bias"]
        h = np.maximum(h, 0) if d[f"{i}.relu"] else h
    _close(h, model.decision_function(X))
    np.testing.assert_array_equal(d["sizes"], model.sizes)


def test_cli_export_writes_each_format(tmp_path, capsys):
    model = _model("m2-residual")
    from motifcore.train.checkpoint import save_checkpoint

    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.npz", model)
    assert main(["export", str(run), "--format", "npz"]) == 0
    assert (run / "model.npz").is_file()
    assert main(["export", str(run), "--format", "npz", "--out", str(tmp_path / "x.npz")]) == 0
    assert (tmp_path / "x.npz").is_file()
    assert str(tmp_path / "x.npz") in capsys.readouterr().out
    assert main(["export", str(run), "--format", "tflite"]) == 2
    assert main(["export", str(tmp_path / "missing"), "--format", "npz"]) != 0
    assert "checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("fmt, package", [("torch", "torch"), ("onnx", "onnx")])
def test_cli_export_names_a_missing_optional_dependency(fmt, package, tmp_path, monkeypatch, capsys):
    from motifcore.train.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "checkpoint.npz", _model("m1"))
    monkeypatch.setitem(sys.modules, package, None)       # as if it were not installed
    assert main(["export", str(tmp_path), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert f"needs the {package} package" in err and f"motifcore[{fmt}]" in err
    assert not (tmp_path / f"model{export.FORMATS[fmt]}").exists()
