// Body of the hot kernels, compiled once per SIMD level. The including file defines MC_ISA_NS
// (namespace name), MC_VEC_BYTES (vector width in bytes) and MC_ISA_NAME, and is itself compiled
// with the matching target flags, so GCC/Clang vector extensions map to SSE, AVX2 or AVX-512.
#include <cstdint>
#include <algorithm>
#include <limits>
#include <vector>

#include "common.hpp"
#include "kernels.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace motifcore {
namespace MC_ISA_NS {

constexpr int W = MC_VEC_BYTES / 4;  // float lanes per vector
typedef float vf __attribute__((vector_size(MC_VEC_BYTES)));
typedef float vfu __attribute__((vector_size(MC_VEC_BYTES), aligned(4), may_alias));

typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));
static inline vf vload(const float* p) { return *reinterpret_cast<const vfu*>(p); }
static inline void vstore(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }

// Bytes of input panel beyond which its rows come from DRAM whatever the tiling (huge layers).
constexpr int64_t kHugePanel = kHugePanelBytes;

// Batch-tile width (in vectors) so that the tile's slice of the input panel, [rows_in, T] floats,
// stays in L2 while every output row of the tile is computed: the panel rows are gathered at random,
// so once the whole panel exceeds L2 the kernel becomes bound by L3 traffic. A panel far beyond
// the last-level cache misses anyway; there one pass with the widest tile moves the least data.
static inline int tile_vectors(int64_t rows_in, int64_t B, int64_t ld) {
    const int64_t budget = 384 * 1024;  // bytes of panel slice we aim to keep hot
    int nv = 4;
    if (rows_in * ld * 4 <= kHugePanel)
        while (nv > 1 && rows_in * nv * W * 4 > budget) nv /= 2;
    while (nv > 1 && nv * W > B) nv /= 2;
    return nv;
}

// One output row, one batch tile of NV vectors. NACC interleaved accumulator sets break the FMA
// dependency chain (its latency, not bandwidth, bounds a naive axpy loop). PF prefetches the panel
// rows of entries a few steps ahead, for panels too large for any cache: entries up to pf_end
// (>= n), so the last entries of a row prefetch the first ones of the next row, whose own prologue
// is then skipped (prologue = false). Only loads are added: the arithmetic is the same.
template <int NV, int NACC, bool PF = false>
static inline void spmm_tile(const int32_t* __restrict idx, const float* __restrict val, int64_t n,
                             const float* __restrict in, int64_t ld_in, float* __restrict out,
                             int64_t pf_end = 0, bool prologue = true) {
    // Prefetch distance in entries: a gathered row comes from DRAM, and the latency of a loaded
    // memory system (another job's traffic, the other core's gathers) is hundreds of ns, many
    // entries' time. At the 1M network (40 M blocks, batch 32, 2 threads, busy machine) the layer
    // forward took 0.37 s (median) at 16 entries, 0.26 at 48 and 0.21-0.23 at 96-128.
    constexpr int64_t PD = 96;
    vf a[NACC][NV];
    for (int k = 0; k < NACC; ++k)
        for (int v = 0; v < NV; ++v) a[k][v] = vf{};
    if constexpr (PF) {
        if (prologue)
            for (int64_t q = 0; q < std::min(pf_end, PD); ++q) {
                const float* s = in + static_cast<int64_t>(idx[q]) * ld_in;
                for (int v = 0; v < NV * W; v += 16) __builtin_prefetch(s + v);
            }
    }
    int64_t p = 0;
    for (; p + NACC <= n; p += NACC) {
#pragma GCC unroll 8
        for (int k = 0; k < NACC; ++k) {
            if constexpr (PF) {
                if (p + k + PD < pf_end) {
                    const float* s = in + static_cast<int64_t>(idx[p + k + PD]) * ld_in;
                    for (int v = 0; v < NV * W; v += 16) __builtin_prefetch(s + v);
                }
            }
            const float* s = in + static_cast<int64_t>(idx[p + k]) * ld_in;
            const float kv = val[p + k];
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) a[k][v] += kv * vload(s + v * W);
        }
    }
    for (; p < n; ++p) {
        if constexpr (PF) {
            if (p + PD < pf_end) {
                const float* s = in + static_cast<int64_t>(idx[p + PD]) * ld_in;
                for (int v = 0; v < NV * W; v += 16) __builtin_prefetch(s + v);
            }
        }
        const float* s = in + static_cast<int64_t>(idx[p]) * ld_in;
        const float kv = val[p];
        for (int v = 0; v < NV; ++v) a[0][v] += kv * vload(s + v * W);
    }
    for (int v = 0; v < NV; ++v) {
        vf r = a[0][v];
        for (int k = 1; k < NACC; ++k) r += a[k][v];
        vstore(out + v * W, r);
    }
}

// Scalar columns at the end of the batch, with the same accumulation pattern as spmm_tile<*, 4>
// (four interleaved sums over p mod 4, added left to right), so a sample's output does not depend
// on where in the batch it sits.
// Column groups of 8 (AVX2 and AVX-512) and 4 run in narrow vectors, each lane summing exactly as
// the scalar loop does (the same four accumulators, the same operations), so they change only the
// speed: a batch narrower than a vector (8 samples, the 1M network's last batch) was all scalar,
// one pass over the row's entries per sample. PF: the first pass prefetches the rows of the
// entries PD ahead up to pf_end (>= n, as spmm_tile; prologue as there); the later passes find
// them in cache.
template <class V, bool PF>
static inline void narrow_cols(const int32_t* __restrict idx, const float* __restrict val, int64_t n,
                               const float* __restrict in, int64_t ld_in, float* __restrict out,
                               int64_t pf_end, bool prologue, int64_t span) {
    typedef float vu __attribute__((vector_size(sizeof(V)), aligned(4), may_alias));
    constexpr int64_t PD = 96;   // as spmm_tile
    auto pf = [&](int64_t q) {
        const float* s = in + static_cast<int64_t>(idx[q]) * ld_in;
        __builtin_prefetch(s);
        __builtin_prefetch(s + span - 1);
    };
    if constexpr (PF) {
        if (prologue)
            for (int64_t q = 0; q < std::min(pf_end, PD); ++q) pf(q);
    }
    V a[4] = {V{}, V{}, V{}, V{}};
    int64_t p = 0;
    for (; p + 4 <= n; p += 4)
        for (int k = 0; k < 4; ++k) {
            if constexpr (PF) {
                if (p + k + PD < pf_end) pf(p + k + PD);
            }
            a[k] += val[p + k] * *reinterpret_cast<const vu*>(in + static_cast<int64_t>(idx[p + k]) * ld_in);
        }
    for (; p < n; ++p) {
        if constexpr (PF) {
            if (p + PD < pf_end) pf(p + PD);
        }
        a[0] += val[p] * *reinterpret_cast<const vu*>(in + static_cast<int64_t>(idx[p]) * ld_in);
    }
    *reinterpret_cast<vu*>(out) = ((a[0] + a[1]) + a[2]) + a[3];
}

