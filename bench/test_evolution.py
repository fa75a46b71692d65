"""One SET evolution step (``MotifMLP.evolve(0.2, seed)``: per layer drop the 20 % smallest-|K|
blocks, regrow as many at random) of the paper's ``784-3000-3000-3000-10`` network at density 0.1,
m = 1, 2, 4, against the same step done with NumPy/SciPy on CSR matrices (the way the original SET
code evolves its scipy.sparse weights) for the m = 1 network.

Checked: the block count of every layer is unchanged, the pattern really changed, the number of
replaced blocks is round(0.2 |P|), and no block is duplicated.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, List

import numpy as np
import pytest
import references as bl
import scipy.sparse as sp
from motifcore import MotifMLP

MOTIFS = (1, 2, 4)
ZETA = 0.2
DENSITY = 0.1


def group_name(sizes: Any) -> str:
    return f"SET evolution zeta={ZETA} {'-'.join(map(str, sizes.net))} d={DENSITY}"


def _keys(layer: Any) -> np.ndarray:
    return layer.block_rows * layer.groups[1] + layer.indices


@pytest.mark.parametrize("m", MOTIFS)
def test_motifcore(benchmark: Any, info: Callable[..., None], sizes: Any, threads: int, m: int) -> None:
    benchmark.group = group_name(sizes)
    net = MotifMLP(list(sizes.net), motif=m, density=DENSITY, distribution="uniform", seed=0, num_threads=threads)
    counts = [layer.n_blocks for layer in net.layers]
    before = [_keys(layer) for layer in net.layers]
    replaced = net.evolve(ZETA, seed=1)
    for i, layer in enumerate(net.layers):
        assert layer.n_blocks == counts[i], f"layer {i}: {counts[i]} -> {layer.n_blocks} blocks"
        assert replaced[i] == round(ZETA * counts[i]), (i, replaced[i], counts[i])
        after = _keys(layer)
        assert np.unique(after).size == after.size, f"layer {i}: duplicated blocks"
        kept = np.intersect1d(before[i], after).size
        assert kept >= counts[i] - replaced[i], f"layer {i}: only {kept} blocks kept"
        assert kept < counts[i], f"layer {i}: pattern unchanged"

    seeds = itertools.count(2)
    info(benchmark, "motifcore", "evolve", m=m, density=DENSITY, threads=threads,
         blocks=net.n_blocks, replaced=sum(replaced))
    benchmark(lambda: net.evolve(ZETA, seed=next(seeds)))
    assert [layer.n_blocks for layer in net.layers] == counts


def test_numpy_scipy(benchmark: Any, info: Callable[..., None], sizes: Any, threads: int) -> None:
    benchmark.group = group_name(sizes)
    net = MotifMLP(list(sizes.net), motif=1, density=DENSITY, distribution="uniform", seed=0, num_threads=threads)
    mats: List[sp.csr_matrix] = [
        sp.csr_matrix((layer.weights, layer.indices, layer.indptr), shape=(layer.n_out, layer.n_in))
        for layer in net.layers]
    counts = [w.nnz for w in mats]
    rng = np.random.default_rng(1)
    new, replaced = zip(*(bl.numpy_set_prune_regrow(w, ZETA, rng) for w in mats))
    for i, (old, w) in enumerate(zip(mats, new)):
        assert w.nnz == counts[i] and replaced[i] == round(ZETA * counts[i])
        assert w.has_canonical_format
        kept = (old.astype(bool).multiply(w.astype(bool))).nnz
        assert counts[i] - replaced[i] <= kept < counts[i]
    state = list(new)

    def step() -> None:
        for i, w in enumerate(state):
            state[i], _ = bl.numpy_set_prune_regrow(w, ZETA, rng)

    info(benchmark, "numpy-scipy", "evolve", m=1, density=DENSITY, threads=1,
         blocks=sum(counts), replaced=sum(replaced), baseline=True)
    benchmark(step)
    assert [w.nnz for w in state] == counts
