"""Tabular datasets without an official split, each split 2:1 (stratified, seeded): scikit-learn's
bundled 8x8 digits, scikit-feature ``.mat`` files (``skf:<NAME>``) and the user's own ``.npz``
and ``.csv`` files. scikit-learn and SciPy are imported by the loaders that read them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .._internal.io import PathLike
from ..errors import DatasetError, DatasetNotFoundError
from . import fetch
from .preprocess import Arrays, check_features, check_pair, finish_tabular, load_xy, remap_labels

__all__ = ["digits_path", "find_skf", "load_csv", "load_digits", "load_npz", "load_skf", "skf_files", "user_path"]


def digits_path() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def load_digits(seed: int, normalize: bool) -> Arrays:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return load_xy("sklearn digits", X, y, seed, normalize)


# --------------------------------------------------------------------------------------------
# scikit-feature .mat files
# --------------------------------------------------------------------------------------------


def skf_dirs(data_dir: PathLike | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        dirs += [root, root / "scikit-feature"]
    env = fetch.env_root()
    if env is not None:
        dirs += [env / "scikit-feature", env]
    dirs.append(fetch.cache_root() / "scikit-feature")
    return dirs


def skf_files(data_dir: PathLike | None) -> dict[str, Path]:
    """All ``.mat`` files in the scikit-feature search folders, first hit per lower-case stem."""
    found: dict[str, Path] = {}
    for d in skf_dirs(data_dir):
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.mat")):
            if p.is_file():
                found.setdefault(p.stem.lower(), p)
    return found


def find_skf(stem: str, data_dir: PathLike | None) -> Path:
    path = skf_files(data_dir).get(stem.lower())
    if path is None:
        where = [str(d / f"{stem}.mat") for d in skf_dirs(data_dir)]
        raise DatasetNotFoundError(
            f"scikit-feature dataset {stem!r} not found (case-insensitive match of "
            f"<name>.mat) in: " + ", ".join(where)
        )
    return path


def load_skf(stem: str, data_dir: PathLike | None, seed: int, normalize: bool) -> Arrays:
    path = find_skf(stem, data_dir)
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
    return load_xy(path, X, Y, seed, normalize, xname="X", yname="Y")


# --------------------------------------------------------------------------------------------
# User files: npz and csv
# --------------------------------------------------------------------------------------------


def user_path(arg: str, data_dir: PathLike | None) -> Path:
    if not arg:
        raise ValueError("a file path is required after the 'npz:' / 'csv:' prefix")
    path = Path(arg).expanduser()
    if not path.is_absolute() and not path.exists() and data_dir is not None:
        alt = Path(data_dir).expanduser() / path
        if alt.exists():
            return alt
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: file not found")
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder, not a dataset file")
    if not path.is_file():
        raise DatasetError(f"{path}: not a regular file (a device, pipe or socket); give an .npz or .csv file")
    return path


def load_npz(path: Path, seed: int, normalize: bool) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zip, format and dtype errors all mean "bad file"
        raise DatasetError(f"{path}: cannot read .npz file ({type(exc).__name__}: {exc})") from None
    split_keys = ("X_train", "y_train", "X_test", "y_test")
    if all(k in arrays for k in split_keys):
        X_tr = check_features(path, "X_train", arrays["X_train"])
        X_te = check_features(path, "X_test", arrays["X_test"])
        if X_tr.shape[1] != X_te.shape[1]:
            raise DatasetError(
                f"{path}: X_train has {X_tr.shape[1]} features but X_test has {X_te.shape[1]}"
            )
        y_tr = check_pair(path, "X_train", X_tr, "y_train", arrays["y_train"])
        y_te = check_pair(path, "X_test", X_te, "y_test", arrays["y_test"])
        y_tr, y_te = remap_labels(path, y_tr, y_te)
        return finish_tabular(X_tr, y_tr, X_te, y_te, normalize)
    if "X" in arrays and "y" in arrays:
        return load_xy(path, arrays["X"], arrays["y"], seed, normalize)
    raise DatasetError(
        f"{path}: expected keys X_train, y_train, X_test, y_test (or X, y); found {sorted(arrays)}"
    )


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_csv(path: Path, seed: int, normalize: bool) -> Arrays:
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read CSV file ({exc})") from None
    skip = 0
    fields = first.strip().split(",")
    numeric = [is_number(v) for v in fields]
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
    return load_xy(
        path,
        data[:, :-1],
        data[:, -1],
        seed,
        normalize,
        xname="feature columns",
        yname="label column",
    )
