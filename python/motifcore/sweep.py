"""Old path of :mod:`motifcore.experiments.sweep` (kept importable; the same module object)."""

import sys as _sys

from .experiments import sweep as _module

_sys.modules[__name__] = _module
