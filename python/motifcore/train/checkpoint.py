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
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._internal import motif_spec
from .._internal.io import PathLike, atomic_write, utc_now
from .._version import __version__
from ..nn.model import MotifMLP

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


def _read(path: PathLike) -> tuple:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    if p.is_dir():
        raise ValueError(f"{p}: is a folder, not a checkpoint file")
    try:
        # open the file ourselves: np.load leaks its handle when the zip directory is unreadable
        with open(p, "rb") as f:
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")  # noqa: TRY004
            with npz:
                arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{p}: not a readable motifcore checkpoint (corrupt or truncated?): {exc}") from None
    if _META_KEY not in arrays:
        raise ValueError(f"{p}: not a motifcore checkpoint (no {_META_KEY!r} entry)")
    raw = arrays.pop(_META_KEY)
    try:
        meta = json.loads(str(raw[()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"{p}: the checkpoint's metadata is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{p}: not a motifcore checkpoint (format {fmt!r})")
    version = meta.get("version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{p}: checkpoint format version {version!r} is not supported "
                         f"(this motifcore reads version {FORMAT_VERSION})")
    return p, meta, arrays


def read_metadata(path: PathLike) -> dict[str, Any]:
    """The JSON metadata of a checkpoint (config, epoch, trainer, history, extra)."""
    return _read(path)[1]


def model_from_state(config: Mapping[str, Any], state: Mapping[str, Any],
                     num_threads: int | None = None) -> MotifMLP:
    """Rebuild a :class:`MotifMLP` from its ``config`` and :meth:`MotifMLP.get_state` arrays."""
    with warnings.catch_warnings():
        # a shared output layer warned when the model was first built; do not repeat it
        warnings.simplefilter("ignore", UserWarning)
        model = MotifMLP(config["sizes"], motif=motif_spec.for_model(config["motif"]),
                         density=list(config["density"]), epsilon=list(config["epsilon"]),
                         activation=config["activation"], bias=config["bias"], seed=config["seed"],
                         num_threads=num_threads)
    model.set_state(dict(state))
    return model


def _build_model(p: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 num_threads: int | None) -> MotifMLP:
    cfg = meta.get("model_config")
    try:
        return model_from_state(cfg, arrays, num_threads)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise ValueError(f"{p}: the checkpoint's model configuration or arrays are invalid: {exc}") from None


def load_checkpoint(path: PathLike, num_threads: int | None = None) -> CheckpointData:
    """Read a checkpoint; raises ``FileNotFoundError`` if missing and ``ValueError`` (naming the
    file) if corrupt, truncated, not a motifcore checkpoint or of an unsupported version."""
    p, meta, arrays = _read(path)
    model = _build_model(p, meta, arrays, num_threads)
    return CheckpointData(model=model, epoch=meta.get("epoch"), trainer=meta.get("trainer"),
                          trainer_state=meta.get("trainer_state"), history=meta.get("history"),
                          extra=meta.get("extra") or {}, meta=meta)


def load_model(path: PathLike, num_threads: int | None = None) -> MotifMLP:
    """The :class:`MotifMLP` stored in a checkpoint (pattern, weights, momentum, step)."""
    return load_checkpoint(path, num_threads).model
