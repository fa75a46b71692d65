"""Dataset loading and preprocessing for motifcore experiments.

Every loader returns ``(X_train, y_train, X_test, y_test)`` with ``X`` a C-contiguous
``float32`` array of shape ``[n_samples, n_features]`` and ``y`` an ``int64`` array of
class indices in ``[0, n_classes)``.

Supported names (see :func:`load`):

``"fashion-mnist"``, ``"mnist"``
    The official gzip-compressed IDX files (fixed 60 000 / 10 000 split).
``"digits"``
    scikit-learn's bundled 8x8 digits (always offline), seeded stratified 2:1 split.
``"cifar10"``
    The official python-batch release (``cifar-10-batches-py``), flattened channel-major.
``"skf:<NAME>"``
    A scikit-feature ``.mat`` file such as ``skf:PCMAC`` (stem matched case-insensitively),
    seeded stratified 2:1 split.
``"npz:<path>"``, ``"csv:<path>"``
    The user's own data.

Preprocessing follows the Motif-SET recipe: image pixels are divided by 255 and then
standardised per feature (CIFAR-10: per colour channel) with statistics of the training split
only; tabular data is standardised per feature with training statistics. Pass
``normalize=False`` to get the raw values as ``float32``.

Where files are looked for, in order: the ``data_dir`` argument, the ``MOTIFCORE_DATA``
environment variable, the user cache (``$XDG_CACHE_HOME/motifcore`` or
``~/.cache/motifcore``) and, for the IDX sets, ``/usr/share/datasets`` (where Debian's
``dataset-fashion-mnist`` package installs). Only Fashion-MNIST and MNIST are downloaded when
missing; downloads land in the user cache and are checked against SHA-256 sums.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import sys
import tarfile
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .._internal.io import PathLike, atomic_write

_log = logging.getLogger(__name__)     # a child of the "motifcore" logger

__all__ = [
    "KNOWN_NAMES",
    "DatasetError",
    "DatasetNotFoundError",
    "augment_cifar",
    "available",
    "find",
    "load",
    "n_classes",
    "subsample",
]

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: Dataset names accepted by :func:`load` (the prefixed forms take an argument).
KNOWN_NAMES: tuple[str, ...] = (
    "fashion-mnist",
    "mnist",
    "digits",
    "cifar10",
    "skf:<NAME>",
    "npz:<path>",
    "csv:<path>",
)

_ALIASES = {
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "mnist": "mnist",
    "digits": "digits",
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}

_ENV_VAR = "MOTIFCORE_DATA"
_STD_FLOOR = 1e-8

#: System-wide folders searched for the IDX sets (a list so that tests can replace it).
_SYSTEM_DIRS: list[Path] = [Path("/usr/share/datasets")]


class DatasetError(ValueError):
    """A dataset file is missing, malformed, corrupt or fails its checksum."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The files of a dataset were not found in any searched location."""


# --------------------------------------------------------------------------------------------
# IDX (Fashion-MNIST / MNIST)
# --------------------------------------------------------------------------------------------

_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: SHA-256 of the official gzip files, as published.
_IDX_SHA256: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
}

#: SHA-256 of the *decompressed* official IDX payloads. Repackaged copies (Debian's build
#: rewrites the gzip header: stored name and timestamp) differ from the official ``.gz`` bytes
#: but carry the same content; such a copy is accepted when its content hash matches.
_IDX_CONTENT_SHA256: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte.gz": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "train-labels-idx1-ubyte.gz": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
}

#: Base URLs tried in order when a file has to be downloaded.
_IDX_MIRRORS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
}

_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801

#: Opens a URL and returns a readable, closable response. Replace it (e.g. with pytest's
#: ``monkeypatch``) to serve downloads from memory.
_urlopen: Callable[..., Any] = urllib.request.urlopen

_DOWNLOAD_TIMEOUT = 60.0
_CHUNK = 1 << 16


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _gunzip(path: Path, raw: bytes) -> bytes:
    try:
        return gzip.decompress(raw)
    except EOFError as exc:
        raise DatasetError(f"{path}: gzip data is truncated ({exc})") from None
    except (OSError, zlib.error) as exc:
        raise DatasetError(f"{path}: not a valid gzip file ({exc})") from None


