"""Bitwise A/B of two engine builds: run ``dump`` with each build's Python, then ``compare``.

``dump`` trains ``37-101-67-5`` MLPs (residual motifs for m = 2, 3) for four steps (batches 13, 1,
130, 17; dropout on the third) with SGD and Adam, for m in {1, 2, 3}, 1 and 2 threads, on every
SIMD level this CPU has, and saves losses, weights, biases, gradients and the logits of 50 further
samples; then it evolves each network (SET, a drop and a regrowth that brings half of the dropped
blocks back with their optimizer state, CHT), trains two more steps and saves the whole state
(pattern, weights, momentum, Adam moments). It also saves MotifLayer ``203 -> 77`` (ReLU) forward
outputs, input gradients and weight and bias gradients at batch 1, 3, 17 and 130. ``compare``
reports every array whose bytes differ. A kernel change that keeps each element's summation order
must leave all of them identical.

    /path/to/old/venv/bin/python scripts/bitwise_ab.py dump /tmp/old.npz
    /path/to/new/venv/bin/python scripts/bitwise_ab.py dump /tmp/new.npz
    python scripts/bitwise_ab.py compare /tmp/old.npz /tmp/new.npz
"""

from __future__ import annotations

import sys
from typing import Dict

import numpy as np


def dump(path: str) -> None:
    from motifcore import MotifLayer, MotifMLP, _core

    out: Dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    for level in ("generic", "avx2", "avx512"):
        try:
            _core.set_simd_level(level)
        except ValueError:
            continue
        for m in (1, 2, 3):
            for t in (1, 2):
                for opt in ("sgd", "adam"):
                    net = MotifMLP([37, 101, 67, 5], motif=m, density=0.3, distribution="uniform", seed=11, num_threads=t)
                    r = np.random.default_rng(1)
                    losses = []
                    for s, batch in enumerate((13, 1, 130, 17)):
                        x = r.standard_normal((batch, 37)).astype(np.float32)
                        y = r.integers(0, 5, batch)
                        losses.append(net.train_step(x, y, lr=0.05, optimizer=opt, dropout=0.1 if s == 2 else 0.0))
                    key = f"{level}/m{m}/t{t}/{opt}"
                    out[key + "/loss"] = np.array(losses)
                    for i, layer in enumerate(net.layers):
                        out[key + f"/W{i}"] = layer.weights
                        out[key + f"/b{i}"] = layer.bias
                        out[key + f"/gW{i}"] = layer.grad_weights
                        out[key + f"/gb{i}"] = layer.grad_bias
                    out[key + "/proba"] = net.predict_proba(r.standard_normal((50, 37)).astype(np.float32))
                    net.evolve(0.3, seed=5)
                    first = net.layers[0]
                    first.prune_smallest(first.n_blocks // 4)
                    first.grow_at(first.last_removed[::2])   # these come back with their old state
                    net.evolve_cht(0.2, seed=7)
                    for batch in (29, 7):
                        x = r.standard_normal((batch, 37)).astype(np.float32)
                        y = r.integers(0, 5, batch)
                        losses.append(net.train_step(x, y, lr=0.05, optimizer=opt))
                    out[key + "/evolved/loss"] = np.array(losses)
                    for name, value in net.get_state().items():
                        out[key + "/evolved/" + name] = np.asarray(value)
                for batch in (1, 3, 17, 130):
                    layer = MotifLayer(203, 77, motif=m, density=0.2, seed=3, activation="relu", num_threads=t)
                    x = rng.standard_normal((batch, 203)).astype(np.float32)
                    g = rng.standard_normal((batch, 77)).astype(np.float32)
                    key = f"{level}/m{m}/t{t}/layer/B{batch}"
                    out[key + "/out"] = layer.forward(x)
                    out[key + "/grad_in"] = layer.backward(g)
                    out[key + "/gW"] = layer.grad_weights
                    out[key + "/gb"] = layer.grad_bias
    _core.set_simd_level("auto")
    np.savez(path, **out)
    print(f"{len(out)} arrays written to {path}")


def compare(a_path: str, b_path: str) -> int:
    a, b = np.load(a_path), np.load(b_path)
    if set(a.files) != set(b.files):
        print("the two dumps hold different arrays:", sorted(set(a.files) ^ set(b.files))[:10])
        return 1
    bad = [k for k in a.files if a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes()]
    print(f"{len(a.files)} arrays compared, {len(bad)} differ" + (f": {bad[:20]}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
