"""The preprocessing every loader shares: per-feature and per-channel standardisation with
training statistics, label checks and remapping, and the seeded stratified 2:1 split of a dataset
without an official one (scikit-learn's ``train_test_split``, imported when a split is made)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DatasetError

__all__ = ["Arrays", "check_features", "check_pair", "finish_images", "finish_tabular", "load_xy", "remap_labels",
           "stratified_split", "zscore_channels", "zscore_features"]

#: What every loader returns: ``(X_train, y_train, X_test, y_test)``.
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

STD_FLOOR = 1e-8


def safe_std(std: np.ndarray) -> np.ndarray:
    std = np.asarray(std, dtype=np.float64).copy()
    std[~(std >= STD_FLOOR)] = 1.0
    return std


def mean_std(X: np.ndarray, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (population) std in float64, in row blocks to bound temporaries."""
    n = X.shape[0]
    mean = X.mean(axis=0, dtype=np.float64)
    ss = np.zeros(X.shape[1], dtype=np.float64)
    for start in range(0, n, block):
        d = X[start : start + block] - mean
        ss += np.einsum("ij,ij->j", d, d)
    return mean, np.sqrt(ss / n)


def zscore_features(X_tr: np.ndarray, X_te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise float32 arrays in place per feature with training statistics."""
    mean, std = mean_std(X_tr)
    std = safe_std(std)
    m32 = mean.astype(np.float32)
    s32 = (1.0 / std).astype(np.float32)
    for X in (X_tr, X_te):
        X -= m32
        X *= s32
    return X_tr, X_te


def zscore_channels(
    X_tr: np.ndarray, X_te: np.ndarray, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise float32 ``[n, channels * pixels]`` arrays in place per channel."""
    tr = X_tr.reshape(X_tr.shape[0], channels, -1)
    te = X_te.reshape(X_te.shape[0], channels, -1)
    for c in range(channels):
        mean_c, std_c = mean_std(tr[:, c, :])  # per pixel of this channel, then pooled
        mean = float(mean_c.mean())
        # pooled variance over all pixels = mean of per-pixel variances + variance of means
        var = float(np.mean(std_c**2) + np.mean((mean_c - mean) ** 2))
        std = float(safe_std(np.array([np.sqrt(var)]))[0])
        for a in (tr, te):
            a[:, c, :] -= np.float32(mean)
            a[:, c, :] *= np.float32(1.0 / std)
    return X_tr, X_te


def finish_images(
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
            zscore_channels(X_tr, X_te, per_channel)
        else:
            zscore_features(X_tr, X_te)
    return X_tr, as_labels(y_tr), X_te, as_labels(y_te)


def finish_tabular(
    X_tr: np.ndarray, y_tr: np.ndarray, X_te: np.ndarray, y_te: np.ndarray, normalize: bool
) -> Arrays:
    X_tr = np.array(X_tr, dtype=np.float32, order="C")
    X_te = np.array(X_te, dtype=np.float32, order="C")
    if normalize:
        zscore_features(X_tr, X_te)
    return X_tr, as_labels(y_tr), X_te, as_labels(y_te)


def as_labels(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.int64)


def remap_labels(path: Any, *ys: np.ndarray) -> list[np.ndarray]:
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


def check_features(path: Any, what: str, values: Any) -> np.ndarray:
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


def check_pair(path: Any, xname: str, X: np.ndarray, yname: str, labels: Any) -> np.ndarray:
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


def stratified_split(path: Any, X: np.ndarray, y: np.ndarray, seed: int) -> Arrays:
    """Seeded stratified 2:1 train:test split."""
    from sklearn.model_selection import train_test_split

    try:
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=1 / 3, stratify=y, random_state=seed
        )
    except ValueError as exc:
        raise DatasetError(f"{path}: cannot make a stratified 2:1 split ({exc})") from None
    return X_tr, y_tr, X_te, y_te


def load_xy(
    path: Any, X: Any, y: Any, seed: int, normalize: bool, xname: str = "X", yname: str = "y"
) -> Arrays:
    X = check_features(path, xname, X)
    y = check_pair(path, xname, X, yname, y)
    (y,) = remap_labels(path, y)
    X_tr, y_tr, X_te, y_te = stratified_split(path, X, y, seed)
    return finish_tabular(X_tr, y_tr, X_te, y_te, normalize)
