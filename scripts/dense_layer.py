"""Dense layers: the engine's dense path (GEMMs, docs/engine.md) against PyTorch and against the
engine's sparse kernels on the same full-density layers (not a pytest benchmark; prints Markdown
tables).

1. One ``2048 x 2048`` layer at batch 128, forward + backward (output, input gradient, weight and
   bias gradients): ``MotifLayer(density=1.0)`` on the dense path, the same layer forced onto the
   sparse kernels (``_core.Layer.dense_path = False``, what every full-density layer ran before
   the dense path), and ``torch.nn.Linear`` (forward, then ``backward`` of a fixed upstream
   gradient), each at 1 and 2 threads (``torch.set_num_threads``). Issue target: engine <= 1.5x
   torch at the same thread count.
2. One SGD-momentum training step of the paper network ``784-3000-3000-3000-10`` with every layer
   at density 1.0, batch 128: ``MotifMLP.train_step`` on the dense path, forced sparse, and a
   PyTorch ``nn.Sequential`` MLP with ``torch.optim.SGD``. Issue target: the dense step >= 5x
   faster than before (the forced-sparse step, 1.55 s in round two's issue note).

The sides are interleaved round by round and each reports its minimum (``--repeats`` rounds), so
a busy machine slows all of them alike as far as possible; quote the ratios as indicative.

    python scripts/dense_layer.py                      # both parts, 1 and 2 threads (~1 min quiet)
    python scripts/dense_layer.py --part layer --repeats 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

PAPER = [784, 3000, 3000, 3000, 10]


def interleaved_min(fns: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, float]:
    """Minimum wall time (s) of each function over `repeats` rounds, the functions interleaved."""
    for f in fns.values():  # warm-up: first-call allocations, thread pools
        f()
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def layer_part(threads: Sequence[int], repeats: int, n: int = 2048, batch: int = 128) -> None:
    import torch

    from motifcore import MotifLayer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, n)).astype(np.float32)
    g = rng.standard_normal((batch, n)).astype(np.float32)
    print(f"\n### One {n} x {n} layer, batch {batch}, forward + backward (min of {repeats}, ms)\n")
    print("| threads | engine dense path | engine sparse kernels | torch nn.Linear | dense / torch | sparse / torch | sparse / dense |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for t in threads:
        torch.set_num_threads(t)
        dense = MotifLayer(n, n, density=1.0, seed=1, num_threads=t)
        sparse = MotifLayer(n, n, density=1.0, seed=1, num_threads=t)
        sparse._core.dense_path = False
        assert dense._core.uses_dense and not sparse._core.uses_dense
        lin = torch.nn.Linear(n, n)
        xt = torch.from_numpy(x).requires_grad_(True)
        gt = torch.from_numpy(g)

        def engine(layer: MotifLayer) -> Callable[[], object]:
            def run() -> object:
                layer.forward(x)
                return layer.backward(g)
            return run

        def torch_step() -> object:
            lin.zero_grad(set_to_none=True)
            xt.grad = None
            lin(xt).backward(gt)
            return xt.grad

        best = interleaved_min({"dense": engine(dense), "sparse": engine(sparse), "torch": torch_step}, repeats)
        d, s, tt = best["dense"], best["sparse"], best["torch"]
        print(f"| {t} | {d * 1e3:.2f} | {s * 1e3:.1f} | {tt * 1e3:.2f} | {d / tt:.2f}x | {s / tt:.2f}x | {s / d:.1f}x |")


def step_part(threads: Sequence[int], repeats: int, batch: int = 128) -> None:
    import torch

    from motifcore import MotifMLP

    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, PAPER[0])).astype(np.float32)
    y = rng.integers(0, PAPER[-1], batch)
    print(f"\n### Dense training step of {'-'.join(map(str, PAPER))}, batch {batch}, SGD momentum "
          f"(min of {repeats}, ms)\n")
    print("| threads | engine dense path | engine sparse kernels (before) | torch MLP | sparse / dense | dense / torch |")
    print("|---:|---:|---:|---:|---:|---:|")
    for t in threads:
        torch.set_num_threads(t)
        dense = MotifMLP(PAPER, density=1.0, seed=1, num_threads=t)
        sparse = MotifMLP(PAPER, density=1.0, seed=1, num_threads=t)
        for layer in sparse.layers:
            layer._core.dense_path = False
        assert all(layer._core.uses_dense for layer in dense.layers)
        layers = []
        for i in range(len(PAPER) - 1):
            layers.append(torch.nn.Linear(PAPER[i], PAPER[i + 1]))
            if i < len(PAPER) - 2:
                layers.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*layers)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        loss_fn = torch.nn.CrossEntropyLoss()

        def torch_step() -> object:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(Xt), yt)
            loss.backward()
            opt.step()
            return loss

        def engine(model: MotifMLP) -> Callable[[], object]:
            return lambda: model.train_step(X, y, lr=0.01, momentum=0.9, weight_decay=5e-4)

        best = interleaved_min({"dense": engine(dense), "sparse": engine(sparse), "torch": torch_step}, repeats)
        d, s, tt = best["dense"], best["sparse"], best["torch"]
        print(f"| {t} | {d * 1e3:.1f} | {s * 1e3:.0f} | {tt * 1e3:.1f} | {s / d:.1f}x | {d / tt:.2f}x |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("layer", "step", "both"), default="both")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeats", type=int, default=15, help="interleaved rounds; each side reports its minimum")
    args = ap.parse_args(argv)
    threads = [int(s) for s in args.threads.split(",")]
    from motifcore import build_info

    info = build_info()
    print(f"engine: SIMD {info['simd']}, {info['compiler']}; load average {os.getloadavg()[0]:.2f} at start")
    if args.part in ("layer", "both"):
        layer_part(threads, args.repeats)
    if args.part in ("step", "both"):
        step_part(threads, args.repeats)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end (indicative ratios only on a busy machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
