"""Label smoothing (the ``"motifcore"`` recipe's ``label_smoothing``): the engine's loss against an
independent NumPy reference, its gradient through the output bias, the identity with distillation
from a uniform teacher, the zero path, the errors, and the setting through the Trainer, a
checkpoint, the CLI and the estimator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from motifcore import MotifMLP, Trainer
from motifcore.cli import main
from motifcore.defaults import RECIPES
from motifcore.sklearn import SELECTION, MotifSETClassifier
from motifcore.train.checkpoint import load_checkpoint, trainer_settings
from motifcore.train.distillation import KD

N, F, C = 48, 12, 5


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, F)).astype(np.float32), rng.integers(0, C, N).astype(np.int64)


def model() -> MotifMLP:
    return MotifMLP([F, 16, C], density=0.5, seed=3, num_threads=1)


def smoothed_reference(z: np.ndarray, y: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
    """Mean loss (1 - e) CE + e KL(u || p) and its gradient by the logits, in float64."""
    z = z.astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    onehot = np.eye(C)[y]
    ce = -(onehot * logp).sum(1)
    kl = -np.log(C) - logp.mean(1)
    target = (1 - eps) * onehot + eps / C
    return float(((1 - eps) * ce + eps * kl).mean()), (np.exp(logp) - target) / len(y)


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_loss_and_output_bias_gradient_match_a_numpy_reference(eps: float) -> None:
    X, y = data()
    m = model()
    z = m.decision_function(X)
    loss_ref, dz = smoothed_reference(z, y, eps)
    b0 = m.get_state()["layer1.bias"].copy()
    lr = 0.5
    loss = m.train_step(X, y, lr=lr, momentum=0.0, weight_decay=0.0, label_smoothing=eps)
    assert loss == pytest.approx(loss_ref, rel=1e-5, abs=1e-6)
    # plain SGD: the output bias moves by -lr times the mean of p - target over the batch
    step = m.get_state()["layer1.bias"] - b0
    np.testing.assert_allclose(step, -lr * dz.sum(0), rtol=1e-4, atol=1e-6)
    # and not the way plain cross-entropy would move it
    _, dz_ce = smoothed_reference(z, y, 0.0)
    assert np.abs(step + lr * dz_ce.sum(0)).max() > 1e-3


def test_is_distillation_from_a_uniform_teacher_bit_for_bit() -> None:
    X, y = data(1)
    a, b = model(), model()
    la = a.train_epoch(X, y, batch_size=16, lr=0.05, seed=0, optimizer="adamw", weight_decay=0.1, dropout=0.2,
                       label_smoothing=0.1)
    lb = b.train_epoch(X, y, batch_size=16, lr=0.05, seed=0, optimizer="adamw", weight_decay=0.1, dropout=0.2,
                       teacher=np.zeros((N, C), np.float32), temperature=1.0, kd_lambda=0.1)
    assert la == lb
    sa, sb = a.get_state(), b.get_state()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_zero_is_the_cross_entropy_path_bit_for_bit() -> None:
    X, y = data(2)
    a, b = model(), model()
    assert a.train_epoch(X, y, batch_size=16, lr=0.05, seed=0, label_smoothing=0.0) == \
        b.train_epoch(X, y, batch_size=16, lr=0.05, seed=0)
    sa, sb = a.get_state(), b.get_state()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan")])
def test_out_of_range_values_are_refused(bad: float) -> None:
    X, y = data()
    with pytest.raises(ValueError, match="label_smoothing"):
        model().train_epoch(X, y, lr=0.01, label_smoothing=bad)
    with pytest.raises(ValueError, match="label_smoothing"):
        Trainer(model(), label_smoothing=bad, progress=False)


def test_not_combined_with_distillation() -> None:
    X, y = data()
    with pytest.raises(ValueError, match="label_smoothing cannot be combined"):
        model().train_step(X, y, lr=0.01, label_smoothing=0.1, teacher=np.zeros((N, C), np.float32), kd_lambda=0.5)
    kd = KD(np.zeros((N, C), np.float32), temperature=2.0, lam=0.5)
    assert Trainer(model(), distill=kd, progress=False).label_smoothing == 0.0   # the recipe's is dropped
    with pytest.raises(ValueError, match="cannot be combined with distill"):
        Trainer(model(), distill=kd, label_smoothing=0.1, progress=False)


def test_the_recipes_values_are_recorded_and_resumed(tmp_path: Path) -> None:
    X, y = data()
    t = Trainer(model(), epochs=2, progress=False)
    assert t.config["label_smoothing"] == RECIPES["motifcore"]["label_smoothing"] > 0
    assert Trainer(model(), recipe="paper", epochs=2, progress=False).config["label_smoothing"] == 0.0
    t.fit(X, y)
    path = t.save_checkpoint(tmp_path / "run.npz")
    assert Trainer.from_checkpoint(path, progress=False).label_smoothing == t.label_smoothing
    # a checkpoint written before label smoothing existed resumes without it
    ck = load_checkpoint(path)
    assert ck.trainer is not None
    del ck.trainer["label_smoothing"]
    assert trainer_settings(ck, path)["label_smoothing"] == 0.0


def test_cli_flag_and_estimator_parameter(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--hidden", "32", "--epochs", "1", "--threads", "1",
                 "--label-smoothing", "0.2", "--no-progress", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["run"]["label_smoothing"] == 0.2 and cfg["trainer"]["label_smoothing"] == 0.2
    X, y = data()
    kw = {"hidden_sizes": (16,), "epochs": 2, "min_steps": 1, "dropout": 0.0}
    smooth = MotifSETClassifier(label_smoothing=0.3, **kw).fit(X, y)
    plain = MotifSETClassifier(label_smoothing=0.0, **kw).fit(X, y)
    assert smooth.loss_curve_[0] != plain.loss_curve_[0]          # the estimator passes it on
    assert SELECTION["label_smoothing"] == 0.0          # the selector's ranking was chosen without it


def test_a_sweep_point_carries_the_recipes_smoothing_and_paper_ids_are_unchanged() -> None:
    from motifcore.experiments import sweep
    from motifcore.experiments.config import RunConfig

    spec = {"datasets": ["digits"], "hidden": [8], "motifs": [1], "seeds": [0]}
    paper = sweep.expand_runs(spec)[0]
    ours = sweep.expand_runs({**spec, "recipe": "motifcore"})[0]
    assert paper["label_smoothing"] == 0.0 and ours["label_smoothing"] == RECIPES["motifcore"]["label_smoothing"]
    assert RunConfig.from_sweep(ours).label_smoothing == ours["label_smoothing"]
    # a paper-recipe point's id does not name the (zero) smoothing, so ids stored before it stay valid
    assert sweep.run_id(paper) == sweep.run_id({k: v for k, v in paper.items() if k != "label_smoothing"})
    assert sweep.run_id(ours) != sweep.run_id({**ours, "label_smoothing": 0.0})
    with pytest.raises(ValueError, match="label_smoothing"):
        sweep.expand_runs({**spec, "label_smoothing": 1.5})
    # a run dict stored before the setting existed ran without it
    assert RunConfig.from_dict({"dataset": "digits"}).label_smoothing == 0.0


def test_train_step_is_a_one_batch_train_epoch() -> None:
    X, y = data(3)
    a, b = model(), model()
    la = a.train_step(X, y, lr=0.05, optimizer="adamw", weight_decay=0.1, label_smoothing=0.2)
    lb = b.train_epoch(X, y, batch_size=N, lr=0.05, optimizer="adamw", weight_decay=0.1, label_smoothing=0.2)
    assert la == pytest.approx(lb, rel=1e-12)
    sa, sb = a.get_state(), b.get_state()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_the_engine_refuses_a_teacher_beside_smoothing() -> None:
    X, y = data()
    with pytest.raises(ValueError, match="label_smoothing cannot be combined"):
        model()._net.train_step(X, y, 0.01, label_smoothing=0.1, teacher=np.zeros((N, C), np.float32),
                                kd_lambda=0.5)
