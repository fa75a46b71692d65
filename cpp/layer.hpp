// One block-sparse motif layer: geometry, block pattern (CSR + transposed index), shared block
// weights and biases with their gradients, optimizer state (OptimizerState), initialisation,
// forward/backward, the optimizer step and SET prune/regrow.
//
// Neurons are partitioned into motifs: input group c covers inputs [c*m_in, min((c+1)*m_in, n_in)),
// output group r covers outputs [r*m_out, min((r+1)*m_out, n_out)); the last group of a width not
// divisible by m is a smaller "residual" motif. An active block (r, c) carries ONE weight shared by
// all of its edges: W[i, j] = K[block(g(i), g(j))] if that block is active, else 0.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "codebook.hpp"
#include "common.hpp"
#include "dst.hpp"
#include "concurrency.hpp"
#include "evolution.hpp"
#include "optimizer.hpp"
#include "pattern.hpp"

namespace motifcore {

/// Activation applied after Expand + bias.
enum class Activation { Linear = 0, ReLU = 1 };

/// Bias granularity: one per output neuron (default) or one per output motif.
enum class BiasMode { Neuron = 0, Motif = 1 };

/// Construction parameters of a layer; every field has its default.
struct LayerConfig {
    int64_t n_in = 0;                        ///< input neurons (>= 1)
    int64_t n_out = 0;                       ///< output neurons (>= 1)
    int64_t m_in = 1;                        ///< motif size on the input side (>= 1)
    int64_t m_out = 1;                       ///< motif size on the output side (>= 1)
    double density = 0.1;                    ///< fraction of active blocks among G_out*G_in, in (0, 1]
    double epsilon = 0.0;                    ///< > 0: SET's p = eps*(G_in+G_out)/(G_in*G_out), capped at 1; overrides density
    BiasMode bias = BiasMode::Neuron;        ///< bias granularity
    Activation activation = Activation::Linear;  ///< activation after the affine map
    uint64_t seed = 0;                       ///< seed of the pattern and weight draws
    /// How many neurons of an input motif carry the same value at initialisation (1: independent
    /// inputs). A hidden layer fed by a motif layer with m_out == m_in receives m_in copies per
    /// input motif (the shared block makes them equal up to a zero bias), so its group sums have
    /// m_in times the second moment of independent inputs; the init bound accounts for it.
    int64_t input_copies = 1;
};

/// Backward scratch: buffers whose contents live only within one layer's backward (or, for dS,
/// from one layer's backward to the next one down, which reads it as its upstream gradient before
/// it writes its own). A network shares one among all its layers (sized for the largest), so it
/// holds one input-gradient panel and one transposed-weight copy instead of one per layer.
struct BackwardScratch {
    /// [G_in, ld] gradient w.r.t. the group sums of the layer's input. Written and read in row
    /// order, never gathered: on ordinary pages (StreamAllocator), as `buf`.
    StreamVector dS;
    /// Weights in transposed order [|P|] (sparse path; regathered by every backward), followed by
    /// their gradient in transposed order [|P|] where the backward is fused (fused_backward_fits),
    /// or the packing buffer of the dense path's GEMMs: never both at once.
    StreamVector buf;
    /// [G_out] SDDMM row cursors, or [max(G_out, G_in)] with the fused backward's column cursors (sparse path)
    std::vector<int64_t> cursor;
};

/// The backward scratch that the row-major API of every Layer shares, as a Network's layers share
/// theirs: one transposed-weight copy and one input-gradient panel for all of them instead of one
/// per layer, and the buffers one layer's backward used are still in cache for the next layer's.
/// Every Layer holds it (the last one frees it); its mutex is part of the guard of the row-major
/// calls (Layer::rowmajor_guard), so those calls of different layers run one at a time.
struct RowMajorScratch {
    BackwardScratch scratch;
    StateMutex mutex;
    uint64_t dS_stamp = 0;   ///< the backward_rowmajor whose input-gradient panel scratch.dS holds (0: none)
};

/// Scratch buffers of one layer for a batch; feature-major panels [rows, B]. Reused across steps.
struct LayerWork {
    int64_t B = 0;              ///< batch size the buffers currently hold
    PanelVector S;       ///< [G_in, B] group sums of the input (unused when m_in == 1)
    const float* S_ptr = nullptr;  ///< points to S, or to the input itself when m_in == 1
    PanelVector U;       ///< [G_out, B] block products
    PanelVector A;       ///< [n_out, B] activations (after dropout in training)
    PanelVector dU;      ///< [G_out, B] group sums of dL/dz
    BackwardScratch own;                ///< the backward scratch, unless `shared` is set
    BackwardScratch* shared = nullptr;  ///< a scratch shared with other layers (the network's), or null
    BackwardScratch& scratch() { return shared ? *shared : own; }
    const BackwardScratch& scratch() const { return shared ? *shared : own; }
    /// When true and m_out == 1, U, A and dU share one buffer (U is turned into A in place by the
    /// forward, A into dU by the backward): a third of the activation memory of a training step.
    /// The network sets it; the row-major convenience API keeps A intact after backward.
    bool share_out = false;
    /// When true, ensure() neither allocates A nor sets Ap: the owner points Ap at a panel of its
    /// own (the row-major API, which hands its output panel on to the next layer). Not with share_out.
    bool external_out = false;
    float* Up = nullptr;   ///< U panel (A's storage when shared)
    float* Ap = nullptr;   ///< A panel
    float* dUp = nullptr;  ///< dU panel (A's storage when shared)
    /// Grows (never shrinks) the buffers, the scratch's included, to hold a batch of B samples for
    /// `layer` (the transposed-weight copy and the cursors only on the sparse path; the fused
    /// backward's second copy only when `input_grad`: a network's first layer computes none).
    void ensure(const class Layer& layer, int64_t B, bool input_grad = true);
};

/// A panel that one layer of the row-major API hands to the next instead of a row-major copy of
/// it: the output panel of a forward_rowmajor (the next layer's input) or the input-group gradient
/// panel of a backward_rowmajor (the previous layer's upstream gradient). Layer::output_panel and
/// Layer::grad_in_panel make one; `data` stays valid while `keep` is held (an output panel), or
/// while the producing layer's guard is held (a gradient panel: `keep` is null).
struct PanelHandoff {
    const float* data = nullptr;       ///< [rows / group rounded up, panel_ld(B)] panel; null: none
    std::shared_ptr<const void> keep;  ///< owner of `data`, or null
    int64_t B = 0;                     ///< samples
    int64_t rows = 0;                  ///< neurons it holds (expanded)
    int64_t group = 1;                 ///< neurons per panel row (an input-group gradient: m_in)
    int64_t nonfinite = 0;             ///< NaN or infinite values among the rows x B (expanded); -1: not
                                       ///< counted (a gradient panel without rows: its reader checks it)
};

/// A writable view of `size` floats a Layer owns (no copy); see Layer::params_in_place.
struct FloatSpan {
    float* data = nullptr;   ///< first float (nullptr when empty)
    int64_t size = 0;        ///< number of floats
    float& operator[](int64_t i) const { return data[i]; }
    float* begin() const { return data; }
    float* end() const { return data + size; }
};

/// The layer's parameters and gradients as writable views, from Layer::params_in_place.
struct ParamSpans {
    FloatSpan K;    ///< [|P|] block weights, CSR order
    FloatSpan b;    ///< [n_bias] biases
    FloatSpan dK;   ///< [|P|] gradient of K
    FloatSpan db;   ///< [n_bias] gradient of b
};

/// A block-sparse motif layer. Weights, gradients and optimizer state live here, private; batch
/// scratch lives in LayerWork.
class Layer {
public:
    /// Builds the layer: Erdős–Rényi block pattern with an exact block count, He-uniform weights
    /// on the effective edge fan-in, zero biases. Throws std::invalid_argument on a bad config.
    explicit Layer(const LayerConfig& cfg);

