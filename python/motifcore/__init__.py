"""motifcore: truly sparse, motif-structured neural network training (SET / Motif-SET) on CPUs.

The numerics live in a C++/OpenMP engine (``motifcore._core``); this package is the Python API.
"""

from __future__ import annotations

from typing import Any as _Any

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only hit on a broken install
    raise ImportError(
        "motifcore's compiled engine (motifcore._core) could not be imported. Build and install the "
        "package with `pip install .` from the source tree (needs a C++17 compiler)."
    ) from exc

from ._model import MotifLayer, MotifMLP, build_info

__version__ = "0.1.0"

from . import datasets, metrics, report, schedules, sweep
from .checkpoint import load_model
from .trainer import History, Trainer

__all__ = [
    "History",
    "MotifLayer",
    "MotifMLP",
    "MotifSETClassifier",
    "Trainer",
    "__version__",
    "build_info",
    "datasets",
    "load_model",
    "metrics",
    "report",
    "schedules",
    "sweep",
]


def __getattr__(name: str) -> _Any:
    # scikit-learn is imported only when the estimator is asked for (it costs ~1 s at import)
    if name == "MotifSETClassifier":
        from .sklearn import MotifSETClassifier

        return MotifSETClassifier
    raise AttributeError(f"module 'motifcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"MotifSETClassifier"})
