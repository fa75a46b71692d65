import sys, time, numpy as np
sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__]
sys.path.insert(0, sys.argv[1])
import motifcore
from motifcore import MotifMLP
assert motifcore.__file__.startswith(sys.argv[1]), motifcore.__file__
threads = int(sys.argv[2]); secs = float(sys.argv[3])
model = MotifMLP([784, 3000, 3000, 3000, 10], motif=1, density=0.1, seed=0, num_threads=threads)
rng = np.random.default_rng(0)
xn = rng.random((128, 784), dtype=np.float32); yn = rng.integers(0, 10, 128)
for _ in range(5): model.train_step(xn, yn, lr=0.01, momentum=0.9, weight_decay=5e-4)
ts=[]; end=time.perf_counter()+secs
while time.perf_counter()<end:
    t0=time.perf_counter(); model.train_step(xn, yn, lr=0.01, momentum=0.9, weight_decay=5e-4); ts.append(time.perf_counter()-t0)
print(len(ts), "median ms", 1e3*np.median(ts), "min", 1e3*min(ts))
