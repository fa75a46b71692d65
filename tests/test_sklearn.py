"""MotifSETClassifier follows the scikit-learn estimator contract."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from motifcore import MotifMLP, MotifSETClassifier
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

FAST = {"epochs": 10, "min_steps": 0, "lr": 0.05, "warmup": 1, "n_jobs": 1}


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.mark.parametrize("params, expected", [
    # measured 3-fold accuracies: [0.903, 0.880, 0.863] and [0.873, 0.850, 0.855]
    ({"hidden_sizes": (128, 128), "density": 0.2}, 0.80),
    ({"hidden_sizes": (128,), "motif": 2, "density": 0.3}, 0.80),
])
def test_cross_val_score_on_digits(digits, params, expected):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MotifSETClassifier(**params, **FAST))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > expected
    assert scores.min() > expected - 0.05


def test_params_are_stored_verbatim_and_clone():
    hidden = (64, 32)
    motif = [2, 2, 1]
    clf = MotifSETClassifier(hidden_sizes=hidden, motif=motif, density=0.3, schedule="constant",
                             evolution="set", random_state=4)
    p = clf.get_params()
    assert p["hidden_sizes"] is hidden and p["motif"] is motif
    assert p["schedule"] == "constant" and p["evolution"] == "set" and p["random_state"] == 4
    assert set(p) >= {"hidden_sizes", "motif", "density", "epsilon", "epochs", "batch_size", "lr", "schedule",
                      "evolution", "dropout", "random_state", "n_jobs", "verbose"}
    c = clone(clf)
    assert c.get_params() == p and c is not clf
    c.set_params(lr=0.1, hidden_sizes=(8,))
    assert c.lr == 0.1 and c.hidden_sizes == (8,) and clf.lr is None


def test_arbitrary_labels_proba_and_attributes(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    ys = names[y]
    clf = MotifSETClassifier(hidden_sizes=(128, 128), density=0.2, **FAST).fit(X[:1200], ys[:1200])
    assert list(clf.classes_) == sorted(names)
    assert clf.n_features_in_ == 64
    assert isinstance(clf.model_, MotifMLP) and clf.model_.sizes == [64, 128, 128, 10]
    assert len(clf.history_) == 10
    pred = clf.predict(X[1200:])
    assert pred.dtype == ys.dtype and set(pred) <= set(names)
    proba = clf.predict_proba(X[1200:])
    assert proba.shape == (597, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    assert clf.score(X[1200:], ys[1200:]) == np.mean(pred == ys[1200:])
    assert clf.score(X[1200:], ys[1200:]) > 0.7


def test_binary_minus_one_plus_one_and_single_int_hidden():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = np.where(X[:, 0] + X[:, 1] > 0, 1, -1)
    clf = MotifSETClassifier(hidden_sizes=16, density=0.5, batch_size=16, **FAST).fit(X, y)
    assert list(clf.classes_) == [-1, 1]
    assert clf.model_.sizes == [5, 16, 2]
    assert clf.score(X, y) > 0.9  # measured 0.983
    d = clf.decision_function(X)
    assert d.shape == (300,)  # scikit-learn's binary convention: > 0 means classes_[1]
    assert np.array_equal(np.where(d > 0, 1, -1), clf.predict(X))


def test_pickle_roundtrip(digits):
    X, y = digits
    clf = MotifSETClassifier(hidden_sizes=(32,), epochs=2, n_jobs=1).fit(X[:500], y[:500])
    back = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(back.predict_proba(X[500:700]), clf.predict_proba(X[500:700]))
    assert back.get_params() == clf.get_params()


def test_grid_search_in_pipeline(digits):
    X, y = digits
    pipe = Pipeline([("scale", StandardScaler()), ("clf", MotifSETClassifier(hidden_sizes=(64,), **FAST))])
    gs = GridSearchCV(pipe, {"clf__density": [0.05, 0.3]}, cv=2).fit(X[:900], y[:900])
    assert gs.best_params_["clf__density"] in (0.05, 0.3)
    assert gs.best_estimator_.named_steps["clf"].density == gs.best_params_["clf__density"]


def test_errors(digits):
    X, y = digits
    clf = MotifSETClassifier(hidden_sizes=(16,), epochs=1, n_jobs=1)
    for method in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(ValueError, match="at least 2 classes in y; got 1 class"):
        clf.fit(X[:10], np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="Unknown label type|continuous"):
        clf.fit(X[:10], np.linspace(0, 1, 10))
    clf.fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="expecting 64 features"):
        clf.predict(X[:5, :10])
    with pytest.raises(ValueError, match="density"):
        MotifSETClassifier(density=1.5, epochs=1).fit(X[:50], y[:50])
    with pytest.raises(TypeError, match="hidden_sizes"):
        MotifSETClassifier(hidden_sizes="64", epochs=1).fit(X[:50], y[:50])


def test_early_stopping_keeps_the_best_epoch(digits):
    X, y = digits
    clf = MotifSETClassifier(hidden_sizes=(64,), epochs=60, min_steps=0, lr=0.02, early_stopping=True,
                             validation_fraction=0.2, n_iter_no_change=3, n_jobs=1, random_state=1)
    clf.fit(X[:1000], y[:1000])
    acc = clf.history_["val_accuracy"]
    assert len(acc) == clf.n_iter_ and all(a is not None for a in acc)
    best = int(np.argmax(acc)) + 1                     # earliest best epoch
    assert clf.best_epoch_ == best
    assert clf.n_iter_ == 60 or clf.n_iter_ - best == 4     # stopped after 3 epochs without a gain
    # the kept weights are the best epoch's: they score exactly its accuracy on the held-out split
    # (the inputs as the estimator trained on them: clipped to the training mean +- input_clip std)
    Xc = clf._clipped(np.asarray(X[:1000], np.float32), clf.input_bounds_)
    _, _, Xv, yv = clf._split(Xc, np.asarray(y[:1000], np.int64), clf._run_seed)
    assert clf.model_.score(Xv, yv) == acc[best - 1]


def test_early_stopping_rejects_impossible_splits():
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.arange(12) % 4
    with pytest.raises(ValueError, match="too few samples"):
        MotifSETClassifier(early_stopping=True, validation_fraction=0.1, min_steps=0, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        MotifSETClassifier(early_stopping=True, validation_fraction=1.0).fit(X, y)


class _SpyTrainer:
    """Records the settings of every Trainer the estimator builds."""

    def __init__(self, monkeypatch):
        import motifcore.sklearn as sk

        self.calls: list[dict] = []
        real = sk.Trainer

        def make(model, **kw):
            self.calls.append({"sizes": list(model.sizes), **kw})
            return real(model, **kw)

        monkeypatch.setattr(sk, "Trainer", make)


def _tiny(n=40, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


def test_small_data_budget_on_a_set_that_fits_in_one_batch(monkeypatch):
    from motifcore.sklearn import SMALL_DATA

    spy = _SpyTrainer(monkeypatch)
    X, y = _tiny()
    clf = MotifSETClassifier(n_jobs=1).fit(X, y)
    assert clf.get_params()["hidden_sizes"] is None and clf.get_params()["min_steps"] is None
    assert clf.small_data_ is True
    (call,) = spy.calls
    assert call["sizes"] == [12, *SMALL_DATA["hidden_sizes"], 2]
    assert call["lr"] == SMALL_DATA["lr"]
    assert clf.n_iter_ == SMALL_DATA["min_steps"]      # one full batch per epoch
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("given", [{"hidden_sizes": (16,)}, {"lr": 3e-3}, {"min_steps": 50}, {"recipe": "paper"},
                                   {"batch_size": 16}, {"batch_size": 256}, {"optimizer": "adam"}])
def test_small_data_budget_not_taken(monkeypatch, given):
    from motifcore.defaults import MIN_STEPS
    from motifcore.sklearn import ESTIMATOR_HIDDEN

    spy = _SpyTrainer(monkeypatch)
    X, y = _tiny()
    clf = MotifSETClassifier(n_jobs=1, epochs=1, **given)
    assert clf._small_data(X.shape[0]) is False
    hidden, lr, min_steps = clf._budget(X.shape[0])
    assert hidden == list(given.get("hidden_sizes", ESTIMATOR_HIDDEN))
    assert lr == given.get("lr") and min_steps == given.get("min_steps", MIN_STEPS)
    if "min_steps" in given:                            # the one cheap enough to fit here
        clf.fit(X, y)
        assert clf.small_data_ is False and spy.calls[0]["sizes"] == [12, *ESTIMATOR_HIDDEN, 2]
        assert spy.calls[0]["lr"] is None and clf.n_iter_ == 50


def test_partial_fit_keeps_the_default_network(monkeypatch):
    from motifcore.sklearn import ESTIMATOR_HIDDEN

    spy = _SpyTrainer(monkeypatch)
    X, y = _tiny()
    clf = MotifSETClassifier(n_jobs=1).partial_fit(X, y, classes=[0, 1])
    assert clf.small_data_ is False and spy.calls[0]["sizes"] == [12, *ESTIMATOR_HIDDEN, 2]


def test_small_data_budget_at_the_batch_boundary():
    from motifcore.defaults import MIN_STEPS, recipe
    from motifcore.sklearn import ESTIMATOR_HIDDEN, SMALL_DATA

    batch = recipe("motifcore")["batch_size"]
    clf = MotifSETClassifier()
    assert clf._budget(batch) == (list(SMALL_DATA["hidden_sizes"]), SMALL_DATA["lr"], SMALL_DATA["min_steps"])
    assert clf._budget(batch + 1) == (list(ESTIMATOR_HIDDEN), None, MIN_STEPS)


def test_small_data_budget_decided_on_the_early_stopping_split(monkeypatch):
    from motifcore.sklearn import ESTIMATOR_HIDDEN, SMALL_DATA

    spy = _SpyTrainer(monkeypatch)
    X, y = _tiny(n=140)                      # 140 > 128, but 126 after holding out 10 %
    clf = MotifSETClassifier(n_jobs=1, early_stopping=True, n_iter_no_change=2).fit(X, y)
    assert clf.small_data_ is True and spy.calls[0]["sizes"] == [12, *SMALL_DATA["hidden_sizes"], 2]
    plain = MotifSETClassifier(n_jobs=1, epochs=1)
    assert not plain._small_data(140) and [12, *plain._budget(140)[0], 2] == [12, *ESTIMATOR_HIDDEN, 2]


def test_partial_fit_after_a_small_data_fit_keeps_its_rate(monkeypatch):
    from motifcore.sklearn import SMALL_DATA

    spy = _SpyTrainer(monkeypatch)
    X, y = _tiny()
    clf = MotifSETClassifier(n_jobs=1).fit(X, y)
    clf.partial_fit(X, y)
    assert [c["lr"] for c in spy.calls] == [SMALL_DATA["lr"], SMALL_DATA["lr"]]
    assert clf.n_iter_ == SMALL_DATA["min_steps"] + 1
