#include "layer.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <utility>

#include "common.hpp"
#include "kernels.hpp"
#include "pattern.hpp"

namespace motifcore {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The RowMajorScratch of every live Layer (made by the first, freed with the last).
std::shared_ptr<RowMajorScratch> shared_rowmajor_scratch() {
    static std::mutex m;
    static std::weak_ptr<RowMajorScratch> current;
    const std::lock_guard<std::mutex> lock(m);
    std::shared_ptr<RowMajorScratch> s = current.lock();
    if (!s) {
        s = std::make_shared<RowMajorScratch>();
        current = s;
    }
    return s;
}

// Stamps of the row-major API's calls (Layer::forward_stamp): one counter for every layer, so a
// stamp names one call of one layer.
uint64_t next_stamp() {
    static std::atomic<uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}



// KernelTable::gemm (of the table `t` the caller read once) with its packing scratch held in `pack` (grown on first use, then reused).
void dense_gemm(const KernelTable& t, int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs,
                const float* b, int64_t b_rs, int64_t b_cs, float* c, int64_t ldc, StreamVector& pack, int nt) {
    const size_t need = static_cast<size_t>(t.gemm_pack_floats(K, N, b_cs));
    if (pack.size() < need) pack.resize(need);  // only the weight gradient packs (a transposed panel)
    t.gemm(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, pack.data(), nt);
}

// Every check of a layer config; target_blocks runs them too (m = 0 would divide by zero).
void check_config(const LayerConfig& cfg) {
    MC_CHECK(cfg.n_in >= 1 && cfg.n_out >= 1,
             "layer widths must be >= 1, got n_in=" << cfg.n_in << ", n_out=" << cfg.n_out);
    MC_CHECK(cfg.m_in >= 1 && cfg.m_out >= 1,
             "motif sizes must be >= 1, got m_in=" << cfg.m_in << ", m_out=" << cfg.m_out);
    MC_CHECK(cfg.m_in <= cfg.n_in && cfg.m_out <= cfg.n_out,
             "motif size larger than the layer: m_in=" << cfg.m_in << " > n_in=" << cfg.n_in
                                                       << " or m_out=" << cfg.m_out << " > n_out=" << cfg.n_out);
    MC_CHECK(cfg.epsilon > 0 || (cfg.density > 0 && cfg.density <= 1),
             "density must be in (0, 1], got " << cfg.density);
    MC_CHECK(cfg.epsilon >= 0 && std::isfinite(cfg.epsilon), "epsilon must be > 0, got " << cfg.epsilon);
    MC_CHECK(cfg.input_copies >= 1, "input_copies must be >= 1, got " << cfg.input_copies);
}

}  // namespace

bool fused_backward_fits(int64_t G_out, int64_t B, int64_t B_sized) {
    // Batches of 1-3 samples: one dS accumulation chain per sample, latency-bound, where the
    // transposed SpMM runs four; the split kernels were faster there (docs/performance-log.md).
    // The panel bound is taken at the largest batch the layer's workspace holds (B_sized), not at
    // this call's: a layer keeps one route through a run whose last batch is short, so that batch
    // neither grows the shared scratch nor sums its input gradient in another order.
    return B >= 4 && G_out * panel_ld(std::max(B, B_sized)) * 4 <= kHugePanelBytes;
}

int64_t target_blocks(const LayerConfig& cfg) {
    check_config(cfg);
    const int64_t G_in = ceil_div(cfg.n_in, cfg.m_in), G_out = ceil_div(cfg.n_out, cfg.m_out);
    const double total = static_cast<double>(G_in) * static_cast<double>(G_out);
    double d = cfg.density;
    if (cfg.epsilon > 0) d = std::min(1.0, cfg.epsilon * static_cast<double>(G_in + G_out) / total);
    return static_cast<int64_t>(std::llround(d * total));
}

namespace {

// The config after check_config: the first member initialiser runs the checks, so no geometry is
// computed from a bad config (m = 0 would divide by zero).
const LayerConfig& checked(const LayerConfig& cfg) {
    check_config(cfg);
    return cfg;
}

}  // namespace

