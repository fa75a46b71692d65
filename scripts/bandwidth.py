"""Streaming read and copy bandwidth of one core over buffer sizes from 16 KiB to 1 GiB: the memory
roofs (L1, L2, last-level cache, DRAM) of docs/performance.md's roofline of the m = 1 kernels.

Read: a sum of the float32 buffer with eight independent vector accumulators, ``reps`` passes in
one call (a tiny C kernel compiled on first use with the system's ``cc -O3 -march=native`` and
loaded with ctypes: a single NumPy reduction is bound by one FMA chain's latency or by its call
overhead, ~50 GB/s at most, below the L1 and L2 rates); the bytes counted are the buffer's. Copy:
``memcpy`` between two buffers of the given size in the same kernel; the bytes counted are read +
written. ``--numpy`` measures ``numpy.dot(a, a)`` and ``numpy.copyto`` instead (no compiler needed).
Each point repeats the operation until it has taken at least ``--min-ms`` and keeps the best of
``--repeats`` such runs (the least disturbed one on a busy machine). One thread.

    python scripts/bandwidth.py --max-mib 64 --repeats 2 --numpy
    nice -n 5 python scripts/bandwidth.py --json bandwidth.json
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np

_KERNEL = r"""
#include <string.h>
typedef float vf __attribute__((vector_size(64), aligned(4)));
float read_sum(const float* x, long n, long reps) {
    vf a[8] = {{0}};
    long nv = n / 128 * 128;
    for (long r = 0; r < reps; ++r)
        for (long i = 0; i < nv; i += 128)
            for (int k = 0; k < 8; ++k) a[k] += *(const vf*)(x + i + 16 * k);
    vf t = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    float s = 0.f;
    for (int k = 0; k < 16; ++k) s += t[k];
    return s;
}
void copy(float* y, const float* x, long n, long reps) {
    for (long r = 0; r < reps; ++r) { memcpy(y, x, (size_t)n * 4); __asm__ volatile("" ::: "memory"); }
}
"""


def load_kernel() -> Optional[Any]:
    """The C read/copy kernel, compiled into a temporary folder; None without a compiler."""
    d = tempfile.mkdtemp(prefix="bandwidth-")
    src, lib = os.path.join(d, "k.c"), os.path.join(d, "k.so")
    with open(src, "w") as f:
        f.write(_KERNEL)
    try:
        subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", src, "-o", lib], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    k = ctypes.CDLL(lib)
    fp = ctypes.POINTER(ctypes.c_float)
    k.read_sum.argtypes, k.read_sum.restype = [fp, ctypes.c_long, ctypes.c_long], ctypes.c_float
    k.copy.argtypes, k.copy.restype = [fp, fp, ctypes.c_long, ctypes.c_long], None
    return k


def best_rate(fn: Any, nbytes: int, min_s: float, repeats: int) -> float:
    """Best bytes per second of `fn` over `repeats` runs of at least `min_s` each."""
    fn()   # touch the pages, warm the caches
    best = 0.0
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_s:
                break
        best = max(best, n * nbytes / dt)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-kib", type=int, default=16)
    ap.add_argument("--max-mib", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-ms", type=float, default=20.0)
    ap.add_argument("--json", default="")
    ap.add_argument("--numpy", action="store_true", help="NumPy's dot and copyto instead of the C kernel")
    a = ap.parse_args()
    k = None if a.numpy else load_kernel()
    if k is None and not a.numpy:
        print("no C compiler: NumPy's dot and copyto (read rates bound by one FMA chain)")
    rows: List[Dict[str, Any]] = []
    size = a.min_kib * 1024
    print("| buffer | read GB/s | copy GB/s (read + write) |")
    print("|---|---|---|")
    while size <= a.max_mib * 2 ** 20:
        n = size // 4
        x = np.ones(n, dtype=np.float32)
        y = np.empty_like(x)
        if k is None:
            read = best_rate(lambda: np.dot(x, x), size, a.min_ms / 1e3, a.repeats)
            copy = best_rate(lambda: np.copyto(y, x), 2 * size, a.min_ms / 1e3, a.repeats)
        else:
            reps = max(1, (64 * 2 ** 20) // size)   # ~64 MiB per call: the call overhead vanishes
            fp = ctypes.POINTER(ctypes.c_float)
            px, py = x.ctypes.data_as(fp), y.ctypes.data_as(fp)
            read = best_rate(lambda: k.read_sum(px, n, reps), reps * size, a.min_ms / 1e3, a.repeats)
            copy = best_rate(lambda: k.copy(py, px, n, reps), 2 * reps * size, a.min_ms / 1e3, a.repeats)
        label = f"{size // 1024} KiB" if size < 2 ** 20 else f"{size // 2 ** 20} MiB"
        print(f"| {label} | {read / 1e9:.1f} | {copy / 1e9:.1f} |", flush=True)
        rows.append({"bytes": size, "read_gbs": read / 1e9, "copy_gbs": copy / 1e9,
                     "probe": "numpy" if k is None else "c"})
        del x, y
        size *= 2
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