    // Geometry, fixed at construction (const: the pattern and every buffer are sized from it).
    const int64_t n_in, n_out, m_in, m_out, G_in, G_out;
    const Activation activation;
    const BiasMode bias_mode;

    // ---- Parameters, gradients and optimizer state (read-only; per-block values in CSR order) ----
    const std::vector<float>& weights() const { return K; }       ///< [|P|] shared block weights K
    const std::vector<float>& bias() const { return b; }          ///< [n_out] (Neuron) or [G_out] (Motif)
    /// [|P|] gradient of the last backward (after a backward that made the update in transposed
    /// order, gathered from that order on this first read: settle()).
    const std::vector<float>& grad_weights() const {
        settle();
        return dK;
    }
    const std::vector<float>& grad_bias() const { return db; }    ///< gradient of the last backward, as b
    /// Momentum and Adam moments of K and b (optimizer.hpp), in CSR order. They change only through
    /// the layer: optimizer_step, set_state, the update in backward and the pattern mutations, which
    /// remap them with K. (Between updates in backward they are kept in transposed order; this
    /// puts them back first: settle().)
    const OptimizerState& optimizer_state() const {
        settle();
        return opt_;
    }

    /// Writable views of K, b, dK and db (no copy): the one way to write the parameters or the
    /// gradients in place. motifcore.torch hands K and b to a torch optimizer through them
    /// (weights_view / bias_view), and tests set gradients through them. The views of K and dK
    /// are valid until the pattern changes (set_state, a prune or a growth reallocates them); b and
    /// db never change size. Writes are taken as they are: a codebook is not regathered and the
    /// divergence flag is not recomputed (set_weights / set_bias, checked copies, recompute it).
    /// The layer cannot see writes through such a view, so from the first call on it never keeps
    /// its transposed copy of K across steps (the update in transposed order, backward()).
    ///
    /// `tracked`: the caller reports every write of K through the view with weights_written()
    /// before the layer's next backward (motifcore.torch reads torch's version counter of the
    /// parameter); the layer may then still keep the transposed copy across steps.
    ParamSpans params_in_place(bool tracked = false) {
        settle();
        if (!tracked) weights_shared_ = true;
        kt_current_ = false;
        return {{K.data(), static_cast<int64_t>(K.size())}, {b.data(), static_cast<int64_t>(b.size())},
                {dK.data(), static_cast<int64_t>(dK.size())}, {db.data(), static_cast<int64_t>(db.size())}};
    }
    /// K was written through a tracked view (params_in_place(true)): its transposed copy is stale.
    void weights_written() { kt_current_ = false; }
    /// Replaces the optimizer's moments of K (in CSR order) and b: momentum / Adam's first moments
    /// (empty: zero) and Adam's second moments (both empty: none). Checked as OptimizerState::
    /// set_moments (std::invalid_argument); K, b and the pattern stay.
    void set_moments(std::vector<float> vK, std::vector<float> vb, std::vector<float> sK, std::vector<float> sb);
    /// dK as a writable view (a network scaling its gradients); K stays the layer's own.
    FloatSpan grad_weights_in_place() {
        settle();
        return {dK.data(), static_cast<int64_t>(dK.size())};
    }
    /// Replaces K with `w` (same length, else std::invalid_argument) and recomputes the divergence
    /// flag from the new values; pattern, optimizer state and codebook stay as they are.
    void set_weights(std::vector<float> w);
    /// Replaces b with `v` (same length), as set_weights.
    void set_bias(std::vector<float> v);

