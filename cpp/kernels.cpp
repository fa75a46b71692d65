#include "kernels.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace motifcore {

namespace {

bool cpu_has(const std::string& level) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (level == "avx512")
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("fma");
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
}  // namespace

namespace {

// The tiles of rows_to_panel for feature tile jt; returns the largest exponent field among the
// copied values when Check (all ones: a NaN or infinity), else 0.
template <bool Check>
uint32_t rows_to_panel_tile(const float* X, int64_t d, const int64_t* rows, int64_t B, float* panel, int64_t ld,
                            int64_t jt) {
    constexpr uint32_t kExp = 0x7f800000u;
    const int64_t j0 = jt * kTileFeatures, j1 = std::min(d, j0 + kTileFeatures);
    const float* src[kTileSamples];
    uint32_t emax = 0;
    for (int64_t s0 = 0; s0 < B; s0 += kTileSamples) {
        const int64_t ns = std::min(kTileSamples, B - s0);
        for (int64_t t = 0; t < ns; ++t) src[t] = X + (rows ? rows[s0 + t] : s0 + t) * d;
        for (int64_t j = j0; j < j1; ++j) {
            float* dst = panel + j * ld + s0;
            for (int64_t t = 0; t < ns; ++t) dst[t] = src[t][j];
            if constexpr (Check)
                for (int64_t t = 0; t < ns; ++t) {
                    uint32_t u;
                    std::memcpy(&u, dst + t, sizeof u);
                    emax = std::max(emax, u & kExp);
                }
        }
    }
    return emax;
}

}  // namespace

int64_t rows_to_panel(const float* X, int64_t d, const int64_t* rows, int64_t B, float* panel, int64_t ld,
                      int num_threads, bool count_nonfinite) {
    const int64_t n_jt = (d + kTileFeatures - 1) / kTileFeatures;
    std::atomic<bool> bad{false};
    parallel_for(n_jt, grain_for(kTileFeatures * B), threads_for(d * B, num_threads), [&](int64_t jt) {
        if (!count_nonfinite)
            rows_to_panel_tile<false>(X, d, rows, B, panel, ld, jt);
        else if (rows_to_panel_tile<true>(X, d, rows, B, panel, ld, jt) == 0x7f800000u)
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

void panel_to_rows(const float* panel, int64_t ld, int64_t n, int64_t group, int64_t B, float* out,
                   int num_threads) {
    const int64_t n_jt = (n + kTileFeatures - 1) / kTileFeatures;
    parallel_for(n_jt, grain_for(kTileFeatures * B), threads_for(n * B, num_threads), [&](int64_t jt) {
        const int64_t j0 = jt * kTileFeatures, j1 = std::min(n, j0 + kTileFeatures);
        for (int64_t s0 = 0; s0 < B; s0 += kTileSamples) {
            const int64_t s1 = std::min(B, s0 + kTileSamples);
            for (int64_t s = s0; s < s1; ++s) {
                float* o = out + s * n;
                if (group == 1)
                    for (int64_t j = j0; j < j1; ++j) o[j] = panel[j * ld + s];
                else
                    for (int64_t j = j0; j < j1; ++j) o[j] = panel[(j / group) * ld + s];
            }
        }
    });
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

const KernelTable& kernels() {
    const KernelTable* t = g_table.load();
    if (!t) {
        const char* env = std::getenv("MOTIFCORE_SIMD");
        set_simd_level(env && *env ? env : "auto");
        t = g_table.load();
    }
    return *t;
}

}  // namespace motifcore
