// Probe (issues 20/21): fused backwards of one block-sparse layer at m = 1 against the engine's
// split path (SDDMM for dK, the transposed-weight gather, the transposed SpMM for dS).
//
// Not part of the build. Build the engine's static library, then this file against it:
//   cmake -S . -B /tmp/fb-ctest -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOTIFCORE_BUILD_PYTHON=OFF
//   cmake --build /tmp/fb-ctest --target motifcore_core
//   g++ -O3 -std=gnu++17 -mavx512f -mavx512vl -mavx2 -mfma -mprefer-vector-width=512 -Icpp
//       scripts/fused_backward_probe.cpp /tmp/fb-ctest/libmotifcore_core.a -lpthread -o /tmp/fbprobe
//   /tmp/fbprobe [G=3000] [density=0.1] [B=128] [rounds=15] [max threads=2]
//
// The split path and "engine ..." call the engine's own kernels (kernels_impl.hpp, compiled here
// with the AVX-512 flags of kernels_avx512.cpp; the permutations copy Layer::backward's). The
// other variants (see Kind below) are reimplementations here:
//  * row order (the idea of the issue): one pass over the CSR rows i with dU_i in L1; per stored
//    block (i, j) dK_ij = dU_i . S_j and dS_j += K_ij dU_i, a read-modify-write of row j of dS,
//    in column blocks of `budget` bytes of (S, dS) rows, the blocks split among the threads;
//  * transposed order: one pass over the transposed index; per input row j, S_j and the running
//    dS_j stay in registers (8 vectors each at B = 128), and each stored block (i, j) gathers one
//    row dU_i for both multiply-adds; K comes in and dK goes out through t_pos, by separate
//    permutation loops or inside the kernel;
//  * T4: the transposed order with the transposed SpMM's four accumulator classes (rank % 4 in the
//    column, kept in an L1 buffer), so dS is bitwise the split path's.
// dK is bitwise the SDDMM's in every variant; dS of the others sums each column in ascending row.
// Timing: interleaved rounds, minima; at 1 thread the thread's CPU time (busy shared machine).
#define MC_ISA_NS probe_avx512
#define MC_VEC_BYTES 64
#define MC_ISA_NAME "probe-avx512"
#define MC_TABLE_FN probe_kernels_avx512
#include "kernels_impl.hpp"

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pattern.hpp"

