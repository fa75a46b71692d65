#include "kernels.hpp"

#include <atomic>
#include <cstdlib>
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
