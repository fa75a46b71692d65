"""Feature ranking by input-neuron strength: ``motifcore.analysis.features``,
``MotifSETClassifier.feature_importances_`` (with ``SelectFromModel``) and ``motifcore select``."""

from __future__ import annotations

import csv
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from motifcore import MotifLayer, MotifMLP
from motifcore.analysis import feature_ranking, input_strength, top_features
from motifcore.cli import main
from motifcore.sklearn import MotifSETClassifier


def hand_layer(n_out: int = 4) -> SimpleNamespace:
    """5 inputs in input motifs {0,1}, {2,3}, {4} (a residual motif of one feature), ``n_out``
    outputs in output motifs of 2; blocks (row, input motif, weight): (0, 0, 0.5), (0, 2, -1.0),
    (1, 0, -2.0), (1, 1, 0.25)."""
    return SimpleNamespace(n_in=5, n_out=n_out, motif=(2, 2), indptr=np.array([0, 2, 4]),
                           indices=np.array([0, 2, 0, 1], dtype=np.int32),
                           weights=np.array([0.5, -1.0, -2.0, 0.25], dtype=np.float32))


def test_strength_by_hand():
    layer = hand_layer()
    # block level: a block counts |w| once for each feature it covers
    np.testing.assert_allclose(input_strength(layer), [2.5, 2.5, 0.25, 0.25, 1.0])
    # edge level: |w| times the output-motif height (2 and 2 here)
    np.testing.assert_allclose(input_strength(layer, level="edge"), [5.0, 5.0, 0.5, 0.5, 2.0])
    # 3 outputs: the second output motif is a residual one of height 1
    np.testing.assert_allclose(input_strength(hand_layer(3), level="edge"), [3.0, 3.0, 0.25, 0.25, 2.0])
    np.testing.assert_allclose(input_strength(layer, normalize=True), np.array([2.5, 2.5, 0.25, 0.25, 1.0]) / 6.5)
    # strongest first, ties by index
    assert feature_ranking(layer).tolist() == [0, 1, 4, 2, 3]
    assert top_features(layer, 3).tolist() == [0, 1, 4]
    # a model is read through its first layer
    assert feature_ranking(SimpleNamespace(layers=[layer, None])).tolist() == [0, 1, 4, 2, 3]


def test_strength_of_a_feature_without_blocks_is_zero():
    layer = hand_layer()
    layer.indices = np.array([0, 0, 0, 1], dtype=np.int32)          # input motif 2 (feature 4) unused
    s = input_strength(layer)
    assert s[4] == 0.0 and feature_ranking(layer)[-1] == 4
    layer.weights = np.zeros(4, dtype=np.float32)
    np.testing.assert_array_equal(input_strength(layer, normalize=True), np.zeros(5))


@pytest.mark.parametrize("motif", [1, 2, (2, 3), (3, 1)])
def test_strength_matches_the_effective_matrix(motif):
    layer = MotifLayer(11, 9, motif=motif, density=0.4, seed=3)
    layer.weights = np.random.default_rng(0).normal(size=layer.n_blocks).astype(np.float32)
    W = np.abs(layer.to_dense().astype(np.float64))
    np.testing.assert_allclose(input_strength(layer, level="edge"), W.sum(axis=0), rtol=1e-6)
    m_out = layer.motif[0]
    # block level: one row per output motif (every row of a block holds the same weight)
    np.testing.assert_allclose(input_strength(layer), W[::m_out].sum(axis=0), rtol=1e-6)


def test_strength_of_a_model_is_its_input_layer():
    model = MotifMLP([12, 8, 3], motif=2, density=0.5, seed=1)
    np.testing.assert_array_equal(input_strength(model), input_strength(model.layers[0]))
    assert input_strength(model).shape == (12,)


def test_strength_errors():
    with pytest.raises(ValueError, match="level"):
        input_strength(hand_layer(), level="neuron")
    with pytest.raises(TypeError, match="indices"):
        input_strength(object())
    with pytest.raises(ValueError, match="more than"):
        top_features(hand_layer(), 6)
    with pytest.raises(ValueError, match="positive"):
        top_features(hand_layer(), 0)
    bad = hand_layer()
    bad.weights = np.array([np.nan, 1, 1, 1], dtype=np.float32)
    with pytest.raises(ValueError, match="finite"):
        input_strength(bad)


