"""An independent NumPy reference of motif layers and motif MLPs, used by the tests.

Nothing here imports motifcore: every function works on plain arrays (the CSR block pattern
``indptr``/``indices``, the shared block weights, the biases) and computes in float64 with the
most literal formulation available -- a dense effective matrix -- so that it shares no code and no
algorithm with the engine's block-sparse kernels (group sums, SpMM, SDDMM).

Conventions (see docs/design.md section 1):

* Neurons ``0..n-1`` are split into motifs of size ``m``: group ``g`` covers ``[g*m, min((g+1)*m, n))``,
  so when ``m`` does not divide ``n`` the last group is a smaller residual motif.
* A layer has ``m_out`` (output side) and ``m_in`` (input side); active block ``(r, c)`` connects
  output group ``r`` to input group ``c`` and every one of its edges carries the same weight ``K_p``.
* Biases are either one per output neuron (``"neuron"``) or one per output group (``"motif"``).
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

# ---------------------------------------------------------------------------------------------
# Motif partition
# ---------------------------------------------------------------------------------------------


def n_groups(n: int, m: int) -> int:
    """Number of motifs of size ``m`` needed to cover ``n`` neurons (the last may be smaller)."""
    return -(-n // m)


def group_slices(n: int, m: int) -> List[slice]:
    """The neuron range of every motif, in order; the last one is truncated at ``n``."""
    return [slice(g * m, min((g + 1) * m, n)) for g in range(n_groups(n, m))]


def group_sizes(n: int, m: int) -> np.ndarray:
    """Size of every motif: ``m`` except possibly the residual last one (``n mod m``)."""
    return np.array([s.stop - s.start for s in group_slices(n, m)], dtype=np.int64)


def group_of(n: int, m: int) -> np.ndarray:
    """Motif index of every neuron, int64 ``[n]``."""
    return np.arange(n, dtype=np.int64) // m


def block_rows(indptr: np.ndarray) -> np.ndarray:
    """Output group of every stored block (the COO row of a CSR pattern)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    return np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))


def block_positions(indptr: np.ndarray, indices: np.ndarray) -> List[Tuple[int, int]]:
    """The active blocks as ``(output group, input group)`` pairs, in storage order."""
    return [(int(r), int(c)) for r, c in zip(block_rows(indptr), np.asarray(indices))]


# ---------------------------------------------------------------------------------------------
# One layer
# ---------------------------------------------------------------------------------------------