Layer::Layer(const LayerConfig& cfg)
    : n_in(checked(cfg).n_in), n_out(cfg.n_out), m_in(cfg.m_in), m_out(cfg.m_out),
      G_in(ceil_div(cfg.n_in, cfg.m_in)), G_out(ceil_div(cfg.n_out, cfg.m_out)), activation(cfg.activation),
      bias_mode(cfg.bias), input_copies(cfg.input_copies) {
    MC_CHECK(G_in < std::numeric_limits<int32_t>::max(), "too many input groups: " << G_in);
    MC_CHECK(G_out < std::numeric_limits<int32_t>::max(), "too many output groups: " << G_out);  // t_rows is int32
    const int64_t nb = target_blocks(cfg);
    MC_CHECK(nb >= 1, "density " << cfg.density << (cfg.epsilon > 0 ? " (from epsilon)" : "")
                                 << " gives 0 active blocks for a " << G_out << " x " << G_in
                                 << " block grid; raise the density");
    MC_CHECK(nb <= kMaxBlocks, "a layer holds at most " << kMaxBlocks << " active blocks, this config gives " << nb
                                                        << "; lower the density");

    Rng rng(cfg.seed);
    const uint64_t total = static_cast<uint64_t>(G_in) * static_cast<uint64_t>(G_out);
    const auto pos = sample_positions(total, static_cast<uint64_t>(nb), 0, rng, [](uint64_t) { return false; });
    pat_ = BlockPattern(G_out, G_in, pos, false);   // the transposed index: at the first backward that needs it
    K.assign(pos.size(), 0.f);
    dK.assign(pos.size(), 0.f);
    const int64_t nbias = bias_mode == BiasMode::Neuron ? n_out : G_out;
    b.assign(nbias, 0.f);
    db.assign(nbias, 0.f);
    opt_ = OptimizerState(static_cast<int64_t>(pos.size()), nbias);
    const auto& indptr = pat_.indptr();
    for (int64_t r = 0; r < G_out; ++r) draw_block_weights(r, indptr[r], indptr[r + 1], rng, false);
    own_.external_out = true;   // A: out_panel_ (forward_rowmajor)
    rm_ = shared_rowmajor_scratch();
    own_.shared = &rm_->scratch;
}

int64_t Layer::n_edges() const {
    const auto& indptr = pat_.indptr();
    const auto& indices = pat_.indices();
    int64_t e = 0;
    for (int64_t r = 0; r < G_out; ++r) {
        int64_t cols = 0;
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) cols += in_size(indices[p]);
        e += cols * out_size(r);
    }
    return e;
}

float Layer::init_bound(int64_t r) const {
    const auto& indptr = pat_.indptr();
    const auto& indices = pat_.indices();
    int64_t fan_in = 0;
    if (m_in == 1) {   // every input group is one neuron (sz = 1, input_copies >= 1): one per block
        fan_in = indptr[r + 1] - indptr[r];
    } else {
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
            const int64_t sz = in_size(indices[p]);
            fan_in += sz * std::min(sz, input_copies);
        }
    }
    return fan_in > 0 ? static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in))) : 0.f;
}

void Layer::draw_block_weights(int64_t r, int64_t p_begin, int64_t p_end, Rng& rng, bool zero) {
    const double bound = init_bound(r);
    for (int64_t p = p_begin; p < p_end; ++p)
        K[p] = zero ? 0.f : static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
}

void Layer::set_state(std::vector<int64_t> new_indptr, std::vector<int32_t> new_indices,
                      std::vector<float> new_K, std::vector<float> new_b, std::vector<float> new_vK,
                      std::vector<float> new_vb, std::vector<float> new_sK, std::vector<float> new_sb) {
    BlockPattern::validate(G_out, G_in, new_indptr, new_indices);
    MC_CHECK(new_K.size() == new_indices.size(),
             "weights must have one entry per block (" << new_indices.size() << "), got " << new_K.size());
    MC_CHECK(static_cast<int64_t>(new_b.size()) == n_bias(), "bias must have " << n_bias() << " entries, got " << new_b.size());
    OptimizerState state(static_cast<int64_t>(new_K.size()), n_bias(), std::move(new_vK), std::move(new_vb),
                         std::move(new_sK), std::move(new_sb));   // sizes checked
    for (const auto* v : {&new_K, &new_b})
        for (float x : *v) MC_CHECK(std::isfinite(x), "layer state holds a NaN or infinite value");
    state.check_values();
    // Everything below is replaced (in CSR order): the transposed copies and their flags go first,
    // so that no flag outlives what it describes should an allocation below throw.
    dk_in_kt_ = state_transposed_ = kt_current_ = false;
    std::vector<float>().swap(Kt_);
    std::vector<float>().swap(dKt_);
    pat_.assign(std::move(new_indptr), std::move(new_indices), false);
    K = std::move(new_K);
    b = std::move(new_b);
    opt_ = std::move(state);
    dK.assign(K.size(), 0.f);
    db.assign(b.size(), 0.f);
    clear_removed();
    clear_codebook();
    diverged_ = false;  // the values were checked finite above
}

