"""Batch-1 inference latency of the paper's ``784-3000-3000-3000-10`` network at density 0.1:
``MotifMLP.predict_proba`` of one sample (m = 1, 2, 4) against a PyTorch dense MLP under
``torch.no_grad()`` and the masked-dense MLP (mask applied in every forward, as in training code).
A masked-dense model whose mask is folded into its weights once costs exactly the dense model: the
dense row stands for it. The report gives samples/s (``samples`` = 1).

Checked: motifcore's probabilities match a NumPy forward through the effective matrices, sum to
1, and equal the same sample's row of a batched call; the torch outputs sum to 1.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
import references as bl
from motifcore import MotifMLP

MOTIFS = (1, 2, 4)
DENSITY = 0.1


def group_name(sizes: Any) -> str:
    return f"latency batch=1 {'-'.join(map(str, sizes.net))} d={DENSITY}"


@pytest.fixture(scope="module")
def samples(sizes: Any) -> np.ndarray:
    return np.random.default_rng(5).standard_normal((8, sizes.net[0])).astype(np.float32)


def numpy_forward(net: MotifMLP, x: np.ndarray) -> np.ndarray:
    a = x.astype(np.float64)
    layers = net.layers
    for i, layer in enumerate(layers):
        a = bl.layer_reference_forward(layer, a)
        if i < len(layers) - 1:
            a = np.maximum(a, 0.0)
    a -= a.max(axis=1, keepdims=True)
    p = np.exp(a)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("m", MOTIFS)
def test_motifcore(benchmark: Any, info: Callable[..., None], sizes: Any, threads: int,
                   samples: np.ndarray, m: int) -> None:
    benchmark.group = group_name(sizes)
    net = MotifMLP(list(sizes.net), motif=m, density=DENSITY, distribution="uniform", seed=0, num_threads=threads)
    x1 = samples[:1]
    p1 = net.predict_proba(x1)
    assert p1.shape == (1, sizes.net[-1])
    np.testing.assert_allclose(p1.sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(p1, numpy_forward(net, x1), atol=1e-5)
    np.testing.assert_allclose(p1[0], net.predict_proba(samples)[0], atol=1e-6)
    info(benchmark, "motifcore", "predict_proba", m=m, density=DENSITY, threads=threads, batch=1,
         samples=1, macs=net.macs_per_sample, blocks=net.n_blocks)
    benchmark(net.predict_proba, x1)


@pytest.mark.parametrize("impl", ("torch-dense", "torch-masked-dense"))
def test_torch(benchmark: Any, info: Callable[..., None], sizes: Any, torch_threads: int,
               samples: np.ndarray, impl: str) -> None:
    torch = pytest.importorskip("torch")
    benchmark.group = group_name(sizes)
    model = bl.torch_mlp(torch, impl, sizes.net, DENSITY)
    model.eval()
    x1 = torch.from_numpy(samples[:1])

    def predict() -> Any:
        with torch.no_grad():
            return torch.softmax(model(x1), dim=1)

    p = predict().numpy()
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-5)
    with torch.no_grad():
        pb = torch.softmax(model(torch.from_numpy(samples)), dim=1).numpy()
    np.testing.assert_allclose(p[0], pb[0], atol=1e-5)
    dense_macs = sum(a * b for a, b in zip(sizes.net[:-1], sizes.net[1:]))
    info(benchmark, impl, "forward+softmax (no_grad)", density=1.0 if impl == "torch-dense" else DENSITY,
         threads=torch_threads, batch=1, samples=1, macs=dense_macs, baseline=impl == "torch-dense",
         note="mask folded into the weights once = the dense row" if impl != "torch-dense" else "")
    benchmark(predict)
