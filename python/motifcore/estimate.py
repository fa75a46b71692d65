"""Old path of :mod:`motifcore.analysis.estimate` (kept importable; the same module object)."""

import sys as _sys

from .analysis import estimate as _module

_sys.modules[__name__] = _module