void Layer::set_weights(std::vector<float> w) {
    MC_CHECK(w.size() == K.size(), "weights must be a 1-D array of " << K.size() << " float32");
    std::copy(w.begin(), w.end(), K.begin());   // in place: views of K handed out stay valid
    kt_current_ = false;
    diverged_ = !params_finite(1);
}

void Layer::set_bias(std::vector<float> v) {
    MC_CHECK(v.size() == b.size(), "bias must be a 1-D array of " << b.size() << " float32");
    std::copy(v.begin(), v.end(), b.begin());   // in place, as set_weights
    diverged_ = !params_finite(1);
}

void LayerWork::ensure(const Layer& layer, int64_t batch, bool input_grad) {
    const bool sparse = !layer.uses_dense();   // dense: no transposed copy, no cursors
    BackwardScratch& sc = scratch();
    const int64_t ld_need = panel_ld(std::max(B, batch));
    const auto need_dS = static_cast<size_t>(layer.G_in * ld_need);
    // The fused backward holds the weights and their gradient in transposed order (2 |P|) and a
    // cursor per input row; the split one (huge panels, no input gradient) the weights and a cursor
    // per output row. Sized for the route backward takes at any batch up to the one held
    // (fused_backward_fits at 4 samples: the smallest batch that can take it).
    const bool fused = sparse && input_grad && fused_backward_fits(layer.G_out, 4, std::max(B, batch));
    const auto need_buf = static_cast<size_t>(sparse ? layer.n_blocks() * (fused ? 2 : 1) : 0);
    const auto need_cursor = static_cast<size_t>(sparse ? std::max(layer.G_out, fused ? layer.G_in : 0) : 0);
    if (batch <= B && Up && sc.dS.size() >= need_dS && sc.buf.size() >= need_buf && sc.cursor.size() >= need_cursor)
        return;
    B = std::max(B, batch);
    const int64_t ld = panel_ld(B);
    const bool shared_out = share_out && layer.m_out == 1 && !external_out;
    // The row-major API's output panel takes U when m_out == 1 (U becomes A in place, as in a
    // network); the owner points Up at it with Ap.
    const bool u_in_out = external_out && layer.m_out == 1;
    if (layer.m_in > 1) S.resize(static_cast<size_t>(layer.G_in * ld));
    if (!external_out) A.resize(static_cast<size_t>(layer.n_out * ld));
    if (!shared_out) {
        if (!u_in_out) U.resize(static_cast<size_t>(layer.G_out * ld));
        dU.resize(static_cast<size_t>(layer.G_out * ld));
    }
    // The scratch only grows: shared by several layers, it holds the largest of their needs.
    if (sc.dS.size() < need_dS) sc.dS.resize(need_dS);
    if (sc.buf.size() < need_buf) sc.buf.resize(need_buf);
    if (sc.cursor.size() < need_cursor) sc.cursor.resize(need_cursor);
    if (!external_out) Ap = A.data();
    if (!u_in_out) Up = shared_out ? Ap : U.data();
    dUp = shared_out ? Ap : dU.data();
}

