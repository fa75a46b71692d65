"""One run, built, trained and measured the same way for ``motifcore train`` and for every point of
a sweep: :func:`execute` (or its steps :func:`load_data`, :func:`prepare`, :func:`measure`)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.estimate import measure_latency
from ..data import datasets
from ..defaults import DENSITY, EPOCHS, MIN_STEPS, recipe
from ..nn import DivergedError, MotifMLP
from ..train.schedules import epochs_for
from ..train.trainer import Trainer
from .config import RunConfig

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_MIN_STEPS", "RUN_RECORDS", "Run", "copy_run_records", "default_epochs", "execute",
           "load_data", "measure",
           "prepare"]

#: Epochs of a run that does not set them: at least DEFAULT_EPOCHS, and enough for
#: DEFAULT_MIN_STEPS optimizer steps on small data (both owned by motifcore.defaults).
DEFAULT_EPOCHS = EPOCHS
DEFAULT_MIN_STEPS = MIN_STEPS

_DATA_CACHE: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_DATA_CACHE_MAX = 2


def default_epochs(n_train: int, batch_size: int) -> int:
    return epochs_for(DEFAULT_EPOCHS, DEFAULT_MIN_STEPS, n_train, batch_size)


def load_data(config: RunConfig, cache: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``(X, y, X_test, y_test, n_train_available)`` of a run: the dataset split with ``data_seed``
    (standardised, clipped to the run's :meth:`~RunConfig.clip`), then the seeded ``limit_train``
    subsample. ``cache`` keeps the last two in this process (sweep
    workers run many runs on the same data)."""
    key = (config.dataset, config.data_dir, config.data_seed, config.limit_train, config.clip())
    hit = _DATA_CACHE.pop(key, None) if cache else None
    if hit is None:
        X, y, Xt, yt = datasets.load(config.dataset, data_dir=config.data_dir, seed=config.data_seed,
                                     clip=config.clip())
        n_total = int(X.shape[0])
        X, y = datasets.subsample(X, y, config.limit_train, config.data_seed)
        hit = (X, y, Xt, yt, n_total)
    if cache:
        while len(_DATA_CACHE) >= _DATA_CACHE_MAX:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
        _DATA_CACHE[key] = hit
    return hit


@dataclass
class Run:
    """A run ready to train (or trained): its config, data, model and trainer."""

    config: RunConfig
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_train_available: int
    model: MotifMLP
    trainer: Trainer
    status: str = "created"             #: created, ok, diverged
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def facts(self) -> dict[str, Any]:
        """Sizes of the data and the network (stored next to the config)."""
        return {"n_train": int(self.X.shape[0]), "n_train_available": self.n_train_available,
                "n_test": int(self.X_test.shape[0]), "n_classes": self.model.n_classes, "sizes": self.model.sizes}


def prepare(config: RunConfig, *, callbacks: Sequence[Any] = (), progress: bool = False,
            resume_from: Any = None, cache_data: bool = False) -> Run:
    """Load the data and build model and trainer (or restore them from the checkpoint ``resume_from``)."""
    X, y, Xt, yt, n_total = load_data(config, cache=cache_data)
    if resume_from is not None:
        trainer = Trainer.from_checkpoint(resume_from, callbacks=callbacks, progress=progress,
                                          num_threads=config.threads)
        return Run(config, X, y, Xt, yt, n_total, trainer.model, trainer)
    sizes = [int(X.shape[1]), *config.hidden, datasets.n_classes(y, yt)]
    distribution = config.network_distribution()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # a shared output layer was asked for explicitly
        model = MotifMLP(sizes, motif=config.network_motif(sizes[-1]),
                         density=DENSITY if config.density is None else config.density, epsilon=config.epsilon,
                         distribution=distribution, bias=config.bias, seed=config.seed, num_threads=config.threads)
    batch = config.batch_size or recipe(config.recipe)["batch_size"]
    epochs = config.epochs or default_epochs(int(X.shape[0]), batch)
    trainer = Trainer(model, epochs=epochs, callbacks=callbacks, progress=progress,
                      **{**config.trainer_kwargs(), "batch_size": batch})
    return Run(config.replace(epochs=epochs, batch_size=batch, distribution=distribution), X, y, Xt, yt, n_total,
               model, trainer)


