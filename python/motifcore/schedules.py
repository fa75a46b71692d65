"""Old path of :mod:`motifcore.train.schedules` (kept importable; the same module object)."""

import sys as _sys

from .train import schedules as _module

_sys.modules[__name__] = _module