bool Layer::forward(const float* in, int64_t B, LayerWork& w, int nt) const {
    MC_CHECK_AS(std::overflow_error, !diverged_, "the layer's weights are NaN or infinite, or too large to compute with (|w| >= 2^64): training "
                        "diverged (learning rate too large?); "
                        "restore the model with set_state or from a checkpoint");
    const int64_t ld = panel_ld(B);
    const KernelTable& kt = kernels();   // one SIMD level for the whole call (set_simd_level: docs/engine.md)
    // GroupSum of the input (skipped for m_in == 1: the input is its own group sum).
    if (m_in == 1) {
        w.S_ptr = in;
    } else {
        kt.group_sum(G_in, m_in, n_in, in, w.S.data(), B, ld, nt);
        w.S_ptr = w.S.data();
    }
    if (uses_dense())  // U = K S with K the row-major G_out x G_in block matrix
        dense_gemm(kt, G_out, B, G_in, K.data(), G_in, 1, w.S_ptr, ld, 1, w.Up, ld, w.scratch().buf, nt);
    else
        kt.spmm(G_out, pat_.indptr().data(), pat_.indices().data(), K.data(), w.S_ptr, G_in, w.Up, B, ld, nt);
    return kt.expand_bias_act(n_out, m_out, w.Up, b.data(), bias_mode == BiasMode::Neuron,
                              activation == Activation::ReLU, w.Ap, B, ld, nt);
}

bool Layer::backward(const float* grad, int64_t grad_group, float relu_scale, int64_t B, LayerWork& w,
                     bool need_dS, int nt, float* dK_out, float* db_out, const OptimConfig* update, bool check_grad) {
    const int64_t ld = panel_ld(B);
    const KernelTable& kt = kernels();   // one SIMD level for the whole call
    float* dKp = dK_out ? dK_out : dK.data();
    // The layer's own dK gets this backward's gradient just below (not on the transposed route,
    // which sets the flag itself): whatever was pending in dKt_ is older.
    const auto writing_dK = [&] {
        if (!dK_out) dk_in_kt_ = false;
    };
    float* dbp = db_out ? db_out : db.data();
    if (kt.group_backward(G_out, m_out, n_out, grad, grad_group, w.Ap, activation == Activation::ReLU,
                          relu_scale, bias_mode == BiasMode::Neuron, w.dUp, dbp, B, ld, nt, check_grad)) {
        const int64_t bad = count_nonfinite_panel(grad, ld, n_out, grad_group, B);
        MC_CHECK(false, "grad_out contains " << bad << " NaN or infinite values");
    }
    // `grad` is dead from here on: dS may overwrite it (a network's shared scratch).
    const float* dU = w.dUp;
    BackwardScratch& sc = w.scratch();
    if (uses_dense()) {
        // dK = dU S^T (G_out x G_in, row-major like K) and dS = K^T dU.
        writing_dK();
        dense_gemm(kt, G_out, G_in, B, dU, ld, 1, w.S_ptr, 1, ld, dKp, G_in, sc.buf, nt);
        if (need_dS) dense_gemm(kt, G_in, B, G_out, K.data(), 1, G_in, dU, ld, 1, sc.dS.data(), ld, sc.buf, nt);
        return false;
    }
    ensure_backward_index(B, w, need_dS, nt);   // built lazily: stale after a pattern change (see pattern())
    if (update && !dK_out && !db_out && updates_in_backward(B, w, need_dS)) {
        // The update in transposed order: no gather of K before the kernel, none of dK after it.
        prepare_update_in_backward(B, w, need_dS, update->kind, nt);   // a no-op once prepared
        MC_CHECK(static_cast<int64_t>(sc.cursor.size()) >= G_in,
                 "internal: the backward scratch was not sized for this batch (LayerWork::ensure)");
        kt.fused_backward(G_in, G_out, pat_.t_indptr().data(), pat_.t_rows().data(), Kt_.data(), dU, w.S_ptr,
                          dKt_.data(), sc.dS.data(), B, ld, sc.cursor.data(), nt);
        dk_in_kt_ = true;   // this backward's dK is in dKt_ (the layer's own dK holds an older one)
        update_transposed(*update, nt);
        return true;
    }
    if (need_dS && fused_backward_fits(G_out, B, w.B)) {
        // Both gradients in one pass over the transposed index (KernelTable::fused_backward): the
        // weights go in, and their gradient comes back, through the transposed positions. dK has
        // the SDDMM's values; dS sums each row's blocks in ascending output row (docs/engine.md).
        // The gradient is gathered back through the inverse positions (CSR order, sequential writes).
        const int64_t nnz = n_blocks();
        MC_CHECK(static_cast<int64_t>(sc.buf.size()) >= 2 * nnz && static_cast<int64_t>(sc.cursor.size()) >= G_in,
                 "internal: the backward scratch was not sized for this batch (LayerWork::ensure)");
        float* Kt = sc.buf.data();
        float* dKt = Kt + nnz;
        if (kt_current_ && kt_version_ == pat_.version())
            Kt = Kt_.data();   // the copy the last update in transposed order left (K unchanged since)
        else
            gather_prefetched(nnz, pat_.t_pos().data(), K.data(), Kt, nt);
        kt.fused_backward(G_in, G_out, pat_.t_indptr().data(), pat_.t_rows().data(), Kt, dU, w.S_ptr, dKt,
                          sc.dS.data(), B, ld, sc.cursor.data(), nt);
        writing_dK();
        gather_prefetched(nnz, pat_.t_inv().data(), dKt, dKp, nt);
        return false;
    }
    writing_dK();
    kt.sddmm(G_out, pat_.indptr().data(), pat_.indices().data(), dU, w.S_ptr, G_in, dKp, B, ld, sc.cursor.data(),
             nt);
    if (need_dS) {
        // Weights in transposed order (a gather; the pattern is fixed between evolution steps).
        // Reading them through t_pos inside the SpMM instead (no copy) was measured 5-10 % slower
        // at the 1M network (40 M blocks, batch 32 and 8; 2026-12-06): the random reads of K
        // stall the SpMM, where this loop overlaps them.
        const int64_t nnz = n_blocks();
        float* Kt = sc.buf.data();
        const float* Kp = K.data();
        const int32_t* pos = pat_.t_pos().data();
        parallel_for(nnz, grain_for(1), threads_for(nnz, nt), [&](int64_t q) { Kt[q] = Kp[pos[q]]; });
        kt.spmm(G_in, pat_.t_indptr().data(), pat_.t_rows().data(), Kt, dU, G_out, sc.dS.data(), B, ld, nt);
    }
    return false;
}