template <bool PF = false>
static inline void spmm_tail(const int32_t* __restrict idx, const float* __restrict val, int64_t n,
                             const float* __restrict in, int64_t ld_in, float* __restrict out,
                             int64_t width, int64_t pf_end = 0, bool prologue = true) {
    int64_t t = 0;
    bool first = true;   // the first pass prefetches
#if MC_VEC_BYTES >= 32
    for (; t + 8 <= width; t += 8, first = false) {
        if (first)
            narrow_cols<v8f, PF>(idx, val, n, in + t, ld_in, out + t, pf_end, prologue, width - t);
        else
            narrow_cols<v8f, false>(idx, val, n, in + t, ld_in, out + t, 0, false, 8);
    }
#endif
    for (; t + 4 <= width; t += 4, first = false) {
        if (first)
            narrow_cols<v4f, PF>(idx, val, n, in + t, ld_in, out + t, pf_end, prologue, width - t);
        else
            narrow_cols<v4f, false>(idx, val, n, in + t, ld_in, out + t, 0, false, 4);
    }
    for (; t < width; ++t) {
        float a[4] = {0.f, 0.f, 0.f, 0.f};
        int64_t p = 0;
        for (; p + 4 <= n; p += 4)
            for (int k = 0; k < 4; ++k) a[k] += val[p + k] * in[static_cast<int64_t>(idx[p + k]) * ld_in + t];
        for (; p < n; ++p) a[0] += val[p] * in[static_cast<int64_t>(idx[p]) * ld_in + t];
        out[t] = ((a[0] + a[1]) + a[2]) + a[3];
    }
}

template <int NV, int NACC, bool PF = false>
static void spmm_tiled(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* val,
                       const float* in, float* out, int64_t B, int64_t ld, int num_threads) {
    constexpr int64_t T = NV * W;
    const int64_t n_full = B / T;
    // Chunks of 16 rows of one batch tile, tile by tile (then the tail columns) within each of
    // `parts` parts of the rows, one per thread: the pool gives each thread about the same part of
    // the chunk range in every region (its parts, parallel.cpp; the two splits round differently,
    // so a row chunk at a boundary may have tiles on both threads), so a thread computes mostly
    // the same output rows from one step to the next, from weights it mostly updated itself, and
    // the next kernels of the layer (bias and activation, the optimizer) find those rows in its
    // caches. Tiles write disjoint column ranges, so there is no join between them.
    if (rows <= 0) return;
    constexpr int64_t kRows = 16;
    const int threads = threads_for(indptr[rows] * B + rows, num_threads);
    const int64_t n_rc = (rows + kRows - 1) / kRows, n_tiles = n_full + (n_full * T < B ? 1 : 0);
    const int64_t parts = std::min<int64_t>(threads, n_rc), per_part = (n_rc + parts - 1) / parts;
    parallel_for(n_tiles * n_rc, 1, threads, [&](int64_t chunk) {
        const int64_t part = chunk / (n_tiles * per_part), in_part = chunk - part * n_tiles * per_part;
        const int64_t part_rc = std::min(per_part, n_rc - part * per_part);   // row chunks of this part
        const int64_t tile = in_part / part_rc, rc = part * per_part + in_part % part_rc;
        const int64_t r_begin = rc * kRows, r_end = std::min(rows, r_begin + kRows);
        if (tile < n_full) {
            const int64_t b = tile * T;
            for (int64_t r = r_begin; r < r_end; ++r) {
                const int64_t p0 = indptr[r];
                spmm_tile<NV, NACC, PF>(idx + p0, val + p0, indptr[r + 1] - p0, in + b, ld, out + r * ld + b,
                                        indptr[r_end] - p0, r == r_begin);
            }
        } else {
            const int64_t b0 = n_full * T;
            for (int64_t r = r_begin; r < r_end; ++r) {
                const int64_t p0 = indptr[r], n = indptr[r + 1] - p0;
                int64_t b = b0;
                for (; b + W <= B; b += W) spmm_tile<1, 4>(idx + p0, val + p0, n, in + b, ld, out + r * ld + b);
                if (b < B && PF && b == b0)   // the row's only pass: prefetched
                    spmm_tail<PF>(idx + p0, val + p0, n, in + b, ld, out + r * ld + b, B - b, indptr[r_end] - p0,
                                  r == r_begin);
                else if (b < B)
                    spmm_tail(idx + p0, val + p0, n, in + b, ld, out + r * ld + b, B - b);
            }
        }
    });
}

static void spmm(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* val,
                 const float* in, int64_t in_rows, float* out, int64_t B, int64_t ld, int num_threads) {
    // The panel's size picks the tiling (speed only): the caller's row count, not a scan of idx
    // (a serial pass over the index that cost about 20 us per call at 900 K blocks).
    const int64_t rows_in = std::max<int64_t>(in_rows, rows);
    // Every variant uses four accumulator sets (see spmm_tail); at most 16 vector accumulators,
    // which fit the register file of AVX-512 (32) and, with NV <= 2, of AVX2/SSE (16).
    constexpr int kMaxNV = W >= 16 ? 4 : 2;
    const bool huge = rows_in * ld * 4 > kHugePanel;
    const int nv = std::min(kMaxNV, huge ? (B >= 4 * W ? 4 : B >= 2 * W ? 2 : 1) : tile_vectors(rows_in, B, ld));
    if (huge) {
        if (nv >= 4) return spmm_tiled<kMaxNV, 4, true>(rows, indptr, idx, val, in, out, B, ld, num_threads);
        if (nv == 2) return spmm_tiled<2, 4, true>(rows, indptr, idx, val, in, out, B, ld, num_threads);
        return spmm_tiled<1, 4, true>(rows, indptr, idx, val, in, out, B, ld, num_threads);
    }
    if (nv >= 4) return spmm_tiled<kMaxNV, 4>(rows, indptr, idx, val, in, out, B, ld, num_threads);
    if (nv == 2) return spmm_tiled<2, 4>(rows, indptr, idx, val, in, out, B, ld, num_threads);
    return spmm_tiled<1, 4>(rows, indptr, idx, val, in, out, B, ld, num_threads);
}

// Horizontal reductions in registers (a spill of a wide vector followed by narrower reloads
// defeats store-to-load forwarding and costs tens of cycles per dot product).

static inline v4f fold_to_v4(vf v) {
#if MC_VEC_BYTES == 64
    const v8f h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                  __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    return __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
#elif MC_VEC_BYTES == 32
    return __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
#else
    return v;
#endif
}

static inline float fast_hsum(vf v) {
    const v4f q = fold_to_v4(v);
    const v4f t = q + __builtin_shufflevector(q, q, 2, 3, 0, 1);
    return t[0] + t[1];
}

// {sum(a0), sum(a1), sum(a2), sum(a3)} as one 4-lane vector.
static inline v4f hsum4x(vf a0, vf a1, vf a2, vf a3) {
    const v4f b0 = fold_to_v4(a0), b1 = fold_to_v4(a1), b2 = fold_to_v4(a2), b3 = fold_to_v4(a3);
    const v4f x = __builtin_shufflevector(b0, b1, 0, 1, 4, 5) + __builtin_shufflevector(b0, b1, 2, 3, 6, 7);
    const v4f y = __builtin_shufflevector(b2, b3, 0, 1, 4, 5) + __builtin_shufflevector(b2, b3, 2, 3, 6, 7);
    return __builtin_shufflevector(x, y, 0, 2, 4, 6) + __builtin_shufflevector(x, y, 1, 3, 5, 7);
}

