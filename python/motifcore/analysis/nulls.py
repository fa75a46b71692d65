"""Random-network nulls for the motif counts of :mod:`.motifs` and the z-scores against them: the
exact mean and variance of every count under the layered Erdős–Rényi null (rational arithmetic,
the same edge count per layer), sampled nulls (ER, and the degree-preserving curveball), and
z-scores and significance profiles."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from .motifs import (SPAN, LayeredGraph, chain_removal, check_motifs, count_graph, graph_of, isum, layered_graph,
                     live_widths, motif_counts)

__all__ = ["MotifZ", "live_graph", "min1_sample", "motif_zscores", "null_moments", "sample_null",
           "significance_profile"]


# ------------------------------------------------------------------------------------------------
# exact moments under the layered ER null
# ------------------------------------------------------------------------------------------------

# slot node layers and template edges (slot a -> slot b), automorphisms
_TEMPLATES: Dict[str, Tuple[Tuple[int, ...], Tuple[Tuple[int, int], ...], int]] = {
    "edges": ((0, 1), ((0, 1),), 1),
    "div2": ((0, 1, 1), ((0, 1), (0, 2)), 2),
    "conv2": ((0, 0, 1), ((0, 2), (1, 2)), 2),
    "div3": ((0, 1, 1, 1), ((0, 1), (0, 2), (0, 3)), 6),
    "conv3": ((0, 0, 0, 1), ((0, 3), (1, 3), (2, 3)), 6),
    "chain2": ((0, 1, 2), ((0, 1), (1, 2)), 1),
    "chain3": ((0, 1, 2, 3), ((0, 1), (1, 2), (2, 3)), 1),
    "bifan": ((0, 0, 1, 1), ((0, 2), (0, 3), (1, 2), (1, 3)), 4),
    "bipar": ((0, 1, 1, 2), ((0, 1), (0, 2), (1, 3), (2, 3)), 2),
}


def _ff(n: int, k: int) -> int:
    """Falling factorial (n)_k (0 when k > n)."""
    if k > n:
        return 0
    out = 1
    for i in range(k):
        out *= n - i
    return out


def _q(E: int, N: int, r: int) -> Fraction:
    return Fraction(_ff(E, r), _ff(N, r)) if r <= N else Fraction(0)


def _placed(name: str, anchor: int) -> Tuple[List[int], List[Tuple[int, int, int]]]:
    layers, edges, _ = _TEMPLATES[name]
    return [anchor + t for t in layers], [(a, b, anchor + layers[a]) for a, b in edges]


def _mean(name: str, anchor: int, n: Sequence[int], E: Sequence[int]) -> Fraction:
    slots, edges = _placed(name, anchor)
    val = Fraction(1, _TEMPLATES[name][2])
    for t in set(slots):
        val *= _ff(n[t], slots.count(t))
    for lw in set(e[2] for e in edges):
        val *= _q(E[lw], n[lw] * n[lw + 1], sum(1 for e in edges if e[2] == lw))
    return val


def _partial_injections(src: List[int], dst: List[int]):
    """All partial injective maps src -> dst, as dicts."""
    for k in range(min(len(src), len(dst)) + 1):
        for dom in itertools.combinations(src, k):
            for img in itertools.permutations(dst, k):
                yield dict(zip(dom, img))


def _second_moment(n1: str, a: int, n2: str, b: int, n: Sequence[int], E: Sequence[int]) -> Fraction:
    """E[X_{n1,a} X_{n2,b}] under the layered G(n, M) null."""
    s1, e1 = _placed(n1, a)
    s2, e2 = _placed(n2, b)
    node_layers = sorted(set(s1) | set(s2))
    per_layer_maps = []
    for t in node_layers:
        src = [i for i, x in enumerate(s2) if x == t]
        dst = [i for i, x in enumerate(s1) if x == t]
        per_layer_maps.append(list(_partial_injections(src, dst)))
    edges1 = {(u, v) for u, v, _ in e1}
    wl = sorted(set(e[2] for e in e1) | set(e[2] for e in e2))
    total = Fraction(0)
    for combo in itertools.product(*per_layer_maps):
        sigma: Dict[int, int] = {}
        for d in combo:
            sigma.update(d)
        nodes = 1
        for t, d in zip(node_layers, combo):
            k1 = s1.count(t)
            k2 = s2.count(t)
            nodes *= _ff(n[t], k1) * _ff(n[t] - k1, k2 - len(d)) if n[t] >= k1 else 0
            if nodes == 0:
                break
        if nodes == 0:
            continue
        prob = Fraction(1)
        for lw in wl:
            c = sum(1 for u, v, x in e2 if x == lw and u in sigma and v in sigma and (sigma[u], sigma[v]) in edges1)
            r = sum(1 for e in e1 if e[2] == lw) + sum(1 for e in e2 if e[2] == lw) - c
            prob *= _q(E[lw], n[lw] * n[lw + 1], r)
            if prob == 0:
                break
        total += nodes * prob
    return total / (_TEMPLATES[n1][2] * _TEMPLATES[n2][2])


def null_moments(net: Any, motifs: Any = "paper", null: str = "er", level: Optional[str] = None,
                 exact: bool = True) -> Dict[str, Tuple[Any, Any]]:
    """Exact mean and variance of every motif count (path-mode chains) under the layered ER null:
    each weight layer independently uniform over all graphs with its number of edges (``"er"``),
    or the same over the live units only (``"er_live"``, after :func:`chain_removal`).

    The graph at the chosen level must be an ordinary layered graph (all multiplicities 1; for a
    Motif-SET model use ``level="block"`` with aligned motif partitions). ``exact=True`` returns
    :class:`fractions.Fraction` values, else floats."""
    names = check_motifs(motifs)
    if null not in ("er", "er_live"):
        raise ValueError(f"null must be 'er' or 'er_live' for exact moments, got {null!r}")
    g = graph_of(net, level, null == "er_live")
    if not g.plain:
        raise ValueError("exact ER moments need an ordinary layered graph (every group a single unit and aligned "
                         "partitions); use level='block' for a Motif-SET model or method='mc'")
    n = live_widths(g) if null == "er_live" else g.widths
    E = [b.nnz for b in g.B]
    L = len(E)
    out: Dict[str, Tuple[Any, Any]] = {}
    for name in names:
        span = SPAN[name]
        anchors = list(range(L - span + 1))
        mean = sum((_mean(name, a, n, E) for a in anchors), Fraction(0))
        var = Fraction(0)
        for a in anchors:
            for b in anchors:
                if abs(a - b) >= span:         # no common weight layer: independent
                    continue
                var += _second_moment(name, a, name, b, n, E) - _mean(name, a, n, E) * _mean(name, b, n, E)
        out[name] = (mean, var) if exact else (float(mean), float(var))
    return out


# ------------------------------------------------------------------------------------------------
# sampled nulls
# ------------------------------------------------------------------------------------------------


def _er_sample(shape: Tuple[int, int], nnz: int, rng: np.random.Generator) -> sp.csr_matrix:
    total = shape[0] * shape[1]
    if nnz * 2 > total:
        pos = rng.choice(total, size=nnz, replace=False)
    else:
        pos = np.unique(rng.integers(0, total, size=int(nnz * 1.1) + 16))
        while pos.size < nnz:
            pos = np.unique(np.r_[pos, rng.integers(0, total, size=nnz - pos.size + 16)])
        pos = rng.choice(pos, size=nnz, replace=False)
    rows, cols = np.divmod(np.sort(pos), shape[1])
    return sp.csr_matrix((np.ones(nnz, dtype=np.int64), (rows, cols)), shape=shape)


class _Curveball:
    """Curveball Markov chain over the bipartite graphs with the degree sequences of a mask (row
    sets traded pairwise; Strona et al. 2014, uniform per Carstens 2015)."""

    def __init__(self, B: sp.csr_matrix, rng: np.random.Generator) -> None:
        self.rows = [B.indices[B.indptr[i]:B.indptr[i + 1]].copy() for i in range(B.shape[0])]
        self.shape = B.shape
        self.rng = rng

    def trade(self, n: int) -> None:
        rows, rng = self.rows, self.rng
        m = len(rows)
        if m < 2:
            return
        pairs = rng.integers(0, m, size=(n, 2))
        for a, b in pairs:
            if a == b:
                continue
            ra, rb = rows[a], rows[b]
            only_a = np.setdiff1d(ra, rb, assume_unique=True)
            only_b = np.setdiff1d(rb, ra, assume_unique=True)
            if only_a.size == 0 or only_b.size == 0:
                continue
            both = np.intersect1d(ra, rb, assume_unique=True)
            pool = np.concatenate([only_a, only_b])
            rng.shuffle(pool)
            rows[a] = np.sort(np.concatenate([both, pool[:only_a.size]]))
            rows[b] = np.sort(np.concatenate([both, pool[only_a.size:]]))

    def matrix(self) -> sp.csr_matrix:
        lens = np.array([r.size for r in self.rows], dtype=np.int64)
        indptr = np.r_[0, np.cumsum(lens)]
        idx = np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)
        return sp.csr_matrix((np.ones(idx.size, dtype=np.int64), idx, indptr), shape=self.shape)


#: the nulls with a sampler (every one of them supports both chain modes)
SAMPLED_NULLS = ("er", "er_live", "er_live_min1", "degree")
#: the nulls over the live units only (the network and its samples are taken after chain removal)
LIVE_NULLS = ("er_live", "er_live_min1")
#: default number of samples of :func:`motif_zscores` per null (1000 for 002's own null, as in 002)
DEFAULT_SAMPLES = {"er": 100, "er_live": 100, "er_live_min1": 1000, "degree": 100}
#: largest layer (cells) a live null samples as a dense 0/1 array
DENSE_CELLS = 50_000_000


def _one_per_line(M: np.ndarray, rng: np.random.Generator) -> int:
    """Set one uniformly chosen free (False) cell of every row of ``M`` (a view may be passed) to
    True; returns the number of rows that had no free cell (left unchanged)."""
    free = ~M
    nfree = free.sum(axis=1)
    ok = np.flatnonzero(nfree > 0)
    if ok.size:
        k = (rng.random(ok.size) * nfree[ok]).astype(np.int64)     # rank of the chosen free cell
        k = np.minimum(k, nfree[ok] - 1)
        col = np.argmax(np.cumsum(free[ok], axis=1) > k[:, None], axis=1)
        M[ok, col] = True
    return int(M.shape[0] - ok.size)


def _fill_free(M: np.ndarray, k: int, rng: np.random.Generator) -> None:
    """Set ``k`` free cells of ``M``, uniformly among all k-subsets of its free cells."""
    if k > 0:
        free = np.flatnonzero(~M.ravel())
        M.flat[rng.choice(free, size=k, replace=False)] = True


def min1_sample(shape: Tuple[int, int], nnz: int, rng: np.random.Generator) -> np.ndarray:
    """One random ``n_out x n_in`` 0/1 layer (dense bool) with exactly ``nnz`` edges and every row
    and every column holding at least one, drawn by the generator of paper 002's code
    (``randomPruning`` in MothMotifs' ``random_networks.py``), generalised to every shape:

    * ``nnz >= n_out + n_in`` (002's general branch): ``nnz - n_out - n_in`` edges placed uniformly;
      then one edge on a uniformly chosen free cell of every source (column), then of every target
      (row); a line without a free cell is skipped and its edge placed uniformly on a free cell at
      the end.
    * ``max(n_out, n_in) <= nnz < n_out + n_in`` (002's code handles this only for its last two
      layers, with an identity-plus-extras construction): a uniformly random matching of the
      smaller side into the larger one, one edge from every unmatched unit of the larger side to a
      uniformly chosen unit of the other side, then ``nnz - max(n_out, n_in)`` edges uniformly on
      the free cells.

    The result is not uniform over the graphs with minimum degree 1 (nor is 002's); it is the
    distribution of this procedure."""
    n_out, n_in = int(shape[0]), int(shape[1])
    E = int(nnz)
    if n_out < 1 or n_in < 1:
        raise ValueError(f"a min-degree-1 layer needs at least one unit on each side, got shape {shape}")
    if not max(n_out, n_in) <= E <= n_out * n_in:
        raise ValueError(f"a {n_out} x {n_in} layer with every unit linked needs between {max(n_out, n_in)} and "
                         f"{n_out * n_in} edges, got {E}")
    if n_out * n_in > DENSE_CELLS:
        raise ValueError(f"layer of {n_out} x {n_in} cells is too large for the min-degree-1 sampler "
                         f"(limit {DENSE_CELLS} cells)")
    M = np.zeros((n_out, n_in), dtype=bool)
    if E >= n_out + n_in:
        M.flat[rng.choice(n_out * n_in, size=E - n_out - n_in, replace=False)] = True
        extra = _one_per_line(M.T, rng)          # every source (column)
        extra += _one_per_line(M, rng)           # every target (row)
        _fill_free(M, extra, rng)
    else:
        big, small = (n_in, n_out) if n_in >= n_out else (n_out, n_in)
        order = rng.permutation(big)
        matched, rest = order[:small], order[small:]
        other = rng.integers(0, small, size=rest.size)
        if n_in >= n_out:
            M[np.arange(small), matched] = True
            M[other, rest] = True
        else:
            M[matched, np.arange(small)] = True
            M[rest, other] = True
        _fill_free(M, E - big, rng)
    return M


def live_graph(net: Any, level: Optional[str] = None) -> LayeredGraph:
    """The live network as an ordinary layered graph: chain removal (:func:`chain_removal`),
    then every unit without a link dropped (inputs without out-links, outputs without in-links).
    Its widths are :func:`live_widths` of the chain-removed graph; counts are unchanged (an
    isolated unit is in no motif)."""
    g = graph_of(net, level, True)
    if not g.plain:
        raise ValueError("the live nulls need an ordinary layered graph (every group a single unit and aligned "
                         "partitions); use level='block' for a Motif-SET model")
    L = len(g.B)
    live = [np.flatnonzero(np.diff(g.B[t].tocsc().indptr) > 0) for t in range(L)]
    live.append(np.flatnonzero(np.diff(g.B[L - 1].indptr) > 0))
    return layered_graph([g.B[t][live[t + 1]][:, live[t]] for t in range(L)])


def _dense_counts(M: Sequence[np.ndarray], names: Sequence[str], chain_mode: str) -> List[int]:
    """Total motif counts of an ordinary layered graph given as dense 0/1 layers (``n_out x
    n_in``), with BLAS products; exact (every product entry is an integer far below 2**24 for
    float32, else float64 is used)."""
    L = len(M)
    kin = [m.sum(axis=1, dtype=np.int64) for m in M]
    kout = [m.sum(axis=0, dtype=np.int64) for m in M]

    def mat(m: np.ndarray, inner: int) -> np.ndarray:
        return m.astype(np.float32 if inner < 2**23 else np.float64)

    def c(k: np.ndarray, r: int) -> int:
        return int(np.sum(k * (k - 1) // 2 if r == 2 else k * (k - 1) * (k - 2) // 6, dtype=np.int64))

    P: List[Optional[np.ndarray]] = [None] * L
    need_p = any(n in names for n in ("chain2", "bipar")) or ("chain3" in names and chain_mode == "pairs")
    if need_p:
        for l in range(L - 1):
            inner = M[l].shape[0]
            P[l] = mat(M[l + 1], inner) @ mat(M[l], inner)
    out = []
    for name in names:
        if name == "edges":
            v = sum(int(k.sum()) for k in kin)
        elif name in ("div2", "div3"):
            v = sum(c(k, int(name[-1])) for k in kout)
        elif name in ("conv2", "conv3"):
            v = sum(c(k, int(name[-1])) for k in kin)
        elif name == "bifan":
            v = 0
            for l in range(L):
                m = M[l]
                a = m if m.shape[0] <= m.shape[1] else m.T          # Gram on the smaller side
                G = mat(a, a.shape[1]) @ mat(a.T, a.shape[1])
                sq = float(np.sum(np.square(G, dtype=np.float64)))
                v += (int(round(sq)) - int(np.sum(kout[l] ** 2)) - int(np.sum(kin[l] ** 2)) + int(kin[l].sum())) // 4
        elif name == "chain2":
            if chain_mode == "paths":
                v = sum(int(np.dot(kin[l], kout[l + 1])) for l in range(L - 1))
            else:
                v = sum(int(np.count_nonzero(P[l])) for l in range(L - 1))
        elif name == "bipar":
            v = 0
            for l in range(L - 1):
                sq = int(round(float(np.sum(np.square(P[l], dtype=np.float64)))))
                v += (sq - int(round(float(np.sum(P[l], dtype=np.float64))))) // 2
        elif name == "chain3":
            v = 0
            for l in range(L - 2):
                if chain_mode == "paths":
                    v += int(np.dot(kout[l + 2], M[l + 1].astype(np.int64) @ kin[l]))
                else:       # entries of M[l+2] @ P[l] are at most n_{l+1} n_{l+2}
                    bound = M[l + 1].shape[0] * M[l + 1].shape[1]
                    Pl = P[l]
                    assert Pl is not None
                    v += int(np.count_nonzero(mat(M[l + 2], bound) @ Pl.astype(mat(M[l + 2], bound).dtype)))
        else:   # pragma: no cover - check_motifs guards the names
            raise ValueError(name)
        out.append(v)
    return out


def _use_dense(g: LayeredGraph) -> bool:
    cells = sum(b.shape[0] * b.shape[1] for b in g.B)
    return g.plain and cells <= DENSE_CELLS and sum(b.nnz for b in g.B) >= 0.03 * cells


def sample_null(net: Any, null: str = "er", n_samples: int = 100, seed: int = 0, motifs: Any = "paper",
                level: Optional[str] = None, chain_mode: str = "paths",
                prune_inactive: bool = False) -> np.ndarray:
    """Motif counts (float64, ``[n_samples, n_motifs]`` in the order of ``motifs``) of random
    networks, in either chain mode:

    * ``"er"``: each layer's pattern redrawn uniformly with the same number of blocks (over all
      units, or over what ``prune_inactive`` leaves);
    * ``"er_live"``: the same over the live units only (the network after :func:`chain_removal`,
      units without links dropped): the null of the exact ``"er_live"`` moments, sampled;
    * ``"er_live_min1"``: paper 002's null: over the live units, each layer with its number of
      edges and every live unit of either side holding at least one edge of it, drawn by 002's
      procedure (:func:`min1_sample`);
    * ``"degree"``: each layer's in- and out-degree sequences kept (Curveball chain: burn-in of
      10 trades per row from the real pattern, then one per row between samples).

    Patterns are drawn at the chosen level and counted at that level. Seeded; the result does not
    depend on the thread count (every count is exact)."""
    names = check_motifs(motifs)
    if null not in SAMPLED_NULLS:
        raise ValueError(f"null must be one of {', '.join(map(repr, SAMPLED_NULLS))}, got {null!r}")
    if chain_mode not in ("paths", "pairs"):
        raise ValueError(f"chain_mode must be 'paths' or 'pairs', got {chain_mode!r}")
    if int(n_samples) < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    g = live_graph(net, level) if null in LIVE_NULLS else graph_of(net, level, prune_inactive)
    rng = np.random.default_rng(seed)
    chains = [_Curveball(b, rng) for b in g.B] if null == "degree" else []
    for c in chains:
        c.trade(10 * len(c.rows))
    dense = null in LIVE_NULLS and _use_dense(g)
    out = np.empty((int(n_samples), len(names)))
    for k in range(int(n_samples)):
        if null == "degree":
            if k:
                for c in chains:
                    c.trade(len(c.rows))
            B = [c.matrix() for c in chains]
        elif null == "er" or (null == "er_live" and not dense):
            B = [_er_sample(b.shape, b.nnz, rng) for b in g.B]
        else:
            D = []
            for b in g.B:
                if null == "er_live_min1":
                    D.append(min1_sample(b.shape, b.nnz, rng))
                else:
                    m = np.zeros(b.shape, dtype=bool)
                    m.flat[rng.choice(b.shape[0] * b.shape[1], size=b.nnz, replace=False)] = True
                    D.append(m)
            if dense:
                out[k] = _dense_counts(D, names, chain_mode)
                continue
            B = [sp.csr_matrix(d.astype(np.int64)) for d in D]
        per = count_graph(g.copy_with(B), names, chain_mode)
        out[k] = [float(isum(per[n])) for n in names]
    return out


# ------------------------------------------------------------------------------------------------
# z-scores
# ------------------------------------------------------------------------------------------------


@dataclass
class MotifZ:
    """One motif's count against a null: ``z = (count - null_mean) / null_std`` (NaN and
    ``fixed=True`` when the null cannot vary it)."""

    motif: str
    count: int
    null_mean: float
    null_std: float
    z: float
    fixed: bool
    method: str
    null: str
    n_samples: int = 0


def motif_zscores(net: Any, null: str = "er", method: str = "auto", n_samples: Optional[int] = None, seed: int = 0,
                  motifs: Any = "paper", level: Optional[str] = None, chain_mode: str = "paths",
                  prune_inactive: bool = False) -> List[MotifZ]:
    """z-scores of the motif counts against a null model, with the null's mean and std.

    ``null="er"`` (uniform patterns with each layer's block count), ``"er_live"`` (the same over
    live units, implies ``prune_inactive``), ``"er_live_min1"`` (paper 002's null: over the live
    units, every live unit holding at least one edge of each of its layers, sampled as 002's code
    does, :func:`min1_sample`; implies ``prune_inactive``) or ``"degree"`` (each layer's degree
    sequences kept, sampled). ``method="analytic"`` uses the exact ER moments (``"er"`` and
    ``"er_live"``, path chains, an ordinary graph), ``"mc"`` samples ``n_samples`` networks (std
    with ddof = 1; default :data:`DEFAULT_SAMPLES`: 1000 for ``"er_live_min1"`` as in 002, else
    100), ``"auto"`` picks analytic when it applies. Every null supports both ``chain_mode``\ s
    (``"pairs"``, 002's convention, is always sampled). ``prune_inactive=True`` with
    ``null="er"`` compares the pruned network with random networks over *all* neurons (inactive
    ones tend to look like over-represented structure); ``"er_live"`` is the matching null."""
    names = check_motifs(motifs)
    if null not in SAMPLED_NULLS:
        raise ValueError(f"null must be one of {', '.join(map(repr, SAMPLED_NULLS))}, got {null!r}")
    if method not in ("auto", "analytic", "mc"):
        raise ValueError(f"method must be 'auto', 'analytic' or 'mc', got {method!r}")
    if chain_mode not in ("paths", "pairs"):
        raise ValueError(f"chain_mode must be 'paths' or 'pairs', got {chain_mode!r}")
    if n_samples is None:
        n_samples = DEFAULT_SAMPLES[null]
    prune = prune_inactive or null in LIVE_NULLS
    g = graph_of(net, level, prune)
    counts = motif_counts(g, names, chain_mode=chain_mode)
    analytic_ok = null in ("er", "er_live") and chain_mode == "paths" and g.plain
    if method == "analytic" and not analytic_ok:
        raise ValueError("analytic moments need null 'er'/'er_live', chain_mode='paths' and an ordinary layered "
                         "graph (level='block' for Motif-SET); use method='mc'")
    use_analytic = method == "analytic" or (method == "auto" and analytic_ok)
    if use_analytic:
        mom = null_moments(g, names, null="er_live" if null == "er_live" else "er")
        stats = {n: (float(m), math.sqrt(max(float(v), 0.0)), v == 0) for n, (m, v) in mom.items()}
        used = "analytic"
    else:
        samples = sample_null(g, null, n_samples, seed, names, chain_mode=chain_mode)
        stats = {}
        for i, n in enumerate(names):
            sd = float(np.std(samples[:, i], ddof=1))
            stats[n] = (float(samples[:, i].mean()), sd, sd == 0.0)
        used = "mc"
    out = []
    for n in names:
        mean, sd, fixed = stats[n]
        z = float("nan") if fixed else (counts.total[n] - mean) / sd
        out.append(MotifZ(n, counts.total[n], mean, sd, z, bool(fixed), used, null,
                          0 if used == "analytic" else int(n_samples)))
    return out


def significance_profile(zs: Sequence[MotifZ]) -> np.ndarray:
    """``z / ||z||_2`` over the motifs with a defined z (NaN elsewhere; Milo et al. 2004)."""
    z = np.array([m.z for m in zs], dtype=float)
    ok = np.isfinite(z)
    norm = float(np.linalg.norm(z[ok])) if ok.any() else 0.0
    out = np.full(z.shape, np.nan)
    if norm > 0:
        out[ok] = z[ok] / norm
    return out
