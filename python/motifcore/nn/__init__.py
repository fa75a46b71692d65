"""Model classes over the native engine: MotifLayer (one block-sparse layer) and MotifMLP."""

from .model import DivergedError, MotifLayer, MotifMLP, build_info, layer_seed
from .sparsity import DISTRIBUTIONS, erk_densities, erk_epsilon, layer_densities

__all__ = ["DISTRIBUTIONS", "DivergedError", "MotifLayer", "MotifMLP", "build_info", "erk_densities", "erk_epsilon",
           "layer_densities", "layer_seed"]
