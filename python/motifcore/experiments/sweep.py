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
``recipe``
    The named recipe of every run (:data:`motifcore.defaults.RECIPES`), default ``"paper"``
    (sweeps reproduce the paper's tables): it gives every training setting below that the spec
    leaves unset, the settings a spec cannot name (optimizer, clipping, ...) and the network
    layout (``"paper"``: every layer at the density, as the paper's Table 4).
``hidden``, ``epochs``, ``batch_size``, ``lr_schedule``, ``warmup``, ``momentum``,
``weight_decay``, ``dropout``, ``evolution``, ``evolution_params``, ``eval_every``, ``epsilon``
    The run's settings (see :class:`~motifcore.Trainer` and :class:`~motifcore.MotifMLP`);
    ``None`` in :data:`DEFAULTS` means the recipe's value (and ``lrs`` the recipe's ``lr``);
    ``epochs`` defaults to :data:`motifcore.defaults.EPOCHS`. ``evolution`` is any name of
    :data:`motifcore.defaults.EVOLUTIONS`, as for the Trainer.
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

import copy
import hashlib
import itertools
import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._internal import motif_spec
from .._internal.io import PathLike, atomic_write, atomic_write_json, slug, utc_now
from .._internal.validation import check_int, check_real
from .._version import __version__
from ..defaults import EPOCHS, EVOLUTIONS, LR_SCHEDULES, RECIPES, recipe
from ..train.checkpoint import checkpoint_bytes
from .config import RunConfig
from .run import execute

_log = logging.getLogger(__name__)     # a child of the "motifcore" logger
motif_label = motif_spec.label   # public name kept (motifcore.sweep.motif_label)

__all__ = [
    "DEFAULTS",
    "RESOURCE",
    "SweepResult",
    "execute_run",
    "expand_runs",
    "load_runs",
    "load_spec",
    "normalize_spec",
    "run_id",
    "run_sweep",
]


#: Dask worker resource that makes a worker run one run at a time (with all its threads).
#: Local clusters declare it; for your own workers: ``dask worker ADDR --nthreads 4 --resources
#: motifcore_run=1``. Without it, a worker runs ``nthreads`` runs at once, one thread each.
RESOURCE = "motifcore_run"

#: the recipe of a spec that names none: sweeps reproduce the paper's tables
SWEEP_RECIPE = "paper"
#: the spec keys whose default is the recipe's value (spec key -> recipe key)
_FROM_RECIPE = {"lrs": "lr", "batch_size": "batch_size", "lr_schedule": "lr_schedule", "warmup": "warmup",
                "momentum": "momentum", "weight_decay": "weight_decay", "dropout": "dropout",
                "evolution": "evolution"}

#: Spec defaults; ``None`` for a key of the recipe means the recipe's value (the paper's, Table 3
#: and Sec. 3.2-3.3, for the default recipe of sweeps).
DEFAULTS: dict[str, Any] = {
    "name": "sweep",
    "recipe": SWEEP_RECIPE,
    "hidden": [3000, 3000, 3000],
    "motifs": [1],
    "densities": None,          # -> [0.1] unless "sparsities" is given
    "sparsities": None,
    "epsilon": None,
    "lrs": None,
    "seeds": [0],
    "epochs": EPOCHS,
    "batch_size": None,
    "lr_schedule": None,
    "warmup": None,
    "momentum": None,
    "weight_decay": None,
    "dropout": None,
    "evolution": None,
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
    return check_int(v, f"sweep spec: {what}", minimum, integral_float=True)


def _pos_float(v: Any, what: str, lo: float = 0.0, hi: float = math.inf, hi_closed: bool = True) -> float:
    return check_real(v, f"sweep spec: {what}", lo, hi, lo_open=True, hi_open=not hi_closed)


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


def _warmup(v: Any, what: str) -> int | float:
    """Warmup in epochs (an integer) or as a fraction of the run (a float in (0, 1))."""
    if isinstance(v, float) and 0.0 < v < 1.0:
        return v
    return _pos_int(v, what, 0)


def _check_dataset_spec(d: dict[str, Any]) -> dict[str, Any]:
    where = f"dataset {d['name']!r}"
    if not (isinstance(d["recipe"], str) and d["recipe"] in RECIPES):
        raise ValueError(f"sweep spec: {where}: recipe must be one of {', '.join(RECIPES)}, got {d['recipe']!r}")
    r = recipe(d["recipe"])
    for key, rkey in _FROM_RECIPE.items():
        if d[key] is None:
            d[key] = [r[rkey]] if key == "lrs" else r[rkey]
    d["hidden"] = [_pos_int(h, f"{where}: hidden width") for h in _as_list(d["hidden"], "hidden")]
    n_layers = len(d["hidden"]) + 1
    try:
        d["motifs"] = [motif_spec.parse(m, n_layers) for m in _as_list(d["motifs"], "motifs")]
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"sweep spec: {where}: {exc}") from None
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
    for k in ("data_seed", "latency_warmup"):
        d[k] = _pos_int(d[k], f"{where}: {k}", 0)
    d["warmup"] = _warmup(d["warmup"], f"{where}: warmup")
    if d["limit_train"] is not None:
        d["limit_train"] = _pos_int(d["limit_train"], f"{where}: limit_train")
    if d["threads_per_run"] is not None:
        d["threads_per_run"] = _pos_int(d["threads_per_run"], f"{where}: threads_per_run")
    if d["lr_schedule"] not in LR_SCHEDULES:
        raise ValueError(f"sweep spec: {where}: lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                         f"got {d['lr_schedule']!r}")
    if not (isinstance(d["evolution"], str) and d["evolution"] in EVOLUTIONS):
        raise ValueError(f"sweep spec: {where}: evolution must be one of {', '.join(EVOLUTIONS)}, "
                         f"got {d['evolution']!r}")
    if not isinstance(d["evolution_params"], Mapping):
        raise TypeError(f"sweep spec: {where}: evolution_params must be a table, got {d['evolution_params']!r}")
    d["evolution_params"] = dict(d["evolution_params"])
    from ..train.schedules import evolution_schedule
    from ..train.updaters import make_updater

    try:
        if EVOLUTIONS[d["evolution"]].kind == "updater":
            make_updater(d["evolution"], **d["evolution_params"])
        else:
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


def run_id(config: Mapping[str, Any]) -> str:
    """Deterministic id of a run: a readable prefix and 12 hex digits of the SHA-256 of the
    canonical JSON of its identity keys (execution-only keys such as ``data_dir`` are left out)."""
    ident = {k: config.get(k) for k in _IDENTITY}
    if config.get("recipe", SWEEP_RECIPE) != SWEEP_RECIPE:
        # only then: the ids of paper-recipe runs stored before the key existed stay valid
        ident["recipe"] = config["recipe"]
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    kind = f"narrow{config.get('base_motif')}-m" if config.get("variant") == "narrow" else "m"
    return (f"{slug(str(config['dataset']))}-{kind}{motif_label(config['motif'])}"
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
            "dataset": d["name"], "recipe": d["recipe"], "epsilon": d["epsilon"], "epochs": d["epochs"],
            "batch_size": d["batch_size"],
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
    started, t_wall = utc_now(), time.perf_counter()
    threads = config.get("threads_per_run") or _worker_threads(exclusive)
    rc = RunConfig.from_sweep(config, threads=threads)
    run = execute(rc, cache_data=True, catch_divergence=True,
                  latency=(int(config.get("latency_repeats", 200)), int(config.get("latency_warmup", 20))))
    model, trainer = run.model, run.trainer
    ck_bytes = None
    if config.get("checkpoint", True) and run.status == "ok":
        ck_bytes = checkpoint_bytes(model, epoch=trainer.epoch, trainer=trainer.config,
                                    history=trainer.history.to_dict(),
                                    extra={"run": rc.to_dict(), "sweep_run": dict(config)})
    metrics = {k: v for k, v in run.metrics.items() if k not in ("epochs", "stopped_early")}
    record = {
        "format": "motifcore-sweep-run", "version": 1,
        "run_id": config["run_id"], "status": run.status, "error": run.error,
        "config": {k: config[k] for k in config if k not in _EXECUTION and k != "run_id"},
        "layers": [{"n_in": l.n_in, "n_out": l.n_out, "motif": list(l.motif), "groups": list(l.groups),
                    "blocks": l.n_blocks, "edges": l.n_edges, "params": l.n_params} for l in model.layers],
        "sizes": model.sizes, "n_train": int(run.X.shape[0]), "n_test": int(run.X_test.shape[0]),
        "n_classes": model.n_classes,
        "metrics": metrics,
        "history": trainer.history.to_dict(),
        "execution": {"host": socket.gethostname(), "pid": os.getpid(), "threads": int(threads),
                      "started": started, "finished": utc_now(), "wall_s": time.perf_counter() - t_wall,
                      "motifcore_version": __version__},
    }
    return {"record": record, "checkpoint": ck_bytes}


# ------------------------------------------------------------------------------------------------
# client side
# ------------------------------------------------------------------------------------------------


def load_runs(sweep_dir: PathLike, status: str | None = None, verify_checkpoints: bool = False
              ) -> list[dict[str, Any]]:
    """The stored run records of a sweep folder, sorted by run_id; ``status="ok"`` keeps only the
    successful ones. Unreadable records and records that parse but do not hold a valid run (wrong
    types, non-numeric metrics) are skipped with a warning naming the file, so a resumed sweep runs
    them again. ``verify_checkpoints`` also skips a record whose stored checkpoint is missing or
    whose SHA-256 differs from the one recorded when it was stored."""
    out = []
    for p in sorted((Path(sweep_dir) / "runs").glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        problem = _record_problem(rec, p.stem)
        if problem is None and verify_checkpoints:
            problem = _checkpoint_problem(Path(sweep_dir), rec)
        if problem is not None:
            warnings.warn(f"{p}: skipped ({problem}); a resumed sweep runs it again", RuntimeWarning, stacklevel=2)
            continue
        if status is None or rec.get("status") == status:
            out.append(rec)
    return out


def _is_metric(v: Any) -> bool:
    if isinstance(v, list):
        return all(_is_metric(x) for x in v)
    return v is None or isinstance(v, (bool, int, float))


def _record_problem(rec: Any, stem: str) -> str | None:
    """Why a parsed run record is not a valid stored run, or None."""
    if not isinstance(rec, dict) or rec.get("run_id") != stem:
        return "not a run record of this file name"
    if rec.get("format", "motifcore-sweep-run") != "motifcore-sweep-run":
        return f"format {rec.get('format')!r}"
    if rec.get("status") not in ("ok", "diverged"):
        return f"status {rec.get('status')!r}"
    for key in ("config", "metrics"):
        if not isinstance(rec.get(key), dict):
            return f"{key!r} is not an object"
    if not isinstance(rec.get("history", {}), dict):
        return "'history' is not an object"
    bad = sorted(k for k, v in rec["metrics"].items() if not _is_metric(v))
    if bad:
        return f"non-numeric metric(s) {bad}"
    ck = rec.get("checkpoint")
    if ck is not None and not isinstance(ck, str):
        return "'checkpoint' is not a path"
    return None


def _checkpoint_problem(out: Path, rec: Mapping[str, Any]) -> str | None:
    if rec.get("checkpoint") is None:
        return None
    path = out / rec["checkpoint"]
    if not path.is_file():
        return f"its checkpoint {path} is missing"
    want = rec.get("checkpoint_sha256")
    if want is not None and hashlib.sha256(path.read_bytes()).hexdigest() != want:
        return f"its checkpoint {path} does not match the SHA-256 recorded when it was stored (corrupted)"
    return None


def done_ids(out: Path) -> set:
    return {r["run_id"] for r in load_runs(out, verify_checkpoints=True)}


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
    atomic_write_json(out / "sweep.json", {"format": "motifcore-sweep", "version": 1, "written": utc_now(),
                                     "spec": dict(spec), "normalized": norm,
                                     "runs": [r["run_id"] for r in runs]}, indent=1)
    done = done_ids(out) if resume else set()
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
                       dynamic_ncols=True, disable=None)       # no bar when stderr is not a terminal
        for fut in as_completed(futures):
            cfg = by_key[fut.key]
            rid = cfg["run_id"]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - any error of a run is recorded, the sweep goes on
                msg = f"{type(exc).__name__}: {exc}"
                result.failed[rid] = msg
                atomic_write_json(out / "errors" / f"{rid}.json", {"run_id": rid, "error": msg, "time": utc_now(),
                                                             "config": {k: v for k, v in cfg.items()}}, indent=1)
                _log.warning("run %s failed: %s", rid, msg)
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
        atomic_write(out / rel, res["checkpoint"])
        rec["checkpoint"] = str(rel)
        rec["checkpoint_sha256"] = hashlib.sha256(res["checkpoint"]).hexdigest()
    else:
        rec["checkpoint"] = None
    rec["stored"] = utc_now()
    atomic_write_json(out / "runs" / f"{rid}.json", rec, indent=1)


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------


