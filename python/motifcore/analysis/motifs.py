"""Motif counts of layered sparse networks (their z-scores against random networks are in
:mod:`.nulls`).

Every count is a closed form in the degrees and in sparse matrix products (never a subgraph
enumeration, never a dense matrix of a wide layer); the ER null's mean and variance are exact
(rational arithmetic). The motifs are those of Zahn, Daniel & Kutz (arXiv 2403.00974), counted as
non-induced subgraphs (equal to induced ones for these eight motifs in a strictly layered network):

==========  ==================================  =========================================
name        pattern                             count at anchor layer l
==========  ==================================  =========================================
edges       j -> i                              E_l
div2        j -> {i1, i2}                       sum_j C(k_out(j), 2)
conv2       {j1, j2} -> i                       sum_i C(k_in(i), 2)
chain2      a -> b -> c                         sum_b k_in(b) k_out(b)  (paths)
div3        j -> {i1, i2, i3}                   sum_j C(k_out(j), 3)
conv3       {j1, j2, j3} -> i                   sum_i C(k_in(i), 3)
chain3      a -> b -> c -> d                    k_out^T A k_in  (paths)
bifan       {j1, j2} -> {i1, i2}                (||A^T A||_F^2 - sum k_out^2 - sum k_in^2 + E) / 4
bipar       a -> {b1, b2} -> c                  (||P||_F^2 - sum P) / 2,  P = A_{l+1} A_l
==========  ==================================  =========================================

Inputs are a model (anything with ``.layers`` whose items expose ``n_in, n_out, motif, indptr,
indices`` like :class:`motifcore.MotifLayer`), a sequence of such layers, or a sequence of 0/1
masks (``scipy.sparse`` or NumPy, shape ``n_out x n_in``, chained). ``level="edge"`` counts the
effective network (an active ``m_out x m_in`` block is a complete bipartite subgraph, computed from
the block pattern and the group sizes without expanding it); ``level="block"`` counts the block
graph. Where two consecutive layers partition their shared neurons differently (a Motif-SET net
with an ``m = 1`` output layer), the block graph's nodes there are the cells of the common
refinement of the two partitions. Biases are not nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

__all__ = ["MOTIFS", "MotifCounts", "LayeredGraph", "layered_graph", "motif_counts", "chain_removal",
           "live_hidden_fraction"]

MOTIFS = ("edges", "div2", "conv2", "chain2", "div3", "conv3", "chain3", "bifan", "bipar")
SPAN = {"edges": 1, "div2": 1, "conv2": 1, "div3": 1, "conv3": 1, "bifan": 1, "chain2": 2, "bipar": 2,
         "chain3": 3}
#: rows of a Gram or path-count product computed at once (memory O(panel x width))
PANEL = 2048


# ------------------------------------------------------------------------------------------------
# the layered graph: block patterns with multiplicities
# ------------------------------------------------------------------------------------------------


@dataclass
class LayeredGraph:
    """A layered graph given by per-layer 0/1 block patterns ``B[l]`` (``G_out x G_in`` CSR) and
    the number of units each group stands for: ``s[l]`` (output groups), ``r[l]`` (input groups),
    and ``X[l]`` (``G_in[l+1] x G_out[l]``) the number of units an input group of layer ``l+1``
    shares with an output group of layer ``l``. The units form the graph that is counted: a unit
    of an output group receives an edge from every unit of every input group its block row holds.
    ``plain`` is True when every multiplicity is 1 and the partitions align (an ordinary graph)."""

    B: List[sp.csr_matrix]
    s: List[np.ndarray]
    r: List[np.ndarray]
    X: List[sp.csr_matrix]
    plain: bool
    level: str = "edge"

    @property
    def widths(self) -> List[int]:
        """Units per node layer, input to output."""
        return [int(self.r[0].sum())] + [int(s.sum()) for s in self.s]

    def copy_with(self, B: Sequence[sp.csr_matrix]) -> "LayeredGraph":
        return LayeredGraph([sp.csr_matrix(b) for b in B], self.s, self.r, self.X, self.plain, self.level)


def _as_mask(a: Any, i: int) -> sp.csr_matrix:
    if sp.issparse(a):
        m = sp.csr_matrix(a)
    else:
        arr = np.asarray(a)
        if arr.ndim != 2:
            raise ValueError(f"mask {i} must be 2-D (n_out x n_in), got shape {arr.shape}")
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise TypeError(f"mask {i} must be numeric, got dtype {arr.dtype}")
        m = sp.csr_matrix(arr)
    m.eliminate_zeros()
    m = sp.csr_matrix((np.ones(m.nnz, dtype=np.int64), m.indices, m.indptr), shape=m.shape)
    m.sum_duplicates()
    m.data[:] = 1
    return m


def _is_layer(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("n_in", "n_out", "motif", "indptr", "indices"))


def _cells(n: int, m_left: int, m_right: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells of the common refinement of the partitions of range(n) into consecutive groups of
    m_left and of m_right: (group of each cell on the left, on the right, cell length)."""
    idx = np.arange(n, dtype=np.int64)
    gl, gr = idx // m_left, idx // m_right
    start = np.flatnonzero(np.r_[True, (gl[1:] != gl[:-1]) | (gr[1:] != gr[:-1])])
    length = np.diff(np.r_[start, n])
    return gl[start], gr[start], length


