"""Model classes over the native engine: MotifLayer (one block-sparse layer, :mod:`.layer`) and
MotifMLP (a network of them, :mod:`.mlp`); layer densities (:mod:`.sparsity`)."""

from ..errors import DivergedError
from ._engine import build_info
from .layer import MotifLayer
from .mlp import DEFAULT_EVAL_MEMORY, MAX_EVAL_CHUNK, MotifMLP, layer_seed
from .sparsity import DISTRIBUTIONS, erk_densities, erk_epsilon, layer_densities

__all__ = ["DEFAULT_EVAL_MEMORY", "DISTRIBUTIONS", "MAX_EVAL_CHUNK", "DivergedError", "MotifLayer", "MotifMLP",
           "build_info", "erk_densities", "erk_epsilon", "layer_densities", "layer_seed"]
