// Block-sparse kernels on feature-major activations, with a runtime choice of SIMD level.
//
// Layout: a "panel" of `rows` features for a batch of `B` samples is a row-major [rows, B] float32
// array (each feature one contiguous row of B values, leading dimension B). All kernels write
// each output element from exactly one thread in a fixed order, so results do not depend on the
// number of threads.
#pragma once

#include <cstdint>
#include <string>

namespace motifcore {

/// Function table of the hot kernels for one instruction-set level.
struct KernelTable {
    /// SIMD level name: "avx512", "avx2" or "generic".
    const char* name;
    /// Block SpMM over CSR rows: out[r, :] = sum_{p in [indptr[r], indptr[r+1])} val[p] * in[idx[p], :]
    /// for r in [0, rows). `in` is [*, B], `out` is [rows, B]; `out` is overwritten.
    void (*spmm)(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* val,
                 const float* in, float* out, int64_t B, int num_threads);
    /// Sampled dense-dense product: out[p] = dot(left[r, :], right[idx[p], :]) for every stored
    /// entry p of every CSR row r. `left` is [rows, B], `right` is [*, B]; `out` has indptr[rows] entries.
    void (*sddmm)(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* left,
                  const float* right, float* out, int64_t B, int num_threads);
};

/// The kernel table in use (chosen on first call from the CPU, or by MOTIFCORE_SIMD=avx512|avx2|generic).
const KernelTable& kernels();

/// Forces a SIMD level ("avx512", "avx2", "generic" or "auto"); throws if the CPU lacks it.
void set_simd_level(const std::string& level);

/// The best SIMD level this CPU supports among the compiled ones.
std::string best_simd_level();

/// Declarations of the per-ISA tables (defined in kernels_<isa>.cpp).
const KernelTable& kernels_generic();
const KernelTable& kernels_avx2();
const KernelTable& kernels_avx512();

}  // namespace motifcore