// Dot products of one left row with the right rows of the stored entries [p, pe) whose index is
// below `c_end`, over the whole batch; returns where it stopped. Four entries at a time share the
// loads of the left row. The right rows of entries kSddmmPD to kSddmmPD + 4 ahead are prefetched
// while they are below pf_end (0: no prefetch), which may reach into the next rows. The distance,
// as the SpMM's (spmm_tile): 8 entries left most of the gathers waiting on DRAM; at the 1M
// network's 40 M-block layer its backward took 1.34 s (median, busy machine) at 8, 0.8-0.9 s at
// 32-64.
constexpr int64_t kSddmmPD = 48;
static inline int64_t sddmm_segment(const float* __restrict d, const int32_t* __restrict idx, int64_t p,
                                    int64_t pe, int32_t c_end, const float* __restrict right, int64_t B,
                                    int64_t ld, float* __restrict out, int64_t pf_end) {
    const int64_t Bv = B - B % W;
    int64_t q = p;
    while (q < pe && idx[q] < c_end) ++q;
    for (; p + 4 <= q; p += 4) {
        for (int64_t f = p + kSddmmPD; f < std::min(p + kSddmmPD + 4, pf_end); ++f)
            for (int64_t b = 0; b < B; b += 16) __builtin_prefetch(right + static_cast<int64_t>(idx[f]) * ld + b);
        const float* s0 = right + static_cast<int64_t>(idx[p]) * ld;
        const float* s1 = right + static_cast<int64_t>(idx[p + 1]) * ld;
        const float* s2 = right + static_cast<int64_t>(idx[p + 2]) * ld;
        const float* s3 = right + static_cast<int64_t>(idx[p + 3]) * ld;
        vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
        for (int64_t b = 0; b < Bv; b += W) {
            const vf dv = vload(d + b);
            a0 += dv * vload(s0 + b);
            a1 += dv * vload(s1 + b);
            a2 += dv * vload(s2 + b);
            a3 += dv * vload(s3 + b);
        }
        const v4f r = hsum4x(a0, a1, a2, a3);
        float r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
        for (int64_t b = Bv; b < B; ++b) {
            r0 += d[b] * s0[b];
            r1 += d[b] * s1[b];
            r2 += d[b] * s2[b];
            r3 += d[b] * s3[b];
        }
        out[p] = r0;
        out[p + 1] = r1;
        out[p + 2] = r2;
        out[p + 3] = r3;
    }
    for (; p < q; ++p) {
        const float* s0 = right + static_cast<int64_t>(idx[p]) * ld;
        vf a0 = vf{};
        for (int64_t b = 0; b < Bv; b += W) a0 += vload(d + b) * vload(s0 + b);
        float r0 = fast_hsum(a0);
        for (int64_t b = Bv; b < B; ++b) r0 += d[b] * s0[b];
        out[p] = r0;
    }
    return q;
}

// Column-blocked SDDMM: the right panel is visited one block of rows at a time, small enough to
// stay in L2, so each stored entry is one full-batch dot product (one horizontal sum) while the
// random row reads still hit cache. Each entry is computed once by one thread.
static void sddmm(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* left,
                  const float* right, int64_t right_rows, float* out, int64_t B, int64_t ld, int64_t* cur,
                  int num_threads) {
    // Column blocks over the right panel's rows (the caller's count, not a serial scan of the
    // rows' last indices); the last block takes whatever index is left, so no entry depends on it.
    const int32_t max_col = static_cast<int32_t>(std::max<int64_t>(right_rows, 1) - 1);
    const int64_t nnz = indptr[rows];
    const int64_t budget = 384 * 1024;
    const bool huge = (static_cast<int64_t>(max_col) + 1) * ld * 4 > kHugePanel;
    const int32_t cb = huge ? max_col + 1 : static_cast<int32_t>(std::max<int64_t>(64, budget / (ld * 4)));
    const int32_t n_cb = max_col / cb + 1;
    if (nnz == 0) return;
    std::copy(indptr, indptr + rows, cur);   // the caller's scratch (LayerWork::cursor): nothing kept here
    const int threads = threads_for(nnz * B + rows, num_threads);
    for (int32_t k = 0; k < n_cb; ++k) {  // one join per column block: cursors carry over
        const int32_t c_end = k + 1 == n_cb ? std::numeric_limits<int32_t>::max() : (k + 1) * cb;
        constexpr int64_t kChunkRows = 16;
        parallel_for(rows, kChunkRows, threads, [&](int64_t r) {
            // huge: one column block, so a row's segment is the whole row and the prefetch may run on
            // to the rows after it, up to the end of the row's chunk of the loop.
            const int64_t pf_end = huge ? indptr[std::min(rows, (r / kChunkRows + 1) * kChunkRows)] : 0;
            if (huge && r % kChunkRows == 0)   // the chunk's first entries: nothing before them prefetched
                for (int64_t f = cur[r]; f < std::min(cur[r] + kSddmmPD, pf_end); ++f)
                    for (int64_t b = 0; b < B; b += 16) __builtin_prefetch(right + static_cast<int64_t>(idx[f]) * ld + b);
            cur[r] = sddmm_segment(left + r * ld, idx, cur[r], indptr[r + 1], c_end, right, B, ld, out, pf_end);
        });
    }
}

// ---- Fused backward in transposed order ---------------------------------------------------------
// One pass over the stored blocks of each input row c (column of the CSR, ascending output row i
// through the transposed index) computes both gradients: dKt[q] = dot(dU_i, S_c) and
// dS_c += Kt[q] * dU_i. A batch tile of S_c and of the running dS_c stays in registers, so a block
// costs one gathered row of dU (the transposed SpMM's traffic) for two multiply-adds per sample.
//   dKt[q]: acc = 0; acc += dU_i[b] * S_c[b] over the vector part of the batch in order (one vector
//           accumulator, carried across tiles in `dot`), then the lanes' sum (hsum4x / fast_hsum),
//           then the scalar tail columns in order: the SDDMM's operations, so the same value.
//   dS_c[b]: 0, then + Kt[q] * dU_i[b] for the blocks of the column in ascending i, one after the
//           other, the same in every lane and tail column.
// Neither depends on the tiles, the blocking over i or the thread count.

// Vectors of the batch one tile holds in registers (NV of S, NV of dS, four dot accumulators).
constexpr int kFusedNV = W >= 16 ? 8 : 4;

