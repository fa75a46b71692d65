"""A sample's outputs must not depend on its position in the batch, the batch size or threads."""

from __future__ import annotations

import motifcore as mc
import numpy as np
import pytest
from motifcore import _core


@pytest.fixture(params=["avx512", "avx2", "generic"])
def simd(request):
    try:
        _core.set_simd_level(request.param)
    except ValueError:
        pytest.skip(f"CPU lacks {request.param}")
    try:
        yield request.param
    finally:
        _core.set_simd_level("auto")


@pytest.mark.parametrize("batch", [1, 7, 8, 12, 24, 37, 130])   # 8, 12, 24: narrow-vector tail columns
def test_logits_independent_of_position_and_batch_size(simd, batch):
    net = mc.MotifMLP([50, 70, 60, 4], motif=[1, 2, 1], density=0.4, seed=1, num_threads=1)
    X = np.random.default_rng(0).standard_normal((batch, 50)).astype(np.float32)
    whole = net.decision_function(X, batch_size=batch)
    perm = np.random.default_rng(1).permutation(batch)
    permuted = net.decision_function(X[perm], batch_size=batch)
    one_by_one = np.concatenate([net.decision_function(X[i:i + 1]) for i in range(batch)])
    assert np.array_equal(whole[perm], permuted)
    assert np.array_equal(whole, one_by_one)


def test_logits_bitwise_equal_for_1_and_2_threads():
    X = np.random.default_rng(2).standard_normal((300, 200)).astype(np.float32)
    outs = []
    for nt in (1, 2):
        net = mc.MotifMLP([200, 400, 400, 10], motif=2, density=0.3, seed=4, num_threads=nt)
        y = np.random.default_rng(3).integers(0, 10, 300)
        net.train_epoch(X, y, batch_size=64, lr=0.05, seed=0)
        outs.append(net.decision_function(X))
    assert np.array_equal(outs[0], outs[1])
