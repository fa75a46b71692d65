"""Named training recipes. The recipes themselves live in :mod:`motifcore.defaults` (the one
owner of defaults and registries, where each recipe is described); this module gives them their
public name ``motifcore.recipes``."""

from __future__ import annotations

from .defaults import DEFAULT_RECIPE, RECIPES, recipe

__all__ = ["RECIPES", "DEFAULT_RECIPE", "recipe"]