void Layer::ensure_backward_index(int64_t B, const LayerWork& w, bool need_dS, int nt) {
    if (uses_dense() || !need_dS) return;
    if (fused_backward_fits(G_out, B, w.B))
        pat_.reindex_inverse(nt);
    else
        pat_.reindex(nt);
}

bool Layer::updates_in_backward(int64_t B, const LayerWork& w, bool need_dS) const {
    // Not with a codebook (it trains the centroids from the whole of dK), nor once a writable view
    // of K was handed out (the layer could not tell when K's transposed copy went stale).
    return need_dS && !uses_dense() && fused_backward_fits(G_out, B, w.B) && !has_codebook() && !weights_shared_;
}

void Layer::prepare_update_in_backward(int64_t B, const LayerWork& w, bool need_dS, Optimizer kind, int nt) {
    opt_.prepare(kind);   // (the state's order does not matter to it: zeros)
    if (!updates_in_backward(B, w, need_dS)) return;
    pat_.reindex_inverse(nt);
    const auto n = static_cast<size_t>(n_blocks());
    // Everything allocated before anything is reordered: a failed allocation changes no value.
    if (Kt_.size() != n) {
        kt_current_ = false;
        std::vector<float>(n).swap(Kt_);
    }
    if (dKt_.size() != n) std::vector<float>(n).swap(dKt_);   // (no dK is pending in a copy of another size)
    if (!state_transposed_) {
        opt_.permute_blocks(pat_.t_pos().data(), nt);
        state_transposed_ = true;
    }
    if (!kt_current_ || kt_version_ != pat_.version()) {
        gather_prefetched(static_cast<int64_t>(n), pat_.t_pos().data(), K.data(), Kt_.data(), nt);
        kt_current_ = true;
        kt_version_ = pat_.version();
    }
}

void Layer::update_transposed(const OptimConfig& c, int nt) {
    bool bad = opt_.update_weights(c, Kt_.data(), dKt_.data(), nt);
    bad |= opt_.update_bias(c, b.data(), db.data());
    gather_prefetched(n_blocks(), pat_.t_inv().data(), Kt_.data(), K.data(), nt);
    diverged_ = bad;
}

