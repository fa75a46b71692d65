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
``normalize=False`` to get the raw values as ``float32``, ``clip=c`` to clip the standardised
values to ``[-c, c]`` (the ``"motifcore"`` recipe's ``input_clip``, 3: per-feature
standardisation makes a rarely non-zero feature a value of tens or hundreds of standard
deviations).

Where files are looked for, in order: the ``data_dir`` argument, the ``MOTIFCORE_DATA``
environment variable, the user cache (``$XDG_CACHE_HOME/motifcore`` or
``~/.cache/motifcore``) and, for the IDX sets, ``/usr/share/datasets`` (where Debian's
``dataset-fashion-mnist`` package installs). Only Fashion-MNIST and MNIST are downloaded when
missing; downloads land in the user cache and are checked against SHA-256 sums.

The loaders live beside this module, one family each: :mod:`.idx` (Fashion-MNIST, MNIST),
:mod:`.cifar`, :mod:`.tabular` (digits, scikit-feature, npz, csv); the search roots and downloads
in :mod:`.fetch`; the shared preprocessing in :mod:`.preprocess`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._internal.io import PathLike
from ..errors import DatasetError, DatasetNotFoundError
from . import fetch
from .cifar import augment_cifar, cifar_candidates, find_cifar, load_cifar
from .idx import find_idx, idx_candidates, load_idx
from .preprocess import Arrays
from .tabular import digits_path, find_skf, load_csv, load_digits, load_npz, load_skf, skf_files, user_path

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
    clip: float | None = None,
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
    clip : float, optional
        Clip the standardised features to ``[-clip, clip]`` (needs ``normalize``; ``None`` or 0:
        not clipped, the paper's Table 3). The ``"motifcore"`` recipe's ``input_clip``
        (:data:`motifcore.defaults.INPUT_CLIP`, 3) is what ``motifcore train`` uses.
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
    if clip is not None:
        if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip >= 0 or clip == float("inf"):
            raise ValueError(f"clip must be a finite number >= 0 (0: not clipped) or None, got {clip!r}")
        if clip and not normalize:
            raise ValueError("clip needs normalize=True: it clips standardised values")
    arrays = _load(kind, arg, data_dir, seed, normalize, verify, download)
    if clip:
        for X in (arrays[0], arrays[2]):
            np.clip(X, -float(clip), float(clip), out=X)
    return arrays


def _load(kind: str, arg: str, data_dir: PathLike | None, seed: int, normalize: bool, verify: bool,
          download: bool) -> Arrays:
    if kind in ("fashion-mnist", "mnist"):
        return load_idx(kind, data_dir, normalize, verify, download)
    if kind == "digits":
        return load_digits(seed, normalize)
    if kind == "cifar10":
        return load_cifar(data_dir, normalize)
    if kind == "skf":
        return load_skf(arg, data_dir, seed, normalize)
    path = user_path(arg, data_dir)
    if kind == "npz":
        return load_npz(path, seed, normalize)
    return load_csv(path, seed, normalize)


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
        found = find_idx(kind, data_dir)
        if found is None:
            raise DatasetNotFoundError(fetch.not_found_message(kind, idx_candidates(kind, data_dir)))
        return found
    if kind == "digits":
        path = digits_path()
        if path is None:
            raise DatasetNotFoundError("scikit-learn's bundled digits data is not installed")
        return path.parent
    if kind == "cifar10":
        source = find_cifar(data_dir)
        if source is None:
            raise DatasetNotFoundError(fetch.not_found_message("cifar10", cifar_candidates(data_dir)))
        return source if source.is_dir() else source.parent
    if kind == "skf":
        return find_skf(arg, data_dir).parent
    return user_path(arg, data_dir).parent


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
        "fashion-mnist": find_idx("fashion-mnist", data_dir),
        "mnist": find_idx("mnist", data_dir),
        "digits": digits_path(),
        "cifar10": find_cifar(data_dir),
    }
    for path in skf_files(data_dir).values():
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
