"""Input checks shared by the public API: every problem becomes a ValueError/TypeError naming it."""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..defaults import OPTIMIZERS, REGROW_MODES  # the registries; validation only checks against them

MotifSpec = Union[int, Tuple[int, int]]


def as_float_matrix(x: Any, n_cols: Optional[int], name: str = "X", *, check_finite: bool = True) -> np.ndarray:
    """Convert `x` once to a C-contiguous float32 2-D array, checking shape and values."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if arr.ndim == 1 and n_cols is not None and arr.shape[0] == n_cols:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n_samples, n_features], got shape {arr.shape}")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"{name} has {arr.shape[1]} features per sample, the model expects {n_cols}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if check_finite:
        check_finite_values(arr, name)
    return arr


def as_float_vector(value: Any, n: int, name: str) -> np.ndarray:
    """`value` as a C-contiguous float32 vector of shape (n,) with finite entries."""
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    return check_finite_values(np.ascontiguousarray(arr, dtype=np.float32), name)


def check_finite_values(arr: np.ndarray, name: str) -> np.ndarray:
    """`arr` itself; raises ValueError naming how many entries are NaN or infinite."""
    if not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite values")
    return arr


def as_labels(y: Any, n_samples: int, n_classes: int, name: str = "y") -> np.ndarray:
    """Integer class labels in [0, n_classes) as C-contiguous int64; float labels are rejected."""
    arr = np.asarray(y)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} labels for {n_samples} samples")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"{name} has labels outside [0, {n_classes}): min {arr.min()}, max {arr.max()}"
        )
    return arr


def check_int(value: Any, name: str, minimum: int = 1, *, integral_float: bool = False) -> int:
    """An integer >= ``minimum`` (bool rejected); ``integral_float`` also accepts 3.0 (JSON/TOML specs)."""
    if integral_float and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_chunk(value: Any, name: str) -> Union[int, str]:
    """A chunk size: an integer >= 1, or ``"auto"`` (sized by memory)."""
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"{name} must be a positive integer or 'auto', got {value!r}")
        return value
    return check_int(value, name)


def check_motif(motif: Any, name: str = "motif") -> Tuple[int, int]:
    """A motif size m (square m x m blocks) or (m_out, m_in); returns (m_out, m_in)."""
    if isinstance(motif, (tuple, list)) and len(motif) == 2:
        return check_int(motif[0], f"{name}[0] (m_out)"), check_int(motif[1], f"{name}[1] (m_in)")
    m = check_int(motif, name)
    return m, m


def check_density(density: Any, name: str = "density") -> float:
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise TypeError(f"{name} must be a number in (0, 1], got {density!r}")
    d = float(density)
    if not (0.0 < d <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {density}")
    return d


def check_epsilon(epsilon: Any, name: str = "epsilon") -> Optional[float]:
    if epsilon is None:
        return None
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"{name} must be a positive number or None, got {epsilon!r}")
    e = float(epsilon)
    if not (e > 0.0 and np.isfinite(e)):
        raise ValueError(f"{name} must be > 0, got {epsilon}")
    return e


def check_zeta(zeta: Any, name: str = "zeta") -> float:
    if isinstance(zeta, bool) or not isinstance(zeta, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {zeta!r}")
    z = float(zeta)
    if not (0.0 <= z < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {zeta}")
    return z


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed in [0, 2**64): larger values are refused rather than reduced (they would alias)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"{name} must be a non-negative integer, got {seed!r}")
    if seed >= 2**64:
        raise ValueError(f"{name} must be < 2**64, got {seed}")
    return int(seed)


def per_layer(value: Any, n_layers: int, name: str) -> Sequence[Any]:
    """Broadcast a scalar to every layer, or check a per-layer list has the right length."""
    if isinstance(value, (list, tuple, np.ndarray)):
        values = list(value)
        if len(values) != n_layers:
            raise ValueError(f"{name} has {len(values)} entries for {n_layers} layers")
        return values
    return [value] * n_layers


REGROW_INITS = REGROW_MODES


def check_optimizer(optimizer: Any) -> str:
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    return optimizer.lower()


def check_regrow(regrow: Any, zero_init: bool = False) -> str:
    """The value of regrown blocks: 'he', 'zero', 'pruned' or 'normal'; None means 'zero' if ``zero_init``
    else 'he'. ``zero_init=True`` with another explicit mode is a contradiction."""
    if regrow is None:
        return "zero" if zero_init else "he"
    if not isinstance(regrow, str) or regrow not in REGROW_INITS:
        raise ValueError(f"regrow must be one of {', '.join(REGROW_INITS)}, got {regrow!r}")
    if zero_init and regrow != "zero":
        raise ValueError(f"zero_init=True contradicts regrow={regrow!r}")
    return regrow


def interval_text(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> str:
    """``(0, 1]``-style text of an interval; an infinite end is always open, since every value
    checked against it must be finite (``(0, inf)``, never ``(0, inf]``)."""
    lo_open = lo_open or not np.isfinite(lo)
    hi_open = hi_open or not np.isfinite(hi)
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def in_interval(v: float, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> bool:
    """``v`` is finite and inside the interval."""
    return math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def check_real(value: Any, name: str, lo: float = -np.inf, hi: float = np.inf,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number in the interval [lo, hi] (ends open where asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not in_interval(v, lo, hi, lo_open, hi_open):
        raise ValueError(f"{name} must be in {interval_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def check_positive(value: Any, name: str) -> float:
    return check_real(value, name, 0.0, np.inf, lo_open=True)


def check_betas(betas: Any) -> Tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return (check_real(betas[0], "betas[0]", 0.0, 1.0, hi_open=True),
            check_real(betas[1], "betas[1]", 0.0, 1.0, hi_open=True))


FloatOrArray = Union[float, NDArray[np.float64]]


def as_finite(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Convert to a float array and reject NaN / infinity with a message naming ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {values!r}") from exc
    if arr.size and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN: {values!r}")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {values!r}")
    return arr


def check_all_positive(arr: NDArray[np.float64], name: str) -> None:
    if arr.size and (arr <= 0).any():
        raise ValueError(f"{name} must be > 0, got {arr.tolist()!r}")


def check_all_nonnegative(arr: NDArray[np.float64], name: str) -> None:
    if arr.size and (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, got {arr.tolist()!r}")


def check_unit_interval(value: float, name: str) -> float:
    arr = as_finite(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    v = float(arr)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return v


def broadcast_named(
    names: Sequence[str], *arrays: NDArray[np.float64]
) -> tuple[NDArray[np.float64], ...]:
    try:
        return tuple(np.broadcast_arrays(*arrays))
    except ValueError as exc:
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrays))
        raise ValueError(f"shapes (lengths) do not match: {shapes}") from exc


def as_1d(values: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = as_finite(values, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return arr


def same_length(**arrays: NDArray[np.float64]) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"lengths do not match: {lengths}")


def scalar_or_array(arr: NDArray[np.float64]) -> FloatOrArray:
    return float(arr) if arr.ndim == 0 else arr


def check_order(order: Any, n: int) -> np.ndarray:
    """Sample order of train_epoch as int64, every index checked before any batch is applied."""
    arr = np.asarray(order)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"order must hold integer sample indices, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"order must be 1-D, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = arr[(arr < 0) | (arr >= n)][0]
        raise ValueError(f"order holds sample index {bad} outside [0, {n})")
    return np.ascontiguousarray(arr, dtype=np.int64)


def state_ints(value: Any, dtype: Any, name: str, scalar: bool = False) -> np.ndarray:
    """An integer state entry converted to `dtype` only if every value fits (no silent wrap)."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"model state entry {name!r} must hold integers, got dtype {arr.dtype}")
    if arr.ndim != (0 if scalar else 1):
        raise ValueError(f"model state entry {name!r} must be {'a scalar' if scalar else '1-D'}, got shape {arr.shape}")
    info = np.iinfo(dtype)
    if arr.size and (int(arr.min()) < info.min or int(arr.max()) > info.max):
        raise ValueError(f"model state entry {name!r} holds values outside the {np.dtype(dtype).name} range")
    return arr.astype(dtype) if scalar else np.ascontiguousarray(arr, dtype=dtype)


