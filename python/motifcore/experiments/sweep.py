"""Parameter sweeps: a grid of full training runs executed in parallel through Dask distributed.

A *sweep spec* (a dict, or a ``.json`` / ``.toml`` file holding one) names a grid::

    datasets x motif sizes (or per-layer schedules) x densities (sparsities) x learning rates x seeds

and the recipe every run shares (epochs, hidden widths, batch size, schedules, ...). Every point
of the grid is one *run*: a complete :class:`~motifcore.Trainer` fit of a fresh
:class:`~motifcore.MotifMLP`. Runs go to a Dask cluster -- a :class:`distributed.LocalCluster`
sized to the machine by default, or any running scheduler (``scheduler="tcp://host:8786"``) to
spread a sweep over many machines. Workers load the datasets themselves (only names travel), so
every worker machine needs motifcore installed and the data files at ``data_dir`` (or under
``$MOTIFCORE_DATA``); results travel back to the client, which alone writes the sweep folder, so
the workers need no shared file system. Start remote workers with ``dask worker tcp://host:8786
--nthreads 2 --resources motifcore_run=1`` to run one run per worker with all its threads.

Every finished run is stored at once by the client, under the sweep folder::

    <out>/sweep.json                 the spec and the list of run configurations (latest call)
    <out>/runs/<run_id>.json         one record per finished run (written atomically, last)
    <out>/checkpoints/<run_id>.npz   the trained model (motifcore.checkpoint format)
    <out>/errors/<run_id>.json       runs that raised (not counted as done; retried on resume)

``run_id`` is derived from the run's configuration alone (a readable prefix plus a SHA-256 of the
canonical JSON of everything that changes the result), so calling :func:`run_sweep` again on the
same folder skips every run already stored: an interrupted sweep resumes where it stopped, and
widening a grid only runs the new points.

Spec keys (defaults in :data:`DEFAULTS`)
-----------------------------------------
``datasets`` (required)
    Names for :func:`motifcore.datasets.load`. An entry may also be a dict ``{"name": ...}`` with
    any other spec key to override it for that dataset (e.g. its own ``hidden`` or ``epochs``).
``motifs``
    Motif sizes: an int (hidden layers share ``m x m`` blocks, the output layer keeps ``m = 1``)
    or a per-layer schedule, a list with one entry per weight layer (``[2, 2, 1, 1]`` for three
    hidden layers is the paper's Table 6 schedule).
``densities`` or ``sparsities``
    Block density ``d`` of every layer, or sparsity ``s = 1 - d`` (give one of the two).
``lrs``, ``seeds``
    Peak learning rates and seeds (the seed drives init, shuffling and evolution).
``hidden``, ``epochs``, ``batch_size``, ``lr_schedule``, ``warmup``, ``momentum``,
``weight_decay``, ``dropout``, ``evolution``, ``evolution_params``, ``eval_every``, ``epsilon``
    The recipe (see :class:`~motifcore.Trainer` and :class:`~motifcore.MotifMLP`); the defaults
    are the paper's (Table 3) except ``epochs``.
``baseline_narrow``
    If true, add for every integer ``m > 1`` a plain SET run (``m = 1``) with every hidden width
    divided by ``m`` (rounded up): the honest baseline of DESIGN.md §4.3, with about the same
    number of unique multiplies as Motif-SET at ``m``.
``data_dir``, ``data_seed``, ``limit_train``
    Where the data live (not part of the run identity), the seed of the 2:1 split of datasets
    without an official split, and an optional seeded subsample of the training set.
``latency_repeats``, ``latency_warmup``
    Batch-1 latency measurement of the trained model (:func:`motifcore.estimate.measure_latency`
    on ``predict_proba``).
``checkpoint``
    Store the trained model of every run (default true).
``threads_per_run``
    Engine threads of one run (default: all threads of the worker when the worker runs one run
    at a time, else 1).

Each stored record holds the configuration, the final and best test accuracy, the full
:class:`~motifcore.History`, unique parameters, active blocks (= block MACs per sample), edges,
dense-equivalent parameters, mean seconds per epoch (training iterations only), the measured
batch-1 latency and throughput, the checkpoint path, and where and when it ran.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

__all__ = [
    "DEFAULTS",
    "RESOURCE",
    "SweepResult",
    "add_cli",
    "execute_run",
    "expand_runs",
    "load_runs",
    "load_spec",
    "normalize_spec",
    "run_id",
    "run_sweep",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Dask worker resource that makes a worker run one run at a time (with all its threads).
#: Local clusters declare it; for your own workers: ``dask worker ADDR --nthreads 4 --resources
#: motifcore_run=1``. Without it, a worker runs ``nthreads`` runs at once, one thread each.
RESOURCE = "motifcore_run"

#: Spec defaults: the paper's recipe (Table 3, Sec. 3.2-3.3) except the number of epochs.
DEFAULTS: dict[str, Any] = {
    "name": "sweep",
    "hidden": [3000, 3000, 3000],
    "motifs": [1],
    "densities": None,          # -> [0.1] unless "sparsities" is given
    "sparsities": None,
    "epsilon": None,
    "lrs": [0.01],
    "seeds": [0],
    "epochs": 30,
    "batch_size": 128,
    "lr_schedule": "cosine",
    "warmup": 5,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "dropout": 0.0,
    "evolution": "paper",
    "evolution_params": {},
    "eval_every": 1,
    "baseline_narrow": False,
    "data_dir": None,
    "data_seed": 0,
    "limit_train": None,
    "latency_repeats": 200,
    "latency_warmup": 20,
    "checkpoint": True,
    "threads_per_run": None,
}

# Keys that change what a run computes (hashed into its run_id), in a fixed order.
_IDENTITY = ("dataset", "variant", "base_motif", "hidden", "motif", "density", "epsilon", "lr", "seed",
             "epochs", "batch_size", "lr_schedule", "warmup", "momentum", "weight_decay", "dropout",
             "evolution", "evolution_params", "eval_every", "data_seed", "limit_train")
# Keys that only say how or where a run executes.
_EXECUTION = ("data_dir", "latency_repeats", "latency_warmup", "checkpoint", "threads_per_run")
_PER_DATASET = set(DEFAULTS) - {"name"}


# ------------------------------------------------------------------------------------------------
# spec
# ------------------------------------------------------------------------------------------------


def load_spec(path: PathLike) -> dict[str, Any]:
    """Read a sweep spec from a ``.json`` or ``.toml`` file (TOML needs Python >= 3.11 or
    ``tomli``); returns the raw dict (see :func:`normalize_spec`)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read sweep spec {p}: {exc.strerror or exc}") from None
    if p.suffix.lower() == ".toml":
        try:
            import tomllib  # type: ignore[import-not-found]
        except ImportError:  # Python < 3.11
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError:
                raise ValueError(f"{p}: reading TOML needs Python >= 3.11 or the 'tomli' package") from None
        try:
            data = tomllib.loads(text)
        except Exception as exc:  # noqa: BLE001 - tomllib.TOMLDecodeError
            raise ValueError(f"{p}: invalid TOML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TypeError(f"{p}: a sweep spec must be a JSON/TOML object (table), got {type(data).__name__}")
    return data


def _as_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"sweep spec: {key!r} must not be empty")
        return list(value)
    return [value]


