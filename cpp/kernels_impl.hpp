// Body of the hot kernels, compiled once per SIMD level. The including file defines MC_ISA_NS
// (namespace name), MC_VEC_BYTES (vector width in bytes) and MC_ISA_NAME, and is itself compiled
// with the matching target flags, so GCC/Clang vector extensions map to SSE, AVX2 or AVX-512.
#include <cstdint>
#include <cstring>

#include "kernels.hpp"

namespace motifcore {
namespace MC_ISA_NS {

constexpr int W = MC_VEC_BYTES / 4;  // float lanes per vector
typedef float vf __attribute__((vector_size(MC_VEC_BYTES)));
typedef float vfu __attribute__((vector_size(MC_VEC_BYTES), aligned(4), may_alias));

static inline vf ld(const float* p) { return *reinterpret_cast<const vfu*>(p); }
static inline void st(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
static inline float hsum(vf v) {
    float s = 0.f;
    for (int i = 0; i < W; ++i) s += v[i];
    return s;
}

// One output row, one batch tile of NV vectors. Two interleaved accumulator sets break the
// FMA dependency chain (the latency of that chain, not bandwidth, bounds a naive axpy loop).
template <int NV>
static inline void spmm_tile(const int32_t* __restrict idx, const float* __restrict val, int64_t n,
                             const float* __restrict in, int64_t ld_in, float* __restrict out) {
    vf a[NV], c[NV];
    for (int v = 0; v < NV; ++v) {
        a[v] = vf{};
        c[v] = vf{};
    }
    int64_t p = 0;
    for (; p + 2 <= n; p += 2) {
        const float* s0 = in + static_cast<int64_t>(idx[p]) * ld_in;
        const float* s1 = in + static_cast<int64_t>(idx[p + 1]) * ld_in;
        const float k0 = val[p], k1 = val[p + 1];
        for (int v = 0; v < NV; ++v) {
            a[v] += k0 * ld(s0 + v * W);
            c[v] += k1 * ld(s1 + v * W);
        }
    }
    if (p < n) {
        const float* s0 = in + static_cast<int64_t>(idx[p]) * ld_in;
        const float k0 = val[p];
        for (int v = 0; v < NV; ++v) a[v] += k0 * ld(s0 + v * W);
    }
    for (int v = 0; v < NV; ++v) st(out + v * W, a[v] + c[v]);
}

static inline void spmm_tail(const int32_t* __restrict idx, const float* __restrict val, int64_t n,
                             const float* __restrict in, int64_t ld_in, float* __restrict out,
                             int64_t width) {
    for (int64_t t = 0; t < width; ++t) {
        float a = 0.f, c = 0.f;
        int64_t p = 0;
        for (; p + 2 <= n; p += 2) {
            a += val[p] * in[static_cast<int64_t>(idx[p]) * ld_in + t];
            c += val[p + 1] * in[static_cast<int64_t>(idx[p + 1]) * ld_in + t];
        }
        if (p < n) a += val[p] * in[static_cast<int64_t>(idx[p]) * ld_in + t];
        out[t] = a + c;
    }
}

static void spmm(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* val,
                 const float* in, float* out, int64_t B, int num_threads) {
    constexpr int64_t T = 4 * W;
#pragma omp parallel for num_threads(num_threads) schedule(dynamic, 8)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t p0 = indptr[r], n = indptr[r + 1] - p0;
        float* o = out + r * B;
        int64_t b = 0;
        for (; b + T <= B; b += T) spmm_tile<4>(idx + p0, val + p0, n, in + b, B, o + b);
        for (; b + W <= B; b += W) spmm_tile<1>(idx + p0, val + p0, n, in + b, B, o + b);
        if (b < B) spmm_tail(idx + p0, val + p0, n, in + b, B, o + b, B - b);
    }
}

// Four stored entries of one row at a time share the loads of the left row.
static void sddmm(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* left,
                  const float* right, float* out, int64_t B, int num_threads) {
    const int64_t Bv = B - B % W;
#pragma omp parallel for num_threads(num_threads) schedule(dynamic, 8)
    for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict d = left + r * B;
        int64_t p = indptr[r];
        const int64_t pe = indptr[r + 1];
        for (; p + 4 <= pe; p += 4) {
            const float* s0 = right + static_cast<int64_t>(idx[p]) * B;
            const float* s1 = right + static_cast<int64_t>(idx[p + 1]) * B;
            const float* s2 = right + static_cast<int64_t>(idx[p + 2]) * B;
            const float* s3 = right + static_cast<int64_t>(idx[p + 3]) * B;
            vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
            for (int64_t b = 0; b < Bv; b += W) {
                const vf dv = ld(d + b);
                a0 += dv * ld(s0 + b);
                a1 += dv * ld(s1 + b);
                a2 += dv * ld(s2 + b);
                a3 += dv * ld(s3 + b);
            }
            float r0 = hsum(a0), r1 = hsum(a1), r2 = hsum(a2), r3 = hsum(a3);
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
        for (; p < pe; ++p) {
            const float* s0 = right + static_cast<int64_t>(idx[p]) * B;
            vf a0 = vf{};
            for (int64_t b = 0; b < Bv; b += W) a0 += ld(d + b) * ld(s0 + b);
            float r0 = hsum(a0);
            for (int64_t b = Bv; b < B; ++b) r0 += d[b] * s0[b];
            out[p] = r0;
        }
    }
}

}  // namespace MC_ISA_NS

const KernelTable& MC_TABLE_FN() {
    static const KernelTable table{MC_ISA_NAME, &MC_ISA_NS::spmm, &MC_ISA_NS::sddmm};
    return table;
}

}  // namespace motifcore