    /// The block pattern (CSR over output groups, columns sorted and distinct, and its transposed
    /// index). Read-only from outside: it changes only through the layer's own methods (set_state,
    /// prune/grow, SET), which keep K and the optimizer state aligned with it.
    ///
    /// The transposed index (8 bytes per block) is built lazily: only the input gradient of the
    /// sparse path reads it, so construction, set_state and every pattern change leave it stale and
    /// freed, and the first backward that needs it builds it (ensure_transposed). A network's first
    /// layer and a dense layer never hold one, and between an evolution step and the next backward
    /// (an evaluation, a checkpoint) no layer does. The index is a function of the pattern alone,
    /// so when it is built never changes a result.
    const BlockPattern& pattern() const { return pat_; }
    /// Builds the transposed index if it is stale (pattern().t_rows() etc. are then readable), on up
    /// to num_threads threads.
    void ensure_transposed(int num_threads = 1) { pat_.reindex(num_threads); }
    /// Builds what backward(..., need_dS, ...) on a batch of B with workspace w reads of the
    /// transposed index (the inverse positions too on the fused route), so that such a backward
    /// allocates none of it. Results never depend on it.
    void ensure_backward_index(int64_t B, const LayerWork& w, bool need_dS, int num_threads);
    /// Whether backward(..., need_dS, ..., update) on a batch of B with workspace w makes the update
    /// (in transposed order, see backward()).
    bool updates_in_backward(int64_t B, const LayerWork& w, bool need_dS) const;
    /// Allocates and fills what such a backward reads (after ensure_backward_index): the transposed
    /// copy of K, the transposed gradient, the optimizer state of `kind` in transposed order; so that
    /// the backward itself allocates none of it. For a layer that does not take that route, only
    /// the optimizer state of `kind` (Adam's second moments), which its update after the backward
    /// would allocate: a network calls it for every layer before the first backward.
    void prepare_update_in_backward(int64_t B, const LayerWork& w, bool need_dS, Optimizer kind, int num_threads);
    /// Frees the transposed copies of the update in backward (K's and its gradient's, 8 bytes per
    /// block; dK is gathered first if it is still in the copy); the next such step makes them
    /// again. Results do not change.
    void release_transposed_copies(int num_threads = 1);
    /// Bytes those copies hold now (capacity).
    int64_t transposed_copy_bytes() const;
    int64_t n_blocks() const { return pat_.n_blocks(); }

