"""motifcore: truly sparse, motif-structured neural network training (SET / Motif-SET) on CPUs.

The numerics live in a C++ engine (``motifcore._core``); this package is the Python API.

``import motifcore`` loads the engine, the model classes and the exceptions only. Everything else
(the Trainer, datasets, analysis, experiments, reports, export, the scikit-learn estimator) is
imported on first use of its name (PEP 562), so SciPy, scikit-learn, Dask, matplotlib and torch
are not imported until something needs them.
"""

from __future__ import annotations

import atexit as _atexit
import importlib as _importlib
from typing import Any as _Any

try:
    from . import _core  # noqa: F401
except ImportError as exc:
    if "MOTIFCORE_SIMD" in str(exc):  # a bad setting read at import (docs/engine.md), not a broken install
        raise
    raise ImportError(  # pragma: no cover - only hit on a broken install
        "motifcore's compiled engine (motifcore._core) could not be imported. Build and install the "
        "package with `pip install .` from the source tree (needs a C++17 compiler)."
    ) from exc

# The engine's parallel loops run on its own thread pool (not OpenMP), so no environment variable
# needs setting at import; its idle workers are stopped and joined when the interpreter exits.
_atexit.register(_core.pool_shutdown)

from . import errors
from ._version import __version__
from .errors import MotifcoreError
from .nn import MotifLayer, MotifMLP, build_info

# name -> (module inside motifcore, attribute of it or None for the module itself), imported on
# first access
_LAZY = {
    "History": ("train", "History"),
    "Trainer": ("train", "Trainer"),
    "load_model": ("train", "load_model"),
    "MotifSETClassifier": ("sklearn", "MotifSETClassifier"),
    "MotifSETSelector": ("sklearn", "MotifSETSelector"),
    "datasets": ("data.datasets", None),
    "estimate": ("analysis.estimate", None),
    "metrics": ("analysis.metrics", None),
    "schedules": ("train.schedules", None),
    "sweep": ("experiments.sweep", None),
}
_SUBMODULES = ("analysis", "baselines", "cli", "data", "experiments", "export", "recipes", "report", "sklearn",
               "train")

__all__ = [
    "History",
    "MotifLayer",
    "MotifMLP",
    "MotifSETClassifier",
    "MotifSETSelector",
    "MotifcoreError",
    "Trainer",
    "__version__",
    "build_info",
    "datasets",
    "errors",
    "estimate",
    "export",
    "load_model",
    "metrics",
    "recipes",
    "report",
    "schedules",
    "sweep",
]


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = _importlib.import_module(f".{module}", __name__)
        value = mod if attr is None else getattr(mod, attr)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'motifcore' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
