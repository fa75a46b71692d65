"""Datasets: loading, locating, downloading and preprocessing (NumPy only)."""

from . import datasets
from .datasets import DatasetError, DatasetNotFoundError, available, find, load, n_classes, subsample

__all__ = ["DatasetError", "DatasetNotFoundError", "available", "datasets", "find", "load", "n_classes", "subsample"]