namespace motifcore {
const KernelTable& probe_kernels_avx512();
namespace probe_avx512 {

// Entries [p, q) of one CSR row whose column is below c_end: dK[p] = dot(d, S[idx[p]]) over the
// batch (the accumulation of sddmm_segment) and dS[idx[p]] += K[p] * d. Returns q.
template <bool PF>
static inline int64_t fused_segment(const float* __restrict d, const int32_t* __restrict idx,
                                    const float* __restrict Kv, int64_t p, int64_t pe, int32_t c_end,
                                    const float* __restrict S, float* __restrict dS, int64_t B, int64_t ld,
                                    float* __restrict dK) {
    const int64_t Bv = B - B % W;
    int64_t q = p;
    while (q < pe && idx[q] < c_end) ++q;
    for (; p + 4 <= q; p += 4) {
        if constexpr (PF) {
            for (int64_t f = p + 4; f < std::min(p + 8, q); ++f)
                for (int64_t b = 0; b < B; b += 16) {
                    __builtin_prefetch(S + static_cast<int64_t>(idx[f]) * ld + b);
                    __builtin_prefetch(dS + static_cast<int64_t>(idx[f]) * ld + b, 1);
                }
        }
        const int64_t o0 = static_cast<int64_t>(idx[p]) * ld, o1 = static_cast<int64_t>(idx[p + 1]) * ld;
        const int64_t o2 = static_cast<int64_t>(idx[p + 2]) * ld, o3 = static_cast<int64_t>(idx[p + 3]) * ld;
        const float* s0 = S + o0;
        const float* s1 = S + o1;
        const float* s2 = S + o2;
        const float* s3 = S + o3;
        float* g0 = dS + o0;
        float* g1 = dS + o1;
        float* g2 = dS + o2;
        float* g3 = dS + o3;
        const float k0 = Kv[p], k1 = Kv[p + 1], k2 = Kv[p + 2], k3 = Kv[p + 3];
        vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
        for (int64_t b = 0; b < Bv; b += W) {
            const vf dv = vload(d + b);
            a0 += dv * vload(s0 + b);
            a1 += dv * vload(s1 + b);
            a2 += dv * vload(s2 + b);
            a3 += dv * vload(s3 + b);
            vstore(g0 + b, vload(g0 + b) + k0 * dv);
            vstore(g1 + b, vload(g1 + b) + k1 * dv);
            vstore(g2 + b, vload(g2 + b) + k2 * dv);
            vstore(g3 + b, vload(g3 + b) + k3 * dv);
        }
        const v4f r = hsum4x(a0, a1, a2, a3);
        float r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
        for (int64_t b = Bv; b < B; ++b) {
            r0 += d[b] * s0[b];
            r1 += d[b] * s1[b];
            r2 += d[b] * s2[b];
            r3 += d[b] * s3[b];
            g0[b] += k0 * d[b];
            g1[b] += k1 * d[b];
            g2[b] += k2 * d[b];
            g3[b] += k3 * d[b];
        }
        dK[p] = r0;
        dK[p + 1] = r1;
        dK[p + 2] = r2;
        dK[p + 3] = r3;
    }
    for (; p < q; ++p) {
        const int64_t o0 = static_cast<int64_t>(idx[p]) * ld;
        const float* s0 = S + o0;
        float* g0 = dS + o0;
        const float k0 = Kv[p];
        vf a0 = vf{};
        for (int64_t b = 0; b < Bv; b += W) {
            const vf dv = vload(d + b);
            a0 += dv * vload(s0 + b);
            vstore(g0 + b, vload(g0 + b) + k0 * dv);
        }
        float r0 = fast_hsum(a0);
        for (int64_t b = Bv; b < B; ++b) {
            r0 += d[b] * s0[b];
            g0[b] += k0 * d[b];
        }
        dK[p] = r0;
    }
    return q;
}

// Fused backward: column blocks of cb input rows, grouped into `parts` contiguous ranges (one
// chunk each, with its own cursors: cur holds parts * rows entries).
template <bool PF>
static void fused_backward(int64_t rows, int64_t cols, const int64_t* indptr, const int32_t* idx, const float* Kv,
                           const float* dU, const float* S, float* dK, float* dS, int64_t B, int64_t ld,
                           int64_t budget, int parts, int64_t* cur, int num_threads) {
    const int32_t cb = static_cast<int32_t>(std::max<int64_t>(16, std::min<int64_t>(cols, budget / (2 * ld * 4))));
    const int32_t n_cb = static_cast<int32_t>((cols + cb - 1) / cb);
    parts = std::max(1, std::min<int>(parts, n_cb));
    parallel_for(parts, 1, num_threads, [&](int64_t t) {
        const int32_t k_begin = static_cast<int32_t>(t * n_cb / parts), k_end = static_cast<int32_t>((t + 1) * n_cb / parts);
        int64_t* c = cur + t * rows;
        const int32_t col0 = k_begin * cb;
        for (int64_t r = 0; r < rows; ++r)
            c[r] = col0 == 0 ? indptr[r]
                             : std::lower_bound(idx + indptr[r], idx + indptr[r + 1], col0) - idx;
        for (int32_t k = k_begin; k < k_end; ++k) {
            const int32_t c_begin = k * cb, c_end = static_cast<int32_t>(std::min<int64_t>(cols, int64_t(c_begin) + cb));
            for (int32_t j = c_begin; j < c_end; ++j) std::memset(dS + j * ld, 0, sizeof(float) * B);
            for (int64_t r = 0; r < rows; ++r)
                c[r] = fused_segment<PF>(dU + r * ld, idx, Kv, c[r], indptr[r + 1], c_end, S, dS, B, ld, dK);
        }
    });
}


// Transposed-order fused backward: one input row j at a time, S_j and the running dS_j held in
// registers (NV vectors = the whole batch), over the stored blocks (i, j) of column j in ascending
// i (the transposed index): dK[pos] = dot(dU_i, S_j) (the SDDMM's accumulation, bitwise) and
// dS_j += K[pos] * dU_i, with K read and dK written through t_pos. The output-gradient panel is
// visited one block of rows at a time (row_budget bytes, L2); dS_j goes to the panel between them.
template <int NV, bool PF, bool CONTIG = false, bool KIN = false>
static void fusedT_backward(int64_t cols, int64_t rows, const int64_t* t_indptr, const int32_t* t_rows,
                            const int32_t* t_pos, const float* Kv, const float* dU, const float* S, float* dK,
                            float* dS, int64_t B, int64_t ld, int64_t row_budget, int64_t* cur, int num_threads) {
    const int32_t rb = static_cast<int32_t>(std::max<int64_t>(16, std::min<int64_t>(rows, row_budget / (ld * 4))));
    const int32_t n_rb = static_cast<int32_t>((rows + rb - 1) / rb);
    std::copy(t_indptr, t_indptr + cols, cur);
    for (int32_t k = 0; k < n_rb; ++k) {
        const int32_t r_end = static_cast<int32_t>(std::min<int64_t>(rows, int64_t(k + 1) * rb));
        parallel_for(cols, 16, num_threads, [&](int64_t j) {
            const float* __restrict s = S + j * ld;
            float* __restrict g = dS + j * ld;
            vf sv[NV], acc[NV];
            for (int v = 0; v < NV; ++v) {
                sv[v] = vload(s + v * W);
                acc[v] = k == 0 ? vf{} : vload(g + v * W);
            }
            int64_t p = cur[j], q = p;
            const int64_t pe = t_indptr[j + 1];
            while (q < pe && t_rows[q] < r_end) ++q;
            for (; p + 4 <= q; p += 4) {
                if constexpr (PF && CONTIG) {  // the gathered rows of the next group
                    for (int64_t f = p + 4; f < std::min(p + 8, q); ++f)
                        for (int64_t b = 0; b < B; b += 16) __builtin_prefetch(dU + static_cast<int64_t>(t_rows[f]) * ld + b);
                } else if constexpr (PF) {
                    if (p + 16 < pe) {
                        __builtin_prefetch(Kv + t_pos[p + 16]);
                        __builtin_prefetch(dK + t_pos[p + 16], 1);
                    }
                }
                const float* u0 = dU + static_cast<int64_t>(t_rows[p]) * ld;
                const float* u1 = dU + static_cast<int64_t>(t_rows[p + 1]) * ld;
                const float* u2 = dU + static_cast<int64_t>(t_rows[p + 2]) * ld;
                const float* u3 = dU + static_cast<int64_t>(t_rows[p + 3]) * ld;
                const int64_t q0 = CONTIG ? p : t_pos[p], q1 = CONTIG ? p + 1 : t_pos[p + 1];
                const int64_t q2 = CONTIG ? p + 2 : t_pos[p + 2], q3 = CONTIG ? p + 3 : t_pos[p + 3];
                float k0, k1, k2, k3;
                if constexpr (KIN) {
                    if (p + 64 < pe) __builtin_prefetch(Kv + t_pos[p + 64]);
                    if (p + 65 < pe) __builtin_prefetch(Kv + t_pos[p + 65]);
                    if (p + 66 < pe) __builtin_prefetch(Kv + t_pos[p + 66]);
                    if (p + 67 < pe) __builtin_prefetch(Kv + t_pos[p + 67]);
                    k0 = Kv[t_pos[p]], k1 = Kv[t_pos[p + 1]], k2 = Kv[t_pos[p + 2]], k3 = Kv[t_pos[p + 3]];
                } else {
                    k0 = Kv[q0], k1 = Kv[q1], k2 = Kv[q2], k3 = Kv[q3];
                }
                vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
#pragma GCC unroll 16
                for (int v = 0; v < NV; ++v) {
                    const vf x0 = vload(u0 + v * W), x1 = vload(u1 + v * W);
                    const vf x2 = vload(u2 + v * W), x3 = vload(u3 + v * W);
                    a0 += x0 * sv[v];
                    a1 += x1 * sv[v];
                    a2 += x2 * sv[v];
                    a3 += x3 * sv[v];
                    acc[v] = (((acc[v] + k0 * x0) + k1 * x1) + k2 * x2) + k3 * x3;
                }
                const v4f r = hsum4x(a0, a1, a2, a3);
                dK[q0] = r[0];
                dK[q1] = r[1];
                dK[q2] = r[2];
                dK[q3] = r[3];
            }
            for (; p < q; ++p) {
                const float* u0 = dU + static_cast<int64_t>(t_rows[p]) * ld;
                const int64_t q0 = CONTIG ? p : t_pos[p];
                const float k0 = KIN ? Kv[t_pos[p]] : Kv[q0];
                vf a0 = vf{};
#pragma GCC unroll 16
                for (int v = 0; v < NV; ++v) {
                    const vf x0 = vload(u0 + v * W);
                    a0 += x0 * sv[v];
                    acc[v] = acc[v] + k0 * x0;
                }
                dK[q0] = fast_hsum(a0);
            }
            cur[j] = q;
            for (int v = 0; v < NV; ++v) vstore(g + v * W, acc[v]);
        });
    }
}

// The transposed-order fused backward with the summation order of the engine's transposed SpMM
// (so dS is bitwise the same): the stored blocks of column j, in ascending row order, fall into
// four classes by their rank in the column (rank % 4, the ranks past the last full group of four
// in class 0), each class summed in its own accumulator row, the four added as ((a0 + a1) + a2) + a3
// at the end. The accumulators live in `acc` (4 x ld floats, L1) between the row blocks of the
// output-gradient panel. dK is written in transposed order (dKt[q]), as the SDDMM computes it.
static inline void t4_one(const float* __restrict u0, const float* __restrict s, float* __restrict a, float k0,
                          int64_t Bv, int64_t B, float* __restrict dkt) {
    vf d0 = vf{};
    for (int64_t b = 0; b < Bv; b += W) {
        const vf x0 = vload(u0 + b);
        d0 += x0 * vload(s + b);
        vstore(a + b, vload(a + b) + k0 * x0);
    }
    float r0 = fast_hsum(d0);
    for (int64_t b = Bv; b < B; ++b) {
        r0 += u0[b] * s[b];
        a[b] += k0 * u0[b];
    }
    *dkt = r0;
}

static void t4_backward(int64_t cols, int64_t rows, const int64_t* t_indptr, const int32_t* t_rows, const float* Kt,
                        const float* dU, const float* S, float* dKt, float* dS, int64_t B, int64_t ld,
                        int64_t row_budget, int64_t* cur, int num_threads) {
    const int32_t rb = static_cast<int32_t>(std::max<int64_t>(16, std::min<int64_t>(rows, row_budget / (ld * 4))));
    const int32_t n_rb = static_cast<int32_t>((rows + rb - 1) / rb);
    const int64_t Bv = B - B % W;
    constexpr int64_t kCols = 16;
    const int64_t n_chunks = (cols + kCols - 1) / kCols;
    // acc: 4 rows of ld per column of a chunk, kept across the row blocks.
    PanelVector accbuf(static_cast<size_t>(cols * 4 * ld));  // 64-byte aligned: split stores do not forward
    std::copy(t_indptr, t_indptr + cols, cur);
    for (int32_t k = 0; k < n_rb; ++k) {
        const int32_t r_end = static_cast<int32_t>(std::min<int64_t>(rows, int64_t(k + 1) * rb));
        const bool last = k + 1 == n_rb;
        parallel_for(n_chunks, 1, num_threads, [&](int64_t c) {
            for (int64_t j = c * kCols; j < std::min(cols, (c + 1) * kCols); ++j) {
                const float* __restrict s = S + j * ld;
                float* __restrict a = accbuf.data() + j * 4 * ld;
                if (k == 0) std::memset(a, 0, sizeof(float) * 4 * ld);
                const int64_t p0 = t_indptr[j], pe = t_indptr[j + 1], n4 = p0 + (pe - p0) / 4 * 4;
                int64_t p = cur[j], q = p;
                while (q < pe && t_rows[q] < r_end) ++q;
                // singles up to the next group boundary (a group split by the row blocks)
                for (; p < q && (p < n4 ? (p - p0) % 4 != 0 : true); ++p) {
                    const int64_t cls = p < n4 ? (p - p0) % 4 : 0;
                    t4_one(dU + static_cast<int64_t>(t_rows[p]) * ld, s, a + cls * ld, Kt[p], Bv, B, dKt + p);
                }
                for (; p + 4 <= std::min(q, n4); p += 4) {
                    const float* u0 = dU + static_cast<int64_t>(t_rows[p]) * ld;
                    const float* u1 = dU + static_cast<int64_t>(t_rows[p + 1]) * ld;
                    const float* u2 = dU + static_cast<int64_t>(t_rows[p + 2]) * ld;
                    const float* u3 = dU + static_cast<int64_t>(t_rows[p + 3]) * ld;
                    const float k0 = Kt[p], k1 = Kt[p + 1], k2 = Kt[p + 2], k3 = Kt[p + 3];
                    float* __restrict a0p = a;
                    float* __restrict a1p = a + ld;
                    float* __restrict a2p = a + 2 * ld;
                    float* __restrict a3p = a + 3 * ld;
                    vf d0 = vf{}, d1 = vf{}, d2 = vf{}, d3 = vf{};
                    for (int64_t b = 0; b < Bv; b += W) {
                        const vf x0 = vload(u0 + b), x1 = vload(u1 + b), x2 = vload(u2 + b), x3 = vload(u3 + b);
                        const vf sv = vload(s + b);
                        d0 += x0 * sv;
                        d1 += x1 * sv;
                        d2 += x2 * sv;
                        d3 += x3 * sv;
                        vstore(a0p + b, vload(a0p + b) + k0 * x0);
                        vstore(a1p + b, vload(a1p + b) + k1 * x1);
                        vstore(a2p + b, vload(a2p + b) + k2 * x2);
                        vstore(a3p + b, vload(a3p + b) + k3 * x3);
                    }
                    const v4f r = hsum4x(d0, d1, d2, d3);
                    float r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
                    for (int64_t b = Bv; b < B; ++b) {
                        r0 += u0[b] * s[b];
                        r1 += u1[b] * s[b];
                        r2 += u2[b] * s[b];
                        r3 += u3[b] * s[b];
                        a0p[b] += k0 * u0[b];
                        a1p[b] += k1 * u1[b];
                        a2p[b] += k2 * u2[b];
                        a3p[b] += k3 * u3[b];
                    }
                    dKt[p] = r0;
                    dKt[p + 1] = r1;
                    dKt[p + 2] = r2;
                    dKt[p + 3] = r3;
                }
                for (; p < q; ++p) {
                    const int64_t cls = p < n4 ? (p - p0) % 4 : 0;
                    t4_one(dU + static_cast<int64_t>(t_rows[p]) * ld, s, a + cls * ld, Kt[p], Bv, B, dKt + p);
                }
                cur[j] = q;
                if (last) {
                    float* g = dS + j * ld;
                    for (int64_t b = 0; b < Bv; b += W)
                        vstore(g + b, ((vload(a + b) + vload(a + ld + b)) + vload(a + 2 * ld + b)) + vload(a + 3 * ld + b));
                    for (int64_t b = Bv; b < B; ++b) g[b] = ((a[b] + a[ld + b]) + a[2 * ld + b]) + a[3 * ld + b];
                }
            }
        });
    }
}
}  // namespace probe_avx512
}  // namespace motifcore

