"""scikit-learn estimator: :class:`MotifSETClassifier` (works in ``Pipeline``, ``cross_val_score``,
``GridSearchCV``; fitted estimators pickle)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from ._internal.validation import check_int, check_real, check_seed
from .nn.model import MotifMLP
from .recipes import DEFAULT_RECIPE
from .recipes import recipe as get_recipe
from .train.checkpoint import model_from_state
from .train.schedules import epochs_for
from .train.trainer import EarlyStopping, History, RestoreBest, Trainer

__all__ = ["MotifSETClassifier"]


class MotifSETClassifier(ClassifierMixin, BaseEstimator):
    """A sparse (SET / Motif-SET) MLP classifier.

    Every training setting left as ``None`` comes from ``recipe`` (:mod:`motifcore.recipes`);
    the defaults were chosen by the ablation in docs/results.md.

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
    epochs : int, default 20
        Passes over the training data, raised where needed so that the run takes at least
        ``min_steps`` optimizer steps (a 100-sample set is one batch per epoch).
    min_steps : int, default 1000
    recipe : {"motifcore", "paper"}, default "motifcore"
    batch_size, lr, optimizer, momentum, weight_decay, dropout, max_grad_norm : optional
        Override the recipe (see :class:`~motifcore.trainer.Trainer`).
    schedule : {"cosine", "constant", "step"}, optional
        Learning-rate schedule.
    warmup : int or float, optional
        Warmup in epochs (int) or as a fraction of the run (float).
    evolution : {"paper", "set", "cosine", "none", "rigl", "dsr"}, callable, dict or list, optional
        SET evolution schedule (:mod:`motifcore.schedules`), or a mask updater
        (:mod:`motifcore.train.updaters`).
    regrow : {"he", "zero", "pruned"}, optional
        Value of regrown blocks.
    evolve_layers : {"all", "hidden", "input"} or list of int, optional
        Weight layers that evolution changes.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified), stop when its
        accuracy has not improved for ``n_iter_no_change`` epochs, and keep the weights of the
        best epoch.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 10
    seed : int, default 0
        Seed of the initialisation, the shuffling, the evolution and the validation split.
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
    n_epochs_ : int
        Epochs trained (fewer than planned after an early stop).
    best_epoch_ : int or None
        With ``early_stopping``: the epoch whose weights were kept.
    """

    def __init__(
        self,
        hidden_sizes: int | Sequence[int] = (256, 256),
        motif: int | Sequence[Any] = 1,
        density: float = 0.1,
        epsilon: float | None = None,
        epochs: int = 20,
        min_steps: int = 1000,
        recipe: str = DEFAULT_RECIPE,
        batch_size: int | None = None,
        lr: float | None = None,
        optimizer: str | None = None,
        schedule: str | None = None,
        warmup: int | float | None = None,
        evolution: Any = None,
        regrow: str | None = None,
        evolve_layers: str | Sequence[int] | None = None,
        dropout: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        max_grad_norm: float | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        seed: int = 0,
        num_threads: int | None = None,
        verbose: bool | int = False,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.motif = motif
        self.density = density
        self.epsilon = epsilon
        self.epochs = epochs
        self.min_steps = min_steps
        self.recipe = recipe
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.schedule = schedule
        self.warmup = warmup
        self.evolution = evolution
        self.regrow = regrow
        self.evolve_layers = evolve_layers
        self.dropout = dropout
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
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

    def _split(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        frac = check_real(self.validation_fraction, "validation_fraction", 0.0, 1.0, lo_open=True, hi_open=True)
        n_val = int(np.ceil(frac * X.shape[0]))
        n_classes = int(y.max()) + 1
        if n_val < n_classes or X.shape[0] - n_val < n_classes:
            raise ValueError(f"early_stopping: validation_fraction={frac} of {X.shape[0]} samples leaves too few "
                             f"samples for a stratified split of {n_classes} classes")
        from sklearn.model_selection import train_test_split

        seed = int(np.random.SeedSequence([check_seed(self.seed), 0x5A11D]).generate_state(1)[0])
        X_tr, X_val, y_tr, y_val = train_test_split(X, y, test_size=n_val, stratify=y, random_state=seed)
        return (np.ascontiguousarray(X_tr), np.ascontiguousarray(y_tr), np.ascontiguousarray(X_val),
                np.ascontiguousarray(y_val))

    def fit(self, X: Any, y: Any) -> MotifSETClassifier:
        """Train on ``(X, y)``; labels may be any sortable values (strings, -1/1, ...)."""
        X, y = check_X_y(X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"MotifSETClassifier needs at least 2 classes in y; got {len(classes)} class")
        y_enc = y_enc.astype(np.int64, copy=False)
        X_val = y_val = None
        callbacks: list[Any] = []
        if self.early_stopping:
            X, y_enc, X_val, y_val = self._split(X, y_enc)
            best = RestoreBest("val_accuracy")
            callbacks = [EarlyStopping("val_accuracy", patience=check_int(self.n_iter_no_change, "n_iter_no_change")),
                         best]
        batch = get_recipe(self.recipe)["batch_size"] if self.batch_size is None else self.batch_size
        epochs = epochs_for(self.epochs, self.min_steps, X.shape[0], batch)
        model = MotifMLP([X.shape[1], *self._hidden(), len(classes)], motif=self.motif, density=self.density,
                         epsilon=self.epsilon, seed=self.seed, num_threads=self.num_threads)
        trainer = Trainer(model, epochs=epochs, recipe=self.recipe, batch_size=batch, lr=self.lr,
                          optimizer=self.optimizer, lr_schedule=self.schedule, warmup=self.warmup,
                          evolution=self.evolution, regrow=self.regrow, evolve_layers=self.evolve_layers,
                          dropout=self.dropout,
                          momentum=self.momentum, weight_decay=self.weight_decay, max_grad_norm=self.max_grad_norm,
                          seed=self.seed, progress=bool(self.verbose), callbacks=callbacks)
        trainer.fit(X, y_enc, X_val, y_val)
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.model_ = model
        self.history_: History = trainer.history
        self.n_epochs_ = trainer.epoch
        self.best_epoch_ = callbacks[1].best_epoch if callbacks else None
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