    /// Dense path (docs/engine.md): when every block is active, |P| = G_out * G_in and, the
    /// columns of each row being sorted and distinct, K is the row-major G_out x G_in block matrix;
    /// forward and backward then run their three products as GEMMs (KernelTable::gemm) on it, with
    /// no copy of the weights. False forces the sparse kernels (tests, A/B). A pattern change that
    /// leaves the layer sparse (pruning) switches back to the sparse kernels at the next call.
    bool dense_path = true;
    /// Whether forward and backward take the dense path now.
    bool uses_dense() const { return dense_path && n_blocks() == G_out * G_in; }
    int64_t n_bias() const { return static_cast<int64_t>(b.size()); }
    /// Number of edges of the effective matrix: sum over active blocks of (rows * cols of the block).
    int64_t n_edges() const;
    /// Size of input group c / output group r (m, or smaller for a residual motif).
    int64_t in_size(int64_t c) const { return std::min(m_in, n_in - c * m_in); }
    int64_t out_size(int64_t r) const { return std::min(m_out, n_out - r * m_out); }
    /// He-uniform bound sqrt(6 / fan_in) of output group r for its current pattern (0 if empty),
    /// fan_in = sum over the row's blocks of in_size(c) * min(in_size(c), input_copies): the edge
    /// fan-in for independent inputs, the second-moment-preserving one for copied inputs.
    float init_bound(int64_t r) const;
    const int64_t input_copies;  ///< see LayerConfig::input_copies

    /// Replaces pattern, parameters and optimizer state (checkpoint loading). Validates sizes,
    /// ranges, sortedness, duplicates and values; vK/vb may be empty (zeroed); sK/sb may be empty
    /// (no Adam state yet). Gradients are zeroed, the prune record and a codebook dropped.
    void set_state(std::vector<int64_t> indptr, std::vector<int32_t> indices, std::vector<float> K,
                   std::vector<float> b, std::vector<float> vK, std::vector<float> vb,
                   std::vector<float> sK = {}, std::vector<float> sb = {});

    /// SET evolution in place: prune the round(zeta*|P|) active blocks of smallest |K| (ties broken
    /// by position), regrow as many uniformly among the positions that were inactive before this
    /// step, with weights set by `init` (see RegrowInit); optimizer state of new blocks is zero.
    /// |P| is kept; indices stay sorted. The count is capped by the number of inactive positions.
    PruneStats prune_regrow(double zeta, uint64_t seed, RegrowInit init = RegrowInit::He);

    // ---- Dynamic sparse training primitives (dst.cpp) -------------------------------------------
    // Each prune records the removed flat positions r * G_in + c (increasing) with their K and
    // optimizer state (last_removed(), last_removed_weights(), optimizer_state().removed_velocity()
    // and removed_sq()); the next grow_at re-activates such a position with its
    // old values, and grow_random never draws one. Any other pattern change clears the record.

