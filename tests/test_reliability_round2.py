"""Reliability, round two (issue 24), the items not covered by test_output_files.py and
test_folder_lock.py: ``from_torch`` refuses what a MotifMLP cannot compute exactly (N6), CLI
messages name the real problem and the file (N9), an absurd update is caught by the step that made
it, not the next one."""

from __future__ import annotations

import numpy as np
import pytest
from motifcore import MotifLayer, MotifMLP
from motifcore.errors import DivergedError
from motifcore.cli import main


# ---- N6: MotifMLP.from_torch converts exactly or refuses, naming the module ---------------------
def _torch():
    return pytest.importorskip("torch")


def _mlp(torch, *mods):
    torch.manual_seed(0)
    return torch.nn.Sequential(*mods)


def _refused(torch):
    """The red team's cases (each converted silently before, max |delta logit| 0.35-0.67) and a few
    more, with the exception type and the words the message must hold (the module's path)."""
    nn = torch.nn
    shared = nn.Linear(16, 16)
    inner = nn.Sequential(nn.Linear(16, 16), nn.Sigmoid())

    class Custom(nn.Module):            # a forward this reading cannot see
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(12, 16), nn.Linear(16, 3)

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    return {
        "tanh": (_mlp(torch, nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3)), TypeError, ["Tanh", "'1'"]),
        "no-activation": (_mlp(torch, nn.Linear(12, 16), nn.Linear(16, 3)), ValueError,
                          ["no activation", "Linear at '1'", "Linear at '0'"]),
        "layernorm": (_mlp(torch, nn.Linear(12, 16), nn.ReLU(), nn.LayerNorm(16, elementwise_affine=False),
                           nn.Linear(16, 3)), TypeError, ["LayerNorm", "'2'"]),
        "reused-linear": (_mlp(torch, nn.Linear(12, 16), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(),
                               nn.Linear(16, 3)), ValueError, ["'4'", "'2'", "second time"]),
        "nested-sigmoid": (_mlp(torch, nn.Linear(12, 16), nn.ReLU(), inner, nn.Linear(16, 3)), TypeError,
                           ["Sigmoid", "'2.1'"]),
        "relu-on-logits": (_mlp(torch, nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3), nn.ReLU()), ValueError,
                           ["ReLU at '3'", "after the last layer"]),
        "relu-first": (_mlp(torch, nn.ReLU(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)), ValueError,
                       ["ReLU at '0'", "before the first layer"]),
        "leaky-relu": (_mlp(torch, nn.Linear(12, 16), nn.LeakyReLU(), nn.Linear(16, 3)), TypeError, ["LeakyReLU"]),
        "custom-forward": (Custom(), TypeError, ["Custom", "container"]),
        "module-list": (nn.Sequential(nn.ModuleList([nn.Linear(12, 16), nn.ReLU()]), nn.Linear(16, 3)), TypeError,
                        ["ModuleList at '0'"]),
    }


@pytest.mark.parametrize("case", ["tanh", "no-activation", "layernorm", "reused-linear", "nested-sigmoid",
                                  "relu-on-logits", "relu-first", "leaky-relu", "custom-forward", "module-list"])
def test_from_torch_refuses_what_it_cannot_represent_naming_the_module(case):
    torch = _torch()
    module, kind, words = _refused(torch)[case]
    with pytest.raises(kind) as info:
        MotifMLP.from_torch(module, num_threads=1)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def _close_to_torch(torch, module, model):
    x = np.random.default_rng(0).standard_normal((9, model.n_features)).astype(np.float32)
    with torch.no_grad():
        want = module.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.decision_function(x), want, rtol=1e-5, atol=1e-5)


