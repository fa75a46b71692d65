"""motifcore: truly sparse, motif-structured neural network training (SET / Motif-SET) on CPUs.

The numerics live in a C++/OpenMP engine (``motifcore._core``); this package is the Python API.
"""

from __future__ import annotations

import os as _os
from typing import Any as _Any

# OpenMP threads that busy-wait for long between the engine's many short parallel regions waste
# the CPU a descheduled team member needs: on a loaded machine a training step became 5-15x
# slower. libgomp reads its spin count once, when it is loaded (with _core), so a short spin is
# set only for that moment and the environment is restored afterwards (other libraries loaded
# later do not see it). Setting OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself overrides this.
_short_spin = "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ
if _short_spin:
    _os.environ["GOMP_SPINCOUNT"] = "1000"
try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only hit on a broken install
    raise ImportError(
        "motifcore's compiled engine (motifcore._core) could not be imported. Build and install the "
        "package with `pip install .` from the source tree (needs a C++17 compiler)."
    ) from exc
finally:
    if _short_spin:
        _os.environ.pop("GOMP_SPINCOUNT", None)

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