    /// Generic compaction: keeps block p iff keep[p] != 0 (|P| entries). Returns blocks removed.
    /// zero_grad = false leaves dK empty instead of zeroed at the new size, for a caller that
    /// grows right after (the growth zeroes it at its own size) and restores it on a throw.
    int64_t keep_where(const uint8_t* keep, bool zero_grad = true);
    /// Forgets the record of the last prune, so the next grow_at starts every position fresh.
    void clear_removed();
    /// Flat positions removed by the last prune (increasing), and their weights K.
    const std::vector<uint64_t>& last_removed() const { return removed_pos_; }
    const std::vector<float>& last_removed_weights() const { return removed_K_; }
    /// 1 for the k active blocks of smallest |K| (ties: lower position first), 0 elsewhere.
    std::vector<uint8_t> smallest_blocks(int64_t k) const;
    /// Removes the k blocks of smallest |K| (ties broken by position). Returns k.
    int64_t prune_smallest(int64_t k, bool zero_grad = true);
    /// Removes the blocks with |K| < H, but keeps at least keep_min blocks (the largest |K|,
    /// ties to the lower position). Returns the number removed.
    int64_t prune_below(float H, int64_t keep_min = 1);
    /// Activates the given strictly increasing, currently inactive positions. A position removed
    /// by the last prune gets its old K and optimizer state back; any other gets K from `init`
    /// (He: a He-uniform draw of the row's new fan-in from an Rng seeded with `seed`; Zero: 0;
    /// Pruned: uniform within `pruned_bound`) and zero optimizer state. Returns n.
    int64_t grow_at(const uint64_t* pos, int64_t n, RegrowInit init, uint64_t seed = 0, float pruned_bound = 0.f);
    /// Grows min(n, free) blocks uniformly among the positions inactive now and not removed by
    /// the last prune (sample_positions: no grid allocation), values as in grow_at, positions
    /// and weights drawn from one Rng seeded with `seed`. Returns the number grown.
    int64_t grow_random(int64_t n, uint64_t seed, RegrowInit init, float pruned_bound = 0.f);
    /// Top-k of |sum_b dU[r, b] * S[c, b]| (the gradient of a block weight at K = 0) over the
    /// positions not kept: every inactive position and every active block p with kept[p] == 0.
    /// dU is [G_out, ld], S is [G_in, ld]. Ties go to the lower (r, c). The selection and scores
    /// do not depend on the thread count or the tile sizes; never allocates G_out x G_in.
    TopkResult block_grad_topk(const float* dU, const float* S, int64_t B, int64_t ld, const uint8_t* kept,
                               int64_t k, const TopkConfig& cfg, int num_threads) const;
    /// block_grad_topk on the panels of the last forward_rowmajor/backward_rowmajor, with the
    /// `drop` smallest-|K| blocks counted as not kept.
    TopkResult grad_topk_last(int64_t k, int64_t drop, const TopkConfig& cfg, int num_threads);

    /// In-place SGD with momentum (PyTorch convention): v = mu*v + (g + wd*w); w -= lr*v.
    /// Applies to K (with dK) and b (with db); weight decay applies to both.
    void sgd_step(float lr, float momentum, float weight_decay, int num_threads);

    /// One in-place optimizer update of K and b from dK and db (g = grad_scale * grad):
    /// SGD as sgd_step; Adam (PyTorch convention) m = b1*m + (1-b1)*g', s = b2*s + (1-b2)*g'^2,
    /// w -= lr * (m / (1-b1^t)) / (sqrt(s / (1-b2^t)) + eps) with g' = g + wd*w; AdamW uses g' = g
    /// and first decays w *= 1 - lr*wd. m and s live in optimizer_state() (s sized on first use).
    void optimizer_step(const OptimConfig& cfg, int num_threads);
    // ---- Weight sharing (Deep Compression's trained quantization) --------------------------------
    /// Shares the block weights through a codebook: block p gets K[p] = centroids[codes[p]], and
    /// from then on optimizer_step trains the centroids instead of K: g_j = sum of dK[p] over the
    /// blocks with codes[p] == j (fixed-order chunked sums, thread-count independent), the same
    /// optimizer update as K's but without weight decay, then K is regathered. `v`/`s` are the
    /// centroids' optimizer state (empty = zero / no Adam state yet). Valid until the pattern
    /// changes (an optimizer step after that throws).
    void set_codebook(std::vector<int32_t> codes, std::vector<float> centroids, std::vector<float> v = {},
                      std::vector<float> s = {});
    void clear_codebook();
    bool has_codebook() const { return !codebook_.empty(); }
    /// The codebook (codebook.hpp), read-only: set_codebook / clear_codebook change it.
    const Codebook& codebook() const { return codebook_; }

