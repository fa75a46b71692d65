"""Thread scaling of the training step of the paper's ``784-3000-3000-3000-10`` network (density
0.1, batch 128): motifcore with 1 and 2 threads for m = 1, 2 (the report's ratio of the 1-thread
row over the 2-thread row is the speedup), with PyTorch dense at the same thread counts for
comparison. Checked first: the weights, biases and losses after 3 steps are equal (within 1e-5)
whatever the thread count.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List

import numpy as np
import pytest
import references as bl
from motifcore import MotifMLP

MOTIFS = (1, 2)
THREADS = (1, 2)
DENSITY = 0.1
LR, MOMENTUM, WD = 0.01, 0.9, 5e-4


def group_name(sizes: Any, m: Any) -> str:
    who = f"m={m}" if isinstance(m, int) else m
    return f"threads: train step {'-'.join(map(str, sizes.net))} d={DENSITY} B={sizes.batch} {who}"


@pytest.fixture(scope="module")
def batch(sizes: Any) -> Any:
    rng = np.random.default_rng(31)
    x = rng.standard_normal((sizes.batch, sizes.net[0])).astype(np.float32)
    y = rng.integers(0, sizes.net[-1], size=sizes.batch).astype(np.int64)
    return x, y


@pytest.mark.parametrize("m", MOTIFS)
def test_threads_same_result(sizes: Any, batch: Any, m: int) -> None:
    """Not a benchmark: 3 steps with 1 and with 2 threads give the same model."""
    x, y = batch
    nets: List[MotifMLP] = []
    losses: List[List[float]] = []
    for t in THREADS:
        net = MotifMLP(list(sizes.net), motif=m, density=DENSITY, distribution="uniform", seed=0, num_threads=t)
        losses.append([net.train_step(x, y, LR, MOMENTUM, WD) for _ in range(3)])
        nets.append(net)
    np.testing.assert_allclose(losses[0], losses[1], rtol=0, atol=1e-5)
    for i, (a, b) in enumerate(zip(nets[0].layers, nets[1].layers)):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.weights, b.weights, rtol=0, atol=1e-5, err_msg=f"layer {i} weights")
        np.testing.assert_allclose(a.bias, b.bias, rtol=0, atol=1e-5, err_msg=f"layer {i} bias")


@pytest.mark.parametrize("t", THREADS)
@pytest.mark.parametrize("m", MOTIFS)
def test_motifcore(benchmark: Any, info: Callable[..., None], sizes: Any, batch: Any, m: int, t: int) -> None:
    if t > (os.cpu_count() or 1):
        pytest.skip(f"{t} threads on a machine with fewer cores")
    benchmark.group = group_name(sizes, m)
    x, y = batch
    net = MotifMLP(list(sizes.net), motif=m, density=DENSITY, distribution="uniform", seed=0, num_threads=t)
    first = net.train_step(x, y, LR, MOMENTUM, WD)
    assert np.isfinite(first)
    info(benchmark, "motifcore", "train_step", m=m, density=DENSITY, threads=t, batch=sizes.batch,
         samples=sizes.batch, macs=3 * net.macs_per_sample * sizes.batch, baseline=t == 1)
    benchmark(net.train_step, x, y, LR, MOMENTUM, WD)


@pytest.mark.parametrize("t", THREADS)
def test_torch_dense(benchmark: Any, info: Callable[..., None], sizes: Any, torch_threads: int,
                     batch: Any, t: int) -> None:
    torch = pytest.importorskip("torch")
    benchmark.group = group_name(sizes, "torch-dense")
    model = bl.torch_dense_mlp(torch, sizes.net, seed=0)
    trainer = bl.TorchTrainer(torch, model, LR, MOMENTUM, WD)
    x, y = (torch.from_numpy(a) for a in batch)
    old = torch.get_num_threads()
    torch.set_num_threads(t)
    try:
        losses = [trainer.step(x, y) for _ in range(3)]
        assert losses[-1] < losses[0]
        info(benchmark, "torch-dense", "train_step", density=1.0, threads=t, batch=sizes.batch,
             samples=sizes.batch, baseline=t == 1,
             macs=3 * sum(a * b for a, b in zip(sizes.net[:-1], sizes.net[1:])) * sizes.batch)
        benchmark(trainer.step, x, y)
    finally:
        torch.set_num_threads(old)
