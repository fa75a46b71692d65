"""Reference models the benchmarks compare motifcore against.

* NumPy references of a motif layer (forward, input gradient, block-weight gradient) used to check
  every implementation's output before it is timed.
* SciPy CSR and PyTorch sparse-CSR versions of one layer's effective matrix.
* PyTorch dense and masked-dense MLPs trained with ``torch.optim.SGD`` (momentum, weight decay), the
  way dense and RigL/SET-in-PyTorch libraries train.
* A NumPy/SciPy SET evolution step (prune the smallest |w|, regrow at random) on a CSR matrix, as the
  original SET code does it.

PyTorch is optional: nothing here imports it at module level; the torch helpers take the module as
their first argument so callers obtain it with ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, List, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

# ---------------------------------------------------------------------------------------------
# NumPy references of one motif layer
# ---------------------------------------------------------------------------------------------


def layer_reference_forward(layer: Any, x: np.ndarray) -> np.ndarray:
    """``x @ W.T + b`` with the layer's effective matrix, in float64 (linear activation)."""
    w = layer.to_dense().astype(np.float64)
    out = x.astype(np.float64) @ w.T
    b = layer.bias.astype(np.float64)
    if b.shape[0] == w.shape[0]:
        out += b
    else:  # per-motif bias
        m_out = layer.motif[0]
        out += np.repeat(b, m_out)[: w.shape[0]]
    return out


def layer_reference_backward(layer: Any, x: np.ndarray, g: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grad_in, grad_weights, grad_bias) of a linear motif layer, float64.

    ``dK_p`` is the sum of the dense weight gradient ``g.T @ x`` over the edges of block ``p``.
    """
    w = layer.to_dense().astype(np.float64)
    g64 = g.astype(np.float64)
    grad_in = g64 @ w
    dense_grad = g64.T @ x.astype(np.float64)          # [n_out, n_in]
    m_out, m_in = layer.motif
    # Block sums over the motifs (a residual last motif included): reduceat over group starts.
    block = np.add.reduceat(dense_grad, np.arange(0, layer.n_in, m_in), axis=1)
    block = np.add.reduceat(block, np.arange(0, layer.n_out, m_out), axis=0)
    grad_w = block[layer.block_rows, layer.indices]
    grad_b = g64.sum(axis=0)
    if layer.bias.shape[0] != layer.n_out:
        grad_b = np.add.reduceat(grad_b, np.arange(0, layer.n_out, m_out))
    return grad_in, grad_w, grad_b


def check_close(actual: Any, expected: np.ndarray, what: str, rtol: float = 1e-4) -> None:
    """Float32 results against a float64 reference, tolerance relative to the reference's scale."""
    a = np.asarray(actual, dtype=np.float64)
    scale = float(np.abs(expected).max()) if expected.size else 1.0
    np.testing.assert_allclose(a, expected, rtol=rtol, atol=rtol * max(scale, 1.0), err_msg=what)


# ---------------------------------------------------------------------------------------------
# Sparse matrices of a layer
# ---------------------------------------------------------------------------------------------


def scipy_csr(dense: np.ndarray) -> sp.csr_matrix:
    """CSR (float32) of a dense matrix, explicit zeros dropped."""
    m = sp.csr_matrix(dense.astype(np.float32))
    m.eliminate_zeros()
    m.sort_indices()
    return m


def torch_csr(torch: Any, m: sp.csr_matrix) -> Any:
    """A ``torch.sparse_csr`` float32 tensor with the same pattern and values as ``m``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Sparse CSR tensor support is in beta state"
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32)),
            size=m.shape,
        )


def torch_sddmm(torch: Any, pattern: Any, a: Any, b: Any) -> Any:
    """``(a @ b)`` sampled at the nonzeros of the CSR ``pattern`` (the masked weight gradient)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse.sampled_addmm(pattern, a, b, beta=0.0, alpha=1.0)


# ---------------------------------------------------------------------------------------------
# PyTorch MLPs
# ---------------------------------------------------------------------------------------------