using namespace motifcore;

// Layer::backward's permutations (cpp/layer.cpp, permute_prefetched): gather dst[q] = src[pos[q]] or
// scatter dst[pos[q]] = src[q], the line 512 entries on prefetched.
static void permute(int64_t n, const int32_t* pos, const float* src, float* dst, bool gather, int nt) {
    constexpr int64_t kAhead = 512, kChunk = int64_t(1) << 14;
    parallel_for((n + kChunk - 1) / kChunk, 1, threads_for(n, nt), [&](int64_t c) {
        const int64_t q0 = c * kChunk, q1 = std::min(n, q0 + kChunk), qp = std::min(q1, n - kAhead);
        int64_t q = q0;
        if (gather) {
            for (; q < qp; ++q) {
                __builtin_prefetch(src + pos[q + kAhead]);
                dst[q] = src[pos[q]];
            }
            for (; q < q1; ++q) dst[q] = src[pos[q]];
        } else {
            for (; q < qp; ++q) {
                __builtin_prefetch(dst + pos[q + kAhead], 1);
                dst[pos[q]] = src[q];
            }
            for (; q < q1; ++q) dst[pos[q]] = src[q];
        }
    });
}

// At 1 thread the calling thread's CPU time (time descheduled by other processes not counted); at
// more threads wall time.
static bool g_cpu_clock = true;
static double now() {
    if (g_cpu_clock) {
        timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
    const int64_t G = argc > 1 ? std::atol(argv[1]) : 3000;
    const double density = argc > 2 ? std::atof(argv[2]) : 0.1;
    const int64_t B = argc > 3 ? std::atol(argv[3]) : 128;
    const int reps = argc > 4 ? std::atoi(argv[4]) : 15;
    const int64_t ld = panel_ld(B);
    Rng rng(12345);
    const uint64_t total = static_cast<uint64_t>(G) * static_cast<uint64_t>(G);
    const auto nb = static_cast<uint64_t>(std::llround(density * static_cast<double>(total)));
    const auto pos = sample_positions(total, nb, 0, rng, [](uint64_t) { return false; });
    BlockPattern pat(G, G, pos, true);
    const int64_t nnz = pat.n_blocks();
    std::vector<float> K(nnz), dK_ref(nnz), dK(nnz), Kt(nnz), dKt(nnz);
    for (auto& x : K) x = static_cast<float>(rng.uniform() * 2 - 1) * 0.05f;
    PanelVector S(G * ld), dU(G * ld), dS_ref(G * ld), dS(G * ld);
    for (int64_t i = 0; i < G * ld; ++i) {
        S[i] = static_cast<float>(rng.uniform());
        dU[i] = static_cast<float>(rng.uniform() * 2 - 1) * 1e-3f;
    }
    std::vector<int64_t> cursor(G * 8);
    std::vector<int32_t> inv(nnz);
    for (int64_t q = 0; q < nnz; ++q) inv[pat.t_pos()[q]] = static_cast<int32_t>(q);
    const int64_t* indptr = pat.indptr().data();
    const int32_t* idx = pat.indices().data();

    auto current = [&](int nt) {
        probe_avx512::sddmm(G, indptr, idx, dU.data(), S.data(), dK_ref.data(), B, ld, cursor.data(), nt);
        const int32_t* tp = pat.t_pos().data();
        float* Ktp = Kt.data();
        const float* Kp = K.data();
        parallel_for(nnz, grain_for(1), threads_for(nnz, nt), [&](int64_t q) { Ktp[q] = Kp[tp[q]]; });
        probe_avx512::spmm(G, pat.t_indptr().data(), pat.t_rows().data(), Kt.data(), dU.data(), dS_ref.data(), B, ld,
                           nt);
    };
    auto current_parts = [&](int nt, double* part) {  // the same three passes, timed one by one
        double t0 = now();
        probe_avx512::sddmm(G, indptr, idx, dU.data(), S.data(), dK_ref.data(), B, ld, cursor.data(), nt);
        double t1 = now();
        const int32_t* tp = pat.t_pos().data();
        float* Ktp = Kt.data();
        const float* Kp = K.data();
        parallel_for(nnz, grain_for(1), threads_for(nnz, nt), [&](int64_t q) { Ktp[q] = Kp[tp[q]]; });
        double t2 = now();
        probe_avx512::spmm(G, pat.t_indptr().data(), pat.t_rows().data(), Kt.data(), dU.data(), dS_ref.data(), B, ld,
                           nt);
        double t3 = now();
        part[0] = std::min(part[0], t1 - t0);
        part[1] = std::min(part[1], t2 - t1);
        part[2] = std::min(part[2], t3 - t2);
    };
    // The variants. Transposed-order ones hold the batch in registers: B must be 8 vectors.
    enum Kind {
        kRow,            // row-order fused (CSR rows, dS rows read-modify-written per block), column blocks
        kTInline,        // transposed-order fused, K read and dK written through t_pos inside the kernel
        kTKernel,        // transposed-order kernel alone (Kt in, dKt out, contiguous)
        kTPlain,         // gather + transposed-order kernel + scatter, plain loops
        kTInverse,       // gather + kernel + dK gathered through the inverse permutation
        kTKin,           // K read through t_pos inside the kernel (prefetched), dKt scattered after
        kT4Kernel,       // transposed-order kernel keeping the transposed SpMM's four accumulator classes
        kT4Prefetched,   // prefetched gather + that kernel + prefetched scatter
        kTPrefetched,    // prefetched gather + transposed-order kernel + prefetched scatter
        kEngineKernel,   // the engine's KernelTable::fused_backward alone
        kEngineBackward  // the engine's fused path of Layer::backward (prefetched gather, kernel, scatter)
    };
    struct Variant {
        const char* name;
        Kind kind;
        int64_t budget;  // bytes per column block (kRow) or row block (the probe's transposed kernels)
    };
    const Variant variants[] = {
        {"row fused 768K", kRow, 768 << 10},
        {"row fused whole", kRow, int64_t(1) << 40},
        {"T inline K, dK", kTInline, 768 << 10},
        {"T kernel", kTKernel, 768 << 10},
        {"gth+T+sct plain", kTPlain, 768 << 10},
        {"gth+T+inverse", kTInverse, 768 << 10},
        {"K inline+T+sct", kTKin, 768 << 10},
        {"T4 kernel", kT4Kernel, 768 << 10},
        {"pf: gth+T4+sct", kT4Prefetched, 768 << 10},
        {"pf: gth+T+sct", kTPrefetched, 768 << 10},
        {"engine kernel", kEngineKernel, 0},
        {"engine backward", kEngineBackward, 0},
    };
    const int32_t* tp = pat.t_pos().data();
    const int64_t* ti = pat.t_indptr().data();
    const int32_t* tr = pat.t_rows().data();
    auto gather_plain = [&](int nt) {
        float* Ktp = Kt.data();
        const float* Kp = K.data();
        parallel_for(nnz, grain_for(1), threads_for(nnz, nt), [&](int64_t q) { Ktp[q] = Kp[tp[q]]; });
    };
    auto fused = [&](const Variant& v, int nt) -> bool {
        if (v.kind != kRow && v.kind != kEngineKernel && v.kind != kEngineBackward && B != 8 * probe_avx512::W)
            return false;   // the probe's own transposed kernels hold exactly 8 vectors
        switch (v.kind) {
            case kRow:
                probe_avx512::fused_backward<false>(G, G, indptr, idx, K.data(), dU.data(), S.data(), dK.data(),
                                                    dS.data(), B, ld, v.budget, nt, cursor.data(), nt);
                return true;
            case kTInline:
                probe_avx512::fusedT_backward<8, false>(G, G, ti, tr, tp, K.data(), dU.data(), S.data(), dK.data(),
                                                        dS.data(), B, ld, v.budget, cursor.data(), nt);
                return true;
            case kTKernel:
            case kTPlain:
            case kTInverse:
            case kTPrefetched:
                if (v.kind == kTPlain || v.kind == kTInverse) gather_plain(nt);
                if (v.kind == kTPrefetched) permute(nnz, tp, K.data(), Kt.data(), true, nt);
                probe_avx512::fusedT_backward<8, false, true>(G, G, ti, tr, tp, Kt.data(), dU.data(), S.data(),
                                                              dKt.data(), dS.data(), B, ld, v.budget, cursor.data(), nt);
                if (v.kind == kTPlain) {
                    float* dKp = dK.data();
                    const float* dKtp = dKt.data();
                    parallel_for(nnz, grain_for(1), threads_for(nnz, nt), [&](int64_t q) { dKp[tp[q]] = dKtp[q]; });
                }
                if (v.kind == kTInverse) {
                    float* dKp = dK.data();
                    const float* dKtp = dKt.data();
                    const int32_t* ip = inv.data();
                    parallel_for(nnz, grain_for(1), threads_for(nnz, nt), [&](int64_t p) { dKp[p] = dKtp[ip[p]]; });
                }
                if (v.kind == kTPrefetched) permute(nnz, tp, dKt.data(), dK.data(), false, nt);
                return true;
            case kTKin:
                probe_avx512::fusedT_backward<8, false, true, true>(G, G, ti, tr, tp, K.data(), dU.data(), S.data(),
                                                                    dKt.data(), dS.data(), B, ld, v.budget,
                                                                    cursor.data(), nt);
                permute(nnz, tp, dKt.data(), dK.data(), false, nt);
                return true;
            case kT4Kernel:
            case kT4Prefetched:
                if (v.kind == kT4Prefetched) permute(nnz, tp, K.data(), Kt.data(), true, nt);
                probe_avx512::t4_backward(G, G, ti, tr, Kt.data(), dU.data(), S.data(), dKt.data(), dS.data(), B, ld,
                                          v.budget, cursor.data(), nt);
                if (v.kind == kT4Prefetched) permute(nnz, tp, dKt.data(), dK.data(), false, nt);
                return true;
            case kEngineKernel:
            case kEngineBackward:
                if (v.kind == kEngineBackward) permute(nnz, tp, K.data(), Kt.data(), true, nt);
                probe_avx512::fused_backward(G, G, ti, tr, Kt.data(), dU.data(), S.data(), dKt.data(), dS.data(), B,
                                             ld, cursor.data(), nt);
                if (v.kind == kEngineBackward) permute(nnz, tp, dKt.data(), dK.data(), false, nt);
                return true;
        }
        return true;
    };
    // Correctness, per variant and thread count: the weight gradient (in CSR order, or in transposed
    // order for the kernels alone) against the SDDMM's, bitwise; dS against the transposed SpMM's,
    // bitwise and as max |diff| / max |dS|, and against the first variant's (the ascending-row sum).
    current(1);
    std::vector<float> dS_first;
    const float kNaN = std::nanf("");
    for (const auto& v : variants)
        for (int nt : {1, 2}) {
            std::fill(dS.begin(), dS.end(), kNaN);
            std::fill(dK.begin(), dK.end(), kNaN);
            std::fill(dKt.begin(), dKt.end(), kNaN);
            if (!fused(v, nt)) continue;
            const bool transposed_dk = v.kind == kTKernel || v.kind == kT4Kernel || v.kind == kEngineKernel;
            int64_t dk_diff = 0;
            for (int64_t p = 0; p < nnz; ++p)
                dk_diff += transposed_dk ? std::memcmp(&dKt[p], &dK_ref[tp[p]], 4) != 0
                                         : std::memcmp(&dK[p], &dK_ref[p], 4) != 0;
            double max_diff = 0, max_ref = 0;
            int64_t ds_diff = 0;
            std::vector<float> flat;
            for (int64_t j = 0; j < G; ++j)
                for (int64_t b = 0; b < B; ++b) {
                    const float x = dS[j * ld + b], r = dS_ref[j * ld + b];
                    max_ref = std::max(max_ref, std::fabs(double(r)));
                    max_diff = std::max(max_diff, std::fabs(double(x) - r));
                    ds_diff += std::memcmp(&x, &r, 4) != 0;
                    flat.push_back(x);
                }
            if (dS_first.empty()) dS_first = flat;
            const bool same = std::memcmp(flat.data(), dS_first.data(), flat.size() * 4) == 0;
            std::printf("check %-16s nt=%d: dK%s differing from the SDDMM: %ld; dS differing from the transposed "
                        "SpMM: %ld (max |diff| / max |dS| %.1e); dS bitwise the first variant's: %s\n",
                        v.name, nt, transposed_dk ? "t" : "", static_cast<long>(dk_diff), static_cast<long>(ds_diff),
                        max_diff / max_ref, same ? "yes" : "no");
        }
    // Timing: every round runs every variant once, in turn; minima over rounds. "cold": a 64 MiB
    // buffer is read and written before each timed call (nothing of the layer left in any cache);
    // "warm": the timed call follows an untimed call of the same variant.
    std::vector<float> flush(int64_t(16) << 20, 1.f);
    auto do_flush = [&]() {
        for (size_t i = 0; i < flush.size(); i += 16) flush[i] += 1.f;
    };
    const int nv = static_cast<int>(sizeof(variants) / sizeof(variants[0]));
    const int max_threads = argc > 5 ? std::atoi(argv[5]) : 2;
    for (int nt = 1; nt <= max_threads; ++nt)
        for (int warm = 0; warm < 2; ++warm) {
            g_cpu_clock = nt == 1;
            std::vector<double> best(nv + 1, 1e9);
            double part[3] = {1e9, 1e9, 1e9};
            for (int r = 0; r < reps; ++r) {
                for (int v = -1; v < nv; ++v) {
                    if (v >= 0 && !fused(variants[v], nt)) continue;   // not for this batch (and warms it)
                    if (warm) {
                        if (v < 0) current(nt);
                    } else {
                        do_flush();
                    }
                    const double t0 = now();
                    if (v < 0) current(nt); else fused(variants[v], nt);
                    best[v + 1] = std::min(best[v + 1], now() - t0);
                }
                if (!warm) do_flush();
                current_parts(nt, part);
            }
            std::printf("threads %d (%s), %s, G %ld, density %.3f, B %ld, %ld blocks, min of %d interleaved rounds:\n", nt,
                        g_cpu_clock ? "thread CPU time" : "wall time",
                        warm ? "warm" : "cold", static_cast<long>(G), density, static_cast<long>(B),
                        static_cast<long>(nnz), reps);
            std::printf("  %-16s %8.3f ms  (passes timed alone%s: SDDMM %.3f, gather %.3f, transposed SpMM %.3f)\n",
                        "current", best[0] * 1e3, warm ? "" : ", the first cold", part[0] * 1e3, part[1] * 1e3,
                        part[2] * 1e3);
            for (int v = 0; v < nv; ++v)
                if (best[v + 1] < 1e8)
                    std::printf("  %-16s %8.3f ms  (current / fused = %.2fx)\n", variants[v].name, best[v + 1] * 1e3,
                                best[0] / best[v + 1]);
        }
    return 0;
}
