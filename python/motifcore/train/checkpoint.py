"""Checkpoints: a model with its optimizer state, and optionally the state of a training run.

Format (version 1)
------------------
A checkpoint is ONE uncompressed ``.npz`` file (``numpy.savez``), readable with
``numpy.load(path, allow_pickle=False)``:

* every array of :meth:`MotifMLP.get_state` under its own name: ``step`` and ``dropout_seed``
  (uint64 scalars), and for each layer ``l``: ``layer<l>.indptr`` (int64 CSR row pointer over
  output motifs), ``layer<l>.indices`` (int32 input motif of each active block),
  ``layer<l>.weights`` (float32 shared block weights), ``layer<l>.bias``,
  ``layer<l>.weight_velocity`` and ``layer<l>.bias_velocity`` (float32 SGD momentum buffers);
  while a layer shares its weights through a codebook (Deep Compression's trained quantization),
  also ``layer<l>.codes`` (int32), ``layer<l>.centroids``, ``layer<l>.centroid_velocity`` and
  ``layer<l>.centroid_sq`` (float32);
* ``__motifcore__``: a 0-d unicode array holding one JSON object::

      {"format": "motifcore-checkpoint", "version": 1, "motifcore_version": "0.1.0",
       "created": "<ISO 8601 UTC>", "model_config": MotifMLP.config,
       "epoch": <completed epochs or null>, "trainer": <Trainer.config or null>,
       "trainer_state": <resume bookkeeping or null>, "history": <History.to_dict() or null>,
       "extra": {...}}

Files are written atomically: to a temporary file in the destination folder, flushed to disk,
then moved over the destination with ``os.replace`` -- an interrupted save never leaves a
half-written checkpoint under the final name.
"""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._internal import motif_spec
from .._internal.io import PathLike, atomic_write, utc_now
from .._internal.validation import check_density, check_epsilon
from .._version import __version__
from ..errors import CheckpointError
from ..nn import MotifMLP

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointData",
    "checkpoint_bytes",
    "load_checkpoint",
    "load_model",
    "model_from_state",
    "read_metadata",
    "save_checkpoint",
    "trainer_settings",
]

FORMAT = "motifcore-checkpoint"
FORMAT_VERSION = 1
_META_KEY = "__motifcore__"


@dataclass
class CheckpointData:
    """What :func:`load_checkpoint` returns."""

    model: MotifMLP
    epoch: int | None
    trainer: dict[str, Any] | None
    trainer_state: dict[str, Any] | None
    history: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _payload(model: MotifMLP, epoch: int | None, trainer: Mapping[str, Any] | None,
             trainer_state: Mapping[str, Any] | None, history: Mapping[str, Any] | None,
             extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if not isinstance(model, MotifMLP):
        raise TypeError(f"model must be a MotifMLP, got {type(model).__name__}")
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "motifcore_version": __version__,
        "created": utc_now(),
        "model_config": _jsonable(model.config),
        "epoch": epoch,
        "trainer": _jsonable(dict(trainer)) if trainer is not None else None,
        "trainer_state": _jsonable(dict(trainer_state)) if trainer_state is not None else None,
        "history": _jsonable(dict(history)) if history is not None else None,
        "extra": _jsonable(dict(extra or {})),
    }
    arrays: dict[str, Any] = dict(model.get_state())
    arrays[_META_KEY] = np.array(json.dumps(meta, allow_nan=True))
    return arrays


