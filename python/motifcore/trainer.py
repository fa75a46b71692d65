"""Old path of :mod:`motifcore.train.trainer` (kept importable; the same module object)."""

import sys as _sys

from .train import trainer as _module

_sys.modules[__name__] = _module