    /// True once an optimizer update left a NaN, infinite or |x| >= 2^64 value in K or b (training diverged):
    /// forward() then throws std::overflow_error until set_state / set_weights / set_bias restore finite values.
    bool diverged() const { return diverged_; }
    /// Whether every entry of K and b is finite.
    bool params_finite(int num_threads) const;
    /// Sum of squares of dK and db, in double, summed in fixed chunks (thread-count independent).
    double grad_sq_norm(int num_threads) const;

    // ---- Batch kernels on feature-major panels -------------------------------------------------
    /// Forward: S = GroupSum(in), U = S K^T, A = act(Expand(U) + b). `in` is a feature-major panel
    /// [n_in, ld] with row stride ld = panel_ld(B) (kernels.hpp) of which the first B columns are used.
    /// Returns whether A holds a NaN or infinite value (found while A is written).
    bool forward(const float* in, int64_t B, LayerWork& w, int num_threads) const;
    /// Backward. The upstream gradient of the activations is read as grad[(i / grad_group) * ld + b],
    /// ld = panel_ld(B) as for every panel
    /// (grad_group > 1 lets the next layer pass its un-expanded dS). For ReLU the local derivative
    /// is `relu_scale` where A > 0 and 0 elsewhere (relu_scale = 1/(1-p) undoes inverted dropout).
    /// Fills dK, db and w.dU; fills w.scratch().dS (gradient w.r.t. the input group sums) if
    /// need_dS. `grad` may be w.scratch().dS itself (a network's shared scratch): it is read in
    /// full before dS is written. The sparse path's input gradient builds the transposed index
    /// first if a pattern change left it stale (ensure_transposed).
    /// dK_out [|P|] / db_out [n_bias], when given, receive the gradients instead of the layer's own
    /// dK / db (which then keep their previous values): the same kernels, the same values.
    /// `update`, when given (and no dK_out / db_out), asks for the optimizer update of this step as
    /// well, where the route allows it (updates_in_backward): on the fused route the layer keeps a
    /// copy of K in transposed order across steps, the fused kernel reads it and writes dK in that
    /// order, and the update runs in that order too, on K's copy, dK and the optimizer state, all
    /// read in sequence by the thread that wrote them; K is then gathered from its copy. No gather
    /// of K before the backward, none of dK after it (docs/engine.md). The results are those of the
    /// backward followed by optimizer_step, bit for bit. Returns whether the update was made (then
    /// grad_weights() and grad_bias() still give the gradients, and the caller must not call
    /// optimizer_step for this step); false: the caller updates as usual.
    /// `check_grad`: `grad` may hold NaN or infinite values (a gradient panel handed on without
    /// rows, never counted): if it does, throws std::invalid_argument before anything but the
    /// output-gradient pass (dU, db: the layer's own bias gradient when db_out is null) has run;
    /// backward_rowmajor then leaves the layer without gradients (grad_topk refuses).
    bool backward(const float* grad, int64_t grad_group, float relu_scale, int64_t B, LayerWork& w,
                  bool need_dS, int num_threads, float* dK_out = nullptr, float* db_out = nullptr,
                  const OptimConfig* update = nullptr, bool check_grad = false);

