"""Old path of :mod:`motifcore.data.datasets` (kept importable; the same module object)."""

import sys as _sys

from .data import datasets as _module

_sys.modules[__name__] = _module