def _pos_int(v: Any, what: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or int(v) < minimum:
        raise ValueError(f"sweep spec: {what} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _pos_float(v: Any, what: str, lo: float = 0.0, hi: float = math.inf, hi_closed: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"sweep spec: {what} must be a number, got {v!r}")
    if not (v > lo and (v <= hi if hi_closed else v < hi)):
        raise ValueError(f"sweep spec: {what} must be in ({lo:g}, {hi:g}{']' if hi_closed else ')'}, got {v!r}")
    return float(v)


def _norm_motif(m: Any, n_layers: int) -> int | list[Any]:
    """An int motif size, or a per-layer list of ints / [m_out, m_in] pairs of length n_layers."""
    if isinstance(m, str):
        toks = [t for t in re.split(r"[,\s]+", m.strip()) if t]
        m = [_motif_token(t) for t in toks] if len(toks) != 1 else _motif_token(toks[0])
    if isinstance(m, (list, tuple)):
        items: list[Any] = []
        for e in m:
            if isinstance(e, (list, tuple)):
                if len(e) != 2:
                    raise ValueError(f"sweep spec: a rectangular motif is [m_out, m_in], got {e!r}")
                items.append([_pos_int(e[0], "motif size"), _pos_int(e[1], "motif size")])
            else:
                items.append(_pos_int(e, "motif size"))
        if len(items) != n_layers:
            raise ValueError(f"sweep spec: per-layer motif schedule {items} has {len(items)} entries, the "
                             f"network has {n_layers} weight layers (len(hidden) + 1)")
        if all(isinstance(e, int) for e in items) and len(set(items[:-1])) == 1 and items[-1] == 1 \
                and n_layers > 1:
            return int(items[0])      # [m, m, ..., 1] is exactly the uniform m
        return items
    return _pos_int(m, "motif size")


def _motif_token(t: str) -> Any:
    t = t.lower()
    try:
        if "x" in t:
            a, b = t.split("x")
            return [int(a), int(b)]
        return int(t)
    except ValueError:
        raise ValueError(f"sweep spec: bad motif {t!r} (an integer or AxB)") from None


def normalize_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a spec and fill in the defaults. Returns a new dict whose ``datasets`` is a list of
    dicts, each with every per-dataset key resolved (its own overrides, else the top level)."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"a sweep spec must be a mapping, got {type(spec).__name__}")
    unknown = set(spec) - set(DEFAULTS) - {"datasets"}
    if unknown:
        raise ValueError(f"sweep spec: unknown key(s) {sorted(unknown)}; known: {sorted(set(DEFAULTS) | {'datasets'})}")
    if "datasets" not in spec:
        raise ValueError("sweep spec: 'datasets' is required (e.g. [\"digits\"])")
    top = copy.deepcopy(DEFAULTS)
    top.update(copy.deepcopy(dict(spec)))
    out: dict[str, Any] = {"name": str(top["name"]), "datasets": []}
    for entry in _as_list(top["datasets"], "datasets"):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ValueError(f"sweep spec: a dataset is a name or a table with 'name', got {entry!r}")
        bad = set(entry) - _PER_DATASET - {"name"}
        if bad:
            raise ValueError(f"sweep spec: dataset {entry['name']!r}: unknown key(s) {sorted(bad)}")
        d = {k: copy.deepcopy(top[k]) for k in _PER_DATASET}
        if "densities" in entry or "sparsities" in entry:     # an override replaces both
            d["densities"] = d["sparsities"] = None
        d.update(copy.deepcopy({k: v for k, v in entry.items() if k != "name"}))
        d["name"] = str(entry["name"])
        out["datasets"].append(_check_dataset_spec(d))
    names = [d["name"] for d in out["datasets"]]
    if len(set(names)) != len(names):
        raise ValueError(f"sweep spec: dataset listed twice in {names}")
    return out


def _check_dataset_spec(d: dict[str, Any]) -> dict[str, Any]:
    where = f"dataset {d['name']!r}"
    d["hidden"] = [_pos_int(h, f"{where}: hidden width") for h in _as_list(d["hidden"], "hidden")]
    n_layers = len(d["hidden"]) + 1
    d["motifs"] = [_norm_motif(m, n_layers) for m in _as_list(d["motifs"], "motifs")]
    if d["densities"] is not None and d["sparsities"] is not None:
        raise ValueError(f"sweep spec: {where}: give 'densities' or 'sparsities', not both")
    if d["sparsities"] is not None:
        d["densities"] = [1.0 - _pos_float(s, f"{where}: sparsity", -1e-300, 1.0, hi_closed=False)
                          for s in _as_list(d["sparsities"], "sparsities")]
    elif d["densities"] is None:
        d["densities"] = [0.1]
    d["densities"] = [round(_pos_float(x, f"{where}: density", 0.0, 1.0), 12)
                      for x in _as_list(d["densities"], "densities")]
    d["sparsities"] = None
    if d["epsilon"] is not None:
        d["epsilon"] = _pos_float(d["epsilon"], f"{where}: epsilon")
    d["lrs"] = [_pos_float(x, f"{where}: lr") for x in _as_list(d["lrs"], "lrs")]
    d["seeds"] = [_pos_int(s, f"{where}: seed", 0) for s in _as_list(d["seeds"], "seeds")]
    for k in ("epochs", "batch_size", "eval_every", "latency_repeats"):
        d[k] = _pos_int(d[k], f"{where}: {k}")
    for k in ("warmup", "data_seed", "latency_warmup"):
        d[k] = _pos_int(d[k], f"{where}: {k}", 0)
    if d["limit_train"] is not None:
        d["limit_train"] = _pos_int(d["limit_train"], f"{where}: limit_train")
    if d["threads_per_run"] is not None:
        d["threads_per_run"] = _pos_int(d["threads_per_run"], f"{where}: threads_per_run")
    if d["lr_schedule"] not in ("cosine", "constant", "step"):
        raise ValueError(f"sweep spec: {where}: lr_schedule must be cosine, constant or step, got {d['lr_schedule']!r}")
    if not (isinstance(d["evolution"], str) and d["evolution"] in ("paper", "set", "none")):
        raise ValueError(f"sweep spec: {where}: evolution must be paper, set or none, got {d['evolution']!r}")
    if not isinstance(d["evolution_params"], Mapping):
        raise TypeError(f"sweep spec: {where}: evolution_params must be a table, got {d['evolution_params']!r}")
    d["evolution_params"] = dict(d["evolution_params"])
    from .schedules import evolution_schedule

    try:
        evolution_schedule(d["evolution"], d["epochs"], **d["evolution_params"])
    except TypeError as exc:
        raise ValueError(f"sweep spec: {where}: bad evolution_params {d['evolution_params']}: {exc}") from None
    d["momentum"] = float(d["momentum"])
    d["weight_decay"] = float(d["weight_decay"])
    d["dropout"] = float(d["dropout"])
    for k in ("baseline_narrow", "checkpoint"):
        if not isinstance(d[k], bool):
            raise TypeError(f"sweep spec: {where}: {k} must be true or false, got {d[k]!r}")
    if d["data_dir"] is not None:
        d["data_dir"] = str(d["data_dir"])
    return d


# ------------------------------------------------------------------------------------------------
# runs
# ------------------------------------------------------------------------------------------------


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text.replace(":", "-")).strip("-") or "x"


def motif_label(motif: Any) -> str:
    """``2`` for a uniform motif size, ``2-2-1-1`` for a per-layer schedule (``2x1`` rectangular)."""
    if isinstance(motif, int):
        return str(motif)
    return "-".join(f"{m[0]}x{m[1]}" if isinstance(m, (list, tuple)) else str(m) for m in motif)


def run_id(config: Mapping[str, Any]) -> str:
    """Deterministic id of a run: a readable prefix and 12 hex digits of the SHA-256 of the
    canonical JSON of its identity keys (execution-only keys such as ``data_dir`` are left out)."""
    ident = {k: config.get(k) for k in _IDENTITY}
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    kind = f"narrow{config.get('base_motif')}-m" if config.get("variant") == "narrow" else "m"
    return (f"{_tag(str(config['dataset']))}-{kind}{motif_label(config['motif'])}"
            f"-lr{config['lr']:g}-d{config['density']:g}-s{config['seed']}-{digest}")


def expand_runs(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every run of a spec (normalised or raw), each a flat config dict with its ``run_id``, in a
    deterministic seed-major order. Duplicate points (e.g. a per-layer schedule equal to a uniform
    motif size) appear once."""
    norm = normalize_spec(spec)          # idempotent: a normalised spec passes unchanged
    runs: list[tuple[int, int, dict[str, Any]]] = []
    seen = set()
    for d in norm["datasets"]:
        common = {
            "dataset": d["name"], "epsilon": d["epsilon"], "epochs": d["epochs"], "batch_size": d["batch_size"],
            "lr_schedule": d["lr_schedule"], "warmup": d["warmup"], "momentum": d["momentum"],
            "weight_decay": d["weight_decay"], "dropout": d["dropout"], "evolution": d["evolution"],
            "evolution_params": d["evolution_params"], "eval_every": d["eval_every"],
            "data_seed": d["data_seed"], "limit_train": d["limit_train"],
            **{k: d[k] for k in _EXECUTION},
        }
        for motif, density, lr, seed in itertools.product(d["motifs"], d["densities"], d["lrs"], d["seeds"]):
            variants: list[tuple[str, Any, list[int], int | None]] = [("motif", motif, list(d["hidden"]), None)]
            if d["baseline_narrow"] and isinstance(motif, int) and motif > 1:
                variants.append(("narrow", 1, [-(-h // motif) for h in d["hidden"]], motif))
            for variant, m, hidden, base_m in variants:
                cfg = dict(common, variant=variant, base_motif=base_m, hidden=hidden, motif=m,
                           density=density, lr=lr, seed=seed)
                rid = run_id(cfg)
                if rid in seen:
                    continue
                seen.add(rid)
                cfg["run_id"] = rid
                runs.append((d["seeds"].index(seed), len(runs), cfg))
    # seed-major order: the whole grid of the first seed is scheduled first, so a sweep stopped
    # early still has complete comparisons (Dask runs earlier submissions first)
    return [cfg for _, _, cfg in sorted(runs, key=lambda t: (t[0], t[1]))]


# ------------------------------------------------------------------------------------------------
# worker side
# ------------------------------------------------------------------------------------------------

_DATA_CACHE: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_DATA_CACHE_MAX = 2


def _dataset(name: str, data_dir: str | None, data_seed: int, limit_train: int | None) -> tuple[Any, ...]:
    """Load (and cache in this process) a dataset, optionally a seeded training subsample."""
    import numpy as np

    from . import datasets

    key = (name, data_dir, data_seed, limit_train)
    hit = _DATA_CACHE.pop(key, None)
    if hit is None:
        X, y, Xt, yt = datasets.load(name, data_dir=data_dir, seed=data_seed)
        if limit_train is not None and limit_train < X.shape[0]:
            rng = np.random.default_rng(np.random.SeedSequence([data_seed, 0x11A17]))
            idx = np.sort(rng.permutation(X.shape[0])[:limit_train])
            X, y = np.ascontiguousarray(X[idx]), np.ascontiguousarray(y[idx])
        hit = (X, y, Xt, yt)
        while len(_DATA_CACHE) >= _DATA_CACHE_MAX:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
    _DATA_CACHE[key] = hit
    return hit


def _worker_threads(exclusive: bool) -> int:
    """Engine threads for a run on the current Dask worker (1 outside a worker or when the
    worker may run several runs at once)."""
    if not exclusive:
        return 1
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return 1
    state = getattr(w, "state", None)
    n = getattr(state, "nthreads", None) or getattr(w, "nthreads", None) or 1
    return max(1, int(n))


def execute_run(config: Mapping[str, Any], exclusive: bool = True) -> dict[str, Any]:
    """Train one run of a sweep and measure it; what a Dask worker executes.

    Returns ``{"record": <JSON-serialisable dict>, "checkpoint": <bytes of the .npz or None>}``.
    A run whose loss diverges is a finished run with ``status = "diverged"``; any other error
    propagates (the client records it under ``errors/`` and retries it on the next resume).
    """
    import numpy as np

    from . import __version__
    from ._model import MotifMLP
    from .checkpoint import save_checkpoint
    from .estimate import measure_latency
    from .trainer import Trainer, TrainingDivergedError

    started = _now()
    t_wall = time.perf_counter()
    threads = config.get("threads_per_run") or _worker_threads(exclusive)
    X, y, Xt, yt = _dataset(config["dataset"], config.get("data_dir"), config["data_seed"],
                            config.get("limit_train"))
    n_classes = int(max(int(y.max()), int(yt.max()))) + 1
    sizes = [int(X.shape[1]), *config["hidden"], n_classes]
    motif = config["motif"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # a shared output layer was asked for explicitly
        model = MotifMLP(sizes, motif=motif if isinstance(motif, int) else [tuple(m) if isinstance(m, list) else m
                                                                          for m in motif],
                         density=config["density"], epsilon=config.get("epsilon"), seed=config["seed"],
                         num_threads=threads)
    trainer = Trainer(model, epochs=config["epochs"], recipe=config.get("recipe", "paper"),
                      batch_size=config["batch_size"], lr=config["lr"],
                      lr_schedule=config["lr_schedule"], warmup=config["warmup"], momentum=config["momentum"],
                      weight_decay=config["weight_decay"], dropout=config["dropout"],
                      evolution=config["evolution"], evolution_params=config.get("evolution_params") or {},
                      eval_every=config["eval_every"], seed=config["seed"], progress=False)
    status, error = "ok", None
    try:
        trainer.fit(X, y, Xt, yt)
    except TrainingDivergedError as exc:
        status, error = "diverged", str(exc)
    h = trainer.history
    times = [r["train_time"] for r in h.rows]
    last = h.last or {}
    best = h.best("val_accuracy")
    latency: dict[str, Any] = {}
    if status == "ok":
        lat = measure_latency(model.predict_proba, Xt, batch_size=1,
                              repeats=int(config.get("latency_repeats", 200)),
                              warmup=int(config.get("latency_warmup", 20)))
        latency = {"latency_batch1_s": lat.seconds_per_sample, "throughput_batch1_per_s": lat.throughput,
                   "latency_batch1_p90_s": float(np.percentile(lat.batch_times, 90)),
                   "latency_repeats": lat.repeats}
    ck_bytes = None
    if config.get("checkpoint", True) and status == "ok":
        fd, tmp = tempfile.mkstemp(prefix="motifcore-sweep-", suffix=".npz")
        os.close(fd)
        try:
            save_checkpoint(tmp, model, epoch=trainer.epoch, trainer=trainer.config,
                            history=h.to_dict(), extra={"sweep_run": dict(config)})
            ck_bytes = Path(tmp).read_bytes()
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    metrics = {
        "test_accuracy": last.get("val_accuracy"),
        "test_loss": last.get("val_loss"),
        "best_test_accuracy": best["val_accuracy"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_train_loss": last.get("train_loss"),
        "epochs_completed": trainer.epoch,
        "unique_params": model.n_params,
        "active_blocks": model.n_blocks,
        "block_macs_per_sample": model.macs_per_sample,
        "edges": model.n_edges,
        "dense_params": model.dense_params,
        # sum of G_out * G_in over the layers: the block count of the same motif network at
        # density 1 -- what the paper's Tables 4-5 call "Params"/"FLOPs" (no biases, no sparsity)
        "dense_blocks": int(sum(l.groups[0] * l.groups[1] for l in model.layers)),
        "mean_s_per_epoch": float(np.mean(times)) if times else None,
        "median_s_per_epoch": float(np.median(times)) if times else None,
        "total_train_s": float(np.sum(times)) if times else 0.0,
        "total_eval_s": float(np.sum([r["eval_time"] for r in h.rows])),
        "total_evolution_s": float(np.sum([r["evolution_time"] for r in h.rows])),
        **latency,
    }
    record = {
        "format": "motifcore-sweep-run", "version": 1,
        "run_id": config["run_id"], "status": status, "error": error,
        "config": {k: config[k] for k in config if k not in _EXECUTION and k != "run_id"},
        "layers": [{"n_in": l.n_in, "n_out": l.n_out, "motif": list(l.motif), "groups": list(l.groups),
                    "blocks": l.n_blocks, "edges": l.n_edges, "params": l.n_params} for l in model.layers],
        "sizes": sizes, "n_train": int(X.shape[0]), "n_test": int(Xt.shape[0]), "n_classes": n_classes,
        "metrics": metrics,
        "history": h.to_dict(),
        "execution": {"host": socket.gethostname(), "pid": os.getpid(), "threads": int(threads),
                      "started": started, "finished": _now(), "wall_s": time.perf_counter() - t_wall,
                      "motifcore_version": __version__},
    }
    return {"record": record, "checkpoint": ck_bytes}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------
# client side
# ------------------------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, (json.dumps(obj, indent=1, allow_nan=True) + "\n").encode())


def load_runs(sweep_dir: PathLike, status: str | None = None) -> list[dict[str, Any]]:
    """The stored run records of a sweep folder, sorted by run_id (unreadable files skipped);
    ``status="ok"`` keeps only the successful ones."""
    out = []
    for p in sorted((Path(sweep_dir) / "runs").glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict) and rec.get("run_id") == p.stem and (status is None or rec.get("status") == status):
            out.append(rec)
    return out


def _done_ids(out: Path) -> set:
    return {r["run_id"] for r in load_runs(out)}


@dataclass
class SweepResult:
    """What :func:`run_sweep` did."""

    out_dir: Path
    total: int                       #: runs in the spec
    skipped: list[str] = field(default_factory=list)    #: already stored before this call
    completed: list[str] = field(default_factory=list)  #: trained and stored by this call
    failed: dict[str, str] = field(default_factory=dict)  #: run_id -> error (stored under errors/)
    interrupted: bool = False        #: stopped by max_runs before the grid was done

    @property
    def done(self) -> int:
        return len(self.skipped) + len(self.completed)

    def __repr__(self) -> str:
        return (f"SweepResult({self.out_dir}: {self.done}/{self.total} stored, {len(self.completed)} run now, "
                f"{len(self.skipped)} skipped, {len(self.failed)} failed)")


def _make_client(scheduler: Any, n_workers: int | None, threads_per_worker: int | None) -> tuple[Any, Any, bool]:
    """(client, cluster-or-None, owns_client)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("motifcore sweeps need Dask distributed: pip install 'dask[distributed]'") from None
    if scheduler is not None:
        if isinstance(scheduler, Client):
            return scheduler, None, False
        if hasattr(scheduler, "scheduler_address"):        # a cluster object
            return Client(scheduler), None, True
        return Client(str(scheduler), timeout="30s"), None, True
    cores = os.cpu_count() or 1
    tpw = int(threads_per_worker) if threads_per_worker else 1
    nw = int(n_workers) if n_workers else max(1, cores // tpw)
    cluster = LocalCluster(n_workers=nw, threads_per_worker=tpw, processes=True, resources={RESOURCE: 1},
                           dashboard_address=":0", silence_logs=40)
    return Client(cluster), cluster, True


def _exclusive(client: Any) -> bool:
    workers = client.scheduler_info().get("workers", {})
    return bool(workers) and all(RESOURCE in (w.get("resources") or {}) for w in workers.values())


def run_sweep(spec: Mapping[str, Any] | PathLike, out_dir: PathLike, scheduler: Any = None,
              n_workers: int | None = None, threads_per_worker: int | None = None, resume: bool = True,
              progress: bool = True, max_runs: int | None = None) -> SweepResult:
    """Run every run of ``spec`` not yet stored in ``out_dir``, in parallel on Dask.

    Parameters
    ----------
    spec : dict or path
        A sweep spec (see the module docstring) or a ``.json``/``.toml`` file holding one.
    out_dir : path
        The sweep folder (created if needed).
    scheduler : str, distributed.Client or cluster, optional
        A running Dask scheduler (``"tcp://host:8786"``), client or cluster. Default: a local
        cluster of ``n_workers`` processes x ``threads_per_worker`` threads, each worker running
        one run at a time with all its threads, closed at the end.
    n_workers, threads_per_worker : int, optional
        Local cluster shape; defaults ``threads_per_worker = 1`` and
        ``n_workers = max(1, cores // threads_per_worker)``.
    resume : bool, default True
        Skip runs already stored in ``out_dir``; ``False`` runs (and overwrites) all of them.
    progress : bool, default True
        A tqdm bar over finished runs on stderr.
    max_runs : int, optional
        Stop after this many runs were stored by this call (the rest are cancelled; resume later).

    Returns
    -------
    SweepResult
    """
    if not isinstance(spec, Mapping):
        spec = load_spec(spec)
    norm = normalize_spec(spec)
    runs = expand_runs(norm)
    out = Path(out_dir)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    _write_json(out / "sweep.json", {"format": "motifcore-sweep", "version": 1, "written": _now(),
                                     "spec": dict(spec), "normalized": norm,
                                     "runs": [r["run_id"] for r in runs]})
    done = _done_ids(out) if resume else set()
    result = SweepResult(out_dir=out, total=len(runs))
    result.skipped = [r["run_id"] for r in runs if r["run_id"] in done]
    todo = [r for r in runs if r["run_id"] not in done]
    if max_runs is not None:
        max_runs = _pos_int(max_runs, "max_runs")
    if not todo:
        return result

    client, cluster, owns = _make_client(scheduler, n_workers, threads_per_worker)
    bar = None
    futures: list[Any] = []
    try:
        from distributed import as_completed

        exclusive = _exclusive(client)
        extra = {"resources": {RESOURCE: 1}} if exclusive else {}
        by_key = {}
        for i, cfg in enumerate(todo):
            # explicit priorities: workers otherwise pick among their queued runs in no fixed order
            fut = client.submit(execute_run, cfg, exclusive, key=f"motifcore-run-{cfg['run_id']}", pure=False,
                                priority=len(todo) - i, **extra)
            by_key[fut.key] = cfg
            futures.append(fut)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(runs), initial=len(result.skipped), unit="run", desc=f"sweep {norm['name']}",
                       dynamic_ncols=True)
        for fut in as_completed(futures):
            cfg = by_key[fut.key]
            rid = cfg["run_id"]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - any error of a run is recorded, the sweep goes on
                msg = f"{type(exc).__name__}: {exc}"
                result.failed[rid] = msg
                _write_json(out / "errors" / f"{rid}.json", {"run_id": rid, "error": msg, "time": _now(),
                                                             "config": {k: v for k, v in cfg.items()}})
                if bar is not None:
                    bar.write(f"run {rid} failed: {msg}")
            else:
                _store(out, res)
                result.completed.append(rid)
                err = out / "errors" / f"{rid}.json"
                if err.exists():
                    err.unlink()
                if bar is not None:
                    m = res["record"]["metrics"]
                    acc = m.get("test_accuracy")
                    bar.set_postfix({"last": rid.rsplit("-", 1)[0][-32:],
                                     "acc": "-" if acc is None else f"{acc:.4f}",
                                     "s/ep": "-" if m.get("mean_s_per_epoch") is None
                                     else f"{m['mean_s_per_epoch']:.2f}"}, refresh=False)
            if bar is not None:
                bar.update(1)
            if max_runs is not None and len(result.completed) >= max_runs:
                result.interrupted = len(result.completed) + len(result.failed) < len(todo)
                break
    finally:
        if bar is not None:
            bar.close()
        for f in futures:
            if not f.done():
                f.cancel()
        if owns:
            client.close()
        if cluster is not None:
            cluster.close()
    return result


def _store(out: Path, res: Mapping[str, Any]) -> None:
    """Checkpoint first, then the run record (its presence is what marks the run as done)."""
    rec = dict(res["record"])
    rid = rec["run_id"]
    if res.get("checkpoint") is not None:
        rel = Path("checkpoints") / f"{rid}.npz"
        _atomic_write(out / rel, res["checkpoint"])
        rec["checkpoint"] = str(rel)
    else:
        rec["checkpoint"] = None
    rec["stored"] = _now()
    _write_json(out / "runs" / f"{rid}.json", rec)


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------


def _int_arg(minimum: int) -> Any:
    from .cli import _int_min  # the CLI's parser of bounded integers

    return _int_min(minimum, "")


def _float_list(values: Sequence[str], flag: str) -> list[float]:
    out = []
    for t in (t for v in values for t in re.split(r"[,\s]+", v.strip()) if t):
        try:
            out.append(float(t))
        except ValueError:
            raise ValueError(f"argument {flag}: expected numbers, got {t!r}") from None
    return out


def _int_list(values: Sequence[str], flag: str) -> list[int]:
    out = []
    for t in (t for v in values for t in re.split(r"[,\s]+", v.strip()) if t):
        try:
            out.append(int(t))
        except ValueError:
            raise ValueError(f"argument {flag}: expected integers, got {t!r}") from None
    return out


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``sweep`` subcommand on an argparse subparsers object (``motifcore sweep``)."""
    p = subparsers.add_parser(
        "sweep", help="run a grid of trainings in parallel (Dask)",
        description="Train every point of a grid (datasets x motif sizes x densities x learning rates x seeds) "
                    "with the paper's recipe, in parallel on a local Dask cluster or a running scheduler. "
                    "Each finished run is stored at once under OUT/runs/<run_id>.json (+ checkpoint); running "
                    "the same command again resumes. Flags override the --spec file.")
    p.add_argument("--spec", help="sweep spec (.json or .toml); see motifcore.sweep for the keys")
    p.add_argument("--out", required=True, help="sweep folder (created; reused to resume)")
    p.add_argument("--name", help="sweep name")
    p.add_argument("--dataset", nargs="+", help="dataset names, e.g. fashion-mnist skf:PCMAC")
    p.add_argument("--data-dir", help="folder searched first for the dataset files")
    p.add_argument("--hidden", nargs="+", metavar="W", help="hidden widths (default 3000 3000 3000)")
    p.add_argument("--motif", nargs="+", metavar="M",
                   help="motif sizes, e.g. '1 2 4 8'; a comma list is a per-layer schedule ('2,2,1,1')")
    p.add_argument("--density", nargs="+", metavar="D", help="block densities (default 0.1)")
    p.add_argument("--sparsity", nargs="+", metavar="S", help="sparsities s = 1 - density")
    p.add_argument("--lr", nargs="+", metavar="LR", help="peak learning rates (default 0.01)")
    p.add_argument("--seeds", nargs="+", metavar="SEED", help="seeds (default 0)")
    p.add_argument("--epochs", type=_int_arg(1), help="epochs per run (default 30; the paper uses 300)")
    p.add_argument("--batch-size", type=_int_arg(1))
    p.add_argument("--lr-schedule", choices=("cosine", "constant", "step"))
    p.add_argument("--warmup", type=_int_arg(0))
    p.add_argument("--evolution", choices=("paper", "set", "none"))
    p.add_argument("--baseline-narrow", action="store_true", default=None,
                   help="also run plain SET at hidden widths / m for every m > 1 (DESIGN.md §4.3)")
    p.add_argument("--limit-train", type=_int_arg(1), metavar="N", help="seeded training subsample")
    p.add_argument("--no-checkpoints", action="store_true", help="do not store the trained models")
    p.add_argument("--scheduler", metavar="ADDR", help="running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=_int_arg(1), help="local cluster: worker processes (default cores // threads)")
    p.add_argument("--threads-per-worker", type=_int_arg(1), help="local cluster: threads per worker (default 1)")
    p.add_argument("--threads-per-run", type=_int_arg(1), help="engine threads of one run (default: the worker's)")
    p.add_argument("--max-runs", type=_int_arg(1), help="stop after N runs were stored (resume later)")
    p.add_argument("--no-resume", action="store_true", help="rerun and overwrite runs already stored")
    p.add_argument("--dry-run", action="store_true", help="list the runs (and which are stored) and exit")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_sweep)
    _register_metavar(subparsers, "sweep")
    return p


def _register_metavar(subparsers: Any, name: str) -> None:
    mv = getattr(subparsers, "metavar", None)
    if isinstance(mv, str) and mv.startswith("{") and mv.endswith("}") and name not in mv[1:-1].split(","):
        subparsers.metavar = mv[:-1] + "," + name + "}"


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The spec of ``motifcore sweep``: the --spec file (if any) with the flags on top."""
    spec: dict[str, Any] = load_spec(args.spec) if args.spec else {}
    if args.name:
        spec["name"] = args.name
    if args.dataset:
        spec["datasets"] = [t for v in args.dataset for t in re.split(r"[\s]+", v.strip()) if t]
    if args.data_dir:
        spec["data_dir"] = args.data_dir
    if args.hidden:
        spec["hidden"] = _int_list(args.hidden, "--hidden")
    if args.motif:
        spec["motifs"] = [v.strip() for v in args.motif if v.strip()]
    if args.density and args.sparsity:
        raise ValueError("give --density or --sparsity, not both")
    if args.density:
        spec["densities"], spec["sparsities"] = _float_list(args.density, "--density"), None
    if args.sparsity:
        spec["sparsities"], spec["densities"] = _float_list(args.sparsity, "--sparsity"), None
    if args.lr:
        spec["lrs"] = _float_list(args.lr, "--lr")
    if args.seeds:
        spec["seeds"] = _int_list(args.seeds, "--seeds")
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr_schedule", "lr_schedule"),
                      ("warmup", "warmup"), ("evolution", "evolution"), ("limit_train", "limit_train"),
                      ("threads_per_run", "threads_per_run"), ("baseline_narrow", "baseline_narrow")):
        v = getattr(args, flag)
        if v is not None:
            spec[key] = v
    if args.no_checkpoints:
        spec["checkpoint"] = False
    if "datasets" not in spec:
        raise ValueError("sweep needs --dataset or a --spec file with 'datasets'")
    # per-dataset tables of a spec file keep their own values unless a flag overrides them
    flags_set = {k for k in ("hidden", "motifs", "densities", "sparsities", "lrs", "seeds", "epochs")
                 if getattr(args, {"motifs": "motif", "densities": "density", "sparsities": "sparsity",
                                   "lrs": "lr"}.get(k, k), None)}
    if flags_set and isinstance(spec.get("datasets"), list):
        spec["datasets"] = [{k: v for k, v in d.items() if k not in flags_set} if isinstance(d, dict) else d
                            for d in spec["datasets"]]
    return spec


def _cmd_sweep(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    norm = normalize_spec(spec)
    runs = expand_runs(norm)
    out = Path(args.out)
    if args.dry_run:
        done = _done_ids(out) if out.exists() else set()
        for r in runs:
            print(f"{'stored ' if r['run_id'] in done else 'todo   '} {r['run_id']}")
        print(f"{len(runs)} runs, {sum(r['run_id'] in done for r in runs)} stored")
        return 0
    print(f"sweep {norm['name']}: {len(runs)} runs -> {out}", file=sys.stderr)
    res = run_sweep(spec, out, scheduler=args.scheduler, n_workers=args.workers,
                    threads_per_worker=args.threads_per_worker, resume=not args.no_resume,
                    progress=not args.no_progress, max_runs=args.max_runs)
    print(f"{res.done}/{res.total} runs stored in {out} ({len(res.completed)} now, {len(res.skipped)} were "
          f"stored already, {len(res.failed)} failed)")
    for rid, msg in res.failed.items():
        print(f"  failed {rid}: {msg}", file=sys.stderr)
    return 1 if res.failed else 0