def save_checkpoint(path: PathLike, model: MotifMLP, *, epoch: int | None = None,
                    trainer: Mapping[str, Any] | None = None,
                    trainer_state: Mapping[str, Any] | None = None,
                    history: Mapping[str, Any] | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (pattern, weights, momentum, step counter) and the optional run state to
    ``path`` atomically; returns the path. The parent folder is created if needed."""
    arrays = _payload(model, epoch, trainer, trainer_state, history, extra)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def checkpoint_bytes(model: MotifMLP, *, epoch: int | None = None, trainer: Mapping[str, Any] | None = None,
                     trainer_state: Mapping[str, Any] | None = None, history: Mapping[str, Any] | None = None,
                     extra: Mapping[str, Any] | None = None) -> bytes:
    """The bytes :func:`save_checkpoint` would write (sweep workers send them to the client)."""
    buf = io.BytesIO()
    np.savez(buf, **_payload(model, epoch, trainer, trainer_state, history, extra))
    return buf.getvalue()


_META_LIMIT = 64 << 20        # bytes of the JSON metadata entry
_MAX_INPUT_GROUPS = 1 << 24   # input motifs of layer 0 a checkpoint may declare beyond 16 per block
_LAYER_ENTRY = re.compile(r"layer(\d+)\.(\w+)\.npy")
#: what a checkpoint may hold besides the metadata (MotifMLP.get_state's keys)
_SCALAR_ENTRIES = ("step.npy", "dropout_seed.npy")
_LAYER_KEYS = frozenset({"indptr", "indices", "weights", "bias", "weight_velocity", "bias_velocity", "weight_sq",
                         "bias_sq", "codes", "centroids", "centroid_velocity", "centroid_sq"})


def _entry_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple:
    """(shape, dtype) from the npy header of one archive entry, checked against the entry's
    declared size, without inflating its data."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"entry {info.filename!r}: npy format version {version} is not supported")
        header_len = f.tell()
    if dtype.hasobject:
        raise ValueError(f"entry {info.filename!r} holds Python objects")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if header_len + nbytes != info.file_size:
        raise ValueError(f"entry {info.filename!r}: its header declares {nbytes} bytes of data but the entry "
                         f"holds {info.file_size - header_len}")
    return tuple(shape), dtype


def _expected_layers(meta: dict[str, Any]) -> list[dict[str, int]]:
    """Geometry of every layer that ``model_config`` asks for, its density and epsilon checked
    (nothing built: a layer is built with the block count the file holds)."""
    cfg = meta.get("model_config")
    if not isinstance(cfg, dict):
        raise ValueError("the metadata has no model_config object")
    sizes = [int(v) for v in cfg["sizes"]]
    n_layers = len(sizes) - 1
    motif = motif_spec.for_model(cfg["motif"])
    motifs = motif if isinstance(motif, list) else [motif] * n_layers
    if n_layers < 1 or len(motifs) != n_layers:
        raise ValueError(f"model_config has {len(sizes)} sizes and {len(motifs)} motif entries")
    layers = []
    for i in range(n_layers):
        m = motifs[i]
        m_out, m_in = (int(m), int(m)) if isinstance(m, int) else (int(m[0]), int(m[1]))
        n_in, n_out = sizes[i], sizes[i + 1]
        if min(n_in, n_out, m_in, m_out) < 1:
            raise ValueError(f"model_config layer {i}: widths and motif sizes must be >= 1")
        check_density(float(cfg["density"][i]), f"model_config density[{i}]")
        check_epsilon(cfg["epsilon"][i], f"model_config epsilon[{i}]")
        g_out, g_in = -(-n_out // m_out), -(-n_in // m_in)
        bias = g_out if cfg.get("bias") == "motif" else n_out
        layers.append({"G_out": g_out, "G_in": g_in, "bias": bias})
    return layers


def _check_entries(meta: dict[str, Any], headers: dict[str, tuple], infos: dict[str, zipfile.ZipInfo]) -> None:
    """Every size the arrays declare agrees with ``model_config`` and bounds what loading allocates:
    a crafted config cannot make the loader build a model much larger than the file's arrays."""
    try:
        layers = _expected_layers(meta)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise ValueError(f"the checkpoint's model_config is invalid: {exc}") from None
    # Every entry is one the loader knows, with a size bounded by model_config, before any is
    # inflated: an unknown name (``layer0.pad.npy``) is refused, not read.
    for name in headers:
        m = _LAYER_ENTRY.fullmatch(name)
        if name in _SCALAR_ENTRIES:
            if headers[name][0] != ():
                raise ValueError(f"entry {name!r} has shape {headers[name][0]}, expected a scalar")
        elif m is None or m.group(2) not in _LAYER_KEYS:
            raise ValueError(f"entry {name!r} is not part of a motifcore checkpoint")
    for i, lay in enumerate(layers):
        def shape(key: str, i: int = i) -> tuple:
            h = headers.get(f"layer{i}.{key}.npy")
            if h is None:
                raise ValueError(f"the checkpoint has no entry 'layer{i}.{key}'")
            return h[0]
        if shape("indptr") != (lay["G_out"] + 1,):
            raise ValueError(f"layer{i}.indptr has shape {shape('indptr')}, model_config needs ({lay['G_out'] + 1},)")
        if shape("bias") != (lay["bias"],):
            raise ValueError(f"layer{i}.bias has shape {shape('bias')}, model_config needs ({lay['bias']},)")
        (n_blocks,) = shape("indices") if len(shape("indices")) == 1 else (-1,)
        if not 0 <= n_blocks <= lay["G_out"] * lay["G_in"]:
            raise ValueError(f"layer{i}.indices has shape {shape('indices')} for a "
                             f"{lay['G_out']} x {lay['G_in']} block grid")
        if i == 0 and lay["G_in"] > max(_MAX_INPUT_GROUPS, 16 * n_blocks):
            # the one size no array of the file bounds (later layers' inputs are earlier layers' biases)
            raise ValueError(f"model_config asks for {lay['G_in']} input motifs in layer 0 but the checkpoint "
                             f"holds {n_blocks} blocks there")
        for key in ("weights", "weight_velocity", "weight_sq"):
            if f"layer{i}.{key}.npy" in headers and shape(key) != (n_blocks,):
                raise ValueError(f"layer{i}.{key} has shape {shape(key)}, expected ({n_blocks},)")
        for key in ("bias_velocity", "bias_sq"):
            if f"layer{i}.{key}.npy" in headers and shape(key) != (lay["bias"],):
                raise ValueError(f"layer{i}.{key} has shape {shape(key)}, expected ({lay['bias']},)")
        if f"layer{i}.codes.npy" in headers or f"layer{i}.centroids.npy" in headers:
            if shape("codes") != (n_blocks,):
                raise ValueError(f"layer{i}.codes has shape {shape('codes')}, expected ({n_blocks},)")
            (k,) = shape("centroids") if len(shape("centroids")) == 1 else (-1,)
            if not 1 <= k <= max(n_blocks, 1):
                raise ValueError(f"layer{i}.centroids has shape {shape('centroids')} for {n_blocks} blocks")
            for key in ("centroid_velocity", "centroid_sq"):
                if shape(key) != (k,):
                    raise ValueError(f"layer{i}.{key} has shape {shape(key)}, expected ({k},)")
    extra = sorted(n for n in headers if (m := _LAYER_ENTRY.fullmatch(n)) and int(m.group(1)) >= len(layers))
    if extra:
        raise ValueError(f"entries {extra} belong to no layer of model_config")


def _read(path: PathLike) -> tuple:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder, not a checkpoint file")
    with open(p, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(f"{p}: not a readable motifcore checkpoint: not an .npz archive (no zip header)")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as zf:
                infos = {i.filename: i for i in zf.infolist()}
                meta_info = infos.get(_META_KEY + ".npy")
                if meta_info is None:
                    raise _MetaError(f"{p}: not a motifcore checkpoint (no {_META_KEY!r} entry)")
                if meta_info.file_size > _META_LIMIT:
                    raise ValueError(f"the metadata entry declares {meta_info.file_size} bytes")
                with zf.open(meta_info) as mf:
                    raw = np.lib.format.read_array(mf, allow_pickle=False)
                meta = _parse_meta(p, raw)
                headers = {n: _entry_header(zf, i) for n, i in infos.items() if n != meta_info.filename}
                _check_entries(meta, headers, infos)
                arrays = {}
                for name in headers:
                    with zf.open(infos[name]) as af:
                        arrays[name[:-4] if name.endswith(".npy") else name] = np.lib.format.read_array(
                            af, allow_pickle=False)
        # zipfile raises NotImplementedError (unknown compression method) and RuntimeError
        # (encryption flag) for flipped header bits
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, MemoryError, NotImplementedError,
                RuntimeError) as exc:
            if isinstance(exc, _MetaError):
                raise
            raise CheckpointError(f"{p}: not a readable motifcore checkpoint (corrupt or truncated, or crafted?): "
                             f"{exc}") from None
    return p, meta, arrays


class _MetaError(CheckpointError):
    """A checkpoint whose metadata is unusable (already names the file)."""


def _parse_meta(p: Path, raw: np.ndarray) -> dict[str, Any]:
    try:
        meta = json.loads(str(raw[()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise _MetaError(f"{p}: the checkpoint's metadata is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise _MetaError(f"{p}: not a motifcore checkpoint (format {fmt!r})")
    version = meta.get("version")
    if version != FORMAT_VERSION:
        raise _MetaError(f"{p}: checkpoint format version {version!r} is not supported "
                         f"(this motifcore reads version {FORMAT_VERSION})")
    return meta


def read_metadata(path: PathLike) -> dict[str, Any]:
    """The JSON metadata of a checkpoint (config, epoch, trainer, history, extra)."""
    return _read(path)[1]


def model_from_state(config: Mapping[str, Any], state: Mapping[str, Any],
                     num_threads: int | None = None) -> MotifMLP:
    """Rebuild a :class:`MotifMLP` from its ``config`` and :meth:`MotifMLP.get_state` arrays."""
    sizes = [int(v) for v in config["sizes"]]
    motif = motif_spec.for_model(config["motif"])
    motifs = motif if isinstance(motif, list) else [motif] * (len(sizes) - 1)
    # Build each layer with the block count the state holds (at least one block), not the one the
    # config's density asks for: set_state replaces the pattern anyway, a layer pruned to few or no
    # blocks loads at any size, and the file, not its config, bounds what loading allocates.
    densities = []
    for i, m in enumerate(motifs):
        m_out, m_in = (int(m), int(m)) if isinstance(m, int) else (int(m[0]), int(m[1]))
        grid = -(-sizes[i + 1] // m_out) * -(-sizes[i] // m_in)
        blocks = int(np.asarray(state[f"layer{i}.indices"]).size) if f"layer{i}.indices" in state else grid
        densities.append(min(1.0, max(blocks, 1) / grid))
    with warnings.catch_warnings():
        # a shared output layer warned when the model was first built; do not repeat it
        warnings.simplefilter("ignore", UserWarning)
        model = MotifMLP(sizes, motif=motif, density=densities, activation=config["activation"],
                         bias=config["bias"], seed=config["seed"], num_threads=num_threads)
    model.config.update(density=list(config["density"]), epsilon=list(config["epsilon"]))
    model.set_state(dict(state))
    return model


def _build_model(p: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 num_threads: int | None) -> MotifMLP:
    cfg = meta.get("model_config")
    try:
        return model_from_state(cfg, arrays, num_threads)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise CheckpointError(f"{p}: the checkpoint's model configuration or arrays are invalid: {exc}") from None


def load_checkpoint(path: PathLike, num_threads: int | None = None) -> CheckpointData:
    """Read a checkpoint; raises ``FileNotFoundError`` if missing and
    :class:`~motifcore.errors.CheckpointError` (a ``ValueError``, naming the file) if corrupt,
    truncated, not a motifcore checkpoint or of an unsupported version."""
    p, meta, arrays = _read(path)
    model = _build_model(p, meta, arrays, num_threads)
    return CheckpointData(model=model, epoch=meta.get("epoch"), trainer=meta.get("trainer"),
                          trainer_state=meta.get("trainer_state"), history=meta.get("history"),
                          extra=meta.get("extra") or {}, meta=meta)


def load_model(path: PathLike, num_threads: int | None = None) -> MotifMLP:
    """The :class:`MotifMLP` stored in a checkpoint (pattern, weights, momentum, step)."""
    return load_checkpoint(path, num_threads).model


def stored_before_set_annealed(evolution: Any) -> bool:
    """Whether a stored evolution configuration is ``"set"`` as it was before round five: SET's
    fixed zeta after every epoch (today ``"set-epoch"``), stored with its zeta alone (today's
    ``"set"`` also stores ``interval`` and ``stop``)."""
    return isinstance(evolution, dict) and evolution.get("preset") == "set" and set(evolution) == {"preset", "zeta"}


def trainer_settings(ck: CheckpointData, path: PathLike, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The :class:`~motifcore.Trainer` keyword arguments of the training run stored in ``ck`` (read
    from ``path``), with ``overrides`` applied: what :meth:`Trainer.from_checkpoint` passes on.

    The configurations of older checkpoints are upgraded (no ``recipe``: the paper's, which they
    ran; ``zero_init`` instead of ``regrow``; ``"set"`` stored before round five: ``"set-epoch"``,
    the schedule it trained with), and JSON lists become tuples again. ValueError naming
    ``path`` if the checkpoint holds a model only, or if the run used something a checkpoint does
    not store (a callable schedule, a teacher's logits) and ``overrides`` does not give it again.
    """
    overrides = dict(overrides or {})
    if ck.trainer is None or ck.epoch is None:
        raise ValueError(f"{path}: the checkpoint holds a model only, not a training run")
    if not isinstance(ck.trainer, dict) or "evolution" not in ck.trainer:
        raise ValueError(f"{path}: the checkpoint's trainer configuration is incomplete (no 'evolution')")
    cfg = dict(ck.trainer)
    evo = cfg.pop("evolution")
    kd = cfg.pop("distill", None)
    if kd is not None and "distill" not in overrides:
        raise ValueError(f"{path}: the run distilled from a teacher (temperature {kd['temperature']}, lam "
                         f"{kd['lam']}); pass distill=KD(teacher_logits, ...) again")
    if cfg.get("lr_schedule") is None and "lr_schedule" not in overrides:
        raise ValueError(f"{path}: the run used a callable lr_schedule; pass lr_schedule= again")
    if evo is None and "evolution" not in overrides:
        raise ValueError(f"{path}: the run used a callable evolution schedule; pass evolution= again")
    if evo is not None:
        cfg["evolution"] = evo
    cfg.setdefault("recipe", "paper")      # checkpoints written before recipes ran the paper's
    cfg.setdefault("label_smoothing", 0.0)  # and those written before label smoothing ran without it
    if stored_before_set_annealed(evo):
        cfg["evolution"] = {**evo, "preset": "set-epoch"}
    if "zero_init" in cfg and "regrow" not in cfg:       # checkpoints written before `regrow`
        cfg["regrow"] = "zero" if cfg["zero_init"] else "he"
    cfg.pop("zero_init", None)
    if "betas" in cfg:
        cfg["betas"] = tuple(cfg["betas"])
    if isinstance(cfg.get("evolve_layers"), list):
        cfg["evolve_layers"] = tuple(cfg["evolve_layers"])
    cfg.update(overrides)
    return cfg