def test_from_torch_still_reads_exactly_what_it_can():
    torch = _torch()
    nn = torch.nn
    ok = [
        _mlp(torch, nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)),
        _mlp(torch, nn.Flatten(), nn.Linear(12, 16), nn.ReLU(inplace=True), nn.Dropout(0.3), nn.Linear(16, 8),
             nn.ReLU(), nn.ReLU(), nn.Identity(), nn.Linear(8, 3), nn.Dropout(0.1)),
        _mlp(torch, nn.Sequential(nn.Linear(12, 16), nn.ReLU()), nn.Sequential(nn.Linear(16, 3))),
        _mlp(torch, nn.Linear(12, 3)),
        nn.Linear(12, 3),
    ]
    for module in ok:
        _close_to_torch(torch, module, MotifMLP.from_torch(module, num_threads=1))
    # a shared ReLU module is a function, not a layer: reusing it is exact
    relu = nn.ReLU()
    module = _mlp(torch, nn.Linear(12, 16), relu, nn.Linear(16, 8), relu, nn.Linear(8, 3))
    _close_to_torch(torch, module, MotifMLP.from_torch(module, num_threads=1))
    # a compact module from to_torch (ReLU fused into its layers), with or without ReLU modules after them
    model = MotifMLP([12, 16, 8, 3], motif=2, density=0.5, seed=0, num_threads=1)
    compact = model.to_torch()
    _close_to_torch(torch, compact, MotifMLP.from_torch(compact, num_threads=1))
    with_relu = nn.Sequential(compact[0], nn.ReLU(), compact[1], compact[2])
    _close_to_torch(torch, with_relu, MotifMLP.from_torch(with_relu, num_threads=1))
    with pytest.raises(ValueError, match="after the last layer"):      # the logits layer must stay linear
        MotifMLP.from_torch(nn.Sequential(compact[0], compact[1], compact[2], nn.ReLU()), num_threads=1)


# ---- N9: messages name the real problem and the file, in one line ----------------------------------
def _one_line(capsys, rc: int) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("motifcore: error: "), err
    return lines[0]


@pytest.mark.parametrize("where", ["/dev/zero", "/dev/null"])
def test_a_dataset_path_that_is_not_a_regular_file_is_not_reported_missing(where, capsys, tmp_path):
    from motifcore.data import datasets
    from motifcore.errors import DatasetError

    if not __import__("os").path.exists(where):
        pytest.skip(f"no {where}")
    for kind in ("csv", "npz"):
        with pytest.raises(DatasetError, match="not a regular file") as info:
            datasets.load(f"{kind}:{where}")
        assert not isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetError, match="is a folder"):
        datasets.load(f"csv:{tmp_path}")
    argv = ["train", "--dataset", f"csv:{where}", "--epochs", "1", "--out", str(tmp_path / "r")]
    line = _one_line(capsys, main(argv))
    assert where in line and "not a regular file" in line and "not found" not in line
    assert not (tmp_path / "r").exists()


def test_atomic_write_to_a_folder_names_the_folder_and_leaves_no_temporary_file(tmp_path):
    from motifcore._internal.io import atomic_write

    target = tmp_path / "out.json"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        atomic_write(target, b"{}")
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"] and target.is_dir()


@pytest.fixture
def run(tmp_path):
    from motifcore.train.checkpoint import save_checkpoint

    d = tmp_path / "run"
    save_checkpoint(d / "checkpoint.npz", MotifMLP([6, 5, 3], density=0.5, seed=0))
    return d