def measure(run: Run, latency: tuple[int, int] | None = None) -> dict[str, Any]:
    """Accuracy, timing and size of a trained run (the one set of numbers behind ``summary.json``
    and sweep records); ``latency=(repeats, warmup)`` adds batch-1 latency of ``predict_proba``."""
    model, trainer, h = run.model, run.trainer, run.trainer.history
    last, best = h.last or {}, h.best("val_accuracy")
    times = [t for t in h["train_time"] if t is not None]
    m: dict[str, Any] = {
        "test_accuracy": last.get("val_accuracy"), "test_loss": last.get("val_loss"),
        "best_test_accuracy": best["val_accuracy"] if best else None, "best_epoch": best["epoch"] if best else None,
        "final_train_loss": last.get("train_loss"), "epochs_completed": trainer.epoch, "epochs": trainer.epochs,
        "stopped_early": trainer.stopped_early,
        "unique_params": model.n_params, "active_blocks": model.n_blocks,
        "block_macs_per_sample": model.macs_per_sample, "edges": model.n_edges, "dense_params": model.dense_params,
        # sum of G_out * G_in over the layers: the block count of the same motif network at
        # density 1 -- what the paper's Tables 4-5 call "Params"/"FLOPs" (no biases, no sparsity)
        "dense_blocks": int(sum(layer.groups[0] * layer.groups[1] for layer in model.layers)),
        "mean_s_per_epoch": float(np.mean(times)) if times else None,
        "median_s_per_epoch": float(np.median(times)) if times else None,
        "total_train_s": float(np.sum(times)) if times else 0.0,
        "total_eval_s": float(np.sum([r["eval_time"] or 0.0 for r in h.rows])),
        "total_evolution_s": float(np.sum([r["evolution_time"] or 0.0 for r in h.rows])),
        "total_switch_s": float(np.sum([r.get("switch_time") or 0.0 for r in h.rows])),
    }
    if latency is not None and run.status == "ok":
        lat = measure_latency(model.predict_proba, run.X_test, batch_size=1, repeats=latency[0], warmup=latency[1])
        m.update({"latency_batch1_s": lat.seconds_per_sample, "throughput_batch1_per_s": lat.throughput,
                  "latency_batch1_p90_s": float(np.percentile(lat.batch_times, 90)), "latency_repeats": lat.repeats})
    run.metrics = m
    return m


def execute(config: RunConfig, *, callbacks: Sequence[Any] = (), progress: bool = False,
            on_start: Callable[[Run], None] | None = None, resume_from: Any = None, cache_data: bool = False,
            catch_divergence: bool = False, latency: tuple[int, int] | None = None) -> Run:
    """Build, train and measure one run; returns it (``run.metrics`` filled).

    ``on_start(run)`` is called after building, before training (the CLI writes config.json there).
    With ``catch_divergence`` a diverged run ends with ``status = "diverged"`` instead of raising.
    """
    run = prepare(config, callbacks=callbacks, progress=progress, resume_from=resume_from, cache_data=cache_data)
    if on_start is not None:
        on_start(run)
    try:
        run.trainer.fit(run.X, run.y, run.X_test, run.y_test)
        run.status = "ok"
    except DivergedError as exc:      # TrainingDivergedError, or a divergence seen by evaluate
        if not catch_divergence:
            raise
        run.status, run.error = "diverged", str(exc)
    measure(run, latency)
    return run


#: the records of a finished ``motifcore train`` run folder (its checkpoint is not one of them)
RUN_RECORDS = ("config.json", "metrics.jsonl", "summary.json")


def copy_run_records(work: Path | str, dest: Path | str, finished: bool = True) -> None:
    """Copy the records (:data:`RUN_RECORDS`) a run folder ``work`` holds into ``dest``, each through
    a temporary file and a rename (a reader never sees half a file). An unfinished run
    (``finished=False``) leaves a ``PARTIAL`` file in ``dest`` that says how many metric rows it
    has; a finished one removes it. The long-run scripts (Table 4 protocol, paper ablation, motif
    curriculum) commit their records this way while a run is still going."""
    work, dest = Path(work), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in RUN_RECORDS:
        if (work / name).is_file():
            tmp = dest / (name + ".tmp")
            shutil.copyfile(work / name, tmp)
            tmp.replace(dest / name)
    marker = dest / "PARTIAL"
    if finished:
        marker.unlink(missing_ok=True)
    else:
        metrics = work / "metrics.jsonl"
        rows = sum(1 for _ in open(metrics)) if metrics.is_file() else 0
        marker.write_text(f"unfinished: {rows} metric rows so far; the run continues with --resume\n")