    // ---- Convenience API on row-major [B, n] arrays (used by the Python MotifLayer) -------------
    /// out[B, n_out] = layer(x[B, n_in]); keeps what backward_rowmajor needs. `in`, when given and
    /// matching (B samples, n_in rows, group 1), is the panel of x itself (the previous layer's
    /// output_panel, x being that layer's `out`): it is shared instead of converted from x again
    /// (the same values, so the same results, bitwise). Returns whether it was. `stream_rows`: the
    /// caller will not read `out` soon (panel_to_rows). `out` == nullptr: the output stays in its
    /// panel only (a chain of calls whose next layer takes it: output_panel); its NaN and infinite
    /// values, which the forward's last pass detects, are counted for that layer's check.
    bool forward_rowmajor(const float* x, int64_t B, float* out, int num_threads, const PanelHandoff* in = nullptr,
                          bool stream_rows = false);
    /// grad_in[B, n_in] from grad_out[B, n_out] of the last forward_rowmajor; fills dK, db.
    /// grad_in == nullptr skips the input gradient (a first layer: only dK and db are needed).
    /// dK_out / db_out as in backward(): caller buffers of n_blocks() / n_bias() floats that receive
    /// the gradients instead of dK / db (motifcore.torch writes them straight into torch tensors).
    /// `grad`, when given and matching (B samples, n_out rows), is the panel of grad_out itself
    /// (the next layer's grad_in_panel, grad_out being its grad_in), read instead of converting
    /// grad_out; the caller holds the next layer's guard. Returns whether it was read.
    /// `stream_rows`: the caller will not read `grad_in` soon (panel_to_rows).
    /// `update`, when given (dK_out and db_out null), makes this step's optimizer update inside the
    /// call: in the backward where the route allows it (backward()), else right after it
    /// (optimizer_step); the results are those of the backward followed by optimizer_step.
    /// `grad_in_panel` (grad_in == nullptr): the input gradient is computed into its panel only,
    /// for the previous layer of a chain (grad_in_panel()); its NaN and infinite values are not
    /// counted (nonfinite -1): the previous layer's backward checks them as it reads the panel.
    bool backward_rowmajor(const float* grad_out, int64_t B, float* grad_in, int num_threads,
                           float* dK_out = nullptr, float* db_out = nullptr, const PanelHandoff* grad = nullptr,
                           bool stream_rows = false, const OptimConfig* update = nullptr, bool grad_in_panel = false);
    /// Drops what the last forward_rowmajor kept (its input panel, which may be the previous layer's
    /// output panel: that layer's next forward then writes into the same panel again instead of its
    /// spare one); a backward_rowmajor needs a forward_rowmajor first. A chain of calls runs it on
    /// its layers but the first before it starts, since it is about to redo their forwards.
    void forget_forward();
    /// Stamps of the last forward_rowmajor and of the last backward_rowmajor that computed grad_in
    /// (0: none): unique over all layers of the process, so a stamp names one call.
    uint64_t forward_stamp() const { return out_stamp_; }
    uint64_t backward_stamp() const { return grad_stamp_; }
    /// The output panel of the forward_rowmajor stamped `stamp`, shared (kept alive by `keep`), if
    /// that is still the last one; else an empty handoff.
    PanelHandoff output_panel(uint64_t stamp) const;
    /// The input-group gradient panel [G_in, ld] of the backward_rowmajor stamped `stamp`, if that
    /// is still the last call of this layer's row-major API and the last to write the shared
    /// scratch's panel; else an empty handoff. Not shared: valid while the guard is held
    /// (rowmajor_guard with this layer as `other`).
    PanelHandoff grad_in_panel(uint64_t stamp) const;
    /// Writes the effective dense matrix [n_out, n_in] (inspection and tests only).
    void to_dense(float* out) const;

