"""Layer densities of a sparse network: output-dense (the default), uniform, or Erdős–Rényi-Kernel (ERK).

ERK (Evci et al., 2020, after Mocanu et al., 2018) gives layer ``l`` with a ``G_out x G_in`` block
grid the density ``p_l = eps * (G_in + G_out) / (G_in * G_out)``, with ``eps`` solved so that the
active blocks add up to ``density`` times all the positions of the network::

    sum_l p_l * G_in_l * G_out_l = density * sum_l G_in_l * G_out_l

A layer with ``p_l > 1`` is made dense and ``eps`` is solved again over the others (one layer at a
time, the one with the largest ``p_l`` first). For an MLP, ER and ERK are the same thing. Each
layer then holds ``round(p_l * G_in * G_out)`` blocks, motifcore's exact-count rule, so the
total matches the uniform one up to one block per layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._internal.validation import check_density, check_int
from ..defaults import DISTRIBUTIONS

__all__ = ["DISTRIBUTIONS", "erk_densities", "erk_epsilon", "layer_densities"]



def _solve(grids: Sequence[tuple[int, int]], density: float) -> tuple[float, list[bool]]:
    total = sum(go * gi for go, gi in grids)
    dense = [False] * len(grids)
    while True:
        budget = density * total - sum(go * gi for (go, gi), d in zip(grids, dense) if d)
        raw = sum(go + gi for (go, gi), d in zip(grids, dense) if not d)
        if raw == 0:
            return 0.0, dense
        eps = budget / raw
        probs = [eps * (go + gi) / (go * gi) if not d else 0.0 for (go, gi), d in zip(grids, dense)]
        worst = max(range(len(grids)), key=lambda i: probs[i])
        if probs[worst] <= 1.0:
            return eps, dense
        dense[worst] = True


def _check_grids(grids: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for i, g in enumerate(grids):
        if not isinstance(g, (tuple, list)) or len(g) != 2:
            raise TypeError(f"grids[{i}] must be a (G_out, G_in) pair, got {g!r}")
        out.append((check_int(g[0], f"grids[{i}][0]"), check_int(g[1], f"grids[{i}][1]")))
    if not out:
        raise ValueError("grids must name at least one layer")
    return out


def erk_epsilon(grids: Sequence[tuple[int, int]], density: float) -> float:
    """The ``eps`` of :func:`erk_densities` (after making layers with ``p > 1`` dense)."""
    return _solve(_check_grids(grids), check_density(density))[0]


def erk_densities(grids: Sequence[tuple[int, int]], density: float) -> list[float]:
    """ERK density of each layer of block grids ``[(G_out, G_in), ...]`` at overall ``density``
    (see the module docstring); dense layers get 1.0."""
    grids = _check_grids(grids)
    eps, dense = _solve(grids, check_density(density))
    return [1.0 if d else min(1.0, eps * (go + gi) / (go * gi)) for (go, gi), d in zip(grids, dense)]


def layer_densities(distribution: str, grids: Sequence[tuple[int, int]], density: float) -> list[float]:
    """Per-layer densities of ``distribution`` (``"output-dense"``: every layer at ``density``
    but the output layer, which is dense when there is a hidden layer; ``"uniform"``: every layer
    at ``density``; ``"erk"``: :func:`erk_densities`)."""
    if distribution == "uniform":
        return [check_density(density)] * len(_check_grids(grids))
    if distribution == "output-dense":
        n = len(_check_grids(grids))
        return [check_density(density)] * (n - 1) + [1.0 if n > 1 else check_density(density)]
    if distribution == "erk":
        return erk_densities(grids, density)
    raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")