void Layer::settle(int nt) const {
    if (!dk_in_kt_ && !state_transposed_) return;
    // The pattern has not changed since (every change of it goes through leave_transposed first), so
    // neither has its transposed index, which is built while either flag is set.
    const int32_t* inv = pat_.t_inv().data();
    if (dk_in_kt_) {
        gather_prefetched(n_blocks(), inv, dKt_.data(), dK.data(), nt);
        dk_in_kt_ = false;
    }
    if (state_transposed_) {
        opt_.permute_blocks(inv, nt);
        state_transposed_ = false;
    }
}

void Layer::leave_transposed(int nt) {
    dk_in_kt_ = false;   // (the change discards dK: nothing to gather)
    release_transposed_copies(nt);
}

void Layer::release_transposed_copies(int nt) {
    settle(nt);   // dK and the state back in CSR order first, while the copy and the index are there
    kt_current_ = false;
    std::vector<float>().swap(Kt_);
    std::vector<float>().swap(dKt_);
}

int64_t Layer::transposed_copy_bytes() const {
    return static_cast<int64_t>((Kt_.capacity() + dKt_.capacity()) * sizeof(float));
}

bool Layer::forward_rowmajor(const float* x, int64_t B, float* out, int nt, const PanelHandoff* in, bool stream_rows) {
    MC_CHECK(B >= 1, "batch must hold at least one sample");
    const float* dS_before = rm_->scratch.dS.data();
    own_.ensure(*this, B);
    if (rm_->scratch.dS.data() != dS_before) rm_->dS_stamp = 0;   // moved: no layer's gradient panel is there
    const int64_t ld = panel_ld(B);
    // The call overwrites the stored input and output: the last forward is gone even if x is rejected.
    last_B_ = 0;
    have_grad_ = false;
    out_stamp_ = grad_stamp_ = 0;
    const bool shared = in && in->data && in->B == B && in->rows == n_in && in->group == 1;
    if (shared) {
        MC_CHECK(in->nonfinite == 0, "x contains " << in->nonfinite << " NaN or infinite values");
        in_keep_ = in->keep;
        x_src_ = in->data;
    } else {
        in_keep_.reset();
        x_fm_.resize(static_cast<size_t>(n_in * ld));
        x_src_ = nullptr;
        const int64_t bad = rows_to_panel(x, n_in, nullptr, B, x_fm_.data(), ld, nt, true);
        MC_CHECK(bad == 0, "x contains " << bad << " NaN or infinite values");
        x_src_ = x_fm_.data();
    }
    // The output panel: one that no later layer still holds as its input.
    if (!out_panel_ || out_panel_.use_count() > 1) std::swap(out_panel_, spare_panel_);
    if (!out_panel_ || out_panel_.use_count() > 1) out_panel_ = std::make_shared<PanelVector>();
    const auto need = static_cast<size_t>(n_out * panel_ld(own_.B));   // as ensure sizes the other panels
    if (out_panel_->size() < need) out_panel_->resize(need);
    own_.Ap = out_panel_->data();
    if (m_out == 1) own_.Up = own_.Ap;   // U becomes A in place (LayerWork::ensure allocates no U)
    // The scratch may have been sized for a larger batch; panels use leading dimension B.
    const bool any_nonfinite = forward(x_src_, B, own_, nt);
    forward_version_ = pat_.version();
    // (without rows: counted only when the forward saw one, for the next layer's message)
    out_nonfinite_ = out ? panel_to_rows(own_.Ap, ld, n_out, 1, B, out, nt, true, stream_rows)
                         : any_nonfinite ? count_nonfinite_panel(own_.Ap, ld, n_out, 1, B) : 0;
    last_B_ = B;
    out_stamp_ = next_stamp();
    return shared;
}

void Layer::forget_forward() {
    last_B_ = 0;
    have_grad_ = false;
    out_stamp_ = grad_stamp_ = 0;
    in_keep_.reset();
    x_src_ = nullptr;
}