def state_floats(value: Any, name: str) -> np.ndarray:
    """A floating state entry as float32; NaN/inf and values beyond float32 are refused."""
    arr = np.asarray(value, dtype=np.float32 if isinstance(value, tuple) else None)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"model state entry {name!r} must hold floating-point values, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"model state entry {name!r} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"model state entry {name!r} holds NaN or infinite values")
    if arr.size and float(np.abs(arr).max()) > float(np.finfo(np.float32).max):
        raise ValueError(f"model state entry {name!r} holds values beyond the float32 range")
    return np.ascontiguousarray(arr, dtype=np.float32)


def optim_args(optimizer: str, betas: Tuple[float, float], eps: float, max_grad_norm: float) -> Dict[str, Any]:
    """The optimizer keyword arguments of the engine's training calls, each checked."""
    b1, b2 = check_betas(betas)
    mgn = float(max_grad_norm)
    if not (np.isfinite(mgn) and mgn >= 0):
        raise ValueError(f"max_grad_norm must be >= 0 (0 = no clipping), got {max_grad_norm}")
    return {"optimizer": check_optimizer(optimizer), "beta1": b1, "beta2": b2,
            "eps": check_positive(eps, "eps"), "max_grad_norm": mgn}


def check_optim(lr: float, momentum: float, weight_decay: float, dropout: float) -> None:
    """Finite lr >= 0, momentum in [0, 1), weight_decay >= 0 and dropout in [0, 1)."""
    for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay), ("dropout", dropout)):
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v}")
    if lr < 0:
        raise ValueError(f"lr must be >= 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
