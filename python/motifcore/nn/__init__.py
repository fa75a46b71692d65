"""Model classes over the native engine: MotifLayer (one block-sparse layer) and MotifMLP."""

from .model import MotifLayer, MotifMLP, build_info, layer_seed

__all__ = ["MotifLayer", "MotifMLP", "build_info", "layer_seed"]