@pytest.mark.parametrize("cmd", [
    ["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1"],
    ["analyze", "RUN", "--no-robustness"],
    ["baselines", "--dataset", "digits", "--hidden", "8", "--epochs", "1"],
    ["sweep", "--dataset", "digits", "--epochs", "1"],
    ["report", "RUN"],
], ids=lambda c: c[0])
@pytest.mark.parametrize("below", [False, True], ids=["file", "below-a-file"])
def test_an_output_folder_that_is_a_file_is_named(cmd, below, run, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    out = afile / "sub" if below else afile
    line = _one_line(capsys, main([str(run) if c == "RUN" else c for c in cmd] + ["--out", str(out)]))
    assert str(afile) in line and ("is a file" in line) and ".tmp" not in line
    assert afile.read_text() == "mine"


def test_a_run_record_that_is_a_folder_is_named(run, capsys):
    (run / "analysis" / "analysis.json").mkdir(parents=True)
    line = _one_line(capsys, main(["analyze", str(run), "--no-robustness", "--no-figures"]))
    assert str(run / "analysis" / "analysis.json") in line and ".tmp" not in line


# ---- an absurd update fails at the step that made it --------------------------------------------
def _batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((16, 8)).astype(np.float32), np.arange(16) % 3


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_an_absurd_learning_rate_is_blamed_on_its_own_step(optimizer):
    x, y = _batch()
    messages = []
    for threads in (1, 2):                      # the flag is an OR over fixed chunks: thread-independent
        model = MotifMLP([8, 16, 3], density=0.5, seed=0, num_threads=threads)
        with pytest.raises(DivergedError, match=r"step 1: the update \(lr 1e\+38\).*2\^64") as info:
            model.train_step(x, y, lr=1e38, optimizer=optimizer)
        messages.append(str(info.value))
        with pytest.raises(DivergedError):      # and the model refuses to compute until restored
            model.decision_function(x)
    assert messages[0] == messages[1]


def test_the_bound_is_far_above_any_trained_weight_and_below_overflow():
    # |w| ~ 1e16 after a huge step is still usable (its next forward is finite): not flagged
    x, y = _batch()
    model = MotifMLP([8, 16, 3], density=0.5, seed=0, num_threads=1)
    model.train_step(x, y, lr=1e16, optimizer="sgd", momentum=0.0, weight_decay=0.0)
    top = max(float(np.abs(layer.weights).max()) for layer in model.layers)
    assert 1e14 < top < 2.0 ** 64
    assert np.isfinite(model.decision_function(x)).all()


def test_a_layer_step_to_absurd_weights_is_refused_by_the_next_forward():
    layer = MotifLayer(8, 4, density=0.5, seed=0, activation="relu", num_threads=1)
    x = np.ones((2, 8), np.float32)
    layer.forward(x)
    layer.backward(np.ones((2, 4), np.float32))
    layer.sgd_step(lr=1e38, momentum=0.0, weight_decay=0.0)
    assert np.isfinite(layer.weights).all()          # finite, but not usable
    with pytest.raises(OverflowError, match="2\\^64"):      # the layer API's divergence error (EngineOverflowError)
        layer.forward(x)


def test_motifcore_torch_to_mlp_refuses_the_same_cases_naming_the_module():
    torch = _torch()
    from motifcore.torch import MotifLinear, to_mlp

    nn = torch.nn
    a = MotifLinear(12, 16, density=0.5, seed=0, num_threads=1)
    b = MotifLinear(16, 16, density=0.5, seed=1, num_threads=1)
    c = MotifLinear(16, 3, density=0.5, seed=2, num_threads=1)
    cases = [
        (nn.Sequential(a, nn.Tanh(), c), TypeError, "Tanh at '1'"),
        (nn.Sequential(a, c), ValueError, "no activation"),
        (nn.Sequential(a, nn.ReLU(), nn.LayerNorm(16, elementwise_affine=False), c), TypeError, "LayerNorm at '2'"),
        (nn.Sequential(a, nn.ReLU(), b, nn.ReLU(), b, nn.ReLU(), c), ValueError, "second time"),
        (nn.Sequential(a, nn.ReLU(), c, nn.ReLU()), ValueError, "after the last layer"),
    ]
    for module, kind, words in cases:
        with pytest.raises(kind, match=words):
            to_mlp(module, num_threads=1)
    good = nn.Sequential(a, nn.ReLU(), nn.Dropout(0.2), b, nn.ReLU(), c)
    model = to_mlp(good, num_threads=1)
    x = np.random.default_rng(0).standard_normal((5, 12)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(model.decision_function(x), good.eval()(torch.from_numpy(x)).numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_from_torch_of_an_all_zero_linear_saves_and_loads(tmp_path):
    torch = _torch()
    from motifcore.train.checkpoint import load_model, save_checkpoint

    module = _mlp(torch, torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        module[0].weight.zero_()
    model = MotifMLP.from_torch(module, num_threads=1)
    assert model.layers[0].n_blocks == 0
    save_checkpoint(tmp_path / "z.npz", model)
    back = load_model(tmp_path / "z.npz")
    assert back.layers[0].n_blocks == 0
    x = np.ones((3, 12), np.float32)
    np.testing.assert_array_equal(back.decision_function(x), model.decision_function(x))
    _close_to_torch(torch, module, back)
