"""What the model classes share about the native engine: thread counts, build facts and the
divergence error raised when the engine's NaN/infinity check fires."""

from __future__ import annotations

import os
from typing import Dict, Optional

from .. import _core
from .._internal.validation import check_int
from ..errors import DivergedError

__all__ = ["build_info", "check_threads", "default_threads", "diverged"]


def diverged(exc: BaseException) -> DivergedError:
    """The DivergedError a model raises for an engine divergence `exc`, with how to recover."""
    return DivergedError(f"{exc}; restore the model with set_state or from a checkpoint")


def default_threads() -> int:
    """The engine's default thread count (all usable cores)."""
    return int(_core.build_info()["default_threads"])


def check_threads(num_threads: Optional[int]) -> int:
    """A thread count in [1, _core.max_num_threads()] (default: $MOTIFCORE_NUM_THREADS or all cores)."""
    cap = int(_core.max_num_threads())
    if num_threads is None:
        env = os.environ.get("MOTIFCORE_NUM_THREADS", "").strip()
        if not env:
            return min(default_threads(), cap)
        try:
            n = int(env)
        except ValueError:
            n = 0
        if not 1 <= n <= cap:
            raise ValueError(f"MOTIFCORE_NUM_THREADS must be an integer in [1, {cap}], got {env!r}")
        return n
    n = check_int(num_threads, "num_threads")
    if n > cap:
        raise ValueError(f"num_threads must be <= {cap} (4 x the logical CPUs, at least 8), got {n}")
    return n


def build_info() -> Dict[str, str]:
    """Compiler, flags, SIMD level (compiled, best, in use), threading backend and default threads."""
    return dict(_core.build_info())
