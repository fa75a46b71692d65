"""Batch-1 predict_proba latency and the cost of the per-model guard (docs/engine.md, "Threads
sharing a model"). Prints medians; the machine is shared, so read differences below ~10 % as noise.

    python scripts/predict_latency.py
"""

from __future__ import annotations

import statistics
import time

import motifcore as mc
import numpy as np


def median_us(fn, calls: int = 2000, repeats: int = 20) -> float:
    for _ in range(calls // 4):
        fn()
    meds = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        meds.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(meds)


def main() -> None:
    model = mc.MotifMLP([784, 1000, 1000, 10], motif=2, density=0.1, seed=0, num_threads=1)
    x = np.random.default_rng(0).standard_normal((1, 784), dtype=np.float32)
    core = model.layers[0]._core
    print(f"predict_proba, batch 1: {median_us(lambda: model.predict_proba(x)):.2f} us (median)")
    # the same trivial getter with and without the guard: n_in is a plain field, n_blocks takes
    # the layer's guard (GIL release + mutex + GIL re-acquire)
    plain = median_us(lambda: core.n_in, calls=20000)
    guarded = median_us(lambda: core.n_blocks, calls=20000)
    print(f"getter without guard {plain:.3f} us, with guard {guarded:.3f} us: guard cost {guarded - plain:.3f} us")


if __name__ == "__main__":
    main()
