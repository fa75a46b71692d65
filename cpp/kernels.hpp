// Block-sparse kernels on feature-major activations, with a runtime choice of SIMD level.
//
// Layout: a "panel" of `rows` features for a batch of `B` samples is a row-major [rows, ld] float32
// array: each feature is one contiguous row of B values, rows `ld >= B` floats apart (see
// panel_ld: the padding keeps the row stride off powers of two, which would map every row of a
// panel to the same few cache sets). All kernels write
// each output element from exactly one thread in a fixed order, so results do not depend on the
// number of threads.
#pragma once

#include <cstdint>
#include <string>

#include "parallel.hpp"

namespace motifcore {

/// Leading dimension of a panel for a batch of B samples: B rounded up to 16 floats, plus one cache
/// line when the row would span an even number of lines, four or more. A row of one or two lines
/// (B <= 32) is not padded: a kernel reads such a row whole (or half of it with 16 samples per
/// tile), so rows 128 B apart fill the cache sets evenly, and padding 32 to 48 made every panel of
/// the batch-32 networks (the 1M network's 0.72 GiB) half as large again for nothing.
inline int64_t panel_ld(int64_t B) {
    int64_t ld = (B + 15) / 16 * 16;
    if (ld >= 64 && (ld / 16) % 2 == 0) ld += 16;
    return ld;
}

/// Bytes of a panel beyond which the block kernels treat it as huge: its gathered rows come from
/// DRAM whatever the tiling (kernels_impl.hpp), and a layer's backward keeps the separate SDDMM,
/// transposed-weight gather and transposed SpMM instead of KernelTable::fused_backward.
constexpr int64_t kHugePanelBytes = int64_t(24) << 20;

/// Threads for a parallel region doing `work` elementary operations: small regions run on one
/// thread, since waking and joining a team costs more than they take (and much more when the
/// machine is busy and a team member is descheduled). Results do not depend on this choice.
inline int threads_for(int64_t work, int num_threads) { return work < (int64_t(1) << 16) ? 1 : num_threads; }

// ---- Layout changes between row-major sample arrays and feature-major panels ------------------
// Both work in tiles of 16 samples x 256 features (each tile's reads and writes stay in L1 and
// touch whole cache lines) and run the feature tiles in parallel; every element is copied once,
// so results do not depend on the thread count.

/// panel[j * ld + s] = X[row(s) * d + j] for s < B and j < d, with row(s) = rows ? rows[s] : s
/// (rows must be in range). Returns the number of NaN or infinite values among the copied ones
/// when `count_nonfinite` is set (the check rides on the same pass; counting runs only when one
/// is found), else 0.
int64_t rows_to_panel(const float* X, int64_t d, const int64_t* rows, int64_t B, float* panel, int64_t ld,
                      int num_threads, bool count_nonfinite = false);

/// dst[q] = src[pos[q]] for q < n (pos: n entries, each in range), in fixed parallel chunks: random
/// reads of src with the line 512 entries on prefetched (the loop alone keeps too few misses in
/// flight), sequential writes. Each element is written once: no dependence on the threads. Only
/// gathers: a scatter through a permutation (dst[pos[q]] = src[q]) has both threads write into the
/// same random lines, which then travel between the cores, and did not get faster on 2 threads
/// (docs/performance-log.md). The layer's transposed copies and the optimizer state's reordering
/// (OptimizerState::permute_blocks) run it.
void gather_prefetched(int64_t n, const int32_t* pos, const float* src, float* dst, int num_threads);

/// out[s * n + j] = panel[(j / group) * ld + s] for s < B and j < n: the transpose back, with
/// group > 1 expanding each panel row (a motif's value) to its `group` consecutive members.
/// Returns the number of NaN or infinite values among the written ones when `count_nonfinite` is
/// set (read from each tile of the panel while it is in L1), else 0. `stream_rows`: a caller that
/// will not read the rows soon (the row-major API in training, whose next layer takes the panel)
/// lets a large plain transpose (group 1, n a multiple of 8, at least 256 KiB of rows) write them
/// past the caches, so they do not evict the next kernels' data.
int64_t panel_to_rows(const float* panel, int64_t ld, int64_t n, int64_t group, int64_t B, float* out,
                      int num_threads, bool count_nonfinite = false, bool stream_rows = false);

/// The number of NaN or infinite values in panel[(j / group) * ld + s] for s < B and j < n (the
/// values panel_to_rows would write, without writing them), on the calling thread: the count of a
/// panel passed on without rows, for the error message, once a kernel's pass found such a value.
int64_t count_nonfinite_panel(const float* panel, int64_t ld, int64_t n, int64_t group, int64_t B);

/// Function table of the hot kernels for one instruction-set level.
struct KernelTable {
    /// SIMD level name: "avx512", "avx2" or "generic".
    const char* name;
    /// Block SpMM over CSR rows: out[r, :] = sum_{p in [indptr[r], indptr[r+1])} val[p] * in[idx[p], :]
    /// for r in [0, rows). `in` is [in_rows, ld] (every idx below in_rows; the count picks the
    /// tiling, never a result), `out` is [rows, ld]; `out` is overwritten.
    void (*spmm)(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* val,
                 const float* in, int64_t in_rows, float* out, int64_t B, int64_t ld, int num_threads);
    /// Sampled dense-dense product: out[p] = dot(left[r, :], right[idx[p], :]) for every stored
    /// entry p of every CSR row r. `left` is [rows, ld], `right` is [right_rows, ld] (every idx
    /// below right_rows; the count picks the column blocks, never a result); `out` has indptr[rows]
    /// entries. `cursor` is the caller's scratch of `rows` entries (the per-row position between
    /// column blocks).
    void (*sddmm)(int64_t rows, const int64_t* indptr, const int32_t* idx, const float* left,
                  const float* right, int64_t right_rows, float* out, int64_t B, int64_t ld, int64_t* cursor,
                  int num_threads);
    /// S[c, :] = sum of in[j, :] over the members j of input group c (groups of m, last one residual).
    void (*group_sum)(int64_t G, int64_t m, int64_t n, const float* in, float* S, int64_t B, int64_t ld,
                      int num_threads);
    /// A[i, :] = act(U[i / m, :] + bias[i] (per neuron) or bias[i / m]); act = ReLU or identity.
    /// Returns whether a value written is NaN or infinite.
    bool (*expand_bias_act)(int64_t n, int64_t m, const float* U, const float* bias, bool per_neuron,
                            bool relu, float* A, int64_t B, int64_t ld, int num_threads);
    /// Backward of expand_bias_act: dU[r, :] = sum over the motif's neurons of grad * act'; db from
    /// the same pass. See kernels_impl.hpp for the aliasing rules.
    /// With `check`, returns whether an upstream gradient value is NaN or infinite (else false).
    bool (*group_backward)(int64_t G, int64_t m, int64_t n, const float* grad, int64_t grad_group,
                           const float* A, bool relu, float relu_scale, bool per_neuron, float* dU, float* db,
                           int64_t B, int64_t ld, int num_threads, bool check);
    /// Block-gradient scores of RigL, one thread: out[i * Cp + j] = sum_b dU[i, b] * St[b, j] for i < nr
    /// (rows of dU, `ld` apart) and j < Cp (a multiple of 16; St is a [B, Cp] transposed gather of
    /// input-panel rows). Each score adds its B products one after the other in b order with the
    /// same vector instruction in every lane, so it is bitwise the same from any tile or thread.
    void (*score_tile)(const float* dU, int64_t nr, const float* St, int64_t Cp, int64_t B, int64_t ld,
                       float* out);
    /// Dense GEMM of the dense path: C[i * ldc + j] = sum_k A(i, k) B(k, j) for i < M, j < N, with
    /// A(i, k) = a[i * a_rs + k * a_cs] and B(k, j) = b[k * b_rs + j * b_cs] (C overwritten). A
    /// row-major B (b_cs == 1) must be a panel: each of its K rows readable up to column
    /// ceil(N / 16) * 16. Otherwise `bpack` holds gemm_pack_floats(K, N, b_cs) floats of scratch.
    /// Each element of C is summed over k in a fixed order (see kernels_impl.hpp), so results do
    /// not depend on the thread count.
    void (*gemm)(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                 int64_t b_rs, int64_t b_cs, float* c, int64_t ldc, float* bpack, int num_threads);
    int64_t gemm_nr;  ///< columns of a packed B strip
    /// Both gradients of a sparse layer in one pass over the transposed index (t_indptr over `cols`
    /// input rows, t_rows ascending within each): for every stored entry q of input row c, with
    /// i = t_rows[q], dKt[q] = dot(dU[i, :], S[c, :]) -- summed as the sddmm sums it, so bitwise the
    /// value sddmm gives the same block -- and dS[c, :] = sum over q of Kt[q] * dU[i, :], added
    /// one entry after the other in ascending i from 0 (dS overwritten; every row of dS is written,
    /// zero where an input row has no entry). dU has `rows` rows; `cursor` is the caller's scratch
    /// of `cols` entries.
    void (*fused_backward)(int64_t cols, int64_t rows, const int64_t* t_indptr, const int32_t* t_rows,
                           const float* Kt, const float* dU, const float* S, float* dKt, float* dS, int64_t B,
                           int64_t ld, int64_t* cursor, int num_threads);
    /// Inverted dropout of rows [0, n) of A (each B entries, `ld` apart): entry t of row i is
    /// A[i, t] * scale if 24 bits of draw t / 2 of the splitmix64 stream from state row_state[i]
    /// are >= thr (bits 40-63 for even t, 16-39 for odd t), else +0. Integer draws and one
    /// multiply per entry: bitwise the same at every level and thread count.
    void (*dropout)(int64_t n, const uint64_t* row_state, uint64_t thr, float scale, float* A, int64_t B,
                    int64_t ld, int num_threads);
    /// out[s * n + j] = panel[j * ld + s] for s in [s0, s1) and j in [j0, j1), both ranges a
    /// multiple of 8 long (the 8 x 8 blocks of panel_to_rows); `stream`: non-temporal stores where
    /// 16-byte aligned, and the caller issues the store fence before it publishes the rows;
    /// `check`: returns nonzero if a value moved is NaN or infinite (0 without `check`).
    uint32_t (*transpose_blocks)(const float* panel, int64_t ld, int64_t j0, int64_t j1, int64_t s0, int64_t s1,
                                 float* out, int64_t n, bool stream, bool check);
    /// Floats of the `bpack` scratch that gemm needs for a K x N right operand (none for a panel).
    int64_t gemm_pack_floats(int64_t K, int64_t N, int64_t b_cs) const {
        return b_cs == 1 ? 0 : K * ((N + gemm_nr - 1) / gemm_nr * gemm_nr);
    }
};

/// The kernel table in use: the level of the last set_simd_level, else of init_simd_from_env (run
/// here if nothing ran it before). One process-wide table; a layer call reads it once, so a switch
/// takes effect at the next call (docs/engine.md, "Process-wide state").
const KernelTable& kernels();

/// Forces a SIMD level ("avx512", "avx2", "generic" or "auto"); throws std::invalid_argument for an
/// unknown or not compiled level, or one the CPU lacks.
void set_simd_level(const std::string& level);

/// Reads MOTIFCORE_SIMD once per process and selects its level (unset or empty: "auto"), unless
/// set_simd_level ran before. A bad value throws std::invalid_argument naming the variable; the
/// Python module calls this at import, so the error surfaces there and not inside a forward.
void init_simd_from_env();

/// The level a MOTIFCORE_SIMD value names ("auto" for nullptr or empty); std::invalid_argument
/// for anything but avx512, avx2, generic or auto.
std::string simd_level_from_env(const char* value);

/// The best SIMD level this CPU supports among the compiled ones.
std::string best_simd_level();

/// Declarations of the per-ISA tables (defined in kernels_<isa>.cpp).
const KernelTable& kernels_generic();
const KernelTable& kernels_avx2();
const KernelTable& kernels_avx512();

}  // namespace motifcore
