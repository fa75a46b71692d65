#include "kernels.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "common.hpp"

#if defined(__x86_64__)
#include <xmmintrin.h>   // _mm_sfence after streamed rows (SSE: every x86-64)
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace motifcore {

namespace {

// PREFETCHW (CPUID 0x80000001, ECX bit 8), which the avx512 unit is compiled to use (-mprfchw).
bool cpu_has_prefetchw() {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(0x80000001u, &a, &b, &c, &d) && ((c >> 8) & 1u);
#else
    return false;
#endif
}

bool cpu_has(const std::string& level) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (level == "avx512")
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("fma") && cpu_has_prefetchw();
    if (level == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return level == "generic";
}

const KernelTable* table_for(const std::string& level) {
#ifdef MOTIFCORE_HAVE_X86_KERNELS
    if (level == "avx512") return &kernels_avx512();
    if (level == "avx2") return &kernels_avx2();
#endif
    if (level == "generic") return &kernels_generic();
    return nullptr;
}

std::atomic<const KernelTable*> g_table{nullptr};

}  // namespace

namespace {

constexpr int64_t kTileSamples = 16, kTileFeatures = 256;

// 4 x 4 blocks moved through registers: 4 unaligned loads, 8 shuffles, 4 stores instead of 16
// scalar loads and stores (SSE2, the baseline of every x86-64 build; plain vector extensions).
typedef float v4 __attribute__((vector_size(16)));
typedef float v4u __attribute__((vector_size(16), aligned(4), may_alias));

// dst + k * dst_stride receives column k of the 4 x 4 block whose rows start at src[0..3].
inline void transpose4(const float* s0, const float* s1, const float* s2, const float* s3, float* dst,
                       int64_t dst_stride) {
    const v4 r0 = *reinterpret_cast<const v4u*>(s0), r1 = *reinterpret_cast<const v4u*>(s1);
    const v4 r2 = *reinterpret_cast<const v4u*>(s2), r3 = *reinterpret_cast<const v4u*>(s3);
    const v4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5), t1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
    const v4 t2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5), t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
    *reinterpret_cast<v4u*>(dst) = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    *reinterpret_cast<v4u*>(dst + dst_stride) = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    *reinterpret_cast<v4u*>(dst + 2 * dst_stride) = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    *reinterpret_cast<v4u*>(dst + 3 * dst_stride) = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
}

// The tiles of rows_to_panel for feature tile jt; when Check, returns whether a copied value is
// NaN or infinite.
template <bool Check>
bool rows_to_panel_tile(const float* X, int64_t d, const int64_t* rows, int64_t B, float* panel, int64_t ld,
                        int64_t jt) {
    const int64_t j0 = jt * kTileFeatures, j1 = std::min(d, j0 + kTileFeatures);
    const float* src[kTileSamples];
    uint32_t bad = 0;
    for (int64_t s0 = 0; s0 < B; s0 += kTileSamples) {
        const int64_t ns = std::min(kTileSamples, B - s0);
        for (int64_t t = 0; t < ns; ++t) src[t] = X + (rows ? rows[s0 + t] : s0 + t) * d;
        if constexpr (Check)  // contiguous row segments (vectorised), which the copy then reads from L1
            for (int64_t t = 0; t < ns; ++t)
                for (int64_t j = j0; j < j1; ++j) bad |= nonfinite_mask(src[t][j]);
        const int64_t n4 = ns - ns % 4, j4 = j0 + (j1 - j0) / 4 * 4;
        for (int64_t j = j0; j < j4; j += 4)  // four whole 64-byte lines of the panel per j step
            for (int64_t t = 0; t < n4; t += 4)
                transpose4(src[t] + j, src[t + 1] + j, src[t + 2] + j, src[t + 3] + j, panel + j * ld + s0 + t, ld);
        for (int64_t j = j0; j < j1; ++j) {  // the samples and features left over by the 4 x 4 blocks
            float* dst = panel + j * ld + s0;
            for (int64_t t = j < j4 ? n4 : 0; t < ns; ++t) dst[t] = src[t][j];
        }
    }
    return bad != 0;
}

}  // namespace

void gather_prefetched(int64_t n, const int32_t* pos, const float* src, float* dst, int num_threads) {
    constexpr int64_t kChunk = int64_t(1) << 14, kAhead = 512;
    parallel_for((n + kChunk - 1) / kChunk, 1, threads_for(n, num_threads), [&](int64_t c) {
        const int64_t q0 = c * kChunk, q1 = std::min(n, q0 + kChunk), qp = std::min(q1, n - kAhead);
        int64_t q = q0;
        for (; q < qp; ++q) {
            __builtin_prefetch(src + pos[q + kAhead]);
            dst[q] = src[pos[q]];
        }
        for (; q < q1; ++q) dst[q] = src[pos[q]];
    });
}

int64_t rows_to_panel(const float* X, int64_t d, const int64_t* rows, int64_t B, float* panel, int64_t ld,
                      int num_threads, bool count_nonfinite) {
    const int64_t n_jt = (d + kTileFeatures - 1) / kTileFeatures;
    std::atomic<bool> bad{false};
    parallel_for(n_jt, grain_for(kTileFeatures * B), threads_for(d * B, num_threads), [&](int64_t jt) {
        if (!count_nonfinite)
            rows_to_panel_tile<false>(X, d, rows, B, panel, ld, jt);
        else if (rows_to_panel_tile<true>(X, d, rows, B, panel, ld, jt))
            bad.store(true, std::memory_order_relaxed);
    });
    if (!bad.load()) return 0;
    int64_t n_bad = 0;
    for (int64_t s = 0; s < B; ++s) {
        const float* x = X + (rows ? rows[s] : s) * d;
        for (int64_t j = 0; j < d; ++j) n_bad += !std::isfinite(x[j]);
    }
    return n_bad;
}

