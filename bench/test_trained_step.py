"""The training step on a *trained* model, not only on a fresh one (performance issue, item 0).

Every other step benchmark times a fresh model. A trained one differs in one way that matters for
speed: at uniform density 0.1 about 0.9^10 = 35 % of the last hidden layer has no block into the
output layer, so those neurons get no gradient and their incoming weights (and Adam moments) only
feel weight decay; by epoch 10 of the default Fashion-MNIST run 34 % of that layer's weights were
subnormal, and one step took 78.9 ms against 23.1 ms fresh (issue note). This module builds that
state directly (those neurons' incoming weights and Adam moments set to subnormal values, the rest
as after a few Adam steps) and times the Adam step on it beside the same model before the change:
with the engine's flush-to-zero mode (cpp/float_mode.hpp) the two should cost the same (target:
<= 1.15x).

    pytest bench/test_trained_step.py --benchmark-only
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

import numpy as np
import pytest
from motifcore import MotifMLP

DENSITY = 0.1
LR, WD = 1e-3, 5e-4
WARM_STEPS = 3
SUBNORMAL = 1e-39


def _batches(sizes: Any) -> List[Tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    return [(rng.standard_normal((sizes.batch, sizes.net[0])).astype(np.float32),
             rng.integers(0, sizes.net[-1], size=sizes.batch).astype(np.int64)) for _ in range(4)]


def _cut_off_neurons(net: MotifMLP) -> np.ndarray:
    """Neurons of the last hidden layer (m = 1) that no output-layer block reads."""
    out = net.layers[-1]
    used = np.zeros(out.n_in, bool)
    used[np.asarray(out.indices)] = True
    return np.flatnonzero(~used)


def _decayed(net: MotifMLP) -> Tuple[int, int]:
    """Sets the incoming weights and Adam moments of the cut-off neurons to subnormal values."""
    state = net.get_state()
    li = len(net.layers) - 2
    cut = _cut_off_neurons(net)
    indptr = state[f"layer{li}.indptr"]
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    sel = np.isin(rows, cut)
    for key in ("weights", "weight_velocity", "weight_sq"):
        k = f"layer{li}.{key}"
        if k in state and state[k].size:
            v = state[k].copy()
            sign = np.where(v[sel] < 0, -1.0, 1.0) if key != "weight_sq" else 1.0
            v[sel] = np.float32(SUBNORMAL) * sign
            state[k] = v
    net.set_state(state)
    return int(cut.size), int(sel.sum())


def _step(net: MotifMLP, batches: List[Any]) -> Callable[[], float]:
    i = {"n": 0}

    def run() -> float:
        x, y = batches[i["n"] % len(batches)]
        i["n"] += 1
        return net.train_step(x, y, LR, 0.9, WD, optimizer="adam")
    return run


@pytest.mark.parametrize("state", ["fresh", "trained"])
def test_adam_step(benchmark: Any, info: Callable[..., None], sizes: Any, threads: int, state: str) -> None:
    benchmark.group = f"adam step on a trained model {'-'.join(map(str, sizes.net))} d={DENSITY} B={sizes.batch}"
    net = MotifMLP(list(sizes.net), motif=1, density=DENSITY, distribution="uniform", seed=0, num_threads=threads)
    batches = _batches(sizes)
    for _ in range(WARM_STEPS):
        _step(net, batches)()
    extra = {}
    if state == "trained":
        n_cut, n_sub = _decayed(net)
        assert n_cut > 0 and n_sub > 0, "the model has no cut-off neuron to decay"
        extra = {"cut_off_neurons": n_cut, "subnormal_weights": n_sub}
    info(benchmark, "motifcore", f"adam_step_{state}", m=1, density=DENSITY, threads=threads, batch=sizes.batch,
         samples=sizes.batch, macs=3 * net.macs_per_sample * sizes.batch, baseline=state == "fresh", **extra)
    benchmark(_step(net, batches))
    tiny = np.finfo(np.float32).tiny
    for layer in net.layers:     # flushed arithmetic: no step leaves a subnormal weight behind
        w = np.asarray(layer.weights)
        assert not np.any((w != 0) & (np.abs(w) < tiny))
