"""Experiments: parameter sweeps over many runs (Dask)."""

from . import sweep

__all__ = ["sweep"]