def _read_idx(
    path: Path, kind: str, dataset: str | None = None, verify: bool = False
) -> np.ndarray:
    """Read one gzip-compressed IDX file.

    ``kind`` is ``"images"`` (returns uint8 ``[n, rows * cols]``, each image flattened row by
    row) or ``"labels"`` (uint8 ``[n]``). When ``verify`` is true and ``dataset`` and the file
    name identify a known official file, its SHA-256 is checked.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc})") from None

    expected = _IDX_SHA256.get(dataset or "", {}).get(path.name) if verify else None
    file_hash_ok = expected is None or _sha256(raw) == expected

    data = _gunzip(path, raw)

    if not file_hash_ok:
        # A repackaged copy (different gzip header) is fine if its content is the official one.
        content_expected = _IDX_CONTENT_SHA256[dataset or ""][path.name]
        if _sha256(data) != content_expected:
            raise DatasetError(
                f"{path}: SHA-256 mismatch for the official {dataset} file {path.name}: "
                f"expected {expected}, got {_sha256(raw)} (the decompressed content does not "
                f"match either). Replace the file (a cached download can simply be deleted and is "
                f"fetched again), or pass verify=False to load it anyway."
            )

    header = 16 if kind == "images" else 8
    magic_expected = _IDX_IMAGES_MAGIC if kind == "images" else _IDX_LABELS_MAGIC
    if len(data) < header:
        raise DatasetError(
            f"{path}: IDX {kind} file too short ({len(data)} bytes, header needs {header})"
        )
    magic = int.from_bytes(data[0:4], "big")
    if magic != magic_expected:
        raise DatasetError(
            f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{magic_expected:08x} "
            f"(IDX {kind} file)"
        )
    n = int.from_bytes(data[4:8], "big")
    if n == 0:
        raise DatasetError(f"{path}: IDX {kind} file holds no items")
    if kind == "images":
        rows = int.from_bytes(data[8:12], "big")
        cols = int.from_bytes(data[12:16], "big")
        if rows == 0 or cols == 0:
            raise DatasetError(f"{path}: IDX image size {rows}x{cols} is empty")
        item = rows * cols
    else:
        item = 1
    expected_len = header + n * item
    if len(data) != expected_len:
        dims = f"{n}x{rows}x{cols}" if kind == "images" else f"{n}"
        raise DatasetError(
            f"{path}: IDX header declares {dims} items ({expected_len} bytes with header) "
            f"but the payload has {len(data)} bytes"
        )
    arr = np.frombuffer(data, dtype=np.uint8, offset=header)
    return arr.reshape(n, item) if kind == "images" else arr


def _load_idx_split(
    directory: Path, prefix: str, dataset: str, verify: bool
) -> tuple[np.ndarray, np.ndarray]:
    img_path = directory / f"{prefix}-images-idx3-ubyte.gz"
    lab_path = directory / f"{prefix}-labels-idx1-ubyte.gz"
    images = _read_idx(img_path, "images", dataset, verify)
    labels = _read_idx(lab_path, "labels", dataset, verify)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{lab_path}: holds {labels.shape[0]} labels but {img_path.name} holds "
            f"{images.shape[0]} images"
        )
    bad = labels >= 10
    if bad.any():
        raise DatasetError(
            f"{lab_path}: {int(bad.sum())} label(s) outside 0..9 (largest {int(labels.max())})"
        )
    return images, labels.astype(np.int64)


def _has_all(directory: Path, names: Iterable[str]) -> bool:
    return all((directory / n).is_file() for n in names)


def _cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "motifcore"


def _env_root() -> Path | None:
    value = os.environ.get(_ENV_VAR)
    return Path(value).expanduser() if value else None


def _idx_candidates(name: str, data_dir: PathLike | None) -> list[Path]:
    out: list[Path] = []
    for root in (Path(data_dir).expanduser() if data_dir is not None else None, _env_root()):
        if root is not None:
            out += [root, root / name]
    out.append(_cache_root() / name)
    out += [d / name for d in _SYSTEM_DIRS]
    return out


def _find_idx(name: str, data_dir: PathLike | None) -> Path | None:
    for cand in _idx_candidates(name, data_dir):
        if _has_all(cand, _IDX_FILES):
            return cand
    return None


def _progress(total: int | None, desc: str) -> Any:
    """A byte-counting bar on stderr when it is a terminal (None means: off otherwise); the
    download is also logged, for logs that are not terminals."""
    _log.info("%s ...", desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr, leave=True,
                disable=None)


def _download(url: str, dest: Path, sha256: str) -> None:
    """Fetch ``url`` into ``dest`` atomically, checking its SHA-256: the data streams into a
    temporary file that replaces ``dest`` only when complete and verified (``atomic_write``)."""

    def fetch(out: Any) -> None:
        digest = hashlib.sha256()
        with _urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as resp:
            headers = getattr(resp, "headers", None)
            length = headers.get("Content-Length") if headers is not None else None
            bar = _progress(int(length) if length else None, f"downloading {dest.name}")
            try:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        actual = digest.hexdigest()
        if actual != sha256:
            raise DatasetError(
                f"{dest}: SHA-256 mismatch for download from {url}: expected {sha256}, got {actual}"
            )

    atomic_write(dest, fetch)


def _download_idx(name: str) -> Path:
    target = _cache_root() / name
    for fname in _IDX_FILES:
        dest = target / fname
        if dest.is_file():
            continue
        errors = []
        for base in _IDX_MIRRORS[name]:
            try:
                _download(base + fname, dest, _IDX_SHA256[name][fname])
                break
            except (OSError, DatasetError) as exc:
                errors.append(f"{base + fname}: {exc}")
        else:
            raise DatasetError(
                f"could not download {name} file {fname} to {dest}:\n  "
                + "\n  ".join(errors)
                + f"\nWithout network access, put the four official files in a folder and pass "
                f"it as data_dir or set {_ENV_VAR}."
            )
    return target


def _load_idx(
    name: str, data_dir: PathLike | None, normalize: bool, verify: bool, download: bool
) -> Arrays:
    directory = _find_idx(name, data_dir)
    if directory is None:
        if not download:
            raise DatasetNotFoundError(_not_found_message(name, _idx_candidates(name, data_dir)))
        directory = _download_idx(name)
    X_tr, y_tr = _load_idx_split(directory, "train", name, verify)
    X_te, y_te = _load_idx_split(directory, "t10k", name, verify)
    if X_tr.shape[1] != X_te.shape[1]:
        raise DatasetError(
            f"{directory}: train images have {X_tr.shape[1]} pixels, test images {X_te.shape[1]}"
        )
    return _finish_images(X_tr, y_tr, X_te, y_te, normalize, per_channel=None)


# --------------------------------------------------------------------------------------------
# Preprocessing helpers
# --------------------------------------------------------------------------------------------


def _safe_std(std: np.ndarray) -> np.ndarray:
    std = np.asarray(std, dtype=np.float64).copy()
    std[~(std >= _STD_FLOOR)] = 1.0
    return std


def _mean_std(X: np.ndarray, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (population) std in float64, in row blocks to bound temporaries."""
    n = X.shape[0]
    mean = X.mean(axis=0, dtype=np.float64)
    ss = np.zeros(X.shape[1], dtype=np.float64)
    for start in range(0, n, block):
        d = X[start : start + block] - mean
        ss += np.einsum("ij,ij->j", d, d)
    return mean, np.sqrt(ss / n)


