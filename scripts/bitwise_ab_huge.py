"""Bitwise A/B of the huge-panel kernel paths, which ``scripts/bitwise_ab.py`` (small networks) never
reaches: panels over 24 MiB take the prefetching branches of the SpMM, the SDDMM and the transposed
SpMM. Run ``dump`` with each build's Python, then ``scripts/bitwise_ab.py compare``.

``dump`` trains ``3312-250000-250000-5`` (m = 1, epsilon 20, the 1M network's shape at a quarter
of the width: panels of 250,000 rows) one epoch on 136 random samples in batches of 32 (the last
one 8), evolves it (SET, zeta 0.3), trains another epoch, at 1 and 2 threads, and saves the losses,
the patterns, weights and biases and the class probabilities of 40 samples; then a
``MotifLayer 64 -> 400000`` (a huge output-gradient panel) forward and backward at batches 8, 20
and 32 on every SIMD level this CPU has. About 30 s and 1.5 GiB.

    /path/to/old/venv/bin/python scripts/bitwise_ab_huge.py dump /tmp/old_huge.npz
    /path/to/new/venv/bin/python scripts/bitwise_ab_huge.py dump /tmp/new_huge.npz
    python scripts/bitwise_ab.py compare /tmp/old_huge.npz /tmp/new_huge.npz
"""

from __future__ import annotations

import argparse
from typing import Dict

import numpy as np


def dump(path: str) -> None:
    import motifcore
    from motifcore import _core

    out: Dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    X = rng.standard_normal((136, 3312)).astype(np.float32)
    y = rng.integers(0, 5, size=136).astype(np.int64)
    for t in (1, 2):
        net = motifcore.MotifMLP([3312, 250000, 250000, 5], motif=1, epsilon=20.0, seed=0, num_threads=t)
        out[f"t{t}_loss1"] = np.array(net.train_epoch(X, y, batch_size=32, lr=1e-2, seed=1))
        net.evolve(0.3, seed=1)
        out[f"t{t}_loss2"] = np.array(net.train_epoch(X, y, batch_size=32, lr=1e-2, seed=2))
        for i, layer in enumerate(net.layers):
            out[f"t{t}_K{i}"] = layer.weights.copy()
            out[f"t{t}_b{i}"] = layer.bias.copy()
            out[f"t{t}_idx{i}"] = layer.indices.copy()
        out[f"t{t}_proba"] = net.predict_proba(X[:40])
        del net
    for level in ("generic", "avx2", "avx512"):
        try:
            _core.set_simd_level(level)
        except ValueError:
            continue
        for B in (8, 20, 32):
            layer = motifcore.MotifLayer(64, 400000, motif=1, density=0.004, seed=3, num_threads=2)
            x = rng.standard_normal((B, 64)).astype(np.float32)
            g = rng.standard_normal((B, 400000)).astype(np.float32)
            out[f"{level}_B{B}_fwd"] = layer.forward(x)
            out[f"{level}_B{B}_gin"] = layer.backward(g)
            out[f"{level}_B{B}_dk"] = layer.grad_weights.copy()
    _core.set_simd_level("auto")
    np.savez(path, **out)
    print(f"{len(out)} arrays saved to {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="save the arrays of this build")
    d.add_argument("path")
    a = ap.parse_args()
    if a.cmd == "dump":
        dump(a.path)


if __name__ == "__main__":
    main()