// The entries n of one column segment (rows ri, weights kv) on the batch tile [b0, b0 + NV * W).
// fresh: dS starts from 0 (the first row block). FIRST / LAST: the first / last vector tile (dot
// accumulators start at 0 / are summed into dkt); between tiles they are kept in dot[e * W].
template <int NV, bool FIRST, bool LAST>
static inline void fused_tile(const int32_t* __restrict ri, const float* __restrict kv, int64_t n,
                              const float* __restrict dU, int64_t ld, int64_t b0, const float* __restrict s,
                              float* __restrict g, bool fresh, float* __restrict dot, float* __restrict dkt) {
    vf sv[NV], acc[NV];
    for (int v = 0; v < NV; ++v) {
        sv[v] = vload(s + b0 + v * W);
        acc[v] = fresh ? vf{} : vload(g + b0 + v * W);
    }
    int64_t e = 0;
    for (; e + 4 <= n; e += 4) {
        const float* u0 = dU + static_cast<int64_t>(ri[e]) * ld + b0;
        const float* u1 = dU + static_cast<int64_t>(ri[e + 1]) * ld + b0;
        const float* u2 = dU + static_cast<int64_t>(ri[e + 2]) * ld + b0;
        const float* u3 = dU + static_cast<int64_t>(ri[e + 3]) * ld + b0;
        const float k0 = kv[e], k1 = kv[e + 1], k2 = kv[e + 2], k3 = kv[e + 3];
        vf d0 = vf{}, d1 = vf{}, d2 = vf{}, d3 = vf{};
        if constexpr (!FIRST) {
            d0 = vload(dot + e * W);
            d1 = vload(dot + (e + 1) * W);
            d2 = vload(dot + (e + 2) * W);
            d3 = vload(dot + (e + 3) * W);
        }
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            const vf x0 = vload(u0 + v * W), x1 = vload(u1 + v * W), x2 = vload(u2 + v * W), x3 = vload(u3 + v * W);
            d0 += x0 * sv[v];
            d1 += x1 * sv[v];
            d2 += x2 * sv[v];
            d3 += x3 * sv[v];
            acc[v] = (((acc[v] + k0 * x0) + k1 * x1) + k2 * x2) + k3 * x3;
        }
        if constexpr (LAST) {
            const v4f r = hsum4x(d0, d1, d2, d3);
            dkt[e] = r[0];
            dkt[e + 1] = r[1];
            dkt[e + 2] = r[2];
            dkt[e + 3] = r[3];
        } else {
            vstore(dot + e * W, d0);
            vstore(dot + (e + 1) * W, d1);
            vstore(dot + (e + 2) * W, d2);
            vstore(dot + (e + 3) * W, d3);
        }
    }
    for (; e < n; ++e) {
        const float* u0 = dU + static_cast<int64_t>(ri[e]) * ld + b0;
        const float k0 = kv[e];
        vf d0 = vf{};
        if constexpr (!FIRST) d0 = vload(dot + e * W);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
            const vf x0 = vload(u0 + v * W);
            d0 += x0 * sv[v];
            acc[v] = acc[v] + k0 * x0;
        }
        if constexpr (LAST)
            dkt[e] = fast_hsum(d0);
        else
            vstore(dot + e * W, d0);
    }
    for (int v = 0; v < NV; ++v) vstore(g + b0 + v * W, acc[v]);
}

// fused_tile for nv <= NV vectors, tile t of n_tiles.
template <int NV>
static inline void fused_tile_n(int nv, int64_t t, int64_t n_tiles, const int32_t* ri, const float* kv, int64_t n,
                                const float* dU, int64_t ld, int64_t b0, const float* s, float* g, bool fresh,
                                float* dot, float* dkt) {
    if constexpr (NV > 1) {
        if (nv < NV) return fused_tile_n<NV - 1>(nv, t, n_tiles, ri, kv, n, dU, ld, b0, s, g, fresh, dot, dkt);
    }
    if (n_tiles == 1)
        fused_tile<NV, true, true>(ri, kv, n, dU, ld, b0, s, g, fresh, dot, dkt);
    else if (t == 0)
        fused_tile<NV, true, false>(ri, kv, n, dU, ld, b0, s, g, fresh, dot, dkt);
    else if (t + 1 < n_tiles)
        fused_tile<NV, false, false>(ri, kv, n, dU, ld, b0, s, g, fresh, dot, dkt);
    else
        fused_tile<NV, false, true>(ri, kv, n, dU, ld, b0, s, g, fresh, dot, dkt);
}

// Output rows per row block: the gathered rows of dU, [rows, ld] floats, are visited one block of
// about this many bytes at a time, so they stay in L2 while every column takes its blocks from them.
constexpr int64_t kFusedRowBudget = 768 * 1024;
constexpr int64_t kFusedMinSegment = 32;   // average entries per input row and row block, at least
constexpr int64_t kDotEntries = 64;   // entries per piece of a segment when the batch spans tiles

static void fused_backward(int64_t cols, int64_t rows, const int64_t* t_indptr, const int32_t* t_rows,
                           const float* Kt, const float* dU, const float* S, float* dKt, float* dS, int64_t B,
                           int64_t ld, int64_t* cur, int num_threads) {
    // Row blocks of at most the budget, all of about the same size (a small last block would cost a
    // whole sweep over the columns for few entries). Each row block costs every input row a load and
    // a store of its dS tile: fewer blocks (past L2) where the average segment would be short.
    const int64_t rb_max = std::max<int64_t>(16, kFusedRowBudget / (ld * 4));
    const int64_t per_col = t_indptr[cols] / std::max<int64_t>(1, cols);
    const int64_t n_rb = std::max<int64_t>(1, std::min((rows + rb_max - 1) / rb_max, per_col / kFusedMinSegment));
    const int64_t rb = (rows + n_rb - 1) / n_rb;
    const int64_t Bv = B - B % W, nvec = Bv / W, n_tiles = (nvec + kFusedNV - 1) / kFusedNV;
    std::copy(t_indptr, t_indptr + cols, cur);   // the caller's scratch: nothing kept here
    const int threads = threads_for(t_indptr[cols] * B + cols, num_threads);
    constexpr int64_t kChunkCols = 16;
    for (int64_t k = 0; k < n_rb; ++k) {   // one join per row block: cursors carry over
        const int32_t r_end = static_cast<int32_t>(std::min(rows, (k + 1) * rb));
        parallel_for((cols + kChunkCols - 1) / kChunkCols, 1, threads, [&](int64_t chunk) {
            // Dot accumulators between vector tiles (batches wider than one tile): one vector per
            // entry, so a segment runs in pieces of kDotEntries entries (dS reloaded between them).
            alignas(64) float dot[kDotEntries * W];
            const int64_t c_stop = std::min(cols, (chunk + 1) * kChunkCols);
            for (int64_t c = chunk * kChunkCols; c < c_stop; ++c) {
                const int64_t p = cur[c], pe = t_indptr[c + 1];
                int64_t q = p;
                while (q < pe && t_rows[q] < r_end) ++q;
                cur[c] = q;
                if (c + 1 < c_stop) {
                    // The next input row's segment (about as long as this one: its row indices,
                    // weights and gradient slots, short runs the hardware prefetcher does not pick
                    // up in time) and its rows of S and dS, requested now: they arrive while this
                    // row runs. The values are untouched (docs/performance-log.md, "step4").
                    // Kt and S are requested for writing (PREFETCHW where the unit has it): this
                    // thread writes them next (the update in transposed order writes Kt; in a
                    // network, S is the layer below's activation panel, which its backward
                    // overwrites with dU in place), and the other core holds copies of their lines
                    // (it gathered K from Kt and read S in the forward). Taking the lines over now,
                    // while this kernel computes, spares those writes a wait for each line's
                    // invalidation, which in the machine's slow state crosses between the cores
                    // (docs/performance-log.md, "Round five").
                    const int64_t a = cur[c + 1], z = std::min(t_indptr[c + 2], a + (q - p) + 16);
                    for (int64_t f = a; f < z; f += 16) {
                        __builtin_prefetch(t_rows + f);
                        __builtin_prefetch(Kt + f, 1);
                        __builtin_prefetch(dKt + f, 1);
                    }
                    for (int64_t b = 0; b < B; b += 16) {
                        __builtin_prefetch(S + (c + 1) * ld + b, 1);
                        __builtin_prefetch(dS + (c + 1) * ld + b, 1);
                    }
                }
                const bool fresh = k == 0;   // dS starts from 0 (a row with no entry is written 0)
                if (q == p && !fresh) continue;
                const float* s = S + c * ld;
                float* g = dS + c * ld;
                const int64_t piece = n_tiles > 1 ? kDotEntries : std::max<int64_t>(1, q - p);
                for (int64_t e0 = p; e0 < q || e0 == p; e0 += piece) {
                    const int64_t e1 = std::min(q, e0 + piece);
                    for (int64_t t = 0; t < n_tiles; ++t) {
                        const int nv = static_cast<int>(std::min<int64_t>(kFusedNV, nvec - t * kFusedNV));
                        fused_tile_n<kFusedNV>(nv, t, n_tiles, t_rows + e0, Kt + e0, e1 - e0, dU, ld, t * kFusedNV * W,
                                               s, g, fresh && e0 == p, dot, dKt + e0);
                    }
                }
                if (Bv == B) continue;
                // The tail columns [Bv, B), after the vector part (whose lanes' sum is in dKt
                // already): the dot products go on one product at a time, in column order, as the
                // SDDMM's; dS in one vector held over the segment. Its lanes from B on read the
                // rows' padding (a panel row holds B rounded up to 16 floats) and are never stored.
                vf ta = fresh ? vf{} : vload(g + Bv);
                for (int64_t e = p; e < q; ++e) {
                    const float* u = dU + static_cast<int64_t>(t_rows[e]) * ld;
                    const float kq = Kt[e];
                    ta = ta + kq * vload(u + Bv);
                    float r = nvec > 0 ? dKt[e] : 0.f;
                    for (int64_t b = Bv; b < B; ++b) r += u[b] * s[b];
                    dKt[e] = r;
                }
                for (int64_t b = Bv; b < B; ++b) g[b] = ta[b - Bv];
            }
        });
    }
}

