"""scikit-learn estimator: :class:`MotifSETClassifier` (works in ``Pipeline``, ``cross_val_score``,
``GridSearchCV``; fitted estimators pickle; passes ``check_estimator``).

A ``MotifSETRegressor`` is not provided: the engine's loss is softmax cross-entropy, computed
natively inside the epoch call, and not pluggable (an MSE head would need a second loss in the
C++ engine).
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from ._internal.validation import check_int, check_real, check_seed
from .defaults import DEFAULT_RECIPE, DENSITY, MIN_STEPS
from .defaults import recipe as get_recipe
from .nn import MotifMLP
from .train.callbacks import EarlyStopping, RestoreBest
from .train.checkpoint import model_from_state
from .train.history import History
from .train.schedules import epochs_for
from .train.trainer import Trainer

__all__ = ["ESTIMATOR_EPOCHS", "ESTIMATOR_HIDDEN", "SELECTION", "SMALL_DATA", "MotifSETClassifier", "MotifSETSelector"]

#: The estimator's own default epochs (the rest of the package uses motifcore.defaults.EPOCHS,
#: 50). An estimator is fitted many times over (cross-validation, grid searches) and is held to
#: MLPClassifier's fit time (docs/results.md, section 1); 20 epochs, raised to at least
#: ``min_steps`` optimizer steps on small data, is where the ablation there measured it.
ESTIMATOR_EPOCHS = 20

#: The estimator's default hidden layers.
ESTIMATOR_HIDDEN = (256, 256)

#: The small-data budget: the network, learning rate and optimizer steps of a fit whose training
#: set fits in one batch (full-batch training), in place of ``ESTIMATOR_HIDDEN``, the recipe's
#: rate and ``MIN_STEPS``, with the ``"motifcore"`` recipe and its batch size and optimizer, when
#: none of the three is given (``MotifSETClassifier._small_data``).
#: The default budget there is 1000 full-batch steps, about five times ``MLPClassifier``'s fit
#: time on TOX-171; this one is 300 steps of a network a quarter as wide at about three times the
#: rate, about half the MLP's time and within 2 points of scikit-learn's better model on the
#: wide, tiny sets it was measured on (docs/results.md, "Round six").
SMALL_DATA: dict[str, Any] = {"hidden_sizes": (64, 64), "lr": 1e-2, "min_steps": 300}


class MotifSETClassifier(ClassifierMixin, BaseEstimator):
    """A sparse (SET / Motif-SET) MLP classifier.

    Every training setting left as ``None`` comes from ``recipe`` (:mod:`motifcore.recipes`);
    the defaults were chosen by the ablation in docs/results.md.

    Parameters
    ----------
    hidden_sizes : int or sequence of int, optional
        Hidden layer widths. Default: (256, 256) (:data:`ESTIMATOR_HIDDEN`), or the small-data
        budget's (64, 64) (see ``min_steps``).
    motif : int or sequence, default 1
        Motif size of the hidden layers (the output layer keeps m = 1), or one entry per layer
        (``len(hidden_sizes) + 1`` entries, e.g. ``[2, 2, 1]``).
    density : float, default 0.1
        Block density of the hidden layers; the output layer is dense (the recipe's network,
        :data:`motifcore.defaults.DISTRIBUTIONS`; the ``"paper"`` recipe puts every layer at
        ``density``). Ignored where ``epsilon`` is given.
    epsilon : float, optional
        SET's density parameterisation instead of ``density``.
    epochs : int, default 20 (:data:`ESTIMATOR_EPOCHS`, which says why it is not the package's 50)
        Passes over the training data, raised where needed so that the run takes at least
        ``min_steps`` optimizer steps (a 100-sample set is one batch per epoch).
    min_steps : int, optional
        Default: 1000 (:data:`motifcore.defaults.MIN_STEPS`). **Small data**: when the training
        set (after the ``early_stopping`` split) fits in one batch of the recipe's size and none
        of ``hidden_sizes``, ``lr``, ``min_steps``, ``batch_size`` and ``optimizer`` is given, a
        ``"motifcore"``-recipe fit takes the small-data budget :data:`SMALL_DATA` instead (hidden
        (64, 64), lr 1e-2, at least 300 steps; ``small_data_`` says whether it did). Giving any
        of the five keeps the defaults of the others. ``partial_fit`` on an unfitted estimator
        uses the defaults; after a small-data ``fit`` it continues at the small-data rate.
    recipe : {"motifcore", "paper"}, default "motifcore"
    batch_size, lr, optimizer, momentum, weight_decay, dropout, label_smoothing, max_grad_norm : optional
        Override the recipe (see :class:`~motifcore.trainer.Trainer`).
    input_clip : float, optional
        Clip every feature to its training mean ± ``input_clip`` standard deviations, in ``fit``
        and in every prediction (on standardised features: to ``[-input_clip, input_clip]``, what
        ``motifcore train`` does to its inputs); 0: not clipped. Default: the recipe's
        (``"motifcore"``: 3, :data:`motifcore.defaults.INPUT_CLIP`; ``"paper"``: 0). A rare
        feature (a word in few documents, a pixel almost always 0) is otherwise a value of tens of
        standard deviations after standardisation. ``partial_fit`` on an unfitted estimator does
        not clip (the statistics of one batch are not the data's); after ``fit`` it clips as
        ``fit`` did.
    schedule : {"cosine", "constant", "step"}, optional
        Learning-rate schedule.
    warmup : int or float, optional
        Warmup in epochs (int) or as a fraction of the run (float).
    evolution : a name of :data:`motifcore.defaults.EVOLUTIONS`, callable, dict or list, optional
        How the block pattern changes (default: the recipe's; ``"set"`` is SET), see
        :class:`~motifcore.train.trainer.Trainer`.
    regrow : {"he", "zero", "pruned", "normal"}, optional
        Value of regrown blocks (default: the evolution's own).
    evolve_layers : {"all", "hidden", "input"} or list of int, optional
        Weight layers that evolution changes (default: the evolution's own).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified), stop when its
        accuracy has not improved for ``n_iter_no_change`` epochs, and keep the weights of the
        best epoch.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 10
    shuffle : bool, default True
        Visit the samples in a new random order every epoch (``False``: in the given order).
    random_state : int, RandomState instance or None, default 0
        Seed of the initialisation, the shuffling, the evolution and the validation split
        (``None``: a fresh seed from NumPy's global generator at each ``fit``).
    n_jobs : int, optional
        Threads of the native engine: ``None`` all available (or ``$MOTIFCORE_NUM_THREADS``),
        ``-1`` all cores, ``-2`` all but one, ... Results do not depend on it.
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
    small_data_ : bool
        Whether ``fit`` used the small-data budget (see ``min_steps``).
    n_iter_ : int
        Epochs trained (fewer than planned after an early stop; one more per ``partial_fit``).
    loss_curve_ : list of float
        Mean training loss of every epoch.
    validation_scores_ : list of float or None
        With ``early_stopping``: the validation accuracy of every epoch.
    best_validation_score_ : float or None
        With ``early_stopping``: the best validation accuracy, whose weights were kept.
    best_epoch_ : int or None
        With ``early_stopping``: the epoch whose weights were kept.
    input_bounds_ : tuple of two ndarrays of shape (n_features_in_,), or None
        The per-feature lower and upper bounds inputs are clipped to (``None``: not clipped).
    feature_importances_ : ndarray of shape (n_features_in_,)
        The strength of each feature's input neuron (the sum of ``|weight|`` of its active blocks
        in the first layer, a block counted once per feature it covers;
        :func:`motifcore.analysis.features.input_strength`), normalised to sum 1 as scikit-learn's
        importances are. ``sklearn.feature_selection.SelectFromModel`` reads it.
    """

    def __init__(
        self,
        hidden_sizes: int | Sequence[int] | None = None,
        motif: int | Sequence[Any] = 1,
        density: float = DENSITY,
        epsilon: float | None = None,
        epochs: int = ESTIMATOR_EPOCHS,
        min_steps: int | None = None,
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
        label_smoothing: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        max_grad_norm: float | None = None,
        input_clip: float | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        shuffle: bool = True,
        random_state: Any = 0,
        n_jobs: int | None = None,
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
        self.label_smoothing = label_smoothing
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.input_clip = input_clip
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ---- parameters ---------------------------------------------------------------------------
    def _seed(self) -> int:
        """The run's seed: ``random_state`` as an int."""
        rs = self.random_state
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
            return check_seed(rs)
        if rs is None or isinstance(rs, (np.random.RandomState, np.random.Generator)):
            gen = rs if isinstance(rs, np.random.Generator) else check_random_state(rs)
            return int(gen.integers(2**31) if isinstance(gen, np.random.Generator) else gen.randint(2**31))
        raise TypeError(f"random_state must be an int, a RandomState, a Generator or None, got {rs!r}")

    def _threads(self) -> int | None:
        """Threads of the engine from ``n_jobs``."""
        n = self.n_jobs
        if n is None:
            return None
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n == 0:
            raise ValueError(f"n_jobs must be a non-zero integer or None, got {n!r}")
        return int(n) if n > 0 else max(1, (os.cpu_count() or 1) + 1 + int(n))

    def _small_data(self, n_samples: int) -> bool:
        """Whether a fit on ``n_samples`` training samples takes the small-data budget."""
        return (self.hidden_sizes is None and self.lr is None and self.min_steps is None
                and self.batch_size is None and self.optimizer is None
                and self.recipe == "motifcore" and n_samples <= self._batch_size())

    def _budget(self, n_samples: int) -> tuple[list, float | None, int]:
        """Hidden widths, learning rate (None: the recipe's) and minimum steps of a fit on
        ``n_samples`` training samples."""
        if self._small_data(n_samples):
            return list(SMALL_DATA["hidden_sizes"]), SMALL_DATA["lr"], SMALL_DATA["min_steps"]
        return self._hidden(), self.lr, MIN_STEPS if self.min_steps is None else self.min_steps

    def _hidden(self) -> list:
        h = ESTIMATOR_HIDDEN if self.hidden_sizes is None else self.hidden_sizes
        if isinstance(h, (int, np.integer)) and not isinstance(h, bool):
            return [int(h)]
        if isinstance(h, (str, bytes)) or not hasattr(h, "__iter__"):
            raise TypeError(f"hidden_sizes must be an int or a sequence of ints, got {h!r}")
        return list(cast("Sequence[int]", h))

    def _split(self, X: np.ndarray, y: np.ndarray, seed: int | None = None) -> tuple[np.ndarray, ...]:
        seed = self._seed() if seed is None else seed
        frac = check_real(self.validation_fraction, "validation_fraction", 0.0, 1.0, lo_open=True, hi_open=True)
        n_val = int(np.ceil(frac * X.shape[0]))
        n_classes = int(y.max()) + 1
        if n_val < n_classes or X.shape[0] - n_val < n_classes:
            raise ValueError(f"early_stopping: validation_fraction={frac} of {X.shape[0]} samples leaves too few "
                             f"samples for a stratified split of {n_classes} classes")
        from sklearn.model_selection import train_test_split

        split_seed = int(np.random.SeedSequence([seed, 0x5A11D]).generate_state(1)[0])
        X_tr, X_val, y_tr, y_val = train_test_split(X, y, test_size=n_val, stratify=y, random_state=split_seed)
        return (np.ascontiguousarray(X_tr), np.ascontiguousarray(y_tr), np.ascontiguousarray(X_val),
                np.ascontiguousarray(y_val))

    def _clip(self) -> float:
        """The input clip in standard deviations: ``input_clip``, else the recipe's (0: none)."""
        c = get_recipe(self.recipe)["input_clip"] if self.input_clip is None else self.input_clip
        return check_real(c, "input_clip", 0.0)

    def _bounds(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-feature clipping bounds of training data ``X`` (None: no clipping)."""
        c = self._clip()
        if not c:
            return None
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        std[~(std >= 1e-8)] = 1.0          # a constant feature: as the loaders' z-score (unit scale)
        return (mean - c * std).astype(np.float32), (mean + c * std).astype(np.float32)

    @staticmethod
    def _clipped(X: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        return X if bounds is None else np.ascontiguousarray(np.clip(X, bounds[0], bounds[1]), dtype=np.float32)

    def _batch_size(self) -> int:
        return int(get_recipe(self.recipe)["batch_size"] if self.batch_size is None else self.batch_size)

    def _new_model(self, n_features: int, n_classes: int, seed: int, threads: int | None,
                   hidden: list | None = None) -> MotifMLP:
        dist = None if self.epsilon is not None else get_recipe(self.recipe)["distribution"]
        hidden = self._hidden() if hidden is None else hidden
        return MotifMLP([n_features, *hidden, n_classes], motif=self.motif, density=self.density,
                        epsilon=self.epsilon, distribution=dist, seed=seed, num_threads=threads)

    def _trainer(self, model: MotifMLP, epochs: int, seed: int, callbacks: list[Any], lr: float | None = None,
                 **fixed: Any) -> Trainer:
        given = {"lr_schedule": self.schedule, "warmup": self.warmup, "evolution": self.evolution, **fixed}
        return Trainer(model, epochs=epochs, recipe=self.recipe, batch_size=self._batch_size(),
                       lr=self.lr if lr is None else lr,
                       optimizer=self.optimizer, regrow=self.regrow, evolve_layers=self.evolve_layers,
                       dropout=self.dropout, label_smoothing=self.label_smoothing, momentum=self.momentum,
                       weight_decay=self.weight_decay,
                       max_grad_norm=self.max_grad_norm, seed=seed, shuffle=self.shuffle,
                       progress=bool(self.verbose), callbacks=callbacks, **given)

    def fit(self, X: Any, y: Any) -> MotifSETClassifier:
        """Train on ``(X, y)``; labels may be any sortable values (strings, -1/1, ...)."""
        X, y = check_X_y(X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"MotifSETClassifier needs at least 2 classes in y; got {len(classes)} class")
        y_enc = y_enc.astype(np.int64, copy=False)
        seed, threads = self._seed(), self._threads()
        n_features = X.shape[1]
        bounds = self._bounds(X)
        X = self._clipped(X, bounds)
        X_val = y_val = None
        callbacks: list[Any] = []
        if self.early_stopping:
            X, y_enc, X_val, y_val = self._split(X, y_enc, seed)
            best = RestoreBest("val_accuracy")
            callbacks = [EarlyStopping("val_accuracy", patience=check_int(self.n_iter_no_change, "n_iter_no_change")),
                         best]
        hidden, lr, min_steps = self._budget(X.shape[0])
        epochs = epochs_for(self.epochs, min_steps, X.shape[0], self._batch_size())
        model = self._new_model(n_features, len(classes), seed, threads, hidden)
        trainer = self._trainer(model, epochs, seed, callbacks, lr)
        trainer.fit(X, y_enc, X_val, y_val)
        self.small_data_ = self._small_data(X.shape[0])
        self._run_seed = seed
        self.classes_ = classes
        self.n_features_in_ = n_features
        self.input_bounds_ = bounds
        self.model_ = model
        self._finish(trainer.history, callbacks[1].best_epoch if callbacks else None)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MotifSETClassifier:
        """One pass (epoch) over ``(X, y)`` in mini-batches, continuing from the current weights
        and optimizer state; ``classes`` (every label that will ever be seen) is required on the
        first call. The learning rate is the constant ``lr`` (or the recipe's) and there is no
        evolution and no early stopping: schedules need the length of the run, which
        ``partial_fit`` does not know. Calls on the successive batches of a stream train as
        ``fit`` does on their concatenation with ``schedule="constant"``, ``warmup=0``,
        ``evolution="none"`` and ``shuffle=False`` (each call's batch a multiple of
        ``batch_size``); with ``shuffle=True``, ``k`` calls on the whole set train as ``fit``
        with ``epochs=k``.
        """
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if classes is not None:
            classes = np.unique(np.asarray(classes))
            if not first and not np.array_equal(classes, self.classes_):
                raise ValueError(f"classes={classes!r} is not the same as on the first call to partial_fit "
                                 f"({self.classes_!r})")
            if len(classes) < 2:
                raise ValueError(f"MotifSETClassifier needs at least 2 classes; got {len(classes)} class")
        X, y = check_X_y(X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        if not first and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        known = classes if first else self.classes_
        unseen = np.setdiff1d(y, known)
        if unseen.size:
            raise ValueError(f"y holds labels not in classes: {unseen[:5]!r}")
        y_enc = np.searchsorted(known, y).astype(np.int64)
        if not first:
            X = self._clipped(X, getattr(self, "input_bounds_", None))
        if first:                   # nothing is set before the input has passed every check
            self.classes_ = known
            self.n_features_in_ = X.shape[1]
            self.input_bounds_ = None
            self.small_data_ = False
            self._run_seed = self._seed()
            self.model_ = self._new_model(X.shape[1], len(self.classes_), self._run_seed, self._threads())
            history = History()
        else:
            history = self.history_
        done = len(history)
        # after a small-data fit, the network is SMALL_DATA's: go on at its rate
        lr = SMALL_DATA["lr"] if self.lr is None and getattr(self, "small_data_", False) else None
        trainer = self._trainer(self.model_, done + 1, getattr(self, "_run_seed", 0), [], lr,
                                lr_schedule="constant", warmup=0, evolution="none")
        trainer.progress = False
        trainer.epoch = done           # this pass is epoch done + 1 (its shuffling seed, as in fit)
        trainer.fit(X, y_enc)
        for row in trainer.history.rows:
            history.append(row)
        self._finish(history, None)
        return self

    def _finish(self, history: History, best_epoch: int | None) -> None:
        self.history_: History = history
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(v) for v in history["train_loss"]]
        self.best_epoch_ = best_epoch
        if self.early_stopping and best_epoch is not None:
            self.validation_scores_: list | None = [float(v) for v in history["val_accuracy"]]
            self.best_validation_score_: float | None = self.validation_scores_[best_epoch - 1]
        else:
            self.validation_scores_ = self.best_validation_score_ = None

    @property
    def feature_importances_(self) -> np.ndarray:
        """Input-neuron strengths of the fitted network, normalised to sum 1 (see the class docstring)."""
        check_is_fitted(self, "model_")
        from .analysis.features import input_strength

        return input_strength(self.model_, normalize=True)

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = check_array(X, dtype=np.float32, order="C")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        return self._clipped(X, getattr(self, "input_bounds_", None))

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
            self.model_ = model_from_state(blob["config"], blob["state"], self._threads())


#: The ``selection`` preset: the :class:`MotifSETClassifier` settings that :class:`MotifSETSelector`
#: trains to rank features. docs/feature_selection.md chose them against the estimator's defaults
#: on two development splits (seeds 3 and 4) that the reported grid (seeds 0, 1, 2) does not use.
#: Against the defaults: one hidden layer of 128 instead of 256-256; at least 300 optimizer steps
#: instead of 1000 (a 48-sample set trains 300 full-batch steps, not 1000); Adam with L2 weight
#: decay 5e-2 in the gradient instead of the recipe's AdamW (an input connection that the loss
#: does not sustain shrinks towards 0, so the strength stops carrying its random initial
#: magnitude; the ranking was chosen with it, and without label smoothing); and the
#: ``"input-cosine"`` evolution every 10 optimizer steps instead of every 100 (ten times as many
#: prune-and-regrow-at-zero rounds on the input layer). Everything else is the ``"motifcore"``
#: recipe's.
SELECTION: dict[str, Any] = {
    "hidden_sizes": (128,), "min_steps": 300, "optimizer": "adam", "weight_decay": 5e-2, "label_smoothing": 0.0,
    "evolution": {"preset": "input-cosine", "interval": 10},
}


class MotifSETSelector(SelectorMixin, BaseEstimator):
    """Feature selection by the input neurons of a sparse network trained with the ``selection``
    preset (:data:`SELECTION`).

    ``fit`` trains a :class:`MotifSETClassifier` with :data:`SELECTION` (updated by
    ``estimator_params``) and ranks the features by ``importance`` of its fitted network
    (:func:`motifcore.analysis.features.input_strength`); ``transform`` keeps the
    ``n_features_to_select`` first of the ranking. It works wherever a scikit-learn selector does
    (``Pipeline``, ``get_support``, ``inverse_transform``).

    Parameters
    ----------
    n_features_to_select : int, float or None, default None
        Features kept: an int ``>= 1`` (at most the number of features), a float in ``(0, 1]``
        (that fraction of the features, rounded down, at least 1) or ``None`` (half, rounded down,
        at least 1; as ``RFE``).
    importance : {"path", "block", "edge"}, default "path"
        ``"path"``: the path strength ``|W_1|^T ... |W_L|^T 1`` (the sum over input-to-output
        paths of the product of ``|weight|``); ``"block"``: the input-neuron strength of
        ``MotifSETClassifier.feature_importances_`` (QuickSelection's strength for ``m = 1``);
        ``"edge"``: the column sums of the first layer's ``|W|``.
    estimator_params : dict, optional
        Settings of :class:`MotifSETClassifier` that replace or extend :data:`SELECTION` (e.g.
        ``{"hidden_sizes": (256, 256)}``); a dict value updates a dict of the preset
        (``{"evolution": {"interval": 20}}`` keeps the preset's evolution and changes its
        interval); ``random_state`` and ``n_jobs`` are this selector's. A fit whose strengths are
        all 0 warns (the ranking is then the feature order).
    random_state : int, RandomState instance or None, default 0
    n_jobs : int, optional
        As :class:`MotifSETClassifier`'s.

    Attributes
    ----------
    estimator_ : MotifSETClassifier
        The fitted network.
    feature_importances_ : ndarray of shape (n_features_in_,)
        The ``importance`` of every feature, normalised to sum 1.
    ranking_ : ndarray of shape (n_features_in_,)
        Feature indices by decreasing importance, ties by increasing index.
    n_features_ : int
        The number of selected features.
    n_features_in_ : int
    """

    def __init__(
        self,
        n_features_to_select: int | float | None = None,
        importance: str = "path",
        estimator_params: dict[str, Any] | None = None,
        random_state: Any = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.n_features_to_select = n_features_to_select
        self.importance = importance
        self.estimator_params = estimator_params
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _n_select(self, n_features: int) -> int:
        k = self.n_features_to_select
        if k is None:
            return max(1, n_features // 2)
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            if not 1 <= k <= n_features:
                raise ValueError(f"n_features_to_select={k} must be between 1 and the {n_features} features of X")
            return int(k)
        if isinstance(k, (float, np.floating)) and 0 < k <= 1:
            return max(1, int(k * n_features))
        raise ValueError(f"n_features_to_select must be an int >= 1, a float in (0, 1] or None, got {k!r}")

    def fit(self, X: Any, y: Any) -> MotifSETSelector:
        """Train the network on ``(X, y)`` and rank the features."""
        from .analysis.features import LEVELS, input_strength

        if self.importance not in LEVELS:
            raise ValueError(f"importance must be one of {', '.join(LEVELS)}, got {self.importance!r}")
        params = self.estimator_params or {}
        if not isinstance(params, dict):
            raise TypeError(f"estimator_params must be a dict, got {type(params).__name__}")
        own = sorted({"random_state", "n_jobs"} & set(params))
        if own:
            raise ValueError(f"estimator_params sets {', '.join(own)}: pass them to MotifSETSelector itself")
        unknown = sorted(set(params) - set(MotifSETClassifier().get_params()))
        if unknown:
            raise ValueError(f"estimator_params has settings MotifSETClassifier does not know: {', '.join(unknown)}")
        X, y = check_X_y(X, y, dtype=np.float32, order="C")
        k = self._n_select(X.shape[1])
        settings = copy.deepcopy(SELECTION)
        for key, value in params.items():
            # a dict updates the preset's dict (e.g. {"evolution": {"interval": 20}} keeps its preset)
            both = isinstance(value, dict) and isinstance(settings.get(key), dict)
            settings[key] = {**settings[key], **value} if both else value
        settings.update(random_state=self.random_state, n_jobs=self.n_jobs)
        est = MotifSETClassifier(**settings)
        est.fit(X, y)
        self.estimator_ = est
        self.n_features_in_ = X.shape[1]
        self.feature_importances_ = input_strength(est.model_, level=self.importance, normalize=True)
        if not np.any(self.feature_importances_):
            warnings.warn("every feature has strength 0 (no input block reaches the output): the ranking is the "
                          "feature order and selects nothing in particular", RuntimeWarning, stacklevel=2)
        self.ranking_ = np.argsort(-self.feature_importances_, kind="stable").astype(np.int64)
        self.n_features_ = k
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "ranking_")
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.ranking_[:self.n_features_]] = True
        return mask
