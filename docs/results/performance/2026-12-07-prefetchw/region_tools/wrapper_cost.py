"""Wall time of MotifMLP.train_step's input checks between steps (their data and code evicted by the
step), with x's finiteness checked by NumPy (as before 2026-12-07) and without (the engine checks it
while it copies the batch): medians of 40, microseconds."""
import time, numpy as np
from motifcore import MotifMLP
from motifcore._internal.validation import as_float_matrix, as_labels
model = MotifMLP([784, 3000, 3000, 3000, 10], motif=1, density=0.1, seed=0, num_threads=1)
rng = np.random.default_rng(0)
xn = rng.random((128, 784), dtype=np.float32); yn = rng.integers(0, 10, 128)
for _ in range(3): model.train_step(xn, yn)
for check in (True, False, True, False):
    ts = []
    for _ in range(40):
        model.train_step(xn, yn)
        t0 = time.perf_counter(); as_float_matrix(xn, 784, "x", check_finite=check); ts.append(time.perf_counter() - t0)
    print(f"as_float_matrix(check_finite={check}): {1e6 * np.median(ts):.1f} us")
