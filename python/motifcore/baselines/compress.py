"""Deep Compression's storage stages (Han, Mao & Dally, 2016) on block weights: weight sharing by
1-D k-means, relative-index coding of the positions, canonical Huffman coding of both streams,
and the size in bytes of the result, with and without Huffman.

Per layer, the active blocks' weights ``K`` are clustered into ``2**bits - 1`` learned centroids
plus one code reserved for an exact zero, which the relative-index coding uses for its filler
entries. Positions ``r * G_in + c`` (row-major over the block grid, the CSR order) are stored as
gaps: a gap ``g`` becomes ``g - 1`` in ``index_bits`` bits, and a gap larger than
``2**index_bits`` first emits filler entries (zero code) every ``2**index_bits`` positions. At
motif size ``m > 1`` one block weight and one index stand for ``m²`` edges.

Everything here runs once per model, in NumPy: it is storage, not training.
"""

from __future__ import annotations

import heapq
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._internal.validation import check_int
from ..nn import MotifMLP

__all__ = ["CompressedLayer", "canonical_codes", "compress_model", "csr_bytes", "huffman_decode", "huffman_encode",
           "huffman_lengths", "inference_bytes", "kmeans_1d", "quantization_ratio", "quantize_model",
           "relative_index"]


# ------------------------------------------------------------------------------------------------
# weight sharing
# ------------------------------------------------------------------------------------------------

