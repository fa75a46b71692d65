"""SparseLab 0.2.2 (``sparselab.SparseLinear``: padded CSR, hand-written AVX2/NEON kernels, a torch
``nn.Module``) as a baseline group, at 1 and 2 threads, against motifcore m = 1 with the same
weights and pattern: the full training step (forward, softmax cross-entropy, backward, SGD momentum
0.9, weight decay 5e-4, lr 0.01) of ``784-3000-3000-3000-10`` at density 0.1 in every layer, batch
128, in a plain torch loop (``bench/references.TorchTrainer``).

Checked before timing, in every mode: each SparseLinear holds the motifcore layer's effective
matrix and biases (``references.sparselab_linear``); two SGD steps of both MLPs from the same state
give the same losses (rtol 1e-4). Each group's baseline is SparseLab at the same thread count, so
``scripts/bench_report.py`` prints ``sparselab / this`` as the speedup (issue 21 target: >= 3x).
Skipped when torch or sparselab is missing.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Iterator, List

import numpy as np
import pytest
import references as bl
from motifcore import MotifMLP

torch = pytest.importorskip("torch")
pytest.importorskip("sparselab")

THREADS = (1, 2)
DENSITY = 0.1
LR, MOMENTUM, WD = 0.01, 0.9, 5e-4
N_BATCHES = 4


def step_group(sizes: Any, t: int) -> str:
    return f"sparselab: train step {'-'.join(map(str, sizes.net))} d={DENSITY} B={sizes.batch} t={t}"


@pytest.fixture
def torch_threads_t(request: pytest.FixtureRequest) -> Iterator[int]:
    """Runs the test with torch on ``t`` threads, restored afterwards."""
    t = request.param
    if t > (os.cpu_count() or 1):
        pytest.skip(f"{t} threads on a machine with fewer cores")
    old = torch.get_num_threads()
    torch.set_num_threads(t)
    try:
        yield t
    finally:
        torch.set_num_threads(old)


@pytest.fixture(scope="module")
def step_batches(sizes: Any) -> List[Any]:
    return bl.random_batches(sizes.batch, sizes.net[0], sizes.net[-1], seed=29, n=N_BATCHES)


def _pair(sizes: Any, t: int) -> tuple:
    net = MotifMLP(list(sizes.net), motif=1, density=DENSITY, distribution="uniform", seed=3, num_threads=t)
    return net, bl.TorchTrainer(torch, bl.sparselab_mlp(torch, net), LR, MOMENTUM, WD)


def test_same_losses_from_the_same_state(sizes: Any, step_batches: List[Any]) -> None:
    """Not a benchmark: SparseLab's MLP built from motifcore's computes the same training steps."""
    net, trainer = _pair(sizes, 1)
    x, y = step_batches[0]
    ours = [net.train_step(x, y, LR, MOMENTUM, WD) for _ in range(2)]
    theirs = [trainer.step(torch.from_numpy(x), torch.from_numpy(y)) for _ in range(2)]
    assert all(math.isfinite(v) for v in ours + theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, err_msg="losses of motifcore and SparseLab")


@pytest.mark.parametrize("torch_threads_t", THREADS, indirect=True)
@pytest.mark.parametrize("impl", ("sparselab", "motifcore"))
def test_step(benchmark: Any, info: Callable[..., None], sizes: Any, step_batches: List[Any], torch_threads_t: int,
              impl: str) -> None:
    t = torch_threads_t
    net, trainer = _pair(sizes, t)
    benchmark.group = step_group(sizes, t)
    if impl == "motifcore":
        fn = bl.cycler(lambda x, y: net.train_step(x, y, LR, MOMENTUM, WD), step_batches)
    else:
        fn = bl.cycler(trainer.step, [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in step_batches])
    info(benchmark, impl, "train_step", m=1 if impl == "motifcore" else None, density=DENSITY, threads=t,
         batch=sizes.batch, samples=sizes.batch, macs=3 * net.macs_per_sample * sizes.batch, blocks=net.n_blocks,
         baseline=impl == "sparselab")
    benchmark(fn)
