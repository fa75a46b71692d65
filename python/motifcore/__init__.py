"""motifcore: truly sparse, motif-structured neural network training (SET / Motif-SET) on CPUs.

The numerics live in a C++ engine (``motifcore._core``); this package is the Python API.
"""

from __future__ import annotations

import atexit as _atexit
from typing import Any as _Any

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only hit on a broken install
    raise ImportError(
        "motifcore's compiled engine (motifcore._core) could not be imported. Build and install the "
        "package with `pip install .` from the source tree (needs a C++17 compiler)."
    ) from exc

# The engine's parallel loops run on its own thread pool (not OpenMP), so no environment variable
# needs setting at import; its idle workers are stopped and joined when the interpreter exits.
_atexit.register(_core.pool_shutdown)

# the old flat module paths (motifcore.trainer, .checkpoint, .estimate, ...) are aliases of the
# modules in the subpackages; importing them here keeps them attributes of the package, as before
from . import checkpoint, estimate, export, recipes, report, trainer  # noqa: F401
from ._version import __version__
from .analysis import metrics
from .data import datasets
from .experiments import sweep
from .nn.model import MotifLayer, MotifMLP, build_info
from .train import schedules
from .train.checkpoint import load_model
from .train.trainer import History, Trainer

__all__ = [
    "History",
    "MotifLayer",
    "MotifMLP",
    "MotifSETClassifier",
    "Trainer",
    "__version__",
    "build_info",
    "datasets",
    "export",
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
