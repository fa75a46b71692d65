"""CIFAR-10 from its python-batch release (folder or ``.tar.gz``, never downloaded): a restricted
unpickler that only rebuilds NumPy arrays, per-channel standardisation, and the flip-and-shift
augmentation of flattened images."""

from __future__ import annotations

import io
import pickle
import tarfile
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .._internal.io import PathLike
from ..errors import DatasetError, DatasetNotFoundError
from . import fetch
from .preprocess import Arrays, finish_images

__all__ = ["CIFAR_FEATURES", "augment_cifar", "find_cifar", "load_cifar"]

CIFAR_DIRNAME = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
CIFAR_FEATURES = 3 * 32 * 32

# Globals a CIFAR batch may legitimately reference (numpy array reconstruction only).
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # protocol-2 pickles written by Python 3 encode every bytes object through this
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy's array reconstruction helpers."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_ALLOWED:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def cifar_candidates(data_dir: PathLike | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = fetch.env_root()
    if env is not None:
        roots.append(env)
    roots.append(fetch.cache_root())
    out: list[Path] = []
    for r in roots:
        out += [r, r / CIFAR_DIRNAME, r / "cifar10", r / "cifar10" / CIFAR_DIRNAME]
    return out


def find_cifar(data_dir: PathLike | None) -> Path | None:
    """Folder holding the unpacked batches, or the ``.tar.gz`` archive itself."""
    names = CIFAR_TRAIN + (CIFAR_TEST,)
    for cand in cifar_candidates(data_dir):
        if fetch.has_all(cand, names):
            return cand
        if (cand / CIFAR_ARCHIVE).is_file():
            return cand / CIFAR_ARCHIVE
    return None


def parse_cifar_batch(where: str, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        obj = _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can raise almost anything
        raise DatasetError(f"{where}: not a valid CIFAR-10 batch pickle ({exc})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    missing = [k for k in ("data", "labels") if k not in d]
    if missing:
        raise DatasetError(f"{where}: missing key(s) {missing}; found {sorted(map(str, d))}")
    data = d["data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or (data.shape[1] != CIFAR_FEATURES)
    ):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{where}: 'data' must be uint8 [N, {CIFAR_FEATURES}], got {desc}")
    try:
        labels = np.asarray(d["labels"], dtype=np.int64).ravel()
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: 'labels' are not integers ({exc})") from None
    if labels.shape[0] != data.shape[0]:
        raise DatasetError(f"{where}: {data.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{where}: labels outside 0..9")
    return data, labels


def read_cifar_batches(source: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], ...]:
    names = CIFAR_TRAIN + (CIFAR_TEST,)
    parsed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if source.is_dir():
        for n in names:
            p = source / n
            try:
                blob = p.read_bytes()
            except OSError as exc:
                raise DatasetError(f"{p}: cannot read file ({exc})") from None
            parsed[n] = parse_cifar_batch(str(p), blob)
    else:
        try:
            with tarfile.open(source, "r:gz") as tar:
                for n in names:
                    member = f"{CIFAR_DIRNAME}/{n}"
                    try:
                        f = tar.extractfile(member)
                    except KeyError:
                        f = None
                    if f is None:
                        raise DatasetError(f"{source}: archive has no member {member}")
                    parsed[n] = parse_cifar_batch(f"{source}:{member}", f.read())
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{source}: cannot read archive ({exc})") from None
    train = [parsed[n] for n in CIFAR_TRAIN]
    return train, [parsed[CIFAR_TEST]]


def load_cifar(data_dir: PathLike | None, normalize: bool) -> Arrays:
    source = find_cifar(data_dir)
    if source is None:
        raise DatasetNotFoundError(
            fetch.not_found_message("cifar10", cifar_candidates(data_dir))
            + f" (expected {CIFAR_DIRNAME}/data_batch_1..5 and test_batch, or {CIFAR_ARCHIVE};"
            " CIFAR-10 is never downloaded automatically)"
        )
    train, test = read_cifar_batches(source)
    X_tr = np.concatenate([d for d, _ in train])
    y_tr = np.concatenate([lab for _, lab in train])
    X_te, y_te = test[0]
    return finish_images(X_tr, y_tr, X_te, y_te, normalize, per_channel=3)


def augment_cifar(
    X: np.ndarray,
    rng: np.random.Generator | int | None,
    flip: bool = True,
    crop_pad: int = 4,
) -> np.ndarray:
    """Randomly flip and shift flattened CIFAR-style images.

    Parameters
    ----------
    X : ndarray, shape [n, 3072]
        Images flattened channel-major (3 x 32 x 32), as returned by ``load("cifar10")``.
    rng : numpy.random.Generator or int or None
        Source of randomness (an int or None seeds a new generator).
    flip : bool, default True
        Mirror each image left-right with probability 1/2.
    crop_pad : int, default 4
        Pad each side with ``crop_pad`` zeros and cut a random 32x32 window, i.e. shift each
        image by up to ``crop_pad`` pixels in each direction. The padding value is 0 of the
        array given (for normalised data, the channel mean). ``0`` disables cropping.

    Returns
    -------
    ndarray, shape [n, 3072]
        A new C-contiguous array of the same dtype; ``X`` is not modified.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != CIFAR_FEATURES:
        raise ValueError(f"augment_cifar expects shape [n, {CIFAR_FEATURES}], got {X.shape}")
    if crop_pad < 0:
        raise ValueError(f"crop_pad must be >= 0, got {crop_pad}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    n = X.shape[0]
    imgs = X.reshape(n, 3, 32, 32)
    if flip:
        mask = np.asarray(rng.random(size=n)) < 0.5
        imgs = np.where(mask[:, None, None, None], imgs[..., ::-1], imgs)
    if crop_pad > 0:
        p = crop_pad
        padded = np.zeros((n, 3, 32 + 2 * p, 32 + 2 * p), dtype=X.dtype)
        padded[:, :, p : p + 32, p : p + 32] = imgs
        oy = np.asarray(rng.integers(0, 2 * p + 1, size=n))
        ox = np.asarray(rng.integers(0, 2 * p + 1, size=n))
        rows = oy[:, None] + np.arange(32)  # [n, 32]
        cols = ox[:, None] + np.arange(32)
        imgs = padded[
            np.arange(n)[:, None, None, None],
            np.arange(3)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
    return np.ascontiguousarray(imgs.reshape(n, CIFAR_FEATURES), dtype=X.dtype)