def effective_matrix(
    n_out: int,
    n_in: int,
    motif: Tuple[int, int],
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """The dense ``[n_out, n_in]`` float64 matrix a block pattern stands for.

    ``motif`` is ``(m_out, m_in)``. Every active block ``(r, c)`` fills the rectangle of output
    motif ``r`` times input motif ``c`` with its single weight; everything else is 0. Raises
    ``AssertionError`` if the pattern is malformed (so a broken pattern cannot silently give a
    plausible matrix).
    """
    m_out, m_in = motif
    rows_of = group_slices(n_out, m_out)
    cols_of = group_slices(n_in, m_in)
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    assert indptr.shape == (len(rows_of) + 1,), "indptr must have G_out + 1 entries"
    assert indptr[0] == 0 and indptr[-1] == indices.size == weights.size
    w = np.zeros((n_out, n_in), dtype=np.float64)
    seen = set()
    for p, (r, c) in enumerate(block_positions(indptr, indices)):
        assert 0 <= c < len(cols_of), f"block {p} has input group {c} outside [0, {len(cols_of)})"
        assert (r, c) not in seen, f"block ({r}, {c}) stored twice"
        seen.add((r, c))
        w[rows_of[r], cols_of[c]] = weights[p]
    return w


def expand_bias(bias: np.ndarray, n_out: int, m_out: int, mode: str) -> np.ndarray:
    """Per-neuron bias vector ``[n_out]``: copied for ``"neuron"``, repeated over each output
    motif for ``"motif"``."""
    bias = np.asarray(bias, dtype=np.float64)
    if mode == "neuron":
        assert bias.shape == (n_out,)
        return bias.copy()
    assert mode == "motif" and bias.shape == (n_groups(n_out, m_out),)
    return bias[group_of(n_out, m_out)]


def reduce_bias_grad(grad_per_neuron: np.ndarray, n_out: int, m_out: int, mode: str) -> np.ndarray:
    """Gradient of the stored biases from the per-neuron gradient ``[n_out]``: itself for
    ``"neuron"``, summed over each output motif for ``"motif"`` (a shared bias receives the
    gradient of every neuron it feeds)."""
    g = np.asarray(grad_per_neuron, dtype=np.float64)
    if mode == "neuron":
        return g.copy()
    return np.array([g[s].sum() for s in group_slices(n_out, m_out)])


def block_grads_from_dense(
    grad_w: np.ndarray, motif: Tuple[int, int], indptr: np.ndarray, indices: np.ndarray
) -> np.ndarray:
    """Gradient of each shared block weight from the gradient of the dense matrix.

    ``K_p`` appears in every entry of its block, so by the chain rule ``dL/dK_p`` is the sum of
    ``dL/dW[i, j]`` over the block's rectangle.
    """
    m_out, m_in = motif
    n_out, n_in = grad_w.shape
    rows_of = group_slices(n_out, m_out)
    cols_of = group_slices(n_in, m_in)
    return np.array(
        [grad_w[rows_of[r], cols_of[c]].sum() for r, c in block_positions(indptr, indices)],
        dtype=np.float64,
    )


def activate(z: np.ndarray, activation: str) -> np.ndarray:
    """``relu`` or identity (``linear``)."""
    if activation == "relu":
        return np.maximum(z, 0.0)
    assert activation == "linear"
    return z.copy()


def layer_forward(x: np.ndarray, w: np.ndarray, b_neuron: np.ndarray, activation: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(z, a)`` with ``z = x @ W.T + b`` and ``a = f(z)``, all in float64."""
    z = np.asarray(x, dtype=np.float64) @ w.T + b_neuron
    return z, activate(z, activation)


def layer_backward(
    x: np.ndarray, w: np.ndarray, z: np.ndarray, grad_out: np.ndarray, activation: str
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a dense layer given ``dL/da``: ``(dL/dx, dL/dW, dL/db per neuron)``.

    ReLU's derivative is taken as 1 where ``z > 0`` and 0 elsewhere.
    """
    g = np.asarray(grad_out, dtype=np.float64)
    dz = g * (z > 0) if activation == "relu" else g
    return dz @ w, dz.T @ np.asarray(x, dtype=np.float64), dz.sum(axis=0)


def he_bounds(n_in: int, motif: Tuple[int, int], indptr: np.ndarray, indices: np.ndarray,
              copies: int = 1) -> np.ndarray:
    """He-uniform bound ``sqrt(6 / fan_in)`` of every output group, where ``fan_in`` is the number
    of input *neurons* the group's rows are connected to (the sum of the sizes of the input motifs
    of its active blocks). Rows without blocks get ``inf`` (no constraint).

    ``copies`` > 1: the inputs of a motif arrive as that many identical copies (a layer fed by a
    motif layer of the same size), so a block's group sum of ``s`` inputs has ``s * min(s, copies)``
    times the second moment of one input, and that is its contribution to ``fan_in``."""
    _, m_in = motif
    sizes = group_sizes(n_in, m_in)
    weight = sizes * np.minimum(sizes, copies)
    indptr = np.asarray(indptr, dtype=np.int64)
    out = np.full(indptr.size - 1, np.inf)
    for r in range(indptr.size - 1):
        fan_in = weight[np.asarray(indices[indptr[r]:indptr[r + 1]], dtype=np.int64)].sum()
        if fan_in > 0:
            out[r] = np.sqrt(6.0 / fan_in)
    return out


# ---------------------------------------------------------------------------------------------
# A whole MLP: ReLU hidden layers, linear output, softmax cross-entropy (mean over the batch)
# ---------------------------------------------------------------------------------------------

LayerSpec = Dict[str, object]
"""One layer of a reference MLP: keys ``n_in``, ``n_out``, ``motif`` ``(m_out, m_in)``,
``indptr``, ``indices``, ``weights`` (float64 copy), ``bias`` (float64 copy) and ``bias_mode``."""


def spec_matrix(spec: LayerSpec) -> np.ndarray:
    """Dense effective matrix of a layer spec."""
    return effective_matrix(spec["n_out"], spec["n_in"], spec["motif"], spec["indptr"],
                            spec["indices"], spec["weights"])


def spec_bias(spec: LayerSpec) -> np.ndarray:
    """Per-neuron bias of a layer spec."""
    return expand_bias(spec["bias"], spec["n_out"], spec["motif"][0], spec["bias_mode"])


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed stably in float64."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean over the batch of ``-log softmax(logits)[y]``, in float64 (log-sum-exp form)."""
    z = np.asarray(logits, dtype=np.float64)
    mx = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - mx).sum(axis=1)) + mx[:, 0]
    return float(np.mean(lse - z[np.arange(z.shape[0]), y]))


def mlp_forward(specs: Sequence[LayerSpec], x: np.ndarray,
                masks: Sequence[np.ndarray] | None = None) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Layer inputs and pre-activations of the whole network: ``(inputs, zs)``; the logits are
    ``zs[-1]`` (the output layer is linear, the others ReLU). ``masks[l]`` ([B, n_out] of hidden
    layer l, 0 or 1/(1-p)) multiplies that layer's activations (inverted dropout)."""
    a = np.asarray(x, dtype=np.float64)
    inputs, zs = [], []
    for l, spec in enumerate(specs):
        inputs.append(a)
        z = a @ spec_matrix(spec).T + spec_bias(spec)
        zs.append(z)
        a = np.maximum(z, 0.0) if l + 1 < len(specs) else z
        if masks is not None and l + 1 < len(specs):
            a = a * masks[l]
    return inputs, zs


