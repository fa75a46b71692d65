"""Model classes over the native engine: MotifLayer (one block-sparse layer) and MotifMLP."""

from .model import DEFAULT_EVAL_MEMORY, MAX_EVAL_CHUNK, DivergedError, MotifLayer, MotifMLP, build_info, layer_seed
from .sparsity import DISTRIBUTIONS, erk_densities, erk_epsilon, layer_densities

__all__ = ["DEFAULT_EVAL_MEMORY", "DISTRIBUTIONS", "MAX_EVAL_CHUNK", "DivergedError", "MotifLayer", "MotifMLP",
           "build_info", "erk_densities", "erk_epsilon", "layer_densities", "layer_seed"]