def torch_dense_mlp(torch: Any, sizes: Sequence[int], seed: int = 0) -> Any:
    """``nn.Sequential`` of Linear + ReLU (no activation after the last Linear)."""
    nn = torch.nn
    torch.manual_seed(seed)
    mods: List[Any] = []
    for i in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def torch_masked_mlp(torch: Any, sizes: Sequence[int], density: float = 0.1, seed: int = 0) -> Any:
    """MLP whose dense weights are multiplied by a fixed random 0/1 mask of the given density in
    every forward (what RigL/SET-in-PyTorch libraries do: the cost is that of the dense model plus
    the masking)."""
    nn = torch.nn
    F = torch.nn.functional

    class MaskedLinear(nn.Linear):  # type: ignore[misc,name-defined]
        def __init__(self, n_in: int, n_out: int, gen: Any) -> None:
            super().__init__(n_in, n_out)
            mask = (torch.rand(n_out, n_in, generator=gen) < density).to(torch.float32)
            self.register_buffer("mask", mask)
            with torch.no_grad():
                # Rescale so the masked layer keeps the dense layer's activation variance.
                self.weight.mul_(mask / math.sqrt(density))

        def forward(self, x: Any) -> Any:
            return F.linear(x, self.weight * self.mask, self.bias)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    mods: List[Any] = []
    for i in range(len(sizes) - 1):
        mods.append(MaskedLinear(sizes[i], sizes[i + 1], gen))
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def torch_mlp(torch: Any, impl: str, sizes: Sequence[int], density: float, seed: int = 0) -> Any:
    """The PyTorch baseline named ``impl``: "torch-dense" or "torch-masked-dense"."""
    if impl == "torch-dense":
        return torch_dense_mlp(torch, sizes, seed=seed)
    return torch_masked_mlp(torch, sizes, density=density, seed=seed)


