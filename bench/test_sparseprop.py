"""SparseProp (``sparseprop.modules.SparseLinear``: CSR weights, C++/OpenMP sparse backpropagation)
as a baseline group, at 1 and 2 threads, against motifcore m = 1 with the same weights and pattern:

* one n x n layer (3000 x 3000 at paper size), batch 128, forward + backward (grad input, grad
  weights, grad bias) at density 0.01, 0.05, 0.1 and 0.2;
* the full training step (forward, softmax cross-entropy, backward, SGD momentum 0.9, weight decay
  5e-4, lr 0.01) of ``784-3000-3000-3000-10`` at density 0.1, batch 128.

Checked before timing, in every mode: each SparseLinear is built from the motifcore layer's
effective matrix and biases and has the same pattern; the layer's output and its three gradients
from both libraries match one float64 NumPy reference; two SGD steps of both MLPs give the same
losses, weights and biases. Each group's baseline is SparseProp at the same thread count, so the
report's ``sparseprop / this`` column is the speedup (issue targets: >= 2x per layer row, >= 3x on
the step). SparseProp's parallel regions take their thread count from the process's OpenMP
setting (libgomp's ``omp_set_num_threads``, which ``torch.set_num_threads`` also calls when torch
and SparseProp share one libgomp); the benchmark sets it and checks that it took effect. Skipped
when torch or sparseprop is missing.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List

import numpy as np
import pytest
import references as bl
from motifcore import MotifLayer, MotifMLP

torch = pytest.importorskip("torch")
pytest.importorskip("sparseprop.modules")

DENSITIES = (0.01, 0.05, 0.1, 0.2)
THREADS = (1, 2)
STEP_DENSITY = 0.1
LR, MOMENTUM, WD = 0.01, 0.9, 5e-4
N_BATCHES = 4


def layer_group(n: int, batch: int, d: float, t: int) -> str:
    return f"sparseprop: layer {n}x{n} B={batch} forward+backward d={d:g} t={t}"


def step_group(sizes: Any, t: int) -> str:
    return f"sparseprop: train step {'-'.join(map(str, sizes.net))} d={STEP_DENSITY} B={sizes.batch} t={t}"


@pytest.fixture(scope="module")
def layer_data(sizes: Any) -> Any:
    rng = np.random.default_rng(17)
    x = rng.standard_normal((sizes.batch, sizes.layer_n)).astype(np.float32)
    g = rng.standard_normal((sizes.batch, sizes.layer_n)).astype(np.float32)
    return x, g


def _layer(sizes: Any, d: float, t: int) -> MotifLayer:
    n = sizes.layer_n
    return MotifLayer(n, n, motif=1, density=d, seed=5, num_threads=t)


def check_layer_pair(layer: MotifLayer, sl: Any, x: np.ndarray, g: np.ndarray) -> None:
    """Both libraries' output and gradients against one float64 NumPy reference."""
    out_ref = bl.layer_reference_forward(layer, x)
    gi_ref, gw_ref, gb_ref = bl.layer_reference_backward(layer, x, g)
    bl.check_close(layer.forward(x), out_ref, "motifcore forward")
    bl.check_close(layer.backward(g), gi_ref, "motifcore grad_in")
    bl.check_close(layer.grad_weights, gw_ref, "motifcore grad_weights")
    bl.check_close(layer.grad_bias, gb_ref, "motifcore grad_bias")
    xt = torch.from_numpy(x).requires_grad_(True)
    out = sl(xt)
    out.backward(torch.from_numpy(g))
    bl.check_close(out.detach().numpy(), out_ref, "sparseprop forward")
    bl.check_close(xt.grad.numpy(), gi_ref, "sparseprop grad_in")
    bl.check_close(bl.sparseprop_values(sl, sl.W_val.grad, bl.edge_keys(layer)), gw_ref, "sparseprop grad_weights")
    bl.check_close(sl.bias.grad.numpy(), gb_ref, "sparseprop grad_bias")


