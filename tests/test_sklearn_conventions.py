"""scikit-learn conventions of MotifSETClassifier: check_estimator, random_state / n_jobs (and
the deprecated seed / num_threads), partial_fit (equal to fit on the same batches), and the
fitted attributes n_iter_, loss_curve_, validation_scores_, best_validation_score_."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from motifcore import MotifSETClassifier
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

# small and quick; the learning rate is raised so that check_classifiers_train's blobs are
# learned in its few hundred steps (it asks for accuracy > 0.83)
CHECKED = MotifSETClassifier(hidden_sizes=(32,), density=0.5, lr=1e-2, epochs=5, min_steps=300, n_jobs=1)


@parametrize_with_checks([CHECKED])
def test_check_estimator(estimator, check):
    check(estimator)


def _data(n=96, seed=0):
    X, y = make_blobs(n_samples=n, centers=3, n_features=6, random_state=seed)
    return X.astype(np.float32), np.array(["a", "b", "c"])[y]


STREAM = {"hidden_sizes": (12,), "batch_size": 16, "schedule": "constant", "warmup": 0, "evolution": "none",
          "n_jobs": 1, "random_state": 5}


def _same_weights(a: MotifSETClassifier, b: MotifSETClassifier) -> None:
    for la, lb in zip(a.model_.layers, b.model_.layers):
        np.testing.assert_array_equal(la.indices, lb.indices)
        np.testing.assert_array_equal(la.weights, lb.weights)
        np.testing.assert_array_equal(la.bias, lb.bias)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_partial_fit_over_batches_equals_fit_on_the_same_batches(optimizer):
    X, y = _data()
    fitted = MotifSETClassifier(epochs=1, min_steps=0, shuffle=False, optimizer=optimizer, **STREAM).fit(X, y)
    stream = MotifSETClassifier(shuffle=False, optimizer=optimizer, **STREAM)
    for i in range(0, 96, 32):             # three calls of two batches each, in order
        stream.partial_fit(X[i:i + 32], y[i:i + 32], classes=["a", "b", "c"] if i == 0 else None)
    _same_weights(stream, fitted)
    assert stream.n_iter_ == 3 and fitted.n_iter_ == 1
    assert stream.model_.steps == fitted.model_.steps == 6
    np.testing.assert_array_equal(stream.predict_proba(X), fitted.predict_proba(X))


def test_partial_fit_epochs_on_the_whole_set_equal_fit_with_shuffling():
    X, y = _data()
    fitted = MotifSETClassifier(epochs=3, min_steps=0, **STREAM).fit(X, y)
    stream = MotifSETClassifier(**STREAM)
    for _ in range(3):
        stream.partial_fit(X, y, classes=np.unique(y))
    _same_weights(stream, fitted)
    np.testing.assert_allclose(stream.loss_curve_, fitted.loss_curve_, rtol=0, atol=0)
    assert len(stream.loss_curve_) == stream.n_iter_ == 3


def test_partial_fit_errors():
    X, y = _data()
    clf = MotifSETClassifier(**STREAM)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X, y, classes=["a", "b"])
    assert not hasattr(clf, "classes_")                      # a refused first call leaves it unfitted
    clf.partial_fit(X[:40], y[:40], classes=["a", "b", "c", "d"])
    assert list(clf.classes_) == ["a", "b", "c", "d"]       # a class not seen yet is allowed
    with pytest.raises(ValueError, match="not the same"):
        clf.partial_fit(X, y, classes=["a", "b"])
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[:3], ["a", "b", "z"])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :4], y)


def test_fitted_attributes_with_and_without_early_stopping():
    X, y = _data(300)
    clf = MotifSETClassifier(hidden_sizes=(12,), epochs=8, min_steps=0, n_jobs=1).fit(X, y)
    assert clf.n_iter_ == 8 == len(clf.loss_curve_)
    assert clf.loss_curve_ == [r["train_loss"] for r in clf.history_.rows]
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    es = MotifSETClassifier(hidden_sizes=(12,), epochs=40, min_steps=0, n_jobs=1, early_stopping=True,
                            n_iter_no_change=3, lr=1e-2).fit(X, y)
    assert len(es.validation_scores_) == es.n_iter_ == len(es.loss_curve_)
    assert es.best_validation_score_ == max(es.validation_scores_)
    assert es.validation_scores_[es.best_epoch_ - 1] == es.best_validation_score_


def test_random_state_and_n_jobs():
    X, y = _data()
    a = MotifSETClassifier(**{**STREAM, "random_state": 3}).fit(X, y)
    b = MotifSETClassifier(**{**STREAM, "random_state": np.random.RandomState(7), "n_jobs": 2}).fit(X, y)
    c = MotifSETClassifier(**{**STREAM, "random_state": 3, "n_jobs": -1}).fit(X, y)
    _same_weights(a, c)                          # threads never change the result
    assert a.model_.num_threads == 1 and b.model_.num_threads == 2 and c.model_.num_threads >= 1
    assert not np.array_equal(a.model_.layers[0].indices, b.model_.layers[0].indices) or \
        not np.array_equal(a.model_.layers[0].weights, b.model_.layers[0].weights)
    for bad in (0, 1.5, "2"):
        with pytest.raises(ValueError, match="n_jobs"):
            MotifSETClassifier(**{**STREAM, "n_jobs": bad}).fit(X, y)
    with pytest.raises(TypeError, match="random_state"):
        MotifSETClassifier(**{**STREAM, "random_state": "x"}).fit(X, y)


def test_old_parameter_and_attribute_names_are_gone():
    # seed / num_threads / n_epochs_ were deprecated aliases of random_state / n_jobs / n_iter_;
    # removed in 0.x (issue 23): they are neither parameters nor attributes any more
    X, y = _data()
    for old in ("seed", "num_threads"):
        assert old not in MotifSETClassifier().get_params()
        with pytest.raises(TypeError, match=old):
            MotifSETClassifier(**{old: 1})
    new = MotifSETClassifier(**STREAM).fit(X, y)
    assert not hasattr(new, "n_epochs_") and new.n_iter_ == len(new.history_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the names that remain do not warn
        MotifSETClassifier(**STREAM).fit(X, y)
    back = pickle.loads(pickle.dumps(new))
    np.testing.assert_array_equal(back.predict_proba(X), new.predict_proba(X))