# ---- the estimator ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def informative():
    """8 informative features first, then 32 of noise (scikit-learn's make_classification unshuffled)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=400, n_features=40, n_informative=8, n_redundant=0, n_repeated=0,
                               n_classes=3, class_sep=2.0, shuffle=False, random_state=0)
    clf = MotifSETClassifier(hidden_sizes=64, n_jobs=1).fit(X, y)
    return X, y, clf


def test_feature_importances(informative):
    X, y, clf = informative
    fi = clf.feature_importances_
    assert fi.shape == (40,) and np.all(fi >= 0)
    assert fi.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(fi, input_strength(clf.model_, normalize=True))
    # training moves strength to the informative features: their share grows from the one at
    # initialisation (the same network before training: the estimator's seed and layout)
    start = MotifMLP([40, 64, 3], density=0.1, distribution="output-dense", seed=0)
    assert fi[:8].sum() > input_strength(start, normalize=True)[:8].sum() + 0.03
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).feature_importances_, fi)


def test_feature_importances_needs_a_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MotifSETClassifier().feature_importances_
    assert not hasattr(MotifSETClassifier(), "feature_importances_")


def test_select_from_model(informative):
    from sklearn.feature_selection import SelectFromModel
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    X, y, clf = informative
    sel = SelectFromModel(clf, prefit=True, max_features=5, threshold=-np.inf)
    assert sorted(np.flatnonzero(sel.get_support()).tolist()) == sorted(top_features(clf.model_, 5).tolist())
    assert sel.transform(X).shape == (400, 5)
    # fitted inside a pipeline (SelectFromModel fits a clone)
    est = MotifSETClassifier(hidden_sizes=16, epochs=3, min_steps=0, n_jobs=1)
    pipe = make_pipeline(SelectFromModel(est, max_features=10, threshold=-np.inf), SVC()).fit(X, y)
    assert pipe[0].get_support().sum() == 10
    assert pipe.score(X, y) > 1 / 3
    # the default threshold (the mean importance) keeps the features above the mean
    sel = SelectFromModel(clf, prefit=True)
    np.testing.assert_array_equal(sel.get_support(), clf.feature_importances_ >= clf.feature_importances_.mean())


# ---- motifcore select --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("select") / "run"
    rc = main(["train", "--dataset", "digits", "--hidden", "32", "--motif", "2", "--epochs", "2", "--threads", "1",
               "--no-progress", "--out", str(run)])
    assert rc == 0
    return run


def test_select_writes_the_ranking(run_dir, capsys):
    from motifcore.train.checkpoint import load_model

    model = load_model(run_dir / "checkpoint.npz")
    assert main(["select", str(run_dir)]) == 0
    assert "feature_ranking.csv" in capsys.readouterr().out
    rows = list(csv.DictReader((run_dir / "feature_ranking.csv").open()))
    assert [int(r["rank"]) for r in rows] == list(range(1, 65))
    assert [int(r["feature"]) for r in rows] == feature_ranking(model).tolist()
    s = input_strength(model)
    np.testing.assert_allclose([float(r["strength"]) for r in rows], s[feature_ranking(model)], rtol=1e-12)

    out = run_dir / "top.csv"
    assert main(["select", str(run_dir / "checkpoint.npz"), "--top", "7", "--out", str(out), "--normalize"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 7 and [int(r["feature"]) for r in rows] == top_features(model, 7).tolist()
    np.testing.assert_allclose([float(r["strength"]) for r in rows], (s / s.sum())[top_features(model, 7)])


def test_select_never_overwrites_without_the_flag(run_dir, capsys):
    out = run_dir / "keep.csv"
    out.write_text("mine\n")
    assert main(["select", str(run_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("motifcore: error:") and "--overwrite" in err and err.count("\n") == 1
    assert out.read_text() == "mine\n"
    assert main(["select", str(run_dir), "--out", str(out), "--overwrite", "--top", "3"]) == 0
    assert len(out.read_text().splitlines()) == 4
    # a run's own records are never replaced, even with --overwrite
    assert main(["select", str(run_dir), "--out", str(run_dir / "summary.json"), "--overwrite"]) == 2
    assert "record of the run" in capsys.readouterr().err


def test_select_errors(run_dir, tmp_path, capsys):
    assert main(["select", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["select", str(run_dir), "--top", "65", "--out", str(tmp_path / "x.csv")]) == 2
    assert "64 input features" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    assert main(["select", str(run_dir), "--top", "0"]) == 2
    assert main(["select", str(run_dir), "--level", "neuron"]) == 2
    assert "invalid choice" in capsys.readouterr().err