def random_batches(batch: int, n_in: int, n_classes: int, seed: int, n: int = 4) -> List[Any]:
    """``n`` batches ``(x, y)`` of ``batch`` standard-normal float32 samples and int64 labels."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, n_in)).astype(np.float32),
             rng.integers(0, n_classes, size=batch).astype(np.int64)) for _ in range(n)]


def cycler(fn: Callable[[Any, Any], float], data: List[Any]) -> Callable[[], float]:
    """A benchmark body: each call runs ``fn(x, y)`` on the next ``(x, y)`` of ``data``, cyclically."""
    state = {"i": 0}

    def step() -> float:
        x, y = data[state["i"] % len(data)]
        state["i"] += 1
        return fn(x, y)
    return step


class TorchTrainer:
    """One SGD step (softmax cross-entropy, momentum, weight decay) of a torch model, with
    ``torch.optim.SGD`` or ``opt_class`` (an optimizer with SGD's arguments; ``opt_args``: more of them)."""

    def __init__(self, torch: Any, model: Any, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, opt_class: Any = None, **opt_args: Any) -> None:
        self.torch = torch
        self.model = model
        self.opt = (opt_class or torch.optim.SGD)(model.parameters(), lr=lr, momentum=momentum,
                                                  weight_decay=weight_decay, **opt_args)
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def step(self, x: Any, y: Any) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


# ---------------------------------------------------------------------------------------------
# NumPy/SciPy SET evolution (the original SET implementation's approach)
# ---------------------------------------------------------------------------------------------


def numpy_set_prune_regrow(w: sp.csr_matrix, zeta: float, rng: np.random.Generator) -> Tuple[sp.csr_matrix, int]:
    """Remove the round(zeta*nnz) smallest-|w| entries, regrow as many at random inactive positions
    (new weights ~ U(-a, a) with He-uniform a of the mean fan-in). Returns (new matrix, replaced)."""
    n_out, n_in = w.shape
    coo = w.tocoo()
    nnz = coo.nnz
    k = int(round(zeta * nnz))
    keep = np.argpartition(np.abs(coo.data), k)[k:] if k > 0 else np.arange(nnz)
    rows, cols, vals = coo.row[keep], coo.col[keep], coo.data[keep]
    # Regrow among positions inactive *before* pruning (as motifcore does), by rejection sampling.
    old_keys = coo.row.astype(np.int64) * n_in + coo.col
    new_keys = np.empty(0, dtype=np.int64)
    while new_keys.size < k:
        cand = rng.integers(0, n_out * n_in, size=2 * (k - new_keys.size) + 16, dtype=np.int64)
        cand = np.unique(cand)
        cand = cand[~np.isin(cand, old_keys, assume_unique=False)]
        cand = cand[~np.isin(cand, new_keys)]
        new_keys = np.concatenate([new_keys, rng.permutation(cand)[: k - new_keys.size]])
    fan_in = max(nnz / n_out, 1.0)
    a = math.sqrt(6.0 / fan_in)
    new_vals = rng.uniform(-a, a, size=k).astype(np.float32)
    out = sp.csr_matrix(
        (np.concatenate([vals, new_vals]),
         (np.concatenate([rows, new_keys // n_in]), np.concatenate([cols, new_keys % n_in]))),
        shape=w.shape, dtype=np.float32)
    out.sort_indices()
    return out, k


# ---------------------------------------------------------------------------------------------
# SparseProp (sparseprop.modules.SparseLinear: CSR weights, C++/OpenMP sparse backpropagation)
# ---------------------------------------------------------------------------------------------


def edge_keys(layer: Any) -> np.ndarray:
    """Flat positions ``row * n_in + col`` of the active edges of an m = 1 motifcore layer, in the
    order of ``layer.weights``."""
    if tuple(layer.motif) != (1, 1):
        raise ValueError(f"edge_keys needs an m = 1 layer, got motif {layer.motif}")
    return layer.block_rows.astype(np.int64) * layer.n_in + layer.indices.astype(np.int64)


def sparseprop_linear(torch: Any, layer: Any) -> Any:
    """A ``SparseLinear`` holding the effective matrix and the biases of the m = 1 motifcore layer
    (same pattern, same values), with a trainable bias."""
    from sparseprop.modules import SparseLinear

    sl = SparseLinear(dense_weight=torch.from_numpy(layer.to_dense()),
                      bias=torch.nn.Parameter(torch.from_numpy(layer.bias.copy())))
    if sl.W_val.numel() != layer.n_blocks:   # an exact zero weight would drop out of the CSR
        raise ValueError(f"SparseLinear has {sl.W_val.numel()} nonzeros, the layer {layer.n_blocks} blocks")
    return sl


def sparseprop_values(sl: Any, values: Any, keys: np.ndarray) -> np.ndarray:
    """Per-edge ``values`` of a SparseLinear (its W_val or W_val.grad, CSR order) reordered to the
    edge order given by ``keys`` (see :func:`edge_keys`); raises if the two patterns differ."""
    indptr, idx = (t.numpy().astype(np.int64) for t in sl.W_idx)
    sp_keys = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr)) * sl.M + idx
    order = np.argsort(sp_keys)
    pos = np.searchsorted(sp_keys[order], keys)
    if pos.max(initial=0) >= sp_keys.size or not np.array_equal(sp_keys[order][pos], keys) \
            or sp_keys.size != keys.size:
        raise AssertionError("SparseLinear and motifcore layer have different patterns")
    return np.asarray(values.detach().numpy())[order][pos]


def sparseprop_mlp(torch: Any, net: Any) -> Any:
    """``nn.Sequential`` of SparseLinear + ReLU with the weights, pattern and biases of an m = 1
    ``MotifMLP`` (ReLU after every layer but the last)."""
    mods: List[Any] = []
    layers = net.layers
    for i, layer in enumerate(layers):
        mods.append(sparseprop_linear(torch, layer))
        if i < len(layers) - 1:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def sparselab_linear(torch: Any, layer: Any) -> Any:
    """A ``sparselab.SparseLinear`` holding the effective matrix and the biases of the m = 1
    motifcore layer (same pattern, same values). SparseLab 0.2.2 builds its padded CSR from a
    random mask and has no public way to load a given one, so the module's own storage is replaced:
    its ``_csr`` (``sparselab.layout.from_dense`` of the layer's matrix, with the module's padding)
    and ``_values`` (the parameter aliasing that CSR's value buffer, as the module does itself)."""
    import sparselab
    from sparselab import layout

    n_out, n_in = layer.n_out, layer.n_in
    sl = sparselab.SparseLinear(n_in, n_out, sparsity=1.0 - layer.n_blocks / (n_in * n_out))
    csr = layout.from_dense(torch.from_numpy(layer.to_dense()), padding_ratio=sl.padding_ratio)
    if csr.nnz != layer.n_blocks:     # an exact zero weight would drop out of the CSR
        raise ValueError(f"the padded CSR has {csr.nnz} nonzeros, the layer {layer.n_blocks} blocks")
    sl._csr = csr
    sl._values = torch.nn.Parameter(torch.from_numpy(np.asarray(csr.values)))
    with torch.no_grad():
        sl.bias.copy_(torch.from_numpy(layer.bias.copy()))
    return sl


def sparselab_mlp(torch: Any, net: Any) -> Any:
    """``nn.Sequential`` of ``sparselab.SparseLinear`` + ReLU with the weights, pattern and biases
    of an m = 1 ``MotifMLP`` (ReLU after every layer but the last)."""
    mods: List[Any] = []
    for i, layer in enumerate(net.layers):
        mods.append(sparselab_linear(torch, layer))
        if i < len(net.layers) - 1:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def _libgomp() -> Any:
    """The libgomp already loaded in this process (ctypes handle), or None."""
    import ctypes
    import os

    try:
        return ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return None


def openmp_max_threads() -> Any:
    """``omp_get_max_threads()`` of the process's libgomp (SparseProp's parallel regions use it), or
    None if none is loaded."""
    lib = _libgomp()
    return None if lib is None else int(lib.omp_get_max_threads())


def set_openmp_threads(n: int) -> None:
    """``omp_set_num_threads(n)`` on the process's libgomp, if one is loaded (``torch.set_num_threads``
    does the same when torch uses that libgomp; this also covers a torch built with another OpenMP)."""
    lib = _libgomp()
    if lib is not None:
        lib.omp_set_num_threads(int(n))
