"""scikit-learn estimator: :class:`MotifSETClassifier` (works in ``Pipeline``, ``cross_val_score``,
``GridSearchCV``; fitted estimators pickle)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from ._model import MotifMLP
from .checkpoint import model_from_state
from .trainer import History, Trainer

__all__ = ["MotifSETClassifier"]


class MotifSETClassifier(ClassifierMixin, BaseEstimator):
    """A sparse (SET / Motif-SET) MLP classifier trained with the paper's recipe.

    Parameters
    ----------
    hidden_sizes : int or sequence of int, default (256, 256)
        Hidden layer widths.
    motif : int or sequence, default 1
        Motif size of the hidden layers (the output layer keeps m = 1), or one entry per layer
        (``len(hidden_sizes) + 1`` entries, e.g. ``[2, 2, 1]``).
    density : float, default 0.1
        Block density of every layer; ignored where ``epsilon`` is given.
    epsilon : float, optional
        SET's density parameterisation instead of ``density``.
    epochs : int, default 30
    batch_size : int, default 128
    lr : float, default 0.01
        Peak learning rate.
    schedule : {"cosine", "constant", "step"}, default "cosine"
        Learning-rate schedule (cosine: linear warmup of ``warmup`` epochs, then cosine decay).
    warmup : int, default 5
    evolution : {"paper", "set", "none"}, callable, dict or list, default "paper"
        SET evolution schedule (:mod:`motifcore.schedules`).
    dropout : float, default 0.0
    momentum, weight_decay : float, default 0.9, 5e-4
    seed : int, default 0
        Seed of the initialisation, the shuffling and the evolution.
    num_threads : int, optional
        Threads of the native engine (default: all).
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted; they are mapped to ``0 .. n_classes - 1`` internally.
    n_features_in_ : int
    model_ : MotifMLP
        The fitted network.
    history_ : History
        Per-epoch training records.
    """

    def __init__(
        self,
        hidden_sizes: int | Sequence[int] = (256, 256),
        motif: int | Sequence[Any] = 1,
        density: float = 0.1,
        epsilon: float | None = None,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 0.01,
        schedule: str = "cosine",
        warmup: int = 5,
        evolution: Any = "paper",
        dropout: float = 0.0,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        seed: int = 0,
        num_threads: int | None = None,
        verbose: bool | int = False,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.motif = motif
        self.density = density
        self.epsilon = epsilon
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.schedule = schedule
        self.warmup = warmup
        self.evolution = evolution
        self.dropout = dropout
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.seed = seed
        self.num_threads = num_threads
        self.verbose = verbose

    def _hidden(self) -> list:
        h = self.hidden_sizes
        if isinstance(h, (int, np.integer)) and not isinstance(h, bool):
            return [int(h)]
        if isinstance(h, (str, bytes)) or not hasattr(h, "__iter__"):
            raise TypeError(f"hidden_sizes must be an int or a sequence of ints, got {h!r}")
        return list(cast("Sequence[int]", h))

    def fit(self, X: Any, y: Any) -> MotifSETClassifier:
        """Train on ``(X, y)``; labels may be any sortable values (strings, -1/1, ...)."""
        X, y = check_X_y(X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"MotifSETClassifier needs at least 2 classes in y; got {len(classes)} class")
        model = MotifMLP([X.shape[1], *self._hidden(), len(classes)], motif=self.motif, density=self.density,
                         epsilon=self.epsilon, seed=self.seed, num_threads=self.num_threads)
        trainer = Trainer(model, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                          lr_schedule=self.schedule, warmup=self.warmup, evolution=self.evolution,
                          dropout=self.dropout, momentum=self.momentum, weight_decay=self.weight_decay,
                          seed=self.seed, progress=bool(self.verbose))
        trainer.fit(X, y_enc.astype(np.int64, copy=False))
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.model_ = model
        self.history_: History = trainer.history
        return self

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = check_array(X, dtype=np.float32, order="C")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        return X

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits, ``[n_samples, n_classes]`` (columns in the order of ``classes_``); for two
        classes, scikit-learn's convention: the logit difference ``[n_samples]``, positive for
        ``classes_[1]``."""
        X = self._check_X(X)
        z = self.model_.decision_function(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``[n_samples, n_classes]`` (columns in the order of ``classes_``)."""
        X = self._check_X(X)
        return self.model_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (values of ``classes_``)."""
        X = self._check_X(X)
        return self.classes_[self.model_.predict(X)]

    # fitted estimators pickle through the model's config and state arrays
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_model_blob"] = {"config": model.config, "state": model.get_state()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        blob = state.pop("_model_blob", None)
        super().__setstate__(state)
        if blob is not None:
            self.model_ = model_from_state(blob["config"], blob["state"], self.num_threads)
