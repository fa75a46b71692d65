"""Input clipping (issue 22): the recipe owns it, the loader, the run path (``motifcore train``,
its config and resume) and the estimator apply it, the paper's recipe does not clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from motifcore import datasets, defaults
from motifcore.cli import main
from motifcore.defaults import INPUT_CLIP, RECIPES
from motifcore.experiments.config import RunConfig
from motifcore.experiments.run import load_data
from motifcore.sklearn import MotifSETClassifier

TINY = ["--hidden", "16,16", "--epochs", "1", "--threads", "1", "--no-progress"]


def test_the_recipes_own_the_clip():
    assert RECIPES["motifcore"]["input_clip"] == INPUT_CLIP == 3.0
    assert RECIPES["paper"]["input_clip"] == 0.0
    assert defaults.recipe(defaults.DEFAULT_RECIPE)["input_clip"] == INPUT_CLIP


def test_loader_clips_standardised_values():
    X, y, Xt, yt = datasets.load("digits", seed=0)
    C, yc, Ct, ytc = datasets.load("digits", seed=0, clip=1.5)
    assert np.abs(X).max() > 1.5                       # something to clip
    assert np.array_equal(C, np.clip(X, -1.5, 1.5)) and np.array_equal(Ct, np.clip(Xt, -1.5, 1.5))
    assert np.array_equal(y, yc) and np.array_equal(yt, ytc)
    assert np.array_equal(datasets.load("digits", seed=0, clip=0)[0], X)
    with pytest.raises(ValueError, match="normalize"):
        datasets.load("digits", normalize=False, clip=5)
    for bad in (-1.0, float("nan"), float("inf"), True, "5"):
        with pytest.raises(ValueError, match="clip"):
            datasets.load("digits", clip=bad)


def test_run_config_clip():
    assert RunConfig("digits").clip() == INPUT_CLIP
    assert RunConfig("digits", recipe="paper").clip() == 0.0
    assert RunConfig("digits", recipe="paper", input_clip=3.0).clip() == 3.0
    rc = RunConfig("digits", input_clip=2.0)
    assert RunConfig.from_dict(rc.to_dict()) == rc
    # a config stored before inputs were clipped resumes unclipped
    old = {k: v for k, v in RunConfig("digits").to_dict().items() if k != "input_clip"}
    assert RunConfig.from_dict(old).clip() == 0.0
    X = load_data(RunConfig("digits", input_clip=1.0))[0]
    assert np.abs(X).max() == 1.0
    assert np.abs(load_data(RunConfig("digits", recipe="paper"))[0]).max() > 5.0


@pytest.mark.parametrize("argv,want", [([], INPUT_CLIP), (["--recipe", "paper", "--lr", "0.01"], 0.0),
                                       (["--input-clip", "2.5"], 2.5)])
def test_cli_records_and_resumes_the_clip(tmp_path, capsys, argv, want):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", *argv, "--out", str(out), *TINY]) == 0
    assert json.loads((out / "config.json").read_text())["run"]["input_clip"] == want
    # evaluate loads the inputs the run was trained on: the same accuracy as the run's last epoch
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.npz"), "--json", "--threads", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["accuracy"] == json.loads((out / "summary.json").read_text())["final_accuracy"]
    assert main(["train", "--resume", str(out / "checkpoint.npz"), "--input-clip", "1"]) == 2


def _blobs(n: int = 240, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.normal(size=(n, d)) * 3.0 + 10.0 + 4.0 * np.eye(3, d)[y]).astype(np.float32)
    return X, y


def test_estimator_clips_to_training_mean_and_std():
    X, y = _blobs()
    clf = MotifSETClassifier(hidden_sizes=16, epochs=2, min_steps=0, n_jobs=1).fit(X, y)
    lo, hi = clf.input_bounds_
    mean, std = X.astype(np.float64).mean(0), X.astype(np.float64).std(0)
    assert np.allclose(lo, mean - INPUT_CLIP * std, rtol=1e-5) and np.allclose(hi, mean + INPUT_CLIP * std, rtol=1e-5)
    far = X[:5].copy()
    far[:, 0] = 1e6                                     # far beyond the bound: predicted as at the bound
    at = X[:5].copy()
    at[:, 0] = hi[0]
    assert np.array_equal(clf.decision_function(far), clf.decision_function(at))
    # the same data with the bound given explicitly trains the same network
    other = MotifSETClassifier(hidden_sizes=16, epochs=2, min_steps=0, n_jobs=1, input_clip=INPUT_CLIP).fit(X, y)
    assert np.array_equal(other.decision_function(X), clf.decision_function(X))


def test_estimator_without_clip():
    X, y = _blobs()
    for kw in ({"input_clip": 0.0}, {"recipe": "paper"}):
        clf = MotifSETClassifier(hidden_sizes=16, epochs=1, min_steps=0, n_jobs=1, **kw).fit(X, y)
        assert clf.input_bounds_ is None
    stream = MotifSETClassifier(hidden_sizes=16, n_jobs=1).partial_fit(X, y, classes=[0, 1, 2])
    assert stream.input_bounds_ is None
    with pytest.raises(ValueError, match="input_clip"):
        MotifSETClassifier(input_clip=-1.0).fit(X, y)
