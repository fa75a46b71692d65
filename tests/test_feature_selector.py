"""The path strength (``input_strength(level="path")``) and :class:`motifcore.sklearn.MotifSETSelector`
with the ``selection`` preset."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from motifcore import MotifLayer, MotifMLP
from motifcore.analysis import feature_ranking, input_strength, path_strength
from motifcore.sklearn import SELECTION, MotifSETClassifier, MotifSETSelector
from sklearn.utils.estimator_checks import parametrize_with_checks


def hand_model() -> SimpleNamespace:
    """Layer 1: 5 inputs (input motifs {0,1}, {2,3}, {4}) to 4 outputs (output motifs {0,1},
    {2,3}); blocks (row, input motif, weight): (0, 0, 0.5), (0, 2, -1.0), (1, 0, -2.0), (1, 1, 0.25).
    Layer 2: 4 -> 2, m = 1; row 0 reads neuron 0 (1.0) and neuron 2 (-3.0), row 1 neuron 1 (2.0)."""
    first = SimpleNamespace(n_in=5, n_out=4, motif=(2, 2), indptr=np.array([0, 2, 4]),
                            indices=np.array([0, 2, 0, 1], dtype=np.int32),
                            weights=np.array([0.5, -1.0, -2.0, 0.25], dtype=np.float32))
    second = SimpleNamespace(n_in=4, n_out=2, motif=(1, 1), indptr=np.array([0, 2, 3]),
                             indices=np.array([0, 2, 1], dtype=np.int32),
                             weights=np.array([1.0, -3.0, 2.0], dtype=np.float32))
    return SimpleNamespace(layers=[first, second])


def test_path_strength_by_hand():
    model = hand_model()
    # |W2|^T 1 = [1, 2, 3, 0]: what each hidden neuron is worth downstream (neuron 3 feeds nothing)
    # feature 0: 0.5 * (1 + 2) [block of output motif {0,1}] + 2.0 * (3 + 0) [output motif {2,3}] = 7.5
    # feature 2: 0.25 * (3 + 0) = 0.75; feature 4: 1.0 * (1 + 2) = 3.0
    np.testing.assert_allclose(path_strength(model), [7.5, 7.5, 0.75, 0.75, 3.0])
    np.testing.assert_allclose(input_strength(model, level="path"), [7.5, 7.5, 0.75, 0.75, 3.0])
    np.testing.assert_allclose(input_strength(model, level="path", normalize=True),
                               np.array([7.5, 7.5, 0.75, 0.75, 3.0]) / 19.5)
    assert feature_ranking(model, level="path").tolist() == [0, 1, 4, 2, 3]
    # not the block level: feature 4's block feeds more valuable neurons than feature 2's
    np.testing.assert_allclose(input_strength(model), [2.5, 2.5, 0.25, 0.25, 1.0])
    # zero hidden neuron 1's only outgoing weight: the paths through it count for nothing
    model.layers[1].weights = np.array([1.0, -3.0, 0.0], dtype=np.float32)
    np.testing.assert_allclose(path_strength(model), [0.5 * 1 + 2.0 * 3, 0.5 * 1 + 2.0 * 3, 0.75, 0.75, 1.0])


@pytest.mark.parametrize("motif", [1, 2, [(2, 3), (3, 1), 1]])
def test_path_strength_matches_the_dense_product(motif):
    model = MotifMLP([11, 9, 7, 3], motif=motif, density=0.5, seed=4)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        layer.weights = rng.normal(size=layer.n_blocks).astype(np.float32)
    u = np.ones(3)
    for layer in reversed(model.layers):
        u = np.abs(layer.to_dense().astype(np.float64)).T @ u
    np.testing.assert_allclose(path_strength(model), u, rtol=1e-6)
    # one layer: the path strength is the edge level
    np.testing.assert_allclose(path_strength(model.layers[0]), input_strength(model.layers[0], level="edge"),
                               rtol=1e-6)


def test_path_strength_errors():
    model = hand_model()
    model.layers[1].n_out, model.layers[1].n_in = 2, 3
    model.layers = [model.layers[1], model.layers[0]]          # 4 outputs into a layer of ... inputs
    with pytest.raises(ValueError, match="do not chain"):
        path_strength(model)
    bad = hand_model()
    bad.layers[1].weights = np.array([np.inf, 1, 1], dtype=np.float32)
    with pytest.raises(ValueError, match="finite"):
        path_strength(bad)
    with pytest.raises(TypeError, match="indices"):
        path_strength(SimpleNamespace(layers=[object()]))


# ---- the selector ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    """8 informative features first, then 32 of noise."""
    from sklearn.datasets import make_classification

    return make_classification(n_samples=300, n_features=40, n_informative=8, n_redundant=0, n_repeated=0,
                               n_classes=3, class_sep=2.0, shuffle=False, random_state=0)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return MotifSETSelector(n_features_to_select=8, n_jobs=1).fit(X, y)


def test_selector_uses_the_selection_preset(fitted):
    est = fitted.estimator_
    for key, value in SELECTION.items():
        assert est.get_params()[key] == value
    np.testing.assert_allclose(fitted.feature_importances_, input_strength(est.model_, level="path", normalize=True))
    assert fitted.ranking_.tolist() == np.argsort(-fitted.feature_importances_, kind="stable").tolist()


def test_selector_finds_informative_features(data, fitted):
    X, y = data
    support = fitted.get_support()
    assert support.sum() == 8 and fitted.n_features_ == 8
    # 8 of 40 at random would put 1.6 informative features in the top 8
    assert support[:8].sum() >= 6
    assert fitted.transform(X).shape == (300, 8)
    np.testing.assert_array_equal(fitted.transform(X), X[:, np.sort(fitted.ranking_[:8])])


def test_selector_is_deterministic_and_pickles(data, fitted):
    X, y = data
    again = MotifSETSelector(n_features_to_select=8, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(again.feature_importances_, fitted.feature_importances_)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).get_support(), fitted.get_support())


def test_selector_settings(data):
    X, y = data
    small = {"hidden_sizes": 16, "epochs": 2, "min_steps": 0}
    sel = MotifSETSelector(importance="block", estimator_params=small, n_jobs=1).fit(X, y)
    assert sel.n_features_ == 20                                       # None: half
    assert sel.estimator_.hidden_sizes == 16 and sel.estimator_.weight_decay == SELECTION["weight_decay"]
    np.testing.assert_allclose(sel.feature_importances_, sel.estimator_.feature_importances_)
    assert MotifSETSelector(0.25, estimator_params=small, n_jobs=1).fit(X, y).n_features_ == 10


def test_selector_in_a_pipeline(data):
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    X, y = data
    pipe = make_pipeline(MotifSETSelector(5, estimator_params={"epochs": 2, "min_steps": 0}, n_jobs=1), SVC())
    assert pipe.fit(X, y).score(X, y) > 1 / 3
    assert pipe[0].get_support().sum() == 5


@pytest.mark.parametrize("kwargs, match", [
    ({"n_features_to_select": 0}, "between 1 and the 40"),
    ({"n_features_to_select": 41}, "between 1 and the 40"),
    ({"n_features_to_select": 1.5}, "float in"),
    ({"n_features_to_select": True}, "n_features_to_select"),
    ({"importance": "neuron"}, "importance must be one of"),
    ({"estimator_params": {"random_state": 1}}, "pass them to MotifSETSelector"),
    ({"estimator_params": {"hiden_sizes": 8}}, "does not know: hiden_sizes"),
])
def test_selector_errors(data, kwargs, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        MotifSETSelector(**kwargs).fit(X, y)


def test_selector_needs_a_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MotifSETSelector().get_support()
    assert isinstance(MotifSETClassifier(**SELECTION), MotifSETClassifier)


# small and quick: scikit-learn's checks fit it many times on tiny data
CHECKED = MotifSETSelector(estimator_params={"hidden_sizes": 8, "epochs": 2, "min_steps": 0}, n_jobs=1)


@parametrize_with_checks([CHECKED])
def test_check_estimator(estimator, check):
    check(estimator)


def test_select_cli_writes_the_path_strength(tmp_path, capsys):
    import csv

    from motifcore.cli import main
    from motifcore.train.checkpoint import load_model

    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--hidden", "16", "16", "--motif", "2", "--epochs", "1",
                 "--threads", "1", "--no-progress", "--out", str(run)]) == 0
    out = tmp_path / "path.csv"
    assert main(["select", str(run), "--level", "path", "--top", "10", "--out", str(out)]) == 0
    model = load_model(run / "checkpoint.npz")
    rows = list(csv.DictReader(out.open()))
    p = path_strength(model)
    assert [int(r["feature"]) for r in rows] == feature_ranking(model, level="path")[:10].tolist()
    np.testing.assert_allclose([float(r["strength"]) for r in rows], np.sort(p)[::-1][:10], rtol=1e-12)
    assert feature_ranking(model, level="path").tolist() != feature_ranking(model).tolist()


def test_estimator_params_update_the_presets_dicts_and_zero_strength_warns(monkeypatch):
    X, y = np.random.default_rng(0).standard_normal((60, 12)).astype(np.float32), np.arange(60) % 3
    small = {"hidden_sizes": 8, "epochs": 2, "min_steps": 0, "evolution": {"interval": 3}}
    sel = MotifSETSelector(5, estimator_params=small, n_jobs=1).fit(X, y)
    # the preset's evolution dict is updated, not replaced: its preset stays, the interval changes
    assert sel.estimator_.evolution == {**SELECTION["evolution"], "interval": 3}
    assert SELECTION["evolution"]["interval"] == 10                    # the preset itself is untouched
    # a network whose strengths are all 0 (e.g. every input block pruned to 0): a warning, not a
    # silent ranking by feature index
    import motifcore.analysis.features as features

    monkeypatch.setattr(features, "input_strength", lambda model, level, normalize: np.zeros(12))
    with pytest.warns(RuntimeWarning, match="strength 0"):
        MotifSETSelector(5, estimator_params=small, n_jobs=1).fit(X, y)
