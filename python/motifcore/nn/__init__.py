"""Model classes over the native engine: MotifLayer (one block-sparse layer) and MotifMLP."""

from .model import DivergedError, MotifLayer, MotifMLP, build_info, layer_seed

__all__ = ["DivergedError", "MotifLayer", "MotifMLP", "build_info", "layer_seed"]
