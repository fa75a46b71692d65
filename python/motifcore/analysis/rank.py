"""Effective rank (Roy & Vetterli 2007) and stable rank (Rudelson & Vershynin 2007) of the weight
matrices of a block-sparse network, without expanding the blocks.

A Motif-SET layer's effective matrix is ``W = E_out K E_in^T`` (``K`` the ``G_out x G_in`` block
weights, ``E`` the 0/1 neuron-to-group indicators), so its nonzero singular values are those of
``D_s^(1/2) K D_r^(1/2)`` with ``D_s``, ``D_r`` the diagonal matrices of the output and input
group sizes: the spectrum of a 3000-wide layer is that of a group-level matrix. ``method="exact"``
takes a dense SVD of that matrix; beyond :data:`EXACT_MAX` entries the stable rank uses the exact
Frobenius norm and a Lanczos estimate of the largest singular value, and the effective rank is
estimated by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017), labelled as an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np
import scipy.sparse as sp

__all__ = ["RankEstimate", "group_matrix", "effective_rank", "stable_rank", "spectrum_summary", "EXACT_MAX",
           "LANCZOS_MEMORY"]

#: largest group-level matrix (entries) whose spectrum is computed exactly by a dense SVD
EXACT_MAX = 5 * 10**7


@dataclass
class RankEstimate:
    """A rank value; ``exact`` False marks a stochastic estimate with standard error ``se``."""

    value: float
    exact: bool
    method: str
    se: float = 0.0

    def __float__(self) -> float:
        return float(self.value)


def group_matrix(layer_or_matrix: Any) -> sp.csr_matrix:
    """The sparse matrix whose nonzero singular values are those of the layer's effective weight
    matrix: ``D_s^(1/2) K D_r^(1/2)`` for a layer (anything exposing ``n_in, n_out, motif,
    indptr, indices, weights``), the matrix itself for a NumPy or ``scipy.sparse`` matrix."""
    obj = layer_or_matrix
    if all(hasattr(obj, a) for a in ("n_in", "n_out", "motif", "indptr", "indices", "weights")):
        m_out, m_in = (int(v) for v in obj.motif)
        g_out, g_in = -(-obj.n_out // m_out), -(-obj.n_in // m_in)
        s = np.minimum(m_out, obj.n_out - np.arange(g_out) * m_out).astype(np.float64)
        r = np.minimum(m_in, obj.n_in - np.arange(g_in) * m_in).astype(np.float64)
        indptr = np.asarray(obj.indptr, dtype=np.int64)
        idx = np.asarray(obj.indices, dtype=np.int64)
        rows = np.repeat(np.arange(g_out), np.diff(indptr))
        vals = np.asarray(obj.weights, dtype=np.float64) * np.sqrt(s[rows] * r[idx])
        return sp.csr_matrix((vals, idx, indptr), shape=(g_out, g_in))
    if sp.issparse(obj):
        return sp.csr_matrix(obj, dtype=np.float64)
    arr = np.asarray(obj)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"expected a layer or a 2-D numeric matrix, got {type(obj).__name__}")
    return sp.csr_matrix(arr.astype(np.float64))


def _check_method(method: str, allowed: tuple) -> str:
    if method not in allowed:
        raise ValueError(f"method must be one of {', '.join(allowed)}, got {method!r}")
    return method


def _erank_from_sv(sv: np.ndarray) -> float:
    sv = sv[sv > sv.max() * 1e-12] if sv.size and sv.max() > 0 else sv[:0]
    if sv.size == 0:
        return 0.0
    p = sv / sv.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


#: memory allowed for the Lanczos basis of one chunk of SLQ probes (bytes)
LANCZOS_MEMORY = 256 * 2**20


def _lanczos_block(matmat: Any, Z: np.ndarray, steps: int, reorth: bool = True) -> tuple:
    """Lanczos on every column of ``Z`` at once: (alpha, beta) of shape [steps, p] and
    [steps - 1, p] (a column stops, with zero beta, on breakdown). ``reorth`` keeps the whole
    basis and reorthogonalises fully; otherwise only the three-term recurrence (memory O(n p))."""
    n, p = Z.shape
    k = min(steps, n)
    V = np.zeros((k if reorth else 0, n, p))
    alpha, beta = np.zeros((k, p)), np.zeros((max(k - 1, 0), p))
    v = Z / np.linalg.norm(Z, axis=0)
    v_prev = np.zeros_like(v)
    live = np.ones(p, dtype=bool)
    for j in range(k):
        w = matmat(v)
        alpha[j] = np.einsum("np,np->p", v, w) * live
        if reorth:
            V[j] = v
            for _ in range(2):
                w = w - np.einsum("knp,kp->np", V[:j + 1], np.einsum("knp,np->kp", V[:j + 1], w))
        else:
            w = w - v * alpha[j] - (v_prev * beta[j - 1] if j else 0.0)
        if j == k - 1:
            break
        b = np.linalg.norm(w, axis=0)
        live &= b > 1e-10
        beta[j] = np.where(live, b, 0.0)
        v_prev, v = v, np.where(live, w / np.where(live, b, 1.0), 0.0)
    return alpha, beta


def effective_rank(layer_or_matrix: Any, method: str = "auto", n_probes: int = 64, steps: int = 80,
                   seed: int = 0) -> RankEstimate:
    """``exp(-sum p_k ln p_k)`` with ``p_k = sigma_k / sum sigma`` over the nonzero singular values.

    ``method="exact"``: dense SVD of the group-level matrix; ``"slq"``: stochastic Lanczos
    quadrature on the smaller Gram matrix, applied as two sparse products (``n_probes``
    Rademacher probes, ``steps`` Lanczos steps, seeded; probes run in chunks whose Lanczos basis
    fits :data:`LANCZOS_MEMORY`, without reorthogonalisation when even one probe's basis does
    not; returns the standard error over probes); ``"auto"``: exact up to :data:`EXACT_MAX`
    entries."""
    _check_method(method, ("auto", "exact", "slq"))
    M = group_matrix(layer_or_matrix)
    if method == "exact" or (method == "auto" and M.shape[0] * M.shape[1] <= EXACT_MAX):
        from scipy.linalg import svdvals

        return RankEstimate(_erank_from_sv(svdvals(M.toarray())), True, "exact")
    # Gram matrix of the smaller side, applied as two sparse products (never formed)
    Mt = sp.csr_matrix(M.T)
    if M.shape[1] <= M.shape[0]:
        def matmat(V: np.ndarray) -> np.ndarray:
            return Mt @ (M @ V)
    else:
        def matmat(V: np.ndarray) -> np.ndarray:
            return M @ (Mt @ V)
    n = min(M.shape)
    rng = np.random.default_rng(seed)
    Z = rng.choice([-1.0, 1.0], size=(n, n_probes))
    k = min(steps, n)
    chunk = max(1, min(n_probes, LANCZOS_MEMORY // (8 * n * k)))
    reorth = 8 * n * k <= LANCZOS_MEMORY
    parts = [_lanczos_block(matmat, Z[:, a:a + chunk], steps, reorth) for a in range(0, n_probes, chunk)]
    alpha = np.concatenate([p[0] for p in parts], axis=1)
    beta = np.concatenate([p[1] for p in parts], axis=1)
    s1, s2 = np.zeros(n_probes), np.zeros(n_probes)
    for p in range(n_probes):
        b = beta[:, p]
        m = alpha.shape[0] if not np.any(b == 0) else int(np.argmax(b == 0)) + 1
        T = np.diag(alpha[:m, p]) + np.diag(b[:m - 1], 1) + np.diag(b[:m - 1], -1)
        lam, U = np.linalg.eigh(T)
        tau = U[0] ** 2 * n
        lam = np.clip(lam, 0.0, None)
        pos = lam > 0
        safe = np.where(pos, lam, 1.0)
        f1 = np.sqrt(lam)
        f2 = np.where(pos, 0.5 * np.sqrt(lam) * np.log(safe), 0.0)
        s1[p], s2[p] = tau @ f1, tau @ f2
    S1, S2 = s1.mean(), s2.mean()
    val = float(np.exp(np.log(S1) - S2 / S1))
    # standard error from the spread of the per-probe estimates
    g = np.exp(np.log(s1) - s2 / s1)
    return RankEstimate(val, False, "slq", float(g.std(ddof=1) / np.sqrt(n_probes)))


def stable_rank(layer_or_matrix: Any, method: str = "auto", tol: float = 1e-6) -> RankEstimate:
    """``||W||_F^2 / ||W||_2^2``: exact Frobenius norm, the largest singular value by a dense SVD
    (``"exact"``) or by Lanczos (``"lanczos"``, scipy's ``svds`` to relative tolerance ``tol``)."""
    _check_method(method, ("auto", "exact", "lanczos"))
    M = group_matrix(layer_or_matrix)
    fro2 = float(np.sum(M.data ** 2))
    if fro2 == 0:
        return RankEstimate(0.0, True, "exact")
    if method == "exact" or (method == "auto" and M.shape[0] * M.shape[1] <= EXACT_MAX):
        from scipy.linalg import svdvals

        smax = float(svdvals(M.toarray())[0])
        return RankEstimate(fro2 / smax ** 2, True, "exact")
    from scipy.sparse.linalg import svds

    v0 = np.ones(min(M.shape))
    smax = float(svds(M, k=1, tol=tol, return_singular_vectors=False, v0=v0)[0])
    return RankEstimate(fro2 / smax ** 2, True, "lanczos")


def spectrum_summary(model: Any, layers: str = "hidden", method: str = "auto") -> dict:
    """Effective and stable rank of each layer of ``model`` (``"hidden"``: all but the output
    layer; ``"all"``) and their sums: ``{"erank": [...], "srank": [...], "erank_sum", "srank_sum",
    "exact"}``."""
    if layers not in ("hidden", "all"):
        raise ValueError(f"layers must be 'hidden' or 'all', got {layers!r}")
    chosen: List[Any] = list(model.layers)
    if layers == "hidden":
        chosen = chosen[:-1]
    em: Optional[str] = None if method == "auto" else method
    er = [effective_rank(lay, method=em or "auto") for lay in chosen]
    sr = [stable_rank(lay, method="exact" if em == "exact" else "auto") for lay in chosen]
    return {"erank": [e.value for e in er], "srank": [s.value for s in sr],
            "erank_sum": float(sum(e.value for e in er)), "srank_sum": float(sum(s.value for s in sr)),
            "exact": all(e.exact for e in er)}
