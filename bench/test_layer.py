"""One layer (n x n, batch B; 3000 x 3000, B = 128 at paper size): forward, backward and
forward + backward of motifcore (m = 1, 2, 4, 8) side by side with PyTorch dense GEMM, PyTorch
sparse CSR and SciPy CSR, at block density 0.1 and at SET's epsilon = 20 (density
``20 * 2n / n^2`` = 0.0133 for n = 3000). A SGEMM group (n x n x B, NumPy and PyTorch) gives the
machine's dense rate measured in the same run.

What each op computes (every implementation does the same work, and is checked first):

* ``forward``: ``x @ W.T`` (motifcore adds its bias, which is zero at init).
* ``backward``: input gradient ``g @ W`` *and* weight gradient (dense: ``g.T @ x``; sparse: the
  gradient at the nonzeros only, an SDDMM; motifcore: one value per block) -- motifcore has no
  separate weight-gradient call, its ``backward`` computes grad_in, grad_weights and grad_bias.
* ``forward+backward``: both.

``macs`` counts unique multiply-adds: ``|P| B`` per pass for motifcore (blocks), ``nnz B`` for CSR,
``n^2 B`` for dense. The CSR baselines use the effective matrix of the m = 1 layer (an edge-level
SET layer of the same density).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import numpy as np
import pytest
import references as bl
from motifcore import MotifLayer

MOTIFS = (1, 2, 4, 8)
DENSITIES = ("0.1", "eps20")
OPS = ("forward", "backward", "forward+backward")
PASSES = {"forward": 1, "backward": 2, "forward+backward": 3}


def block_density(name: str, n: int) -> float:
    if name == "eps20":
        return min(1.0, 20.0 * (n + n) / (n * n))
    return float(name)


def group_name(op: str, dname: str, n: int, batch: int) -> str:
    d = block_density(dname, n)
    tag = f"d={d:.3g}" + (" (eps=20)" if dname == "eps20" else "")
    return f"layer {n}x{n} B={batch} {op} {tag}"


# ---- shared data (module scope: built once) -------------------------------------------------


@pytest.fixture(scope="module")
def data(sizes: Any) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((sizes.batch, sizes.layer_n)).astype(np.float32)
    g = rng.standard_normal((sizes.batch, sizes.layer_n)).astype(np.float32)
    return x, g


@pytest.fixture(scope="module")
def layer_cache(sizes: Any, threads: int) -> Dict[Tuple[int, str], MotifLayer]:
    cache: Dict[Tuple[int, str], MotifLayer] = {}
    return cache


def get_layer(cache: Dict[Tuple[int, str], MotifLayer], sizes: Any, threads: int, m: int, dname: str) -> MotifLayer:
    key = (m, dname)
    if key not in cache:
        n = sizes.layer_n
        cache[key] = MotifLayer(n, n, motif=m, density=block_density(dname, n), seed=11,
                                num_threads=threads)
    return cache[key]


@pytest.fixture(scope="module")
def edge_matrices(sizes: Any, threads: int, layer_cache: Any) -> Dict[str, Dict[str, Any]]:
    """Per density: the effective matrix of the m = 1 layer as dense float32 and SciPy CSR (+ its
    transpose), shared by all baselines."""
    out: Dict[str, Dict[str, Any]] = {}
    for dname in DENSITIES:
        layer = get_layer(layer_cache, sizes, threads, 1, dname)
        w = layer.to_dense()
        csr = bl.scipy_csr(w)
        out[dname] = {"dense": w, "csr": csr, "csr_t": bl.scipy_csr(w.T)}
    return out


@pytest.fixture(scope="module")
def edge_reference(data: Any, edge_matrices: Any) -> Dict[str, Dict[str, np.ndarray]]:
    """float64 references of the m = 1 effective matrix: x W^T, g W, g^T x."""
    x, g = data
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    ref = {}
    for dname, mats in edge_matrices.items():
        w = mats["dense"].astype(np.float64)
        ref[dname] = {"out": x64 @ w.T, "grad_in": g64 @ w, "dense_grad": g64.T @ x64}
    return ref


# ---- motifcore --------------------------------------------------------------------------------


@pytest.mark.parametrize("dname", DENSITIES)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("m", MOTIFS)
def test_motifcore(benchmark: Any, info: Callable[..., None], sizes: Any, threads: int, data: Any,
                   layer_cache: Any, m: int, op: str, dname: str) -> None:
    x, g = data
    layer = get_layer(layer_cache, sizes, threads, m, dname)
    n, batch = sizes.layer_n, sizes.batch
    benchmark.group = group_name(op, dname, n, batch)
    # Check before timing: forward against x W^T + b, backward against the NumPy block gradients.
    bl.check_close(layer.forward(x), bl.layer_reference_forward(layer, x), "motifcore forward")
    if op != "forward":
        gi_ref, gw_ref, gb_ref = bl.layer_reference_backward(layer, x, g)
        bl.check_close(layer.backward(g), gi_ref, "motifcore grad_in")
        bl.check_close(layer.grad_weights, gw_ref, "motifcore grad_weights")
        bl.check_close(layer.grad_bias, gb_ref, "motifcore grad_bias")

    if op == "forward":
        def fn() -> Any:
            return layer.forward(x)
    elif op == "backward":
        layer.forward(x)

        def fn() -> Any:
            return layer.backward(g)
    else:
        def fn() -> Any:
            layer.forward(x)
            return layer.backward(g)

    label = {"forward": "forward", "backward": "backward (grad_in + grad_weights + grad_bias)",
             "forward+backward": "forward + backward"}[op]
    info(benchmark, "motifcore", label, m=m, density=layer.density, threads=threads, batch=batch,
         macs=PASSES[op] * layer.n_blocks * batch, blocks=layer.n_blocks, edges=layer.n_edges,
         edge_macs=PASSES[op] * layer.n_edges * batch)
    benchmark(fn)


# ---- PyTorch dense GEMM -------------------------------------------------------------------------


@pytest.mark.parametrize("dname", DENSITIES)
@pytest.mark.parametrize("op", OPS)
def test_torch_dense(benchmark: Any, info: Callable[..., None], sizes: Any, torch_threads: int,
                     data: Any, edge_matrices: Any, edge_reference: Any, op: str, dname: str) -> None:
    torch = pytest.importorskip("torch")
    x_np, g_np = data
    n, batch = sizes.layer_n, sizes.batch
    benchmark.group = group_name(op, dname, n, batch)
    w = torch.from_numpy(edge_matrices[dname]["dense"])
    x, g = torch.from_numpy(x_np), torch.from_numpy(g_np)
    ref = edge_reference[dname]
    bl.check_close((x @ w.T).numpy(), ref["out"], "torch dense forward")
    bl.check_close((g @ w).numpy(), ref["grad_in"], "torch dense grad_in")
    bl.check_close((g.T @ x).numpy(), ref["dense_grad"], "torch dense grad_w")

    def fwd() -> Any:
        return x @ w.T

    def bwd() -> Any:
        return g @ w, g.T @ x

    def both() -> Any:
        return x @ w.T, g @ w, g.T @ x

    fn = {"forward": fwd, "backward": bwd, "forward+backward": both}[op]
    info(benchmark, "torch-dense", op, density=1.0, threads=torch_threads, batch=batch,
         macs=PASSES[op] * n * n * batch, baseline=True, sgemm=op == "forward")
    benchmark(fn)


# ---- PyTorch sparse CSR ---------------------------------------------------------------------------


@pytest.mark.parametrize("dname", DENSITIES)
@pytest.mark.parametrize("op", OPS)
def test_torch_csr(benchmark: Any, info: Callable[..., None], sizes: Any, torch_threads: int,
                   data: Any, edge_matrices: Any, edge_reference: Any, op: str, dname: str) -> None:
    torch = pytest.importorskip("torch")
    x_np, g_np = data
    n, batch = sizes.layer_n, sizes.batch
    benchmark.group = group_name(op, dname, n, batch)
    mats = edge_matrices[dname]
    w, wt = bl.torch_csr(torch, mats["csr"]), bl.torch_csr(torch, mats["csr_t"])
    x, g = torch.from_numpy(x_np), torch.from_numpy(g_np)
    xt, gt = x.T, g.T
    csr = mats["csr"]
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    ref = edge_reference[dname]
    bl.check_close(torch.sparse.mm(w, xt).numpy().T, ref["out"], "torch csr forward")
    bl.check_close(torch.sparse.mm(wt, gt).numpy().T, ref["grad_in"], "torch csr grad_in")
    gw = bl.torch_sddmm(torch, w, gt, x)
    bl.check_close(gw.values().numpy(), ref["dense_grad"][rows, csr.indices], "torch csr grad_w")

    def fwd() -> Any:
        return torch.sparse.mm(w, xt)

    def bwd() -> Any:
        return torch.sparse.mm(wt, gt), bl.torch_sddmm(torch, w, gt, x)

    def both() -> Any:
        return torch.sparse.mm(w, xt), torch.sparse.mm(wt, gt), bl.torch_sddmm(torch, w, gt, x)

    fn = {"forward": fwd, "backward": bwd, "forward+backward": both}[op]
    info(benchmark, "torch-csr", op, m=1, density=csr.nnz / (n * n), threads=torch_threads,
         batch=batch, macs=PASSES[op] * csr.nnz * batch,
         note="backward = sparse.mm(W^T) + sampled_addmm (SDDMM)")
    benchmark(fn)


# ---- SciPy CSR ----------------------------------------------------------------------------------


def numpy_sddmm(rows: np.ndarray, cols: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 15) -> np.ndarray:
    """``(a @ b.T)[rows, cols]`` for a [n_out, B], b [n_in, B]: gathered row dot products, chunked
    to bound memory (SciPy has no SDDMM)."""
    out = np.empty(rows.shape[0], dtype=np.float32)
    for s in range(0, rows.shape[0], chunk):
        r, c = rows[s:s + chunk], cols[s:s + chunk]
        out[s:s + chunk] = np.einsum("ij,ij->i", a[r], b[c])
    return out


@pytest.mark.parametrize("dname", DENSITIES)
@pytest.mark.parametrize("op", OPS)
def test_scipy_csr(benchmark: Any, info: Callable[..., None], sizes: Any, data: Any,
                   edge_matrices: Any, edge_reference: Any, op: str, dname: str) -> None:
    x, g = data
    n, batch = sizes.layer_n, sizes.batch
    benchmark.group = group_name(op, dname, n, batch)
    mats = edge_matrices[dname]
    w, wt = mats["csr"], mats["csr_t"]
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr)).astype(np.int64)
    cols = w.indices.astype(np.int64)
    xt, gt = x.T, g.T
    gtc = np.ascontiguousarray(gt)
    ref = edge_reference[dname]
    bl.check_close((w @ xt).T, ref["out"], "scipy forward")
    bl.check_close((wt @ gt).T, ref["grad_in"], "scipy grad_in")
    bl.check_close(numpy_sddmm(rows, cols, gtc, np.ascontiguousarray(xt)), ref["dense_grad"][rows, cols],
                   "scipy/numpy grad_w")

    def fwd() -> Any:
        return w @ xt

    def bwd() -> Any:
        # The transposed copies are part of the work: activations arrive as [B, n].
        return wt @ gt, numpy_sddmm(rows, cols, np.ascontiguousarray(gt), np.ascontiguousarray(xt))

    def both() -> Any:
        return w @ xt, *bwd()

    fn = {"forward": fwd, "backward": bwd, "forward+backward": both}[op]
    info(benchmark, "scipy-csr", op, m=1, density=w.nnz / (n * n), threads=1, batch=batch,
         macs=PASSES[op] * w.nnz * batch,
         note="backward = W^T @ g^T + NumPy gathered SDDMM (SciPy has none)")
    benchmark(fn)


# ---- SGEMM rate of this machine ---------------------------------------------------------------


@pytest.mark.parametrize("shape", ("W@Xt", "X@Wt"))
@pytest.mark.parametrize("impl", ("numpy", "torch"))
def test_sgemm(benchmark: Any, info: Callable[..., None], sizes: Any, threads: int, torch_threads: int,
               request: pytest.FixtureRequest, impl: str, shape: str) -> None:
    """The machine's dense float32 rate at the layer's shape, both orientations: W [n, n] @ X^T
    [n, B] and X [B, n] @ W^T (BLAS libraries differ between the two)."""
    n, batch = sizes.layer_n, sizes.batch
    rng = np.random.default_rng(3)
    w = rng.standard_normal((n, n)).astype(np.float32)
    x = rng.standard_normal((batch, n)).astype(np.float32)
    ref = x.astype(np.float64) @ w.T.astype(np.float64)          # [B, n]
    benchmark.group = f"sgemm {n}x{n}x{batch} float32"
    if impl == "torch":
        torch = pytest.importorskip("torch")
        tw, tx = torch.from_numpy(w), torch.from_numpy(x)
        if shape == "W@Xt":
            txt = tx.T.contiguous()
            bl.check_close((tw @ txt).numpy().T, ref, "torch sgemm")

            def fn() -> Any:
                return tw @ txt
        else:
            bl.check_close((tx @ tw.T).numpy(), ref, "torch sgemm")

            def fn() -> Any:
                return tx @ tw.T
        t = torch_threads
    else:
        # NumPy's BLAS runs with its own thread count; pin it to `threads` when threadpoolctl can.
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover
            threadpool_limits = None
        if shape == "W@Xt":
            xt = np.ascontiguousarray(x.T)
            bl.check_close((w @ xt).T, ref, "numpy sgemm")

            def mm() -> Any:
                return w @ xt
        else:
            bl.check_close(x @ w.T, ref, "numpy sgemm")

            def mm() -> Any:
                return x @ w.T
        if threadpool_limits is not None:
            limiter = threadpool_limits(limits=threads, user_api="blas")
            request.addfinalizer(limiter.restore_original_limits)
            t: Any = threads
        else:
            t = None
        fn = mm
    info(benchmark, f"{impl}-sgemm {shape}", "matmul", threads=t, batch=batch, macs=n * n * batch,
         sgemm=True, baseline=impl == "numpy" and shape == "W@Xt")
    benchmark(fn)