def kmeans_1d(values: Any, init: Any, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means of 1-D ``values`` from the sorted centroids ``init``; returns
    ``(centroids float64 [k], codes int64 [n])``. Each value goes to the nearest centroid (a value
    exactly between two goes to the lower one), each centroid moves to the mean of its values (an
    empty cluster keeps its centroid), until no code changes or ``max_iter`` iterations."""
    v = np.asarray(values, dtype=np.float64).ravel()
    c = np.array(init, dtype=np.float64).ravel()
    if c.size < 1 or not np.isfinite(c).all() or (np.diff(c) < 0).any():
        raise ValueError("init must be a non-empty sorted sequence of finite centroids")
    if not np.isfinite(v).all():
        raise ValueError("values must be finite")
    max_iter = check_int(max_iter, "max_iter")
    codes = np.full(v.shape[0], -1, dtype=np.int64)
    for _ in range(max_iter):
        new = np.searchsorted((c[1:] + c[:-1]) / 2.0, v, side="left")
        if np.array_equal(new, codes):
            break
        codes = new
        sums = np.bincount(codes, weights=v, minlength=c.size)
        counts = np.bincount(codes, minlength=c.size)
        filled = counts > 0
        c[filled] = sums[filled] / counts[filled]   # means of 1-D Voronoi cells stay in order
    return c, codes


def _layer_codebook(weights: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids float32 [2**bits], codes uint8/uint16 [n]) of one layer: code 0 is the exact zero,
    codes 1.. the 2**bits - 1 learned centroids, linearly initialised on [min, max]."""
    k = 2 ** bits - 1
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return np.zeros(2 ** bits, dtype=np.float32), np.zeros(0, dtype=np.int64)
    cent, codes = kmeans_1d(w, np.linspace(w.min(), w.max(), k))
    return np.concatenate([[0.0], cent]).astype(np.float32), codes + 1


def quantization_ratio(n: int, bits: int, k: int) -> float:
    """Han et al.'s compression of weight sharing alone: ``n·b / (n·log2(k) + k·b)`` for ``n``
    weights of ``b`` bits shared through ``k`` clusters."""
    return n * bits / (n * math.log2(k) + k * bits)


def quantize_model(model: MotifMLP, bits: int = 5, trainable: bool = False) -> list[np.ndarray]:
    """Replace every layer's block weights by their k-means centroid in place (weight sharing;
    optimizer state untouched); returns each layer's codebook (code 0 = 0.0, the filler code).

    With ``trainable`` each layer also holds its codebook (:meth:`MotifLayer.set_codebook`), so
    that further training fine-tunes the ``2**bits - 1`` centroids instead of the weights (Deep
    Compression's trained quantization)."""
    bits = check_int(bits, "bits")
    books = []
    for layer in model.layers:
        book, codes = _layer_codebook(layer.weights, bits)
        if trainable and layer.n_blocks:
            layer.set_codebook(codes - 1, book[1:])
        else:
            layer.weights = book[codes]
        books.append(book)
    return books


# ------------------------------------------------------------------------------------------------
# relative indices
# ------------------------------------------------------------------------------------------------

def relative_index(positions: Any, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Relative-index coding of sorted distinct ``positions``: ``(gaps, filler)`` where ``gaps[i]``
    is the stored value (gap - 1, in [0, 2**index_bits)) of entry i and ``filler[i]`` marks the
    filler entries inserted so that no gap exceeds ``2**index_bits``. The first gap counts from
    position -1."""
    p = np.asarray(positions, dtype=np.int64).ravel()
    index_bits = check_int(index_bits, "index_bits")
    if p.size and (p[0] < 0 or (np.diff(p) <= 0).any()):
        raise ValueError("positions must be sorted, distinct and >= 0")
    span = 1 << index_bits
    gap = np.diff(p, prepend=-1)
    n_fill = (gap - 1) // span                      # fillers before each real entry
    total = p.size + int(n_fill.sum())
    out = np.full(total, span - 1, dtype=np.int64)  # a filler's stored gap is span - 1
    filler = np.ones(total, dtype=bool)
    real_at = np.arange(p.size) + np.cumsum(n_fill)
    out[real_at] = gap - 1 - n_fill * span
    filler[real_at] = False
    return out, filler


# ------------------------------------------------------------------------------------------------
# canonical Huffman coding
# ------------------------------------------------------------------------------------------------

def huffman_lengths(freqs: Any) -> np.ndarray:
    """Huffman code length of each symbol (0 for a symbol that never occurs; a lone symbol gets
    1 bit). Ties are merged in a fixed order (by count, then by creation), so the lengths are
    deterministic."""
    f = np.asarray(freqs, dtype=np.int64).ravel()
    if (f < 0).any():
        raise ValueError("frequencies must be >= 0")
    used = np.flatnonzero(f)
    lengths = np.zeros(f.size, dtype=np.int64)
    if used.size == 1:
        lengths[used] = 1
    if used.size <= 1:
        return lengths
    heap: list[tuple[int, int, list[int]]] = [(int(f[s]), i, [int(s)]) for i, s in enumerate(used)]
    heapq.heapify(heap)
    tick = len(heap)
    while len(heap) > 1:
        fa, _, a = heapq.heappop(heap)
        fb, _, b = heapq.heappop(heap)
        lengths[a] += 1
        lengths[b] += 1
        heapq.heappush(heap, (fa + fb, tick, a + b))
        tick += 1
    return lengths


def canonical_codes(lengths: Any) -> np.ndarray:
    """Canonical code of each symbol from its length (symbols sorted by (length, symbol) get
    consecutive codes); uint64, 0 where the length is 0."""
    ln = np.asarray(lengths, dtype=np.int64).ravel()
    codes = np.zeros(ln.size, dtype=np.uint64)
    code, prev = 0, 0
    for s in sorted(np.flatnonzero(ln), key=lambda s: (ln[s], s)):
        code <<= int(ln[s]) - prev
        prev = int(ln[s])
        codes[s] = code
        code += 1
    return codes


def huffman_encode(symbols: Any, n_symbols: int) -> tuple[bytes, int, np.ndarray]:
    """Canonical Huffman coding of integer ``symbols`` in [0, n_symbols): ``(data, n_bits,
    lengths)``; ``lengths`` (one per symbol, 1 byte each on disk) is all a decoder needs."""
    s = np.asarray(symbols, dtype=np.int64).ravel()
    if s.size and (s.min() < 0 or s.max() >= n_symbols):
        raise ValueError(f"symbols must be in [0, {n_symbols})")
    lengths = huffman_lengths(np.bincount(s, minlength=n_symbols))
    if lengths.max(initial=0) > 57:
        raise ValueError("a Huffman code longer than 57 bits is not supported")
    codes = canonical_codes(lengths)
    ln, cd = lengths[s], codes[s]
    n_bits = int(ln.sum())
    bits = np.zeros(n_bits, dtype=np.uint8)
    start = np.cumsum(ln) - ln
    for j in range(int(lengths.max(initial=0))):   # bit j (from the most significant) of every code
        m = ln > j
        bits[start[m] + j] = (cd[m] >> (ln[m] - 1 - j).astype(np.uint64)) & np.uint64(1)
    return np.packbits(bits).tobytes(), n_bits, lengths


def huffman_decode(data: bytes, n_bits: int, lengths: Any) -> np.ndarray:
    """Inverse of :func:`huffman_encode`: the symbols of ``n_bits`` bits of ``data``."""
    ln = np.asarray(lengths, dtype=np.int64).ravel()
    codes = canonical_codes(ln)
    table = {(int(ln[s]), int(codes[s])): int(s) for s in np.flatnonzero(ln)}
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n_bits]
    out: list[int] = []
    code = length = 0
    for b in bits.tolist():
        code = (code << 1) | b
        length += 1
        sym = table.get((length, code))
        if sym is not None:
            out.append(sym)
            code = length = 0
    if length:
        raise ValueError("the bit stream ends inside a code")
    return np.array(out, dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# a whole model
# ------------------------------------------------------------------------------------------------

@dataclass
class CompressedLayer:
    """The coded form of one layer and its size in bytes."""

    codebook: np.ndarray         #: float32 [2**bits], entry 0 = 0.0 (fillers)
    weight_codes: np.ndarray     #: code of every entry (fillers: 0)
    index_gaps: np.ndarray       #: stored gap of every entry
    n_bias: int
    bits: int
    index_bits: int

    @property
    def entries(self) -> int:
        return int(self.weight_codes.size)

    def bytes_fixed(self) -> int:
        """Codebook + one packed stream of fixed-width (weight code, gap) pairs + fp32 biases."""
        return 4 * self.codebook.size + -(-self.entries * (self.bits + self.index_bits) // 8) + 4 * self.n_bias

    def bytes_huffman(self) -> int:
        """Codebook + Huffman-coded weight codes and gaps + their code-length tables (one byte per
        symbol) + fp32 biases."""
        _, wb, _ = huffman_encode(self.weight_codes, 2 ** self.bits)
        _, ib, _ = huffman_encode(self.index_gaps, 2 ** self.index_bits)
        return (4 * self.codebook.size + -(-wb // 8) + -(-ib // 8) + 2 ** self.bits + 2 ** self.index_bits
                + 4 * self.n_bias)


def _compress_layer(layer: Any, bits: int, index_bits: int) -> CompressedLayer:
    shared = layer.codebook
    if shared is not None and shared[1].size <= 2 ** bits - 1:     # trained centroids: keep them
        book = np.zeros(2 ** bits, dtype=np.float32)
        book[1:shared[1].size + 1] = shared[1]
        codes = shared[0].astype(np.int64) + 1
    else:
        book, codes = _layer_codebook(layer.weights, bits)
    g_in = layer.groups[1]
    pos = layer.block_rows * g_in + layer.indices.astype(np.int64)
    gaps, filler = relative_index(pos, index_bits)
    wcodes = np.zeros(gaps.size, dtype=np.int64)
    wcodes[~filler] = codes
    return CompressedLayer(book, wcodes, gaps, int(layer.bias.size), bits, index_bits)


def csr_bytes(model: MotifMLP) -> int:
    """Bytes of the fp32 block-CSR inference form: a 4-byte weight and a 4-byte index per block,
    8-byte row pointers and fp32 biases."""
    return int(sum(8 * layer.n_blocks + 8 * (layer.groups[0] + 1) + 4 * layer.bias.size for layer in model.layers))


def inference_bytes(model: MotifMLP) -> int:
    """Size of an uncompressed ``np.savez`` of what inference needs (each layer's indptr,
    indices, weights and biases; no optimizer state)."""
    arrays = {}
    for i, layer in enumerate(model.layers):
        arrays.update({f"l{i}.indptr": layer.indptr, f"l{i}.indices": layer.indices,
                       f"l{i}.weights": layer.weights, f"l{i}.bias": layer.bias})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return len(buf.getvalue())


def compress_model(model: MotifMLP, bits: int = 5, index_bits: int = 5,
                   huffman: bool = True) -> dict[str, Any]:
    """Deep Compression's storage of ``model``: per-layer k-means weight sharing (``bits``), relative
    indices (``index_bits``) and, with ``huffman``, canonical Huffman coding. Returns the sizes:
    ``dense_fp32_bytes`` (``4·(Σ n_in·n_out + biases)``), ``csr_fp32_bytes`` (4-byte weight and
    index per block, 8-byte row pointers, fp32 biases), ``savez_bytes`` (:func:`inference_bytes`),
    ``dc_bytes_fixed`` and ``dc_bytes_huffman`` (None without ``huffman``), the compression rates
    against the dense fp32 model, and ``layers`` (the :class:`CompressedLayer` objects). The
    model itself is not changed (:func:`quantize_model` applies the weight sharing)."""
    if not isinstance(model, MotifMLP):
        raise TypeError(f"model must be a MotifMLP, got {type(model).__name__}")
    bits, index_bits = check_int(bits, "bits"), check_int(index_bits, "index_bits")
    if bits > 16 or index_bits > 24:
        raise ValueError("bits must be <= 16 and index_bits <= 24")
    layers = [_compress_layer(layer, bits, index_bits) for layer in model.layers]
    dense = 4 * model.dense_params
    fixed = sum(cl.bytes_fixed() for cl in layers)
    huff = sum(cl.bytes_huffman() for cl in layers) if huffman else None
    return {"dense_fp32_bytes": dense, "csr_fp32_bytes": csr_bytes(model), "savez_bytes": inference_bytes(model),
            "dc_bytes_fixed": int(fixed), "dc_bytes_huffman": huff,
            "compression_fixed": dense / fixed, "compression_huffman": dense / huff if huff else None,
            "entries": sum(cl.entries for cl in layers), "fillers": sum(
                int(cl.entries - layer.n_blocks) for cl, layer in zip(layers, model.layers)),
            "layers": layers}
