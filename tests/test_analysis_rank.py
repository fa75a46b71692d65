"""Effective and stable rank against NumPy's SVD, hand values and the block reduction."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from motifcore import MotifLayer, MotifMLP
from motifcore.analysis import rank


def np_ranks(W):
    s = np.linalg.svd(W, compute_uv=False)
    s = s[s > s.max() * 1e-12]
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum())), float((s**2).sum() / s.max() ** 2)


def test_hand_values():
    assert rank.effective_rank(np.eye(7)).value == pytest.approx(7)
    assert rank.stable_rank(np.eye(7)).value == pytest.approx(7)
    u = np.arange(1.0, 6.0)
    assert rank.effective_rank(np.outer(u, u[:4])).value == pytest.approx(1)
    assert rank.stable_rank(np.outer(u, u[:4])).value == pytest.approx(1)
    d = np.diag([3.0, 1.0])
    # p = (3/4, 1/4): exp(-(3/4 ln 3/4 + 1/4 ln 1/4)) = 1.7548; (9 + 1) / 9 = 1.1111
    assert rank.effective_rank(d).value == pytest.approx(1.7548, abs=1e-4)
    assert rank.stable_rank(d).value == pytest.approx(10 / 9)


@pytest.mark.parametrize("motif", [1, 2, (3, 2)])
def test_layer_matches_dense_svd(motif):
    layer = MotifLayer(23, 17, motif=motif, density=0.4, seed=1, num_threads=1)   # residual motifs
    er, sr = np_ranks(layer.to_dense().astype(np.float64))
    assert rank.effective_rank(layer).value == pytest.approx(er, rel=1e-6)
    assert rank.stable_rank(layer).value == pytest.approx(sr, rel=1e-6)
    assert rank.stable_rank(layer, method="lanczos").value == pytest.approx(sr, rel=1e-5)


def test_slq_estimate_close_to_exact():
    rng = np.random.default_rng(0)
    M = sp.random(900, 900, density=0.01, random_state=rng, data_rvs=rng.standard_normal, format="csr")
    exact = rank.effective_rank(M, method="exact")
    est = rank.effective_rank(M, method="slq", n_probes=32, steps=60, seed=1)
    assert exact.exact and not est.exact and est.se > 0
    assert est.value == pytest.approx(exact.value, rel=0.03)


def test_slq_without_reorthogonalisation(monkeypatch):
    # a basis budget below one probe's basis: three-term recurrence only, probes one at a time
    rng = np.random.default_rng(4)
    M = sp.random(400, 700, density=0.02, random_state=rng, data_rvs=rng.standard_normal, format="csr")
    exact = rank.effective_rank(M, method="exact").value
    monkeypatch.setattr(rank, "LANCZOS_MEMORY", 8 * 400 * 50 - 1)
    est = rank.effective_rank(M, method="slq", n_probes=24, steps=50, seed=2)
    assert est.value == pytest.approx(exact, rel=0.03)


def test_spectrum_summary_and_errors():
    model = MotifMLP([30, 20, 20, 3], motif=1, density=0.3, seed=0, num_threads=1)
    s = rank.spectrum_summary(model)
    assert len(s["erank"]) == 2 and s["exact"]
    assert s["erank_sum"] == pytest.approx(sum(np_ranks(l.to_dense())[0] for l in model.layers[:2]), rel=1e-6)
    with pytest.raises(ValueError, match="method"):
        rank.effective_rank(np.eye(3), method="svd")
    with pytest.raises(TypeError):
        rank.effective_rank("W")
