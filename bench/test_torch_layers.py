"""motifcore.torch in a plain torch loop (issue 20), one group per thread count: the full training
step (forward, softmax cross-entropy, backward, SGD momentum 0.9, weight decay 5e-4, lr 0.01) of
``784-3000-3000-3000-10`` at density 0.1 in every layer, batch 128, m = 1, through ``MotifLinear``
layers with ``torch.optim.SGD(fused=True)`` and with ``SGDInBackward`` (torch's own ops on one
thread, docs/torch.md "Threads"), each in a plain ``nn.Sequential`` (one autograd node per layer) and
in the ``MotifSequential`` that ``from_mlp`` returns (the run of layers in one engine call per
direction), against the engine's ``MotifMLP.train_step``,
SparseProp's ``SparseLinear`` (the group's baseline: ``scripts/bench_report.py`` prints
``sparseprop / this``, issue 20 target >= 3x) and SparseLab's ``SparseLinear``.

Checked before timing, in every mode: two steps of each MotifLinear model (either container) give
the losses of two ``train_step`` calls from the same state (rtol 1e-4); SparseProp's and SparseLab's own checks are in
test_sparseprop.py and test_sparselab.py. The peers are skipped when they are not installed.
``scripts/torch_layers.py`` runs the same comparison interleaved, with a breakdown per phase.
"""

from __future__ import annotations

from typing import Any, Callable, List

import numpy as np
import pytest
import references as bl
from motifcore import MotifMLP

torch = pytest.importorskip("torch")

THREADS = (1, 2)
DENSITY = 0.1
LR, MOMENTUM, WD = 0.01, 0.9, 5e-4
N_BATCHES = 4
IMPLS = ("sparseprop", "sparselab", "motifcore train_step", "MotifLinear + SGD(fused=True)",
         "MotifLinear + SGDInBackward", "MotifSequential + SGD(fused=True)", "MotifSequential + SGDInBackward")


def step_group(sizes: Any, t: int) -> str:
    return f"torch layers: train step {'-'.join(map(str, sizes.net))} d={DENSITY} B={sizes.batch} t={t}"


@pytest.fixture(scope="module")
def step_batches(sizes: Any) -> List[Any]:
    return bl.random_batches(sizes.batch, sizes.net[0], sizes.net[-1], seed=31, n=N_BATCHES)


def _mlp(sizes: Any, t: int) -> MotifMLP:
    return MotifMLP(list(sizes.net), motif=1, density=DENSITY, distribution="uniform", seed=5, num_threads=t)


def _motiflinear_trainer(net: MotifMLP, t: int, in_backward: bool, fused_run: bool) -> Any:
    """``fused_run``: the layers in the MotifSequential ``from_mlp`` returns, else in an nn.Sequential."""
    from motifcore.torch import SGDInBackward, from_mlp

    model = from_mlp(net, num_threads=t)
    if not fused_run:
        model = torch.nn.Sequential(*model)
    if in_backward:
        return bl.TorchTrainer(torch, model, LR, MOMENTUM, WD, opt_class=SGDInBackward)
    return bl.TorchTrainer(torch, model, LR, MOMENTUM, WD, fused=True)


@pytest.mark.parametrize("fused_run", (False, True))
@pytest.mark.parametrize("in_backward", (False, True))
def test_same_losses_as_train_step(sizes: Any, step_batches: List[Any], in_backward: bool, fused_run: bool) -> None:
    """Not a benchmark: the MotifLinear model of a MotifMLP trains as the MotifMLP does."""
    net = _mlp(sizes, 2)
    trainer = _motiflinear_trainer(net, 2, in_backward, fused_run)
    x, y = step_batches[0]
    theirs = [trainer.step(torch.from_numpy(x), torch.from_numpy(y)) for _ in range(2)]
    ours = [net.train_step(x, y, LR, MOMENTUM, WD) for _ in range(2)]
    assert ours[1] != ours[0]
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, err_msg="losses of MotifLinear and train_step")


@pytest.mark.parametrize("omp_threads", THREADS, indirect=True)
@pytest.mark.parametrize("impl", IMPLS)
def test_step(benchmark: Any, info: Callable[..., None], sizes: Any, step_batches: List[Any], omp_threads: int,
              impl: str) -> None:
    t = omp_threads
    net = _mlp(sizes, t)
    torch_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in step_batches]
    if impl == "motifcore train_step":
        fn = bl.cycler(lambda x, y: net.train_step(x, y, LR, MOMENTUM, WD), step_batches)
    elif impl.startswith("Motif"):
        trainer = _motiflinear_trainer(net, t, "InBackward" in impl, impl.startswith("MotifSequential"))
        fn = bl.cycler(trainer.step, torch_batches)
        torch.set_num_threads(1)            # the engine's pool runs the layers; torch's ops on one thread
    elif impl == "sparseprop":
        pytest.importorskip("sparseprop")
        fn = bl.cycler(bl.TorchTrainer(torch, bl.sparseprop_mlp(torch, net), LR, MOMENTUM, WD).step, torch_batches)
    else:
        pytest.importorskip("sparselab")
        fn = bl.cycler(bl.TorchTrainer(torch, bl.sparselab_mlp(torch, net), LR, MOMENTUM, WD).step, torch_batches)
    benchmark.group = step_group(sizes, t)
    info(benchmark, impl, "train_step", m=None if impl.startswith("sparse") else 1, density=DENSITY, threads=t,
         batch=sizes.batch, samples=sizes.batch, macs=3 * net.macs_per_sample * sizes.batch, blocks=net.n_blocks,
         baseline=impl == "sparseprop")
    benchmark(fn)