def _zscore_features(X_tr: np.ndarray, X_te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise float32 arrays in place per feature with training statistics."""
    mean, std = _mean_std(X_tr)
    std = _safe_std(std)
    m32 = mean.astype(np.float32)
    s32 = (1.0 / std).astype(np.float32)
    for X in (X_tr, X_te):
        X -= m32
        X *= s32
    return X_tr, X_te


def _zscore_channels(
    X_tr: np.ndarray, X_te: np.ndarray, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise float32 ``[n, channels * pixels]`` arrays in place per channel."""
    tr = X_tr.reshape(X_tr.shape[0], channels, -1)
    te = X_te.reshape(X_te.shape[0], channels, -1)
    for c in range(channels):
        mean_c, std_c = _mean_std(tr[:, c, :])  # per pixel of this channel, then pooled
        mean = float(mean_c.mean())
        # pooled variance over all pixels = mean of per-pixel variances + variance of means
        var = float(np.mean(std_c**2) + np.mean((mean_c - mean) ** 2))
        std = float(_safe_std(np.array([np.sqrt(var)]))[0])
        for a in (tr, te):
            a[:, c, :] -= np.float32(mean)
            a[:, c, :] *= np.float32(1.0 / std)
    return X_tr, X_te


def _finish_images(
    X_tr: np.ndarray,
    y_tr: np.ndarray,
    X_te: np.ndarray,
    y_te: np.ndarray,
    normalize: bool,
    per_channel: int | None,
) -> Arrays:
    X_tr = np.array(X_tr, dtype=np.float32, order="C")
    X_te = np.array(X_te, dtype=np.float32, order="C")
    if normalize:
        X_tr /= np.float32(255.0)
        X_te /= np.float32(255.0)
        if per_channel:
            _zscore_channels(X_tr, X_te, per_channel)
        else:
            _zscore_features(X_tr, X_te)
    return X_tr, _as_labels(y_tr), X_te, _as_labels(y_te)


def _finish_tabular(
    X_tr: np.ndarray, y_tr: np.ndarray, X_te: np.ndarray, y_te: np.ndarray, normalize: bool
) -> Arrays:
    X_tr = np.array(X_tr, dtype=np.float32, order="C")
    X_te = np.array(X_te, dtype=np.float32, order="C")
    if normalize:
        _zscore_features(X_tr, X_te)
    return X_tr, _as_labels(y_tr), X_te, _as_labels(y_te)


def _as_labels(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.int64)


def _remap_labels(path: Any, *ys: np.ndarray) -> list[np.ndarray]:
    """Map the sorted distinct labels of all ``ys`` jointly to ``0..k-1``."""
    arrays = [np.asarray(y).ravel() for y in ys]
    joined = np.concatenate(arrays)
    if joined.dtype.kind == "f" and not np.isfinite(joined).all():
        raise DatasetError(f"{path}: labels contain NaN or infinite values")
    if joined.dtype.kind not in "biufUS":
        raise DatasetError(f"{path}: unsupported label dtype {joined.dtype}")
    _, inverse = np.unique(joined, return_inverse=True)
    inverse = inverse.ravel().astype(np.int64)
    out, start = [], 0
    for a in arrays:
        out.append(inverse[start : start + a.size])
        start += a.size
    return out


def _check_features(path: Any, what: str, values: Any) -> np.ndarray:
    X: np.ndarray = np.asarray(values)
    if X.ndim != 2:
        raise DatasetError(f"{path}: {what} must be 2-D [samples, features], got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DatasetError(f"{path}: {what} is empty (shape {X.shape})")
    if X.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: {what} must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        raise DatasetError(f"{path}: {what} contains NaN or infinite values")
    big = float(np.abs(X).max())
    if big > float(np.finfo(np.float32).max):
        raise DatasetError(f"{path}: {what} holds values up to {big:.3g}, beyond the float32 range "
                           f"({np.finfo(np.float32).max:.3g}) the models compute in; rescale the data")
    return X


def _check_pair(path: Any, xname: str, X: np.ndarray, yname: str, labels: Any) -> np.ndarray:
    y: np.ndarray = np.asarray(labels)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise DatasetError(f"{path}: {yname} must be 1-D, got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise DatasetError(
            f"{path}: {xname} has {X.shape[0]} rows but {yname} has {y.shape[0]} labels"
        )
    return y


def _split(path: Any, X: np.ndarray, y: np.ndarray, seed: int) -> Arrays:
    """Seeded stratified 2:1 train:test split."""
    from sklearn.model_selection import train_test_split

    try:
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=1 / 3, stratify=y, random_state=seed
        )
    except ValueError as exc:
        raise DatasetError(f"{path}: cannot make a stratified 2:1 split ({exc})") from None
    return X_tr, y_tr, X_te, y_te


def _load_xy(
    path: Any, X: Any, y: Any, seed: int, normalize: bool, xname: str = "X", yname: str = "y"
) -> Arrays:
    X = _check_features(path, xname, X)
    y = _check_pair(path, xname, X, yname, y)
    (y,) = _remap_labels(path, y)
    X_tr, y_tr, X_te, y_te = _split(path, X, y, seed)
    return _finish_tabular(X_tr, y_tr, X_te, y_te, normalize)


# --------------------------------------------------------------------------------------------
# scikit-learn digits
# --------------------------------------------------------------------------------------------


def _digits_path() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def _load_digits(seed: int, normalize: bool) -> Arrays:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return _load_xy("sklearn digits", X, y, seed, normalize)


# --------------------------------------------------------------------------------------------
# scikit-feature .mat files
# --------------------------------------------------------------------------------------------


def _skf_dirs(data_dir: PathLike | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        dirs += [root, root / "scikit-feature"]
    env = _env_root()
    if env is not None:
        dirs += [env / "scikit-feature", env]
    dirs.append(_cache_root() / "scikit-feature")
    return dirs


def _skf_files(data_dir: PathLike | None) -> dict[str, Path]:
    """All ``.mat`` files in the scikit-feature search folders, first hit per lower-case stem."""
    found: dict[str, Path] = {}
    for d in _skf_dirs(data_dir):
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.mat")):
            if p.is_file():
                found.setdefault(p.stem.lower(), p)
    return found


def _find_skf(stem: str, data_dir: PathLike | None) -> Path:
    path = _skf_files(data_dir).get(stem.lower())
    if path is None:
        where = [str(d / f"{stem}.mat") for d in _skf_dirs(data_dir)]
        raise DatasetNotFoundError(
            f"scikit-feature dataset {stem!r} not found (case-insensitive match of "
            f"<name>.mat) in: " + ", ".join(where)
        )
    return path


def _load_skf(stem: str, data_dir: PathLike | None, seed: int, normalize: bool) -> Arrays:
    path = _find_skf(stem, data_dir)
    import scipy.io
    import scipy.sparse

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises many types for bad files
        raise DatasetError(
            f"{path}: cannot read MATLAB file ({type(exc).__name__}: {exc})"
        ) from None
    missing = [k for k in ("X", "Y") if k not in mat]
    if missing:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetError(f"{path}: missing key(s) {missing}; the file holds {keys}")
    X = mat["X"]
    if scipy.sparse.issparse(X):
        X = X.toarray()
    Y = mat["Y"]
    if scipy.sparse.issparse(Y):
        Y = Y.toarray()
    return _load_xy(path, X, Y, seed, normalize, xname="X", yname="Y")


# --------------------------------------------------------------------------------------------
# CIFAR-10 (python batches)
# --------------------------------------------------------------------------------------------

_CIFAR_DIRNAME = "cifar-10-batches-py"
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"
_CIFAR_FEATURES = 3 * 32 * 32

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


def _cifar_candidates(data_dir: PathLike | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = _env_root()
    if env is not None:
        roots.append(env)
    roots.append(_cache_root())
    out: list[Path] = []
    for r in roots:
        out += [r, r / _CIFAR_DIRNAME, r / "cifar10", r / "cifar10" / _CIFAR_DIRNAME]
    return out


def _find_cifar(data_dir: PathLike | None) -> Path | None:
    """Folder holding the unpacked batches, or the ``.tar.gz`` archive itself."""
    names = _CIFAR_TRAIN + (_CIFAR_TEST,)
    for cand in _cifar_candidates(data_dir):
        if _has_all(cand, names):
            return cand
        if (cand / _CIFAR_ARCHIVE).is_file():
            return cand / _CIFAR_ARCHIVE
    return None


def _parse_cifar_batch(where: str, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
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
        or (data.shape[1] != _CIFAR_FEATURES)
    ):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{where}: 'data' must be uint8 [N, {_CIFAR_FEATURES}], got {desc}")
    try:
        labels = np.asarray(d["labels"], dtype=np.int64).ravel()
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: 'labels' are not integers ({exc})") from None
    if labels.shape[0] != data.shape[0]:
        raise DatasetError(f"{where}: {data.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{where}: labels outside 0..9")
    return data, labels


def _read_cifar_batches(source: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], ...]:
    names = _CIFAR_TRAIN + (_CIFAR_TEST,)
    parsed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if source.is_dir():
        for n in names:
            p = source / n
            try:
                blob = p.read_bytes()
            except OSError as exc:
                raise DatasetError(f"{p}: cannot read file ({exc})") from None
            parsed[n] = _parse_cifar_batch(str(p), blob)
    else:
        try:
            with tarfile.open(source, "r:gz") as tar:
                for n in names:
                    member = f"{_CIFAR_DIRNAME}/{n}"
                    try:
                        f = tar.extractfile(member)
                    except KeyError:
                        f = None
                    if f is None:
                        raise DatasetError(f"{source}: archive has no member {member}")
                    parsed[n] = _parse_cifar_batch(f"{source}:{member}", f.read())
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{source}: cannot read archive ({exc})") from None
    train = [parsed[n] for n in _CIFAR_TRAIN]
    return train, [parsed[_CIFAR_TEST]]


def _load_cifar(data_dir: PathLike | None, normalize: bool) -> Arrays:
    source = _find_cifar(data_dir)
    if source is None:
        raise DatasetNotFoundError(
            _not_found_message("cifar10", _cifar_candidates(data_dir))
            + f" (expected {_CIFAR_DIRNAME}/data_batch_1..5 and test_batch, or {_CIFAR_ARCHIVE};"
            " CIFAR-10 is never downloaded automatically)"
        )
    train, test = _read_cifar_batches(source)
    X_tr = np.concatenate([d for d, _ in train])
    y_tr = np.concatenate([lab for _, lab in train])
    X_te, y_te = test[0]
    return _finish_images(X_tr, y_tr, X_te, y_te, normalize, per_channel=3)


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
    if X.ndim != 2 or X.shape[1] != _CIFAR_FEATURES:
        raise ValueError(f"augment_cifar expects shape [n, {_CIFAR_FEATURES}], got {X.shape}")
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
    return np.ascontiguousarray(imgs.reshape(n, _CIFAR_FEATURES), dtype=X.dtype)


# --------------------------------------------------------------------------------------------
# User files
# --------------------------------------------------------------------------------------------


def _user_path(arg: str, data_dir: PathLike | None) -> Path:
    if not arg:
        raise ValueError("a file path is required after the 'npz:' / 'csv:' prefix")
    path = Path(arg).expanduser()
    if not path.is_absolute() and not path.exists() and data_dir is not None:
        alt = Path(data_dir).expanduser() / path
        if alt.exists():
            return alt
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: file not found")
    return path


def _load_npz(path: Path, seed: int, normalize: bool) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zip, format and dtype errors all mean "bad file"
        raise DatasetError(f"{path}: cannot read .npz file ({type(exc).__name__}: {exc})") from None
    split_keys = ("X_train", "y_train", "X_test", "y_test")
    if all(k in arrays for k in split_keys):
        X_tr = _check_features(path, "X_train", arrays["X_train"])
        X_te = _check_features(path, "X_test", arrays["X_test"])
        if X_tr.shape[1] != X_te.shape[1]:
            raise DatasetError(
                f"{path}: X_train has {X_tr.shape[1]} features but X_test has {X_te.shape[1]}"
            )
        y_tr = _check_pair(path, "X_train", X_tr, "y_train", arrays["y_train"])
        y_te = _check_pair(path, "X_test", X_te, "y_test", arrays["y_test"])
        y_tr, y_te = _remap_labels(path, y_tr, y_te)
        return _finish_tabular(X_tr, y_tr, X_te, y_te, normalize)
    if "X" in arrays and "y" in arrays:
        return _load_xy(path, arrays["X"], arrays["y"], seed, normalize)
    raise DatasetError(
        f"{path}: expected keys X_train, y_train, X_test, y_test (or X, y); found {sorted(arrays)}"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(path: Path, seed: int, normalize: bool) -> Arrays:
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read CSV file ({exc})") from None
    skip = 0
    fields = first.strip().split(",")
    numeric = [_is_number(v) for v in fields]
    if not any(numeric):
        skip = 1  # a header row: every field is a name
    elif not all(numeric):
        bad = [v for v, ok in zip(fields, numeric) if not ok]
        raise DatasetError(f"{path}: the first row mixes numbers and text ({first.strip()!r}; not a number: "
                           f"{bad[0]!r}): it is neither a header (all names) nor a data row; fix it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # empty-file warnings become our error below
            data = np.loadtxt(
                path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64, encoding="utf-8-sig"
            )
    except ValueError as exc:
        raise DatasetError(f"{path}: not a numeric CSV file ({exc})") from None
    if data.shape[0] == 0:
        raise DatasetError(f"{path}: CSV file has no data rows")
    if data.shape[1] < 2:
        raise DatasetError(
            f"{path}: CSV needs at least one feature column and a label column, "
            f"got {data.shape[1]} column(s)"
        )
    return _load_xy(
        path,
        data[:, :-1],
        data[:, -1],
        seed,
        normalize,
        xname="feature columns",
        yname="label column",
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _not_found_message(name: str, searched: Iterable[Path]) -> str:
    return f"dataset {name!r} not found; searched: " + ", ".join(str(p) for p in searched)


def _parse_name(name: str) -> tuple[str, str]:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    prefix, sep, arg = name.partition(":")
    if sep:
        kind = prefix.strip().lower()
        if kind in ("skf", "npz", "csv"):
            if not arg.strip():
                raise ValueError(f"dataset name {name!r} needs an argument after '{kind}:'")
            return kind, arg.strip() if kind == "skf" else arg
    else:
        canonical = _ALIASES.get(name.strip().lower())
        if canonical is not None:
            return canonical, ""
    raise ValueError(f"unknown dataset {name!r}; known names: {', '.join(KNOWN_NAMES)}")


def load(
    name: str,
    data_dir: PathLike | None = None,
    seed: int = 0,
    *,
    normalize: bool = True,
    verify: bool = True,
    download: bool = True,
) -> Arrays:
    """Load a dataset as ``(X_train, y_train, X_test, y_test)``.

    Parameters
    ----------
    name : str
        ``"fashion-mnist"``, ``"mnist"``, ``"digits"``, ``"cifar10"``, ``"skf:<NAME>"``
        (scikit-feature ``<NAME>.mat``, case-insensitive), ``"npz:<path>"`` or
        ``"csv:<path>"``.
    data_dir : str or path-like, optional
        Folder searched first. For the IDX sets it may hold the four ``.gz`` files directly or
        a ``fashion-mnist/`` / ``mnist/`` subfolder; for scikit-feature the ``.mat`` files or a
        ``scikit-feature/`` subfolder; for CIFAR-10 the batches, ``cifar-10-batches-py/`` or
        the ``cifar-10-python.tar.gz`` archive. Relative ``npz:``/``csv:`` paths that do not
        exist are also tried relative to it.
    seed : int, default 0
        Seed of the stratified 2:1 train:test split used for ``digits``, ``skf:``, ``csv:``
        and ``npz:`` files without a given split. Ignored for datasets with an official split.
    normalize : bool, default True
        Apply the standard preprocessing (see module docstring); ``False`` returns the raw
        values as float32.
    verify : bool, default True
        Check the SHA-256 of the official Fashion-MNIST / MNIST files. A copy whose gzip
        wrapper differs but whose decompressed content is the official one is accepted.
    download : bool, default True
        Download Fashion-MNIST / MNIST into the user cache if not found locally.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        ``X`` float32 C-contiguous ``[n, features]``; ``y`` int64 in ``[0, n_classes)``.

    Raises
    ------
    ValueError
        Unknown dataset name (the message lists the known names).
    DatasetNotFoundError
        The files are not found (and cannot or may not be downloaded).
    DatasetError
        A file is malformed, corrupt or fails its checksum; the message names the file.
    """
    kind, arg = _parse_name(name)
    if kind in ("fashion-mnist", "mnist"):
        return _load_idx(kind, data_dir, normalize, verify, download)
    if kind == "digits":
        return _load_digits(seed, normalize)
    if kind == "cifar10":
        return _load_cifar(data_dir, normalize)
    if kind == "skf":
        return _load_skf(arg, data_dir, seed, normalize)
    path = _user_path(arg, data_dir)
    if kind == "npz":
        return _load_npz(path, seed, normalize)
    return _load_csv(path, seed, normalize)


def find(name: str, data_dir: PathLike | None = None) -> Path:
    """Return the folder that holds a dataset's files locally.

    Parameters
    ----------
    name : str
        A dataset name accepted by :func:`load`.
    data_dir : str or path-like, optional
        Folder searched first (see :func:`load`).

    Returns
    -------
    pathlib.Path
        The folder containing the files (for CIFAR-10 given as an archive, the archive's
        folder). Nothing is downloaded.

    Raises
    ------
    DatasetNotFoundError
        The dataset is not present in any searched location.
    ValueError
        Unknown dataset name.
    """
    kind, arg = _parse_name(name)
    if kind in ("fashion-mnist", "mnist"):
        found = _find_idx(kind, data_dir)
        if found is None:
            raise DatasetNotFoundError(_not_found_message(kind, _idx_candidates(kind, data_dir)))
        return found
    if kind == "digits":
        path = _digits_path()
        if path is None:
            raise DatasetNotFoundError("scikit-learn's bundled digits data is not installed")
        return path.parent
    if kind == "cifar10":
        source = _find_cifar(data_dir)
        if source is None:
            raise DatasetNotFoundError(_not_found_message("cifar10", _cifar_candidates(data_dir)))
        return source if source.is_dir() else source.parent
    if kind == "skf":
        return _find_skf(arg, data_dir).parent
    return _user_path(arg, data_dir).parent


def available(data_dir: PathLike | None = None) -> dict[str, Path | None]:
    """Report which datasets are present locally.

    Parameters
    ----------
    data_dir : str or path-like, optional
        Folder searched first (see :func:`load`).

    Returns
    -------
    dict
        Maps ``"fashion-mnist"``, ``"mnist"``, ``"digits"`` and ``"cifar10"`` to where they
        were found, or ``None``, plus one ``"skf:<NAME>"`` entry for every scikit-feature
        ``.mat`` file found. Multi-file datasets map to their folder (CIFAR-10 possibly to its
        ``.tar.gz`` archive); single-file datasets (scikit-feature, digits) map to the file.
    """
    out: dict[str, Path | None] = {
        "fashion-mnist": _find_idx("fashion-mnist", data_dir),
        "mnist": _find_idx("mnist", data_dir),
        "digits": _digits_path(),
        "cifar10": _find_cifar(data_dir),
    }
    for path in _skf_files(data_dir).values():
        out[f"skf:{path.stem}"] = path
    return out


#: Tag mixed into the seed of :func:`subsample`, so its draw is independent of the split's.
_SUBSAMPLE_TAG = 0x11A17


def subsample(X: np.ndarray, y: np.ndarray, limit: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of ``limit`` training samples, in their original order (all of them
    if ``limit`` is None or not smaller)."""
    if limit is None or limit >= X.shape[0]:
        return X, y
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SUBSAMPLE_TAG]))
    idx = np.sort(rng.permutation(X.shape[0])[:limit])
    return np.ascontiguousarray(X[idx]), np.ascontiguousarray(y[idx])


def n_classes(*labels: np.ndarray) -> int:
    """Number of classes of integer labels in [0, n): the largest label of any split, plus one."""
    return int(max(int(np.max(y)) for y in labels)) + 1
