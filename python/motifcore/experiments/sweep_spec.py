"""Sweep specs: the grid of runs a sweep names, checked, and expanded into one config per run.

A *sweep spec* (a dict, or a ``.json`` / ``.toml`` file holding one) names a grid::

    datasets x motif sizes (or per-layer schedules) x densities (sparsities) x learning rates x seeds

and the recipe every run shares (epochs, hidden widths, batch size, schedules, ...).
:func:`normalize_spec` checks a spec and fills in :data:`DEFAULTS`; :func:`expand_runs` turns it
into one flat config dict per run, each with its :func:`run_id` (a readable prefix plus a SHA-256
of the canonical JSON of everything that changes the result, :data:`IDENTITY_KEYS`). Running the
configs is :mod:`motifcore.experiments.sweep`'s job (:func:`~motifcore.experiments.sweep.run_sweep`).

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
``weight_decay``, ``dropout``, ``label_smoothing``, ``evolution``, ``evolution_params``,
``eval_every``, ``epsilon``
    The run's settings (see :class:`~motifcore.Trainer` and :class:`~motifcore.MotifMLP`);
    ``None`` in :data:`DEFAULTS` means the recipe's value (and ``lrs`` the recipe's ``lr``);
    ``epochs`` defaults to :data:`motifcore.defaults.EPOCHS`. ``evolution`` is any name of
    :data:`motifcore.defaults.EVOLUTIONS`, as for the Trainer.
``baseline_narrow``
    If true, add for every integer ``m > 1`` a plain SET run (``m = 1``) with every hidden width
    divided by ``m`` (rounded up): the honest baseline of docs/design.md §4.3, with about the same
    number of unique multiplies as Motif-SET at ``m``.
``data_dir``, ``data_seed``, ``limit_train``
    Where the data live (not part of the run identity), the seed of the 2:1 split of datasets
    without an official split, and an optional seeded subsample of the training set.
``latency_repeats``, ``latency_warmup``
    Batch-1 latency measurement of the trained model (:func:`motifcore.analysis.estimate.measure_latency`
    on ``predict_proba``).
``checkpoint``
    Store the trained model of every run (default true).
``threads_per_run``
    Engine threads of one run (default: all threads of the worker when the worker runs one run
    at a time, else 1).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._internal import motif_spec
from .._internal.io import PathLike, slug
from .._internal.validation import check_int, check_real
from ..defaults import EPOCHS, EVOLUTIONS, LR_SCHEDULES, RECIPES, recipe

motif_label = motif_spec.label   # public name kept (motifcore.sweep.motif_label)

__all__ = [
    "DEFAULTS",
    "EXECUTION_KEYS",
    "IDENTITY_KEYS",
    "SWEEP_RECIPE",
    "expand_runs",
    "load_spec",
    "motif_label",
    "normalize_spec",
    "run_id",
]

#: the recipe of a spec that names none: sweeps reproduce the paper's tables
SWEEP_RECIPE = "paper"
#: the spec keys whose default is the recipe's value (spec key -> recipe key). A sweep's learning
#: rates are a grid axis and part of each run's id, so ``lrs`` defaults to the recipe's base rate as
#: given: the ``"motifcore"`` recipe's scaling for wide hidden layers (``defaults.LR_FAN_IN``),
#: which the Trainer applies to a rate it is not given, does not apply to sweep points.
_FROM_RECIPE = {"lrs": "lr", "batch_size": "batch_size", "lr_schedule": "lr_schedule", "warmup": "warmup",
                "momentum": "momentum", "weight_decay": "weight_decay", "dropout": "dropout",
                "label_smoothing": "label_smoothing", "evolution": "evolution"}

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
    "label_smoothing": None,
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

#: Keys that change what a run computes (hashed into its run_id), in a fixed order.
IDENTITY_KEYS = ("dataset", "variant", "base_motif", "hidden", "motif", "density", "epsilon", "lr", "seed",
                 "epochs", "batch_size", "lr_schedule", "warmup", "momentum", "weight_decay", "dropout",
                 "evolution", "evolution_params", "eval_every", "data_seed", "limit_train")
#: Keys that only say how or where a run executes (left out of the run_id and of a record's config).
EXECUTION_KEYS = ("data_dir", "latency_repeats", "latency_warmup", "checkpoint", "threads_per_run")
_PER_DATASET = set(DEFAULTS) - {"name"}


# ------------------------------------------------------------------------------------------------
# reading and checking a spec
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
    d["label_smoothing"] = float(d["label_smoothing"])
    if not 0.0 <= d["label_smoothing"] < 1.0:
        raise ValueError(f"sweep spec: {where}: label_smoothing must be in [0, 1), got {d['label_smoothing']}")
    for k in ("baseline_narrow", "checkpoint"):
        if not isinstance(d[k], bool):
            raise TypeError(f"sweep spec: {where}: {k} must be true or false, got {d[k]!r}")
    if d["data_dir"] is not None:
        d["data_dir"] = str(d["data_dir"])
    return d


# ------------------------------------------------------------------------------------------------
# the runs of a spec
# ------------------------------------------------------------------------------------------------


def run_id(config: Mapping[str, Any]) -> str:
    """Deterministic id of a run: a readable prefix and 12 hex digits of the SHA-256 of the
    canonical JSON of its identity keys (execution-only keys such as ``data_dir`` are left out)."""
    ident = {k: config.get(k) for k in IDENTITY_KEYS}
    if config.get("recipe", SWEEP_RECIPE) != SWEEP_RECIPE:
        # only then: the ids of paper-recipe runs stored before the key existed stay valid
        ident["recipe"] = config["recipe"]
        # the optimizer is the recipe's, not a spec key: named so that a run of the recipe before
        # it changed (the motifcore recipe's Adam + L2 before AdamW) is not taken for a new one
        ident["optimizer"] = recipe(config["recipe"])["optimizer"]
    if config.get("input_clip"):
        # likewise: only a clipped run (the motifcore recipe's inputs) names its clip
        ident["input_clip"] = config["input_clip"]
    if config.get("label_smoothing"):
        # and only a smoothed run (the motifcore recipe's since round four) names its smoothing
        ident["label_smoothing"] = config["label_smoothing"]
    if config.get("evolution") == "set":
        # "set" anneals its fraction since round five (before: SET's own schedule, today
        # "set-epoch"): a run stored under the old meaning is not taken for a new one
        ident["set_schedule"] = "cosine"
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
            "weight_decay": d["weight_decay"], "dropout": d["dropout"], "label_smoothing": d["label_smoothing"],
            "evolution": d["evolution"],
            "evolution_params": d["evolution_params"], "eval_every": d["eval_every"],
            "data_seed": d["data_seed"], "limit_train": d["limit_train"],
            **{k: d[k] for k in EXECUTION_KEYS},
        }
        clip = float(RECIPES[d["recipe"]]["input_clip"])
        if clip:
            # the recipe's input clip (a config without one is an unclipped run: RunConfig.from_dict)
            common["input_clip"] = clip
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
