"""Old path of :mod:`motifcore.train.checkpoint` (kept importable; the same module object)."""

import sys as _sys

from .train import checkpoint as _module

_sys.modules[__name__] = _module