    /// Exclusive guard of this layer's state; every entry point holds it (rule: concurrency.hpp).
    /// Its regions use the layer's own choice of team size (TeamChoice, parallel.hpp).
    StateGuard guard() const { return StateGuard({&state_mutex_}, &team_); }
    /// The guard of the row-major calls (forward_rowmajor, backward_rowmajor): this layer's and the
    /// shared RowMajorScratch's, with `other`'s too when given (a backward_rowmajor that reads
    /// other's grad_in_panel); locked in address order, with this layer's team choice.
    StateGuard rowmajor_guard(const Layer* other = nullptr) const {
        std::vector<const StateMutex*> ms{&state_mutex_, &rm_->mutex};
        if (other) ms.push_back(&other->state_mutex_);
        return StateGuard(std::move(ms), &team_);
    }
    /// The guard of a chain of row-major calls on `layers` (consecutive layers handing their panels
    /// on, no other thread in between): every layer's, the shared RowMajorScratch's and `other`'s
    /// when given (the layer whose panel the chain's first call takes). Regions of the calls use
    /// each layer's own team choice (team_choice(), set by the caller per call).
    static StateGuard chain_guard(const std::vector<const Layer*>& layers, const Layer* other = nullptr);
    /// This layer's choice of team size (parallel.hpp), for a TeamScope around one of its calls
    /// made under a chain_guard.
    const TeamChoice* team_choice() const { return &team_; }
    const StateMutex& state_mutex() const { return state_mutex_; }

private:
    BlockPattern pat_;         // see pattern()
    // The parameters and gradients, named as in design.md (see weights(), params_in_place()).
    std::vector<float> K, b, db;
    mutable std::vector<float> dK;    // see grad_weights(): gathered from dKt_ by settle()
    mutable OptimizerState opt_;      // see optimizer_state(): put back in CSR order by settle()
    // The update in transposed order (backward()): Kt_ is K in transposed order, current while
    // kt_current_ and the pattern is at version kt_version_ (every other write of K clears it);
    // dKt_ the gradient of the last such backward, in transposed order (dK is gathered from it when
    // dk_in_kt_); the per-block optimizer state is in transposed order while state_transposed_.
    std::vector<float> Kt_, dKt_;
    uint64_t kt_version_ = 0;
    bool kt_current_ = false;
    bool weights_shared_ = false;     // a writable view of K was handed out (params_in_place)
    mutable bool dk_in_kt_ = false;
    mutable bool state_transposed_ = false;
    /// Puts dK and the optimizer state back in CSR order, on up to num_threads threads (under the
    /// layer's guard, as every entry point; logically const: the values do not change, only where
    /// they are kept). Every reader of dK or the state calls it first.
    void settle(int num_threads = 1) const;
    /// Before a change of the pattern: the state back in CSR order (while the transposed index is
    /// still there), the pending gradient dropped (the change discards dK) and the transposed
    /// copies freed (stale after it).
    void leave_transposed(int num_threads = 1);
    /// The update of a backward on the transposed route: the optimizer on Kt_, dKt_ and the state
    /// in transposed order, the biases, then K gathered from Kt_.
    void update_transposed(const OptimConfig& cfg, int num_threads);
    std::vector<uint64_t> removed_pos_;   // see last_removed(); opt_ holds the same entries' state
    std::vector<float> removed_K_;        // see last_removed_weights()
    bool diverged_ = false;    // see diverged()
    int64_t grow_sorted(const std::vector<uint64_t>& pos, RegrowInit init, class Rng& rng, float pruned_bound);
    void init_weights(uint64_t seed);
    void draw_block_weights(int64_t r, int64_t p_begin, int64_t p_end, class Rng& rng, bool zero);
    std::shared_ptr<RowMajorScratch> rm_;  // the shared backward scratch of own_
    LayerWork own_;            // scratch of the row-major convenience API (external_out, rm_'s scratch)
    PanelVector x_fm_;  // input of the last forward_rowmajor, feature-major (when converted)
    PanelVector g_fm_;  // gradient scratch, feature-major
    // The row-major API's output panel A (own_.Ap) lives in out_panel_, which output_panel shares
    // with the next layer; a forward writes into whichever of out_panel_ and spare_panel_ no such
    // layer holds any more (a third only if both are held).
    std::shared_ptr<PanelVector> out_panel_, spare_panel_;
    std::shared_ptr<const void> in_keep_;  // owner of a shared input panel of the last forward_rowmajor
    const float* x_src_ = nullptr;         // input panel of the last forward_rowmajor (x_fm_ or shared)
    uint64_t out_stamp_ = 0, grad_stamp_ = 0;      // see forward_stamp()
    int64_t out_nonfinite_ = 0, grad_nonfinite_ = 0;  // NaN / inf values in those calls' outputs
    int64_t last_B_ = 0;
    Codebook codebook_;             // see codebook()
    uint64_t forward_version_ = 0;  // pattern version seen by the last forward_rowmajor
    bool have_grad_ = false;        // backward_rowmajor ran after the last forward_rowmajor
    StateMutex state_mutex_;        // see guard()
    TeamChoice team_;               // see guard()
};

/// Number of active blocks the ER init draws for this config (exposed for tests and docs).
/// Throws std::invalid_argument on a config the Layer constructor would reject.
int64_t target_blocks(const LayerConfig& cfg);

/// Whether a sparse layer with G_out output groups computes its weight and input gradients with
/// KernelTable::fused_backward for a batch of B samples whose workspace holds B_sized: when B >= 4
/// and its output-gradient panel at max(B, B_sized) samples is not huge (kHugePanelBytes);
/// otherwise with the SDDMM, the transposed-weight gather and the transposed SpMM.
bool fused_backward_fits(int64_t G_out, int64_t B, int64_t B_sized = 0);

}  // namespace motifcore