@pytest.mark.parametrize("omp_threads", THREADS, indirect=True)
@pytest.mark.parametrize("d", DENSITIES)
@pytest.mark.parametrize("impl", ("sparseprop", "motifcore"))
def test_layer(benchmark: Any, info: Callable[..., None], sizes: Any, layer_data: Any, omp_threads: int,
               d: float, impl: str) -> None:
    x, g = layer_data
    t, n, batch = omp_threads, sizes.layer_n, sizes.batch
    layer = _layer(sizes, d, t)
    sl = bl.sparseprop_linear(torch, layer)
    check_layer_pair(layer, sl, x, g)
    benchmark.group = layer_group(n, batch, d, t)
    if impl == "motifcore":
        def fn() -> Any:
            layer.forward(x)
            return layer.backward(g)
    else:
        xt, gt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(g)

        def fn() -> Any:
            xt.grad = None
            sl.W_val.grad = None
            sl.bias.grad = None
            sl(xt).backward(gt)
            return xt.grad
    info(benchmark, impl, "forward + backward", m=1 if impl == "motifcore" else None, density=layer.density,
         threads=t, batch=batch, macs=3 * layer.n_blocks * batch, blocks=layer.n_blocks, baseline=impl == "sparseprop")
    benchmark(fn)


# ---- full training step ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def step_batches(sizes: Any) -> List[Any]:
    return bl.random_batches(sizes.batch, sizes.net[0], sizes.net[-1], seed=23, n=N_BATCHES)


def _mlp(sizes: Any, t: int) -> MotifMLP:
    return MotifMLP(list(sizes.net), motif=1, density=STEP_DENSITY, distribution="uniform", seed=3, num_threads=t)


def check_step_pair(net: MotifMLP, trainer: bl.TorchTrainer, batch: Any, steps: int = 2) -> None:
    """``steps`` SGD steps of both MLPs from the same weights: same losses, weights and biases."""
    x, y = batch
    ours = [net.train_step(x, y, LR, MOMENTUM, WD) for _ in range(steps)]
    theirs = [trainer.step(torch.from_numpy(x), torch.from_numpy(y)) for _ in range(steps)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, err_msg="losses of motifcore and SparseProp")
    assert all(math.isfinite(v) for v in ours)
    linears = [mod for mod in trainer.model if not isinstance(mod, torch.nn.ReLU)]
    for i, (layer, sl) in enumerate(zip(net.layers, linears)):
        w = layer.weights.astype(np.float64)
        bl.check_close(bl.sparseprop_values(sl, sl.W_val, bl.edge_keys(layer)), w, f"layer {i} weights")
        bl.check_close(sl.bias.detach().numpy(), layer.bias.astype(np.float64), f"layer {i} bias")


@pytest.mark.parametrize("omp_threads", THREADS, indirect=True)
@pytest.mark.parametrize("impl", ("sparseprop", "motifcore"))
def test_step(benchmark: Any, info: Callable[..., None], sizes: Any, step_batches: List[Any], omp_threads: int,
              impl: str) -> None:
    t = omp_threads
    net = _mlp(sizes, t)
    trainer = bl.TorchTrainer(torch, bl.sparseprop_mlp(torch, net), LR, MOMENTUM, WD)
    check_step_pair(net, trainer, step_batches[0])
    benchmark.group = step_group(sizes, t)
    if impl == "motifcore":
        fn = bl.cycler(lambda x, y: net.train_step(x, y, LR, MOMENTUM, WD), step_batches)
    else:
        fn = bl.cycler(trainer.step, [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in step_batches])
    info(benchmark, impl, "train_step", m=1 if impl == "motifcore" else None, density=STEP_DENSITY, threads=t,
         batch=sizes.batch, samples=sizes.batch, macs=3 * net.macs_per_sample * sizes.batch, blocks=net.n_blocks,
         baseline=impl == "sparseprop")
    benchmark(fn)
