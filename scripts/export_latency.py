"""Batch-1 latency of an exported model next to motifcore's own (not a pytest benchmark).

Builds the paper's ``784-3000-3000-3000-10`` network at block density 0.1 for m = 1, 2, 4, exports
it (``motifcore.export``) and times one sample through: motifcore (``decision_function``, the
logits), the ONNX file (``blocks="sparse"`` and ``"dense"``) in ONNX Runtime
(``CPUExecutionProvider``), and the PyTorch module of ``to_torch()`` (compact) and of
``to_torch(dense=True)`` under ``torch.inference_mode()``. All use the same number of threads.
The implementations are timed in interleaved rounds (one call of each per round, order rotated),
so load changes during the run hit them alike. Before timing, every output is checked against
motifcore's logits (1e-5 relative). Prints a Markdown table of medians and minima (ms) and the
ratio of medians to motifcore, with the 1-minute load average.

    python scripts/export_latency.py [--threads 2] [--rounds 200] [--motifs 1 2 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from motifcore import MotifMLP, export

SIZES = [784, 3000, 3000, 3000, 10]


def implementations(m: int, threads: int, folder: Path) -> tuple[MotifMLP, dict[str, Callable[[], Any]]]:
    import onnxruntime as ort
    import torch

    net = MotifMLP(SIZES, motif=m, density=0.1, distribution="uniform", seed=0, num_threads=threads)
    x = np.random.default_rng(0).standard_normal((1, SIZES[0])).astype(np.float32)
    xt = torch.from_numpy(x)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sessions = {b: ort.InferenceSession(str(export.to_onnx(net, folder / f"m{m}-{b}.onnx", blocks=b)), so,
                                        providers=["CPUExecutionProvider"]) for b in ("sparse", "dense")}
    compact, dense = net.to_torch(), net.to_torch(dense=True)

    def run_torch(module: Any) -> np.ndarray:
        with torch.inference_mode():
            return module(xt).numpy()

    return net, {
        "motifcore": lambda: net.decision_function(x),
        "onnxruntime, blocks='sparse'": lambda: sessions["sparse"].run(None, {"x": x})[0],
        "onnxruntime, blocks='dense'": lambda: sessions["dense"].run(None, {"x": x})[0],
        "torch compact (to_torch)": lambda: run_torch(compact),
        "torch dense (to_torch(dense=True))": lambda: run_torch(dense),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--motifs", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    torch.set_num_threads(args.threads)
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}; threads {args.threads}; "
          f"{args.rounds} rounds; onnxruntime {ort.__version__}, torch {torch.__version__}\n")
    print("| m | blocks | implementation | median ms | min ms | median / motifcore |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.motifs:
            net, impls = implementations(m, args.threads, Path(tmp))
            ref = impls["motifcore"]()
            for name, fn in impls.items():
                np.testing.assert_allclose(fn(), ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()), err_msg=name)
            names = list(impls)
            times: dict[str, list[float]] = {name: [] for name in names}
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    t0 = time.perf_counter()
                    impls[name]()
                    times[name].append(time.perf_counter() - t0)
            base = float(np.median(times["motifcore"]))
            for name in names:
                med = float(np.median(times[name]))
                print(f"| {m} | {net.n_blocks:,} | {name} | {med * 1e3:.3f} | {min(times[name]) * 1e3:.3f} | "
                      f"{med / base:.2f}x |")
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