def layered_graph(net: Any, level: Optional[str] = None) -> LayeredGraph:
    """The :class:`LayeredGraph` of a model, a list of layers or a list of 0/1 masks.

    ``level`` defaults to ``"block"`` for a model with any motif larger than 1 and to ``"edge"``
    otherwise (masks are edge-level graphs; both levels are the same for them)."""
    layers = getattr(net, "layers", net)
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__") or len(layers) == 0:
        raise TypeError("expected a model, a non-empty sequence of layers or a non-empty sequence of masks")
    layers = list(layers)
    if all(_is_layer(lay) for lay in layers):
        motifs = [tuple(int(v) for v in lay.motif) for lay in layers]
        if level is None:
            level = "block" if any(m != (1, 1) for m in motifs) else "edge"
        if level not in ("edge", "block"):
            raise ValueError(f"level must be 'edge' or 'block', got {level!r}")
        B, s, r, X = [], [], [], []
        for i, lay in enumerate(layers):
            if i and layers[i - 1].n_out != lay.n_in:
                raise ValueError(f"layer {i} has {lay.n_in} inputs, layer {i - 1} {layers[i - 1].n_out} outputs")
            indptr = np.asarray(lay.indptr, dtype=np.int64)
            indices = np.asarray(lay.indices, dtype=np.int64)
            m_out, m_in = motifs[i]
            g_out, g_in = -(-lay.n_out // m_out), -(-lay.n_in // m_in)
            B.append(sp.csr_matrix((np.ones(indices.size, dtype=np.int64), indices, indptr), shape=(g_out, g_in)))
        for t in range(len(layers) + 1):         # node layer t: between layer t-1 (left) and layer t (right)
            n = layers[0].n_in if t == 0 else layers[t - 1].n_out
            m_left = motifs[t - 1][0] if t > 0 else 1
            m_right = motifs[t][1] if t < len(layers) else 1
            if t == 0:
                m_left = m_right
            if t == len(layers):
                m_right = m_left
            gl, gr, length = _cells(n, m_left, m_right)
            w = length if level == "edge" else np.ones_like(length)
            if t > 0:
                s.append(np.bincount(gl, weights=w, minlength=B[t - 1].shape[0]).astype(np.int64))
            if t < len(layers):
                r.append(np.bincount(gr, weights=w, minlength=B[t].shape[1]).astype(np.int64))
            if 0 < t < len(layers):
                X.append(sp.csr_matrix((w.astype(np.int64), (gr, gl)), shape=(B[t].shape[1], B[t - 1].shape[0])))
        plain = all((v == 1).all() for v in s + r) and all(x.shape[0] == x.shape[1] and x.nnz == x.shape[0]
                                                            for x in X)
        return LayeredGraph(B, s, r, X, plain, level)
    if level not in (None, "edge", "block"):
        raise ValueError(f"level must be 'edge' or 'block', got {level!r}")
    B = [_as_mask(a, i) for i, a in enumerate(layers)]
    for i in range(1, len(B)):
        if B[i].shape[1] != B[i - 1].shape[0]:
            raise ValueError(f"mask {i} has {B[i].shape[1]} columns (inputs) but mask {i - 1} has "
                             f"{B[i - 1].shape[0]} rows (outputs): masks are n_out x n_in and must chain")
    s = [np.ones(b.shape[0], dtype=np.int64) for b in B]
    r = [np.ones(b.shape[1], dtype=np.int64) for b in B]
    X = [sp.identity(b.shape[1], dtype=np.int64, format="csr") for b in B[1:]]
    return LayeredGraph(B, s, r, X, True, "edge")


# ------------------------------------------------------------------------------------------------
# counting
# ------------------------------------------------------------------------------------------------


def _diag(v: np.ndarray) -> sp.csr_matrix:
    n = v.shape[0]
    return sp.csr_matrix((np.asarray(v, dtype=np.int64), (np.arange(n), np.arange(n))), shape=(n, n))


def _comb(k: np.ndarray, r: int) -> np.ndarray:
    k = k.astype(object)
    out = k * (k - 1) // 2 if r == 2 else k * (k - 1) * (k - 2) // 6
    return np.asarray(out, dtype=object)


def isum(a: np.ndarray) -> int:
    return int(sum(int(v) for v in np.asarray(a, dtype=object).ravel())) if np.size(a) else 0


def _weighted_frob(M: sp.csr_matrix, wr: np.ndarray, wc: np.ndarray, panel: int = PANEL,
                   right: Optional[sp.csr_matrix] = None) -> Tuple[int, int, int]:
    """For G = M @ right (or M alone), computed in row panels: (sum wr_g wc_h G^2, sum wr_g wc_h G,
    sum over G > 0 of wr_g wc_h), exact integers."""
    sq = lin = pos = 0
    for a in range(0, M.shape[0], panel):
        G = M[a:a + panel]
        if right is not None:
            G = (G @ right).tocoo()
        else:
            G = G.tocoo()
        if G.nnz == 0:
            continue
        w = wr[a + G.row] * wc[G.col]
        d = G.data.astype(np.int64)
        dmax, wmax = int(d.max()), int(w.max())
        if dmax * dmax * wmax * d.size < 2**62:        # the int64 sum cannot overflow
            sq += int(np.sum(w * d * d, dtype=np.int64))
        else:
            sq += isum(w.astype(object) * d.astype(object) ** 2)
        lin += int(np.sum(w * d, dtype=np.int64))
        pos += int(np.sum(w[d > 0], dtype=np.int64))
    return sq, lin, pos


def _bifan(B: sp.csr_matrix, s: np.ndarray, r: np.ndarray, kin: np.ndarray, kout: np.ndarray) -> int:
    E = int(s @ (B @ r))
    # Gram on the cheaper side: A^T A costs sum_g s_g kappa_in(g)^2-ish, A A^T the other way
    cost_in = float(np.sum(np.diff(B.indptr).astype(float) ** 2))
    Bc = B.tocsc()
    cost_out = float(np.sum(np.diff(Bc.indptr).astype(float) ** 2))
    if cost_in <= cost_out:      # H = B^T diag(s) B  (G_in x G_in), weights r
        Bt = sp.csr_matrix(B.T)
        sq, _, _ = _weighted_frob(Bt, r, r, right=sp.csr_matrix(_diag(s) @ B))
    else:                        # H = B diag(r) B^T (G_out x G_out), weights s
        sq, _, _ = _weighted_frob(B, s, s, right=sp.csr_matrix(_diag(r) @ B.T))
    sum_out2 = isum(r.astype(object) * kout.astype(object) ** 2)
    sum_in2 = isum(s.astype(object) * kin.astype(object) ** 2)
    total = sq - sum_out2 - sum_in2 + E
    return total // 4


@dataclass
class MotifCounts:
    """Counts per anchor layer (``per_anchor[name][l]``, the first weight layer the motif
    touches) and in total (``total[name]``), as exact Python ints."""

    total: Dict[str, int]
    per_anchor: Dict[str, np.ndarray]
    level: str
    chain_mode: str
    widths: List[int] = field(default_factory=list)

    def __getitem__(self, name: str) -> int:
        return self.total[name]

    def table(self) -> str:
        """A text table: one row per motif, one column per anchor layer and the total."""
        n = max(len(v) for v in self.per_anchor.values())
        head = f"{'motif':<8}" + "".join(f"{'l=' + str(i):>18}" for i in range(n)) + f"{'total':>20}"
        rows = [head]
        for name, tot in self.total.items():
            vals = list(self.per_anchor[name]) + [""] * (n - len(self.per_anchor[name]))
            rows.append(f"{name:<8}" + "".join(f"{v:>18}" for v in vals) + f"{tot:>20}")
        return "\n".join(rows)


def check_motifs(motifs: Any) -> Tuple[str, ...]:
    if motifs in (None, "paper", "all"):
        return MOTIFS
    if isinstance(motifs, str):
        motifs = [motifs]
    out = tuple(motifs)
    bad = [m for m in out if m not in MOTIFS]
    if bad:
        raise ValueError(f"unknown motif(s) {bad}; choose from {', '.join(MOTIFS)}")
    return out


def count_graph(g: LayeredGraph, names: Sequence[str], chain_mode: str) -> Dict[str, np.ndarray]:
    L = len(g.B)
    kin = [g.B[l] @ g.r[l] for l in range(L)]                 # per output group (units)
    kout = [g.B[l].T @ g.s[l] for l in range(L)]              # per input group
    out: Dict[str, List[int]] = {n: [] for n in names}
    for l in range(L):
        B, s, r = g.B[l], g.s[l], g.r[l]
        for name in names:
            if name == "edges":
                out[name].append(int(s @ kin[l]))
            elif name in ("div2", "div3"):
                out[name].append(isum(r.astype(object) * _comb(kout[l], int(name[-1]))))
            elif name in ("conv2", "conv3"):
                out[name].append(isum(s.astype(object) * _comb(kin[l], int(name[-1]))))
            elif name == "bifan":
                out[name].append(_bifan(B, s, r, kin[l], kout[l]))
    for l in range(L - 1):
        need = [n for n in ("chain2", "bipar") if n in names]
        if not need:
            break
        # Q = B_{l+1} X B_l (G_out[l+1] x G_in[l]); P = E_out Q E_in^T
        right = sp.csr_matrix(g.X[l] @ g.B[l])
        sq, lin, pos = _weighted_frob(g.B[l + 1], g.s[l + 1], g.r[l], right=right)
        if "chain2" in names:
            out["chain2"].append(lin if chain_mode == "paths" else pos)
        if "bipar" in names:
            out["bipar"].append((sq - lin) // 2)
    for l in range(L - 2):
        if "chain3" not in names:
            break
        if chain_mode == "paths":
            v = g.B[l] @ g.r[l]
            v = g.B[l + 1] @ (g.X[l] @ v)
            v = g.B[l + 2] @ (g.X[l + 1] @ v)
            out["chain3"].append(isum(g.s[l + 2].astype(object) * v.astype(object)))
        else:
            right = sp.csr_matrix(g.X[l + 1] @ sp.csr_matrix(g.B[l + 1] @ (g.X[l] @ g.B[l])))
            out["chain3"].append(_weighted_frob(g.B[l + 2], g.s[l + 2], g.r[l], right=right)[2])
    return {n: np.array(v, dtype=object) for n, v in out.items()}


def graph_of(net: Any, level: Optional[str], prune_inactive: bool) -> LayeredGraph:
    g = net if isinstance(net, LayeredGraph) else layered_graph(net, level)
    if prune_inactive:
        g = chain_removal(g)[0]
    return g


def motif_counts(net: Any, motifs: Any = "paper", level: Optional[str] = None, chain_mode: str = "paths",
                 prune_inactive: bool = False) -> MotifCounts:
    """Counts of the motifs :data:`MOTIFS` (or the subset ``motifs``) in a layered network.

    Parameters
    ----------
    net : model, sequence of layers, sequence of 0/1 masks (n_out x n_in) or LayeredGraph
    motifs : "paper" (all nine), or a list of names
    level : {"edge", "block"}, optional
        Default: ``"block"`` for a model with motifs larger than 1, else ``"edge"``.
    chain_mode : {"paths", "pairs"}
        ``"paths"`` counts distinct chain subgraphs (consistent with ``bipar``); ``"pairs"``
        counts the (start, end) pairs joined by at least one path (the convention of the
        authors' code of arXiv 2403.00974).
    prune_inactive : bool
        Remove neurons without input or without output first (:func:`chain_removal`).
    """
    names = check_motifs(motifs)
    if chain_mode not in ("paths", "pairs"):
        raise ValueError(f"chain_mode must be 'paths' or 'pairs', got {chain_mode!r}")
    g = graph_of(net, level, prune_inactive)
    per = count_graph(g, names, chain_mode)
    total = {n: isum(per[n]) for n in names}
    return MotifCounts(total, per, g.level, chain_mode, g.widths)


# ------------------------------------------------------------------------------------------------
# chain removal (dead and ghost neurons)
# ------------------------------------------------------------------------------------------------


def chain_removal(net: Any, level: Optional[str] = None) -> Tuple[LayeredGraph, List[int]]:
    """Remove, in cascade, the links of hidden units that have no outgoing links (backward pass)
    and then of those that have no incoming links (forward pass); input and output units are
    kept. Returns the pruned :class:`LayeredGraph` and the blocks removed per layer. A group is
    removed only when every unit it shares with the neighbouring layer is inactive."""
    g = net if isinstance(net, LayeredGraph) else layered_graph(net, level)
    B = [sp.csr_matrix(b, copy=True) for b in g.B]
    before = [b.nnz for b in B]
    L = len(B)

    def drop_rows(l: int, dead: np.ndarray) -> None:
        if dead.any():
            keep = _diag((~dead).astype(np.int64))
            B[l] = sp.csr_matrix(keep @ B[l])
            B[l].eliminate_zeros()

    def drop_cols(l: int, dead: np.ndarray) -> None:
        if dead.any():
            B[l] = sp.csr_matrix(B[l] @ _diag((~dead).astype(np.int64)))
            B[l].eliminate_zeros()

    for l in range(L - 2, -1, -1):     # out-groups of layer l whose units all have out-degree 0 in l+1
        has_out = (np.diff(B[l + 1].tocsc().indptr) > 0).astype(np.int64)    # per input group of l+1
        alive = (g.X[l].T @ has_out) > 0
        drop_rows(l, ~alive)
    for l in range(1, L):              # in-groups of layer l whose units all have in-degree 0 in l-1
        has_in = (np.diff(B[l - 1].indptr) > 0).astype(np.int64)            # per output group of l-1
        alive = (g.X[l - 1] @ has_in) > 0
        drop_cols(l, ~alive)
    return g.copy_with(B), [b0 - b.nnz for b0, b in zip(before, B)]


def live_widths(g: LayeredGraph) -> List[int]:
    """Units with at least one link, per node layer (inputs: out-links; outputs: in-links)."""
    L = len(g.B)
    w = []
    for t in range(L + 1):
        if t < L:
            has = np.diff(g.B[t].tocsc().indptr) > 0
            w.append(int(g.r[t][has].sum()))
        else:
            has = np.diff(g.B[t - 1].indptr) > 0
            w.append(int(g.s[t - 1][has].sum()))
    return w


def live_hidden_fraction(net: Any) -> List[float]:
    """Per hidden layer of a model (``.layers``, at least two), the fraction of its neurons with at
    least one active incoming block and at least one active outgoing block: degree >= 1 on both
    sides, the slides' "live nodes" (``004``). Direct links only, from the block pattern (a block
    whose weight is 0 still counts); :meth:`MotifMLP.path_to_loss` follows whole paths instead.
    Neuron ``k`` of hidden layer ``i`` has an incoming block when its output motif of layer ``i``
    has one and an outgoing block when its input motif of layer ``i + 1`` has one, so the motif
    sizes of the two layers need not agree."""
    layers = list(getattr(net, "layers", ()))
    if len(layers) < 2:
        raise ValueError(f"live_hidden_fraction needs a model with at least two layers (one hidden layer); "
                         f"got {len(layers)}")
    out: List[float] = []
    for lin, lout in zip(layers[:-1], layers[1:]):
        if lin.n_out != lout.n_in:
            raise ValueError(f"layer widths do not chain: {lin.n_out} outputs feed {lout.n_in} inputs")
        k = np.arange(lin.n_out)
        has_in = (np.diff(np.asarray(lin.indptr)) > 0)[k // lin.motif[0]]
        has_out = (np.bincount(np.asarray(lout.indices), minlength=lout.groups[1]) > 0)[k // lout.motif[1]]
        out.append(float(np.mean(has_in & has_out)))
    return out