def mlp_logits(specs: Sequence[LayerSpec], x: np.ndarray) -> np.ndarray:
    """Logits ``[B, n_classes]`` of the reference network."""
    return mlp_forward(specs, x)[1][-1]


def mlp_loss(specs: Sequence[LayerSpec], x: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy of the reference network on ``(x, y)``."""
    return cross_entropy(mlp_logits(specs, x), y)


def mlp_gradients(specs: Sequence[LayerSpec], x: np.ndarray, y: np.ndarray,
                  masks: Sequence[np.ndarray] | None = None) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Analytic gradients of :func:`mlp_loss` by plain backpropagation through the dense
    matrices: per layer ``(dL/dK per block, dL/d(stored bias))``; ``masks`` as in :func:`mlp_forward`."""
    inputs, zs = mlp_forward(specs, x, masks)
    batch = zs[-1].shape[0]
    onehot = np.zeros_like(zs[-1])
    onehot[np.arange(batch), y] = 1.0
    dz = (softmax(zs[-1]) - onehot) / batch  # d(mean CE)/d(logits)
    grads: List[Tuple[np.ndarray, np.ndarray]] = []
    for l in range(len(specs) - 1, -1, -1):
        spec = specs[l]
        w = spec_matrix(spec)
        grad_w = dz.T @ inputs[l]
        grads.append((
            block_grads_from_dense(grad_w, spec["motif"], spec["indptr"], spec["indices"]),
            reduce_bias_grad(dz.sum(axis=0), spec["n_out"], spec["motif"][0], spec["bias_mode"]),
        ))
        if l > 0:
            dz = (dz @ w) * (zs[l - 1] > 0)
            if masks is not None:
                dz = dz * masks[l - 1]
    return grads[::-1]


_M64 = (1 << 64) - 1


def _splitmix64(state: int) -> Tuple[int, int]:
    """(new state, output) of the splitmix64 generator (Steele et al.), on Python ints."""
    state = (state + 0x9E3779B97F4A7C15) & _M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return state, z ^ (z >> 31)


def dropout_mask(seed: int, step: int, layer: int, n: int, batch: int, p: float) -> np.ndarray:
    """The inverted-dropout multipliers [batch, n] the engine documents (docs/engine.md): neuron i
    of hidden layer ``layer`` at training step ``step`` seeds a splitmix64 stream with the hash
    chain of (seed, step, layer, i); each 64-bit draw gives two 24-bit uniforms (bits 40-63 for
    sample t, bits 16-39 for sample t+1), and a sample is dropped when its uniform is below
    ``floor(p * 2**24)``. Kept activations are scaled by 1/(1-p)."""
    p32 = np.float32(p)                  # the engine receives the rate as float32
    thr = int(float(p32) * 16777216.0)
    scale = float(np.float32(1.0) / (np.float32(1.0) - p32))
    out = np.zeros((batch, n), dtype=np.float64)
    for i in range(n):
        s = seed                         # hash4(seed, step, layer, i): four splitmix64 rounds
        for v in (step, layer, i):
            _, h = _splitmix64(s)
            s = h ^ v
        _, x = _splitmix64(s)            # the hash seeds the neuron's stream
        for t in range(0, batch, 2):
            x, r = _splitmix64(x)
            out[t, i] = 0.0 if (r >> 40) < thr else scale
            if t + 1 < batch:
                out[t + 1, i] = 0.0 if ((r >> 16) & 0xFFFFFF) < thr else scale
    return out


def mlp_fd_gradients(
    specs: Sequence[LayerSpec], x: np.ndarray, y: np.ndarray, h: float = 1e-6
) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Central finite differences ``(L(theta + h) - L(theta - h)) / 2h`` of :func:`mlp_loss` with
    respect to every block weight and every stored bias, per layer."""
    def perturbed(l: int, key: str, i: int, delta: float) -> float:
        changed = [dict(s) for s in specs]
        arr = np.array(changed[l][key], dtype=np.float64)
        arr[i] += delta
        changed[l][key] = arr
        return mlp_loss(changed, x, y)

    out = []
    for l, spec in enumerate(specs):
        pair = []
        for key in ("weights", "bias"):
            n = np.asarray(spec[key]).size
            pair.append(np.array([(perturbed(l, key, i, h) - perturbed(l, key, i, -h)) / (2 * h) for i in range(n)]))
        out.append((pair[0], pair[1]))
    return out


def min_abs_hidden_preactivation(specs: Sequence[LayerSpec], x: np.ndarray) -> float:
    """Smallest ``|z|`` over the ReLU layers: finite differences are only valid when no hidden unit
    sits within ``h`` of its kink."""
    _, zs = mlp_forward(specs, x)
    return float(min(np.abs(z).min() for z in zs[:-1])) if len(zs) > 1 else np.inf