// ---- O(n B) element-wise passes, fused per motif ----------------------------------------------

// S[c, :] = sum of in[j, :] over the members j of input group c.
static void group_sum(int64_t G, int64_t m, int64_t n, const float* in, float* S, int64_t B, int64_t ld,
                      int num_threads) {
    parallel_for(G, grain_for(m * B), threads_for(n * B, num_threads), [&](int64_t c) {
        float* __restrict s = S + c * ld;
        const int64_t j0 = c * m, j1 = std::min(n, j0 + m);
        const float* x0 = in + j0 * ld;
        int64_t t = 0;
        for (; t + W <= B; t += W) {
            vf acc = vload(x0 + t);
            for (int64_t j = j0 + 1; j < j1; ++j) acc += vload(in + j * ld + t);
            vstore(s + t, acc);
        }
        for (; t < B; ++t) {
            float acc = x0[t];
            for (int64_t j = j0 + 1; j < j1; ++j) acc += in[j * ld + t];
            s[t] = acc;
        }
    });
}

// out[s * n + j] = panel[j * ld + s] for s in [s0, s1) and j in [j0, j1), both multiples of 8 long
// (KernelTable::transpose_blocks): 8 x 8 blocks through registers, eight 32-byte loads, 24
// shuffles and eight 32-byte stores per block; `stream`: the stores go past the caches
// (non-temporal, two 16-byte halves, where 16-byte aligned; the caller fences); `check`: returns
// all ones if a value moved is NaN or infinite (nonfinite_mask of the loaded registers, so the
// check costs no second pass over the panel), else 0.
static inline void store8(float* p, v8f v, bool stream) {
#if defined(__x86_64__)
    if (stream && (reinterpret_cast<uintptr_t>(p) & 15) == 0) {
        _mm_stream_ps(p, __builtin_shufflevector(v, v, 0, 1, 2, 3));
        _mm_stream_ps(p + 4, __builtin_shufflevector(v, v, 4, 5, 6, 7));
        return;
    }
#endif
    typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
    *reinterpret_cast<v8u*>(p) = v;
}

