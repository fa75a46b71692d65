"""Old path of :mod:`motifcore.analysis.metrics` (kept importable; the same module object)."""

import sys as _sys

from .analysis import metrics as _module

_sys.modules[__name__] = _module