bool Layer::backward_rowmajor(const float* grad_out, int64_t B, float* grad_in, int nt, float* dK_out,
                              float* db_out, const PanelHandoff* grad, bool stream_rows, const OptimConfig* update,
                              bool grad_in_panel) {
    MC_CHECK(last_B_ > 0, "backward called before forward");
    MC_CHECK(!grad_in_panel || !grad_in, "internal: an input gradient in its panel only has no rows");
    MC_CHECK(!update || (!dK_out && !db_out), "an update inside the backward writes the layer's own gradients");
    MC_CHECK(B == last_B_, "backward batch size " << B << " differs from the last forward (" << last_B_ << ")");
    MC_CHECK(pat_.version() == forward_version_,
             "the block pattern changed since the last forward (set_state or prune_regrow); call forward again");
    grad_stamp_ = 0;
    have_grad_ = false;   // set again only once this backward succeeds (a failed one may have written db)
    const int64_t ld = panel_ld(B);
    const bool shared = grad && grad->data && grad->B == B && grad->rows == n_out;
    const float* g = nullptr;
    int64_t group = 1;
    if (shared) {
        // (-1: a panel handed on without rows, not counted: the backward checks it as it reads it)
        MC_CHECK(grad->nonfinite <= 0, "grad_out contains " << grad->nonfinite << " NaN or infinite values");
        g = grad->data;
        group = grad->group;
    } else {
        g_fm_.resize(static_cast<size_t>(n_out * ld));
        const int64_t bad = rows_to_panel(grad_out, n_out, nullptr, B, g_fm_.data(), ld, nt, true);
        MC_CHECK(bad == 0, "grad_out contains " << bad << " NaN or infinite values");
        g = g_fm_.data();
    }
    if (m_in == 1) own_.S_ptr = x_src_;
    const bool check = shared && grad->nonfinite < 0;
    if (!backward(g, group, 1.f, B, own_, grad_in != nullptr || grad_in_panel, nt, dK_out, db_out, update, check) &&
        update)
        optimizer_step(*update, nt);
    have_grad_ = true;
    if (grad_in || grad_in_panel) {
        const float* dS = rm_->scratch.dS.data();
        // (without rows: -1, not counted; the previous layer's backward checks the panel as it reads it)
        grad_nonfinite_ = grad_in ? panel_to_rows(dS, ld, n_in, m_in, B, grad_in, nt, true, stream_rows) : -1;
        grad_stamp_ = rm_->dS_stamp = next_stamp();
    }
    return shared;
}

StateGuard Layer::chain_guard(const std::vector<const Layer*>& layers, const Layer* other) {
    MC_CHECK(!layers.empty(), "a chain needs at least one layer");
    std::vector<const StateMutex*> ms{&layers.front()->rm_->mutex};
    for (const Layer* l : layers) ms.push_back(&l->state_mutex_);
    if (other) ms.push_back(&other->state_mutex_);
    return StateGuard(std::move(ms), layers.front()->team_choice());
}

PanelHandoff Layer::output_panel(uint64_t stamp) const {
    PanelHandoff h;
    if (stamp == 0 || stamp != out_stamp_ || !out_panel_) return h;
    h.data = out_panel_->data();
    h.keep = out_panel_;
    h.B = last_B_;
    h.rows = n_out;
    h.nonfinite = out_nonfinite_;
    return h;
}

PanelHandoff Layer::grad_in_panel(uint64_t stamp) const {
    PanelHandoff h;
    if (stamp == 0 || stamp != grad_stamp_ || stamp != rm_->dS_stamp) return h;
    h.data = rm_->scratch.dS.data();
    h.B = last_B_;
    h.rows = n_in;
    h.group = m_in;
    h.nonfinite = grad_nonfinite_;
    return h;
}

void Layer::to_dense(float* out) const {
    const auto& indptr = pat_.indptr();
    const auto& indices = pat_.indices();
    std::fill(out, out + n_out * n_in, 0.f);
    for (int64_t r = 0; r < G_out; ++r)
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
            const int64_t c = indices[p];
            for (int64_t i = r * m_out; i < r * m_out + out_size(r); ++i)
                for (int64_t j = c * m_in; j < c * m_in + in_size(c); ++j) out[i * n_in + j] = K[p];
        }
}

}  // namespace motifcore
