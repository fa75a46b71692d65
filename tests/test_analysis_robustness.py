"""Perturbation curves: the clean point, the shared end point of the pruning kinds, the weight
multiset of shuffling, the model left unchanged, the area under the curve."""

from __future__ import annotations

import numpy as np
import pytest
from motifcore import MotifMLP
from motifcore.analysis import robustness as rb


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 12)).astype(np.float32)
    y = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + (X[:, 3] > 1).astype(np.int64)
    model = MotifMLP([12, 16, 16, 3], density=0.5, seed=0, num_threads=1)
    for e in range(15):
        model.train_epoch(X, y, batch_size=32, lr=0.05, seed=e)
    return model, X, y


def test_curves(setup):
    model, X, y = setup
    before = model.get_state()
    clean = model.score(X, y)
    fr = [0.0, 0.5, 1.0]
    curves = rb.robustness_table(model, X, y, fractions=fr, repeats=2)
    for c in curves.values():
        assert c.acc_mean[0] == pytest.approx(clean)
        assert c.auc == pytest.approx(0.25 * c.acc_mean[0] + 0.5 * c.acc_mean[1] + 0.25 * c.acc_mean[2])
        assert c.auc_norm == pytest.approx(c.auc / clean)
    # at f = 1 the three pruning kinds zero every hidden block: the same network
    ends = {k: curves[k].acc_mean[-1] for k in ("random", "strong_first", "weak_first")}
    assert len(set(ends.values())) == 1
    after = model.get_state()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_perturb_weights():
    rng = np.random.default_rng(1)
    K = rng.normal(size=50).astype(np.float32)
    for mode in ("rank_bins", "subset"):
        out = rb.perturb_weights(K, "shuffle", 0.3, rng, mode)
        assert np.array_equal(np.sort(out), np.sort(K)) and not np.array_equal(out, K)
    weak = rb.perturb_weights(K, "weak_first", 0.2, rng)
    assert np.array_equal(np.nonzero(weak == 0)[0], np.sort(np.argsort(np.abs(K))[:10]))
    strong = rb.perturb_weights(K, "strong_first", 0.2, rng)
    assert np.array_equal(np.nonzero(strong == 0)[0], np.sort(np.argsort(-np.abs(K))[:10]))
    noisy = rb.perturb_weights(K, "noise", 0.5, np.random.default_rng(2))
    xi = np.random.default_rng(2).standard_normal(50)
    assert np.allclose(noisy, K + 0.5 * K.std() * xi, atol=1e-6)
    absolute = rb.perturb_weights(K, "noise", 0.5, np.random.default_rng(2), noise_mode="absolute")
    assert np.allclose(absolute, K + 0.5 * xi, atol=1e-6)
    with pytest.raises(ValueError, match="noise_mode"):
        rb.perturb_weights(K, "noise", 0.5, rng, noise_mode="scaled")
    with pytest.raises(ValueError, match="kind"):
        rb.perturb_weights(K, "flip", 0.1, rng)


def test_errors(setup):
    model, X, y = setup
    with pytest.raises(ValueError, match="fractions"):
        rb.perturbation_curve(model, X, y, "random", fractions=[0.5, 1.5])
    with pytest.raises(ValueError, match="kind"):
        rb.perturbation_curve(model, X, y, "drop")
    with pytest.raises(ValueError, match="noise_mode"):
        rb.perturbation_curve(model, X, y, "noise", noise_mode="scaled")
    with pytest.raises(ValueError, match="shuffle_mode"):
        rb.perturbation_curve(model, X, y, "shuffle", shuffle_mode="bins")