template <bool Check>
static uint32_t transpose_blocks_impl(const float* panel, int64_t ld, int64_t j0, int64_t j1, int64_t s0, int64_t s1,
                                      float* out, int64_t n, bool stream) {
    typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
    typedef uint32_t v8i __attribute__((vector_size(32)));
    const v8i exp_bits = v8i{} + 0x7f800000u;
    v8i bad{};   // all ones in a lane that saw a NaN or infinity
    for (int64_t s = s0; s < s1; s += 8)
        for (int64_t j = j0; j < j1; j += 8) {
            const float* p = panel + j * ld + s;
            v8f r[8];
            for (int k = 0; k < 8; ++k) r[k] = *reinterpret_cast<const v8u*>(p + k * ld);
            if constexpr (Check) {   // a tree of ORs, one into `bad` per block (short dependency chains)
                v8i a[8];
                for (int k = 0; k < 8; ++k) a[k] = (v8i)(((v8i)r[k] & exp_bits) == exp_bits);
                for (int k = 0; k < 4; ++k) a[k] |= a[k + 4];
                a[0] |= a[2];
                a[1] |= a[3];
                bad |= a[0] | a[1];
            }
            v8f t[8], u[8];
            for (int k = 0; k < 8; k += 2) {
                t[k] = __builtin_shufflevector(r[k], r[k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
                t[k + 1] = __builtin_shufflevector(r[k], r[k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
            }
            for (int k = 0; k < 8; k += 4) {
                u[k] = __builtin_shufflevector(t[k], t[k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
                u[k + 1] = __builtin_shufflevector(t[k], t[k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
                u[k + 2] = __builtin_shufflevector(t[k + 1], t[k + 3], 0, 1, 8, 9, 4, 5, 12, 13);
                u[k + 3] = __builtin_shufflevector(t[k + 1], t[k + 3], 2, 3, 10, 11, 6, 7, 14, 15);
            }
            float* o = out + s * n + j;
            for (int k = 0; k < 4; ++k) {   // u[k] holds samples k and k + 4 of rows 0-3, u[k + 4] of rows 4-7
                store8(o + k * n, __builtin_shufflevector(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11), stream);
                store8(o + (k + 4) * n, __builtin_shufflevector(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15), stream);
            }
        }
    uint32_t any = 0;
    for (int k = 0; k < 8; ++k) any |= bad[k];
    return any;
}

static uint32_t transpose_blocks(const float* panel, int64_t ld, int64_t j0, int64_t j1, int64_t s0, int64_t s1,
                                 float* out, int64_t n, bool stream, bool check) {
    return check ? transpose_blocks_impl<true>(panel, ld, j0, j1, s0, s1, out, n, stream)
                 : transpose_blocks_impl<false>(panel, ld, j0, j1, s0, s1, out, n, stream);
}

// Inverted dropout (KernelTable::dropout). A vector of W / 2 draws covers W entries: the draw of
// pair j is splitmix64's output for x + (j + 1) * its increment (integer arithmetic, the same in
// every lane), a 64-bit lane's low and high 32 bits mask entries 2j and 2j + 1 (little endian).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the dropout mask takes entry 2j from a lane's low half");
typedef uint64_t vu64 __attribute__((vector_size(MC_VEC_BYTES)));
typedef uint32_t vu32 __attribute__((vector_size(MC_VEC_BYTES)));
static inline vu64 draw_mix(vu64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void dropout(int64_t n, const uint64_t* row_state, uint64_t thr, float scale, float* A, int64_t B,
                    int64_t ld, int num_threads) {
    constexpr int P = W / 2;
    parallel_for(n, grain_for(B), threads_for(n * B, num_threads), [&](int64_t i) {
        const uint64_t x = row_state[i];
        float* a = A + i * ld;
        vu64 first{};                                  // x + (k + 1) * step for the lanes k of pair 0
        for (int k = 0; k < P; ++k) first[k] = x + static_cast<uint64_t>(k + 1) * kSplitmix64Step;
        const vu64 low = vu64{} + 0xFFFFFFFFULL;
        for (int64_t t = 0; t < B; t += W) {
            const vu64 r = draw_mix(first + static_cast<uint64_t>(t / 2) * kSplitmix64Step);
            const vu64 keep_even = (vu64)((r >> 40) >= thr);   // vector casts keep the bits
            const vu64 keep_odd = (vu64)(((r >> 16) & 0xFFFFFFULL) >= thr);
            const vu32 mask = (vu32)((keep_even & low) | (keep_odd & ~low));
            if (t + W <= B) {
                const vf v = vload(a + t) * scale;
                vstore(a + t, (vf)((vu32)v & mask));
            } else {
                for (int64_t e = 0; t + e < B; ++e) {
                    const float v = a[t + e] * scale;
                    uint32_t u;
                    __builtin_memcpy(&u, &v, sizeof u);
                    u &= mask[e];
                    __builtin_memcpy(a + t + e, &u, sizeof u);
                }
            }
        }
    });
}

// NaN or infinity tests for the kernels' checks (a float's exponent field all ones), in this unit's
// registers; static, so no copy of them is shared with another unit (nonfinite_mask, common.hpp,
// is the baseline one).
typedef uint32_t vbits __attribute__((vector_size(MC_VEC_BYTES)));
static inline vbits nonfinite_lanes(vf v) {   // all ones in the lanes of v that are NaN or infinite
    const vbits expo = vbits{} + 0x7f800000u;
    return (vbits)(((vbits)v & expo) == expo);
}
static inline uint32_t any_lane(vbits b) {
    uint32_t flag = 0;
    for (int k = 0; k < W; ++k) flag |= b[k];
    return flag;
}
static inline uint32_t nonfinite_bit(float x) {
    uint32_t bits;
    __builtin_memcpy(&bits, &x, sizeof bits);
    return (bits & 0x7f800000u) == 0x7f800000u;
}

// A[i, :] = act(U[i / m, :] + bias[i or i / m]); U may alias A when m == 1.
// Returns whether a value written is NaN or infinite (its exponent bits all ones), found in the same
// pass: a layer whose output panel goes on to the next layer without rows checks it for free.
static bool expand_bias_act(int64_t n, int64_t m, const float* U, const float* bias, bool per_neuron,
                            bool relu, float* A, int64_t B, int64_t ld, int num_threads) {
    int any = 0;   // set with the compiler's atomic builtins: no STL template in an ISA unit
    parallel_for(n, grain_for(B), threads_for(n * B, num_threads), [&](int64_t i) {
        const int64_t g = i / m;
        const float* u = U + g * ld;
        float* a = A + i * ld;
        const float bv = bias[per_neuron ? i : g];
        const vf zero = vf{};
        vbits bad{};
        int64_t t = 0;
        if (relu) {
            for (; t + W <= B; t += W) {
                const vf z = vload(u + t) + bv;
                const vf r = z > zero ? z : zero;
                vstore(a + t, r);
                bad |= nonfinite_lanes(r);
            }
            for (; t < B; ++t) {   // std::max(z, 0.f), spelled out: no STL template in an ISA unit
                const float z = u[t] + bv;
                a[t] = z < 0.f ? 0.f : z;
            }
        } else {
            for (; t + W <= B; t += W) {
                const vf r = vload(u + t) + bv;
                vstore(a + t, r);
                bad |= nonfinite_lanes(r);
            }
            for (; t < B; ++t) a[t] = u[t] + bv;
        }
        uint32_t flag = any_lane(bad);
        for (int64_t s = B - B % W; s < B; ++s) flag |= nonfinite_bit(a[s]);   // the tail columns
        if (flag) __atomic_store_n(&any, 1, __ATOMIC_RELAXED);
    });
    return __atomic_load_n(&any, __ATOMIC_RELAXED) != 0;   // (the pool's join orders the stores before it)
}

// Returns x as a rounded float, so the compiler cannot fuse the product that made it into a later
// add (FMA contraction): a scalar column then computes exactly what a vector lane does. Without it
// GCC fused some tail columns and not others, depending on how it unrolled the loop.
static inline float rounded(float x) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__("" : "+x"(x));
#endif
    return x;
}

// dz = grad * act'(z) for every output neuron (ReLU: relu_scale where A > 0, else 0), summed over
// each output motif into dU and over the batch into db (per neuron, or per motif). The upstream
// gradient of neuron i is grad[(i / grad_group) * ld + t]. dU may alias A when m == 1: each
// element of A is read before the same element of dU is written. The batch sums use W lane
// partials added in a fixed order, so they do not depend on the thread count.
// `check`: also returns whether an upstream gradient value read is NaN or infinite (a gradient
// panel handed on by the next layer of a chain without rows is checked here, in the same pass).
static bool group_backward(int64_t G, int64_t m, int64_t n, const float* grad, int64_t grad_group,
                           const float* A, bool relu, float relu_scale, bool per_neuron, float* dU, float* db,
                           int64_t B, int64_t ld, int num_threads, bool check) {
    int any = 0;   // set with the compiler's atomic builtins: no STL template in an ISA unit
    parallel_for(G, grain_for(m * B), threads_for(n * B, num_threads), [&](int64_t r) {
        float* du = dU + r * ld;
        const int64_t i0 = r * m, i1 = std::min(n, i0 + m);
        float group_total = 0.f;
        const vf zero = vf{};
        vbits bad{};
        uint32_t flag = 0;   // (the tail columns)
        for (int64_t i = i0; i < i1; ++i) {
            const float* gi = grad + (i / grad_group) * ld;
            const float* a = A + i * ld;
            const bool first = i == i0;
            vf part = vf{};
            int64_t t = 0;
            for (; t + W <= B; t += W) {
                vf dz = vload(gi + t);
                if (check) bad |= nonfinite_lanes(dz);
                if (relu) dz = vload(a + t) > zero ? dz * relu_scale : zero;
                vstore(du + t, first ? dz : vload(du + t) + dz);
                part += dz;
            }
            float total = fast_hsum(part);
            for (; t < B; ++t) {
                if (check) flag |= nonfinite_bit(gi[t]);
                const float dz = relu ? (a[t] > 0.f ? rounded(gi[t] * relu_scale) : 0.f) : gi[t];
                du[t] = first ? dz : du[t] + dz;
                total += dz;
            }
            if (per_neuron)
                db[i] = total;
            else
                group_total += total;
        }
        if (!per_neuron) db[r] = group_total;
        flag |= any_lane(bad);
        if (flag) __atomic_store_n(&any, 1, __ATOMIC_RELAXED);
    });
    return __atomic_load_n(&any, __ATOMIC_RELAXED) != 0;   // (the pool's join orders the stores before it)
}

// RigL's block-gradient scores. Every score is acc = 0; acc += dU[r, b] * S[c, b] for b = 0, 1, ..., B-1
// in one vector lane, whatever the row and column blocking.
template <int NR, int NV>
static inline void score_block(const float* __restrict dU, int64_t ld, const float* __restrict St, int64_t Cp,
                               int64_t B, float* __restrict out) {
    vf acc[NR][NV];
    for (int q = 0; q < NR; ++q)
        for (int v = 0; v < NV; ++v) acc[q][v] = vf{};
    for (int64_t b = 0; b < B; ++b) {
        vf s[NV];
        for (int v = 0; v < NV; ++v) s[v] = vload(St + b * Cp + v * W);
        for (int q = 0; q < NR; ++q) {
            const float d = dU[q * ld + b];
            for (int v = 0; v < NV; ++v) acc[q][v] += d * s[v];
        }
    }
    for (int q = 0; q < NR; ++q)
        for (int v = 0; v < NV; ++v) vstore(out + q * Cp + v * W, acc[q][v]);
}

static void score_tile(const float* dU, int64_t nr, const float* St, int64_t Cp, int64_t B, int64_t ld, float* out) {
    constexpr int NV = W >= 16 ? 2 : 4;   // 4 x NV accumulators stay in registers
    int64_t i = 0;
    for (; i + 4 <= nr; i += 4) {
        int64_t j = 0;
        for (; j + NV * W <= Cp; j += NV * W) score_block<4, NV>(dU + i * ld, ld, St + j, Cp, B, out + i * Cp + j);
        for (; j < Cp; j += W) score_block<4, 1>(dU + i * ld, ld, St + j, Cp, B, out + i * Cp + j);
    }
    for (; i < nr; ++i) {
        int64_t j = 0;
        for (; j + NV * W <= Cp; j += NV * W) score_block<1, NV>(dU + i * ld, ld, St + j, Cp, B, out + i * Cp + j);
        for (; j < Cp; j += W) score_block<1, 1>(dU + i * ld, ld, St + j, Cp, B, out + i * Cp + j);
    }
}


// ---- Dense GEMM: the dense path of a layer whose every block is active ------------------------
// C[i * ldc + j] = sum_k A(i, k) B(k, j) for i < M, j < N, with A(i, k) = a[i * a_rs + k * a_cs] and
// B(k, j) = b[k * b_rs + j * b_cs]: one routine serves the forward (K S), the weight gradient
// (dU S^T) and the input gradient (K^T dU) on the panel layout.
//
// Blocking: K in blocks of kGemmKC, N in blocks of kGemmNC, M in tiles of kGemmMC rows; A of one
// tile and K block is packed on the stack in strips of kGemmMR rows (zero-padded). A row-major B
// (b_cs == 1: a panel) is read in place, strips of kGemmNR columns whose rows are b_rs apart; the
// last strip of a row reads up to the next multiple of W columns, which a panel row holds (its
// stride ld is a multiple of 16 >= N) and whose extra lanes are not stored. A transposed B
// (dK = dU S^T, K = the batch) is first packed whole into the caller's `bpack` (zero-padded strips,
// the size of one panel). A micro-kernel keeps an MR x NR block of C in registers over one K block. Every
// element of C is
//   acc = 0; acc += A(i, k) B(k, j) for k = k0 .. k1-1 in order (one lane, one FMA or mul+add);
//   C = acc (first K block) or C = C + acc (later blocks, in order),
// whatever its tile, strip or thread: the tiles are fixed by the problem sizes alone, so results
// are bitwise independent of the thread count, and a column of C (a sample, when N is the batch)
// does not depend on its position or on N.
constexpr int kGemmNV = 2;                          // vectors per micro-tile row
constexpr int64_t kGemmNR = kGemmNV * W;            // micro-tile columns
constexpr int64_t kGemmMR = W >= 16 ? 12 : 6;       // micro-tile rows (2 * MR accumulators)
constexpr int64_t kGemmKC = 256;                    // K block: a B strip (KC x NR) stays in L1
constexpr int64_t kGemmMC = 96;                     // M tile: its packed A (MC x KC) stays in L2
constexpr int64_t kGemmNC = 512;                    // N block of a tile (at most)
constexpr int64_t kGemmMinTiles = 8;                // tiles below which N blocks get narrower
static_assert(kGemmMC % kGemmMR == 0 && kGemmNC % kGemmNR == 0, "GEMM blocking");

// One MR x (NVE * W) block of C over kc steps of packed A (ap[k * MR + q]) and B (bp[k * bs + j]);
// mr x nr of it are stored (edge tiles), added to C when `accumulate`.
template <int NVE>
static inline void gemm_micro(int64_t kc, const float* __restrict ap, const float* __restrict bp, int64_t bs,
                              float* __restrict c, int64_t ldc, int64_t mr, int64_t nr, bool accumulate) {
    vf acc[kGemmMR][NVE];
    for (int q = 0; q < kGemmMR; ++q)
        for (int v = 0; v < NVE; ++v) acc[q][v] = vf{};
    for (int64_t k = 0; k < kc; ++k) {
        vf bv[NVE];
        for (int v = 0; v < NVE; ++v) bv[v] = vload(bp + k * bs + v * W);
        for (int q = 0; q < kGemmMR; ++q) {
            const float av = ap[k * kGemmMR + q];
            for (int v = 0; v < NVE; ++v) acc[q][v] += av * bv[v];
        }
    }
    if (mr == kGemmMR && nr == NVE * W) {
        for (int q = 0; q < kGemmMR; ++q)
            for (int v = 0; v < NVE; ++v) {
                float* cp = c + q * ldc + v * W;
                vstore(cp, accumulate ? vload(cp) + acc[q][v] : acc[q][v]);
            }
        return;
    }
    alignas(64) float t[kGemmMR * NVE * W];
    for (int q = 0; q < kGemmMR; ++q)
        for (int v = 0; v < NVE; ++v) vstore(t + (q * NVE + v) * W, acc[q][v]);
    for (int64_t q = 0; q < mr; ++q)
        for (int64_t j = 0; j < nr; ++j)
            c[q * ldc + j] = accumulate ? c[q * ldc + j] + t[q * NVE * W + j] : t[q * NVE * W + j];
}

// Packs rows [i0, i0 + mc) x columns [k0, k0 + kc) of A into strips of MR rows: ap[s * kc * MR + k * MR + q].
static inline void gemm_pack_a(const float* a, int64_t a_rs, int64_t a_cs, int64_t i0, int64_t mc, int64_t k0,
                               int64_t kc, float* __restrict ap) {
    if (a_rs == 1) {  // column-major A (K^T): the tile's mc values of each k are consecutive
        for (int64_t k = 0; k < kc; ++k) {
            const float* src = a + (k0 + k) * a_cs + i0;
            if (k + 8 < kc)  // rows a page or more apart: no hardware prefetcher follows them
                for (int64_t q = 0; q < mc; q += 16) __builtin_prefetch(src + 8 * a_cs + q);
            for (int64_t s = 0; s * kGemmMR < mc; ++s) {
                float* __restrict dst = ap + s * kc * kGemmMR + k * kGemmMR;
                const int64_t q0 = s * kGemmMR, mr = std::min(kGemmMR, mc - q0);
                if (mr == kGemmMR) {
                    for (int q = 0; q < kGemmMR; ++q) dst[q] = src[q0 + q];
                } else {
                    for (int64_t q = 0; q < kGemmMR; ++q) dst[q] = q < mr ? src[q0 + q] : 0.f;
                }
            }
        }
        return;
    }
    for (int64_t s = 0; s * kGemmMR < mc; ++s) {
        const int64_t r0 = i0 + s * kGemmMR, mr = std::min(kGemmMR, i0 + mc - r0);
        float* __restrict dst = ap + s * kc * kGemmMR;
        {  // row-major A: MR rows read side by side
            const float* rows[kGemmMR];
            for (int64_t q = 0; q < kGemmMR; ++q) rows[q] = a + (r0 + std::min(q, mr - 1)) * a_rs + k0 * a_cs;
            if (mr == kGemmMR && a_cs == 1) {
                for (int64_t k = 0; k < kc; ++k)
                    for (int q = 0; q < kGemmMR; ++q) dst[k * kGemmMR + q] = rows[q][k];
            } else {
                for (int64_t k = 0; k < kc; ++k)
                    for (int64_t q = 0; q < kGemmMR; ++q) dst[k * kGemmMR + q] = q < mr ? rows[q][k * a_cs] : 0.f;
            }
        }
    }
}

// Packs rows [k0, k0 + kc) x columns [j0, j0 + nr) of a transposed B (b_rs == 1 in practice) as
// one strip: bp[k * NR + j], zero-padded to NR.
static inline void gemm_pack_b(const float* b, int64_t b_rs, int64_t b_cs, int64_t k0, int64_t kc, int64_t j0,
                               int64_t nr, float* __restrict bp) {
    for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = nr; j < kGemmNR; ++j) bp[k * kGemmNR + j] = 0.f;
    for (int64_t j = 0; j < nr; ++j) {  // each column of the strip is a panel row
        const float* src = b + (j0 + j) * b_cs + k0 * b_rs;
        for (int64_t k = 0; k < kc; ++k) bp[k * kGemmNR + j] = src[k * b_rs];
    }
}

static void gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                 int64_t b_rs, int64_t b_cs, float* c, int64_t ldc, float* bpack, int num_threads) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) c[i * ldc + j] = 0.f;
        return;
    }
    const bool direct_b = b_cs == 1;
    const int64_t n_kb = (K + kGemmKC - 1) / kGemmKC, n_mt = (M + kGemmMC - 1) / kGemmMC;
    const int64_t n_js = (N + kGemmNR - 1) / kGemmNR, npad = n_js * kGemmNR;
    // N blocks of kGemmNC columns; when M has fewer than kGemmMinTiles tiles (a 10-class output
    // layer's forward: one), narrower blocks, whole strips each, so that the threads share the
    // product. Sizes alone fix the blocks, and no element's sums depend on them.
    const int64_t want_nb = std::min(n_js, (kGemmMinTiles + n_mt - 1) / n_mt);
    const int64_t nc = std::min(kGemmNC, (n_js + want_nb - 1) / want_nb * kGemmNR);
    const int64_t n_nb = (N + nc - 1) / nc;
    if (!direct_b)  // B packed strip by strip of every K block: [kb][strip][kcb][NR]
        parallel_for(n_kb * n_js, 1, threads_for(K * N, num_threads), [&](int64_t t) {
            const int64_t kb = t / n_js, js = t % n_js, k0 = kb * kGemmKC, kc = std::min(kGemmKC, K - k0);
            gemm_pack_b(b, b_rs, b_cs, k0, kc, js * kGemmNR, std::min(kGemmNR, N - js * kGemmNR),
                        bpack + k0 * npad + js * kc * kGemmNR);
        });
    // Tiles of MC rows x NC columns.
    parallel_for(n_mt * n_nb, 1, threads_for(M * N * K, num_threads), [&](int64_t t) {
        alignas(64) float ap[kGemmMC * kGemmKC];
        const int64_t i0 = t / n_nb * kGemmMC, mc = std::min(kGemmMC, M - i0);
        const int64_t n0 = t % n_nb * nc, nb = std::min(nc, N - n0);
        for (int64_t kb = 0; kb < n_kb; ++kb) {
            const int64_t k0 = kb * kGemmKC, kc = std::min(kGemmKC, K - k0);
            gemm_pack_a(a, a_rs, a_cs, i0, mc, k0, kc, ap);
            for (int64_t j = n0; j < n0 + nb; j += kGemmNR) {
                const int64_t nr = std::min(kGemmNR, n0 + nb - j);
                const float* bp = direct_b ? b + k0 * b_rs + j : bpack + k0 * npad + j * kc;
                const int64_t bs = direct_b ? b_rs : kGemmNR;
                float* cj = c + i0 * ldc + j;
                for (int64_t s = 0; s * kGemmMR < mc; ++s) {
                    const float* as = ap + s * kc * kGemmMR;
                    const int64_t mr = std::min(kGemmMR, mc - s * kGemmMR);
                    if (nr > (kGemmNV - 1) * W || !direct_b)
                        gemm_micro<kGemmNV>(kc, as, bp, bs, cj + s * kGemmMR * ldc, ldc, mr, nr, kb > 0);
                    else
                        gemm_micro<1>(kc, as, bp, bs, cj + s * kGemmMR * ldc, ldc, mr, nr, kb > 0);
                }
            }
        }
    });
}

}  // namespace MC_ISA_NS

const KernelTable& MC_TABLE_FN() {
    static const KernelTable table{MC_ISA_NAME,           &MC_ISA_NS::spmm,           &MC_ISA_NS::sddmm,
                                   &MC_ISA_NS::group_sum, &MC_ISA_NS::expand_bias_act, &MC_ISA_NS::group_backward,
                                   &MC_ISA_NS::score_tile,
                                   &MC_ISA_NS::gemm,           MC_ISA_NS::kGemmNR,
                                   &MC_ISA_NS::fused_backward, &MC_ISA_NS::dropout,
                                   &MC_ISA_NS::transpose_blocks};
    return table;
}

}  // namespace motifcore
