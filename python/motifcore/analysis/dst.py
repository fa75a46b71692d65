"""Link prediction on a bipartite layer for dynamic sparse training: Cannistraci-Hebb CH3-L3
(Muscoloni et al.; used for regrowth by CHT, Zhang et al., ICLR 2024) and the plain count of
3-paths CN-L3.

For an absent link from input ``j`` to output ``i`` (mask orientation ``n_out x n_in``), every
3-path is ``j -> i' <- j' -> i``, and

    CH3-L3(i, j) = sum over such paths of 1 / sqrt((k(i') - c(i', i)) * (k(j') - c(j', j)))

with ``k`` the degree and ``c(u, v)`` the number of neighbours ``u`` and ``v`` share: one plus the
number of links the path's inner nodes have outside the local community of the paths. The scores
are computed by the native engine (parallel over inputs, the same on every thread count). For a
Motif-SET layer, pass the layer: it is scored on its block graph (for a uniform motif size ``m``
every edge of a block scores ``m`` times the block's score, so the ranking is the same).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._internal.validation import check_int

__all__ = ["ch3_l3_scores", "cn_l3_scores"]


def _pattern(mask_or_layer: Any) -> sp.csr_matrix:
    obj = mask_or_layer
    if all(hasattr(obj, a) for a in ("indptr", "indices", "groups")):
        g_out, g_in = (int(v) for v in obj.groups)
        idx = np.asarray(obj.indices, dtype=np.int32)
        return sp.csr_matrix((np.ones(idx.size, dtype=np.int8), idx, np.asarray(obj.indptr, dtype=np.int64)),
                             shape=(g_out, g_in))
    if sp.issparse(obj):
        m = sp.csr_matrix(obj)
    else:
        arr = np.asarray(obj)
        if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise TypeError(f"expected a 2-D 0/1 mask (n_out x n_in) or a layer, got {type(obj).__name__}")
        m = sp.csr_matrix(arr)
    m.eliminate_zeros()
    m = sp.csr_matrix((np.ones(m.nnz, dtype=np.int8), m.indices, m.indptr), shape=m.shape)
    m.sum_duplicates()
    m.sort_indices()
    return m


def ch3_l3_scores(mask_or_layer: Any, num_threads: Optional[int] = None) -> sp.csr_matrix:
    """CH3-L3 score of every absent link with a positive score, as a ``float64`` CSR matrix of the
    mask's shape (``n_out x n_in``; for a layer: ``G_out x G_in``). Existing links score 0."""
    m = _pattern(mask_or_layer)
    threads = (check_int(num_threads, "num_threads") if num_threads is not None
               else int(os.environ.get("MOTIFCORE_NUM_THREADS", "") or 1))
    cp, rows, vals = _core.ch3_l3_scores(m.shape[0], m.shape[1], np.ascontiguousarray(m.indptr, dtype=np.int64),
                                         np.ascontiguousarray(m.indices, dtype=np.int32), threads)
    return sp.csc_matrix((vals, rows, cp), shape=m.shape).tocsr()


def cn_l3_scores(mask_or_layer: Any) -> sp.csr_matrix:
    """Number of 3-paths ``(A A^T A)[i, j]`` of every absent link (0 on existing links)."""
    m = _pattern(mask_or_layer).astype(np.int64)
    p = sp.csr_matrix(m @ (m.T @ m))
    p = p - p.multiply(m)
    p = sp.csr_matrix(p)
    p.eliminate_zeros()
    return p