int64_t panel_to_rows(const float* panel, int64_t ld, int64_t n, int64_t group, int64_t B, float* out,
                      int num_threads, bool count_nonfinite, bool stream_rows) {
    const int64_t n_jt = (n + kTileFeatures - 1) / kTileFeatures;
    const KernelTable& kt = kernels();
    const bool stream = stream_rows && group == 1 && n % 8 == 0 && n * B * 4 >= (int64_t(256) << 10);
    std::atomic<bool> bad{false};
    parallel_for(n_jt, grain_for(kTileFeatures * B), threads_for(n * B, num_threads), [&](int64_t jt) {
        const int64_t j0 = jt * kTileFeatures, j1 = std::min(n, j0 + kTileFeatures);
        // plain transpose only: 8 x 8 blocks (the ISA's), then 4 x 4 blocks of what is left
        const int64_t j8 = group == 1 ? j0 + (j1 - j0) / 8 * 8 : j0;
        const int64_t j4 = group == 1 ? j0 + (j1 - j0) / 4 * 4 : j0;
        uint32_t tile_bad = 0;
        for (int64_t s0 = 0; s0 < B; s0 += kTileSamples) {
            const int64_t s1 = std::min(B, s0 + kTileSamples), s8 = s0 + (s1 - s0) / 8 * 8;
            const int64_t s4 = s0 + (s1 - s0) / 4 * 4;
            const bool blocks = j8 > j0 && s8 > s0;
            if (blocks) tile_bad |= kt.transpose_blocks(panel, ld, j0, j8, s0, s8, out, n, stream, count_nonfinite);
            for (int64_t s = s0; s < s4 && j4 > j0; s += 4)
                for (int64_t j = s < s8 ? j8 : j0; j < j4; j += 4) {
                    const float* p = panel + j * ld + s;
                    transpose4(p, p + ld, p + 2 * ld, p + 3 * ld, out + s * n + j, n);
                }
            for (int64_t s = s0; s < s1; ++s) {  // what the blocks left over
                float* o = out + s * n;
                for (int64_t j = s < s4 ? j4 : j0; j < j1; ++j) o[j] = panel[(j / group) * ld + s];
            }
            if (count_nonfinite) {  // the values the 8 x 8 blocks did not check, read from the panel
                                    // rows just read (each once; the rows written may have gone past
                                    // the caches)
                const auto check = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
                    for (int64_t r = r0; r < r1; ++r) {
                        const float* p = panel + r * ld;
                        for (int64_t s = c0; s < c1; ++s) tile_bad |= nonfinite_mask(p[s]);
                    }
                };
                if (blocks) {  // plain transpose (group 1): rows [j0, j8) x samples [s0, s8) checked
                    check(j0, j8, s8, s1);
                    check(j8, j1, s0, s1);
                } else {
                    check(j0 / group, (j1 - 1) / group + 1, s0, s1);
                }
            }
        }
#if defined(__x86_64__)
        if (stream) _mm_sfence();   // the streamed rows are globally visible before the pool's join
#endif
        if (tile_bad) bad.store(true, std::memory_order_relaxed);
    });
    if (!bad.load()) return 0;
    int64_t n_bad = 0;
    for (int64_t i = 0; i < B * n; ++i) n_bad += !std::isfinite(out[i]);
    return n_bad;
}

int64_t count_nonfinite_panel(const float* panel, int64_t ld, int64_t n, int64_t group, int64_t B) {
    int64_t n_bad = 0;
    for (int64_t j = 0; j < n; ++j) {
        const float* p = panel + (j / group) * ld;
        for (int64_t s = 0; s < B; ++s) n_bad += !std::isfinite(p[s]);
    }
    return n_bad;
}

std::string best_simd_level() {
    for (const char* level : {"avx512", "avx2"})
        if (table_for(level) && cpu_has(level)) return level;
    return "generic";
}

void set_simd_level(const std::string& level) {
    const std::string chosen = level == "auto" ? best_simd_level() : level;
    const KernelTable* t = table_for(chosen);
    if (!t) throw std::invalid_argument("unknown or not compiled SIMD level '" + level + "'");
    if (!cpu_has(chosen)) throw std::invalid_argument("this CPU does not support SIMD level '" + level + "'");
    g_table.store(t);
}

std::string simd_level_from_env(const char* value) {
    const std::string v = value ? value : "";
    if (v.empty()) return "auto";
    for (const char* level : {"avx512", "avx2", "generic", "auto"})
        if (v == level) return v;
    throw std::invalid_argument("MOTIFCORE_SIMD='" + v + "' is not a SIMD level: use avx512, avx2, generic or auto");
}

void init_simd_from_env() {
    // Once per process; a failure is not remembered, so every later call reports it again.
    static std::once_flag once;
    std::call_once(once, [] {
        const std::string level = simd_level_from_env(std::getenv("MOTIFCORE_SIMD"));
        if (g_table.load()) return;   // set_simd_level ran first: it wins
        try {
            set_simd_level(level);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string("MOTIFCORE_SIMD: ") + e.what());
        }
    });
}

const KernelTable& kernels() {
    const KernelTable* t = g_table.load();
    if (!t) {
        init_simd_from_env();
        t = g_table.load();
    }
    return *t;
}

}  // namespace motifcore
