// In-place optimizer updates of a layer's block weights and biases (SGD, Adam, AdamW) and the
// gradient norm used for global clipping.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <utility>

#include "kernels.hpp"
#include "layer.hpp"

namespace motifcore {

namespace {

// The updates run in fixed chunks of kChunk entries and report whether any updated weight is NaN,
// infinite or too large to compute with (unusable_mask), found in the same pass: no second pass over the weights to detect divergence. Each
// entry's arithmetic is independent of the chunking, and the flag is an OR, so neither depends on
// the thread count.
constexpr int64_t kChunk = int64_t(1) << 14;

// All ones if |x| >= 2^64 or x is NaN: an updated weight the model cannot use. 2^64 is about
// sqrt(FLT_MAX): a weight that large overflows float32 once it meets a factor of its own size, as
// in the next forward (its product with an activation the previous layers scaled the same way, the
// logits of two such layers) and the squares of Adam's second moment and of the gradient norm. A
// finite but absurd weight (lr 1e38 gives |w| ~ 1e37) is thus caught by the step that made it,
// not blamed on the next one. Trained weights are many orders of magnitude smaller (He init,
// |w| ~ sqrt(2 / fan_in)), so normal training is unaffected: the weights themselves never change.
// Branch-free (a signed compare of the magnitude bits, vectorised like nonfinite_mask).
inline uint32_t unusable_mask(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return static_cast<int32_t>(u & 0x7fffffffu) >= static_cast<int32_t>(0x5f800000u) ? ~0u : 0u;
}

// Runs body(p0, p1) -> OR of unusable_mask over fixed chunks; true if any weight is unusable.
template <class F>
bool chunked_update(int64_t n, int nt, F&& body) {
    std::atomic<bool> bad{false};
    parallel_for((n + kChunk - 1) / kChunk, 1, threads_for(n, nt), [&](int64_t ch) {
        if (body(ch * kChunk, std::min(n, (ch + 1) * kChunk)) != 0) bad.store(true, std::memory_order_relaxed);
    });
    return bad.load();
}

}  // namespace

// Returns true if an updated weight is NaN, infinite or of magnitude >= 2^64 (unusable_mask).
bool sgd_update(const OptimConfig& c, float wd, float* w, float* v, const float* g, int64_t n, int nt) {
    return chunked_update(n, nt, [&](int64_t p0, int64_t p1) {
        // Locals and distinct arrays let the compiler vectorise (the same IEEE operations per entry).
        const float gs = c.grad_scale, mu = c.momentum, lr = c.lr;
        float* __restrict wr = w;
        float* __restrict vr = v;
        const float* __restrict gr = g;
        uint32_t bad = 0;
        for (int64_t p = p0; p < p1; ++p) {
            vr[p] = mu * vr[p] + (gs * gr[p] + wd * wr[p]);
            wr[p] -= lr * vr[p];
            bad |= unusable_mask(wr[p]);
        }
        return bad;
    });
}

// Returns true if an updated weight is NaN, infinite or of magnitude >= 2^64 (unusable_mask).
bool adam_update(const OptimConfig& c, float wd, float* w, float* m, float* s, const float* g, int64_t n, int nt) {
    MC_CHECK(c.t >= 1, "Adam step count must be >= 1");
    const bool decoupled = c.kind == Optimizer::AdamW;
    const double td = static_cast<double>(c.t);
    const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta1), td));
    const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta2), td));
    const float gs = c.grad_scale, b1 = c.beta1, b2 = c.beta2, eps = c.eps, lr = c.lr;
    const float l2 = decoupled ? 0.f : wd;
    const float shrink = decoupled ? 1.f - c.lr * wd : 1.f;
    const float step = lr / bc1, inv_sqrt_bc2 = 1.f / std::sqrt(bc2);
    return chunked_update(n, nt, [&](int64_t p0, int64_t p1) {
        // Locals and distinct arrays let the compiler vectorise, as in sgd_update: the same IEEE
        // operations per entry in the same order (sqrt and division are correctly rounded in every
        // width). The file is compiled with -fno-math-errno where the compiler takes it
        // (CMakeLists.txt): otherwise sqrt's errno branch keeps the loop scalar, which made the
        // update about a quarter of a small-batch step.
        const float sb1 = b1, sb2 = b2, c1 = 1.f - b1, c2 = 1.f - b2, e = eps, sh = shrink, st = step,
                    isb = inv_sqrt_bc2, g_s = gs, l2_ = l2;
        float* __restrict wr = w;
        float* __restrict mr = m;
        float* __restrict sr = s;
        const float* __restrict gr = g;
        uint32_t bad = 0;
        for (int64_t p = p0; p < p1; ++p) {
            const float gp = g_s * gr[p] + l2_ * wr[p];
            mr[p] = sb1 * mr[p] + c1 * gp;
            sr[p] = sb2 * sr[p] + c2 * gp * gp;
            wr[p] = wr[p] * sh - st * mr[p] / (std::sqrt(sr[p]) * isb + e);
            bad |= unusable_mask(wr[p]);
        }
        return bad;
    });
}

void check_hyperparameters(const OptimConfig& c) {
    MC_CHECK(c.momentum >= 0.f && c.momentum < 1.f, "momentum must be in [0, 1), got " << c.momentum);
    MC_CHECK(c.beta1 >= 0.f && c.beta1 < 1.f, "beta1 must be in [0, 1), got " << c.beta1);
    MC_CHECK(c.beta2 >= 0.f && c.beta2 < 1.f, "beta2 must be in [0, 1), got " << c.beta2);
    MC_CHECK(c.eps > 0.f && std::isfinite(c.eps), "eps must be > 0, got " << c.eps);
    MC_CHECK(c.weight_decay >= 0.f && std::isfinite(c.weight_decay), "weight_decay must be >= 0, got " << c.weight_decay);
}

OptimizerState::OptimizerState(int64_t n_blocks, int64_t n_bias)
    : vK_(static_cast<size_t>(n_blocks), 0.f), vb_(static_cast<size_t>(n_bias), 0.f) {}

OptimizerState::OptimizerState(int64_t n_blocks, int64_t n_bias, std::vector<float> vK, std::vector<float> vb,
                               std::vector<float> sK, std::vector<float> sb)
    : vK_(std::move(vK)), vb_(std::move(vb)), sK_(std::move(sK)), sb_(std::move(sb)) {
    const auto nK = static_cast<size_t>(n_blocks), nb = static_cast<size_t>(n_bias);
    if (vK_.empty()) vK_.assign(nK, 0.f);
    if (vb_.empty()) vb_.assign(nb, 0.f);
    MC_CHECK(vK_.size() == nK && vb_.size() == nb, "momentum buffers have the wrong size: " << nK << " (one per block) and "
                                                       << nb << " (one per bias) floats expected, got "
                                                       << vK_.size() << " and " << vb_.size());
    MC_CHECK(sK_.empty() == sb_.empty(), "Adam second moments must be given for both weights and biases, or neither");
    MC_CHECK(sK_.empty() || (sK_.size() == nK && sb_.size() == nb), "Adam second-moment buffers have the wrong size");
}

void OptimizerState::check_values() const {
    for (const auto* v : {&vK_, &vb_, &sK_, &sb_})
        for (float x : *v) MC_CHECK(std::isfinite(x), "layer state holds a NaN or infinite value");
    for (const auto* v : {&sK_, &sb_})
        for (float x : *v) MC_CHECK(x >= 0.f, "Adam second moments must be >= 0");
}

void OptimizerState::set_moments(std::vector<float> vK, std::vector<float> vb, std::vector<float> sK,
                                 std::vector<float> sb) {
    OptimizerState next(static_cast<int64_t>(vK_.size()), static_cast<int64_t>(vb_.size()), std::move(vK),
                        std::move(vb), std::move(sK), std::move(sb));   // the sizes checked
    next.check_values();
    vK_.swap(next.vK_);
    vb_.swap(next.vb_);
    sK_.swap(next.sK_);
    sb_.swap(next.sb_);
}

void Layer::set_moments(std::vector<float> vK, std::vector<float> vb, std::vector<float> sK, std::vector<float> sb) {
    settle();   // the state in CSR order first (the moments are given in that order)
    opt_.set_moments(std::move(vK), std::move(vb), std::move(sK), std::move(sb));
}

void OptimizerState::compact(const uint8_t* keep, int64_t n_removed) {
    const int64_t nnz = static_cast<int64_t>(vK_.size());
    const bool adam_state = has_second_moments();
    forget_removed();
    removed_v_.reserve(static_cast<size_t>(n_removed));   // exact: no growth by doubling
    if (adam_state) removed_s_.reserve(static_cast<size_t>(n_removed));
    int64_t q = 0;
    for (int64_t p = 0; p < nnz; ++p) {
        if (keep[p]) {
            vK_[q] = vK_[p];
            if (adam_state) sK_[q] = sK_[p];
            ++q;
        } else {
            removed_v_.push_back(vK_[p]);
            if (adam_state) removed_s_.push_back(sK_[p]);
        }
    }
    vK_.resize(static_cast<size_t>(q));
    if (adam_state) sK_.resize(static_cast<size_t>(q));
}

void OptimizerState::forget_removed() {
    // Swapped with empty vectors, not cleared: the record of a large prune would stay allocated.
    std::vector<float>().swap(removed_v_);
    std::vector<float>().swap(removed_s_);
}

OptimizerState::Remap::Remap(const OptimizerState& s, size_t capacity) : s_(s), adam_(s.has_second_moments()) {
    v_.reserve(capacity);
    if (adam_) sq_.reserve(capacity);
}

void OptimizerState::Remap::from_removed(size_t i) {
    v_.push_back(s_.removed_v_[i]);
    // A record taken before Adam's first update has no second moment: it starts at zero.
    if (s_.has_second_moments()) sq_.push_back(s_.removed_s_.empty() ? 0.f : s_.removed_s_[i]);
}


void OptimizerState::apply(Remap&& r) {
    vK_ = std::move(r.v_);
    if (has_second_moments()) sK_ = std::move(r.sq_);
}

void OptimizerState::permute_blocks(const int32_t* idx, int num_threads) {
    // Both vectors allocated before either is touched: a failed allocation changes nothing.
    std::vector<float> v(vK_.size()), s(sK_.size());
    gather_prefetched(static_cast<int64_t>(v.size()), idx, vK_.data(), v.data(), num_threads);
    gather_prefetched(static_cast<int64_t>(s.size()), idx, sK_.data(), s.data(), num_threads);
    vK_.swap(v);
    sK_.swap(s);
}

void OptimizerState::prepare(Optimizer kind) {
    if (kind == Optimizer::SGD) return;
    if (sK_.size() != vK_.size()) sK_.assign(vK_.size(), 0.f);
    if (sb_.size() != vb_.size()) sb_.assign(vb_.size(), 0.f);
}

bool OptimizerState::update_weights(const OptimConfig& c, float* w, const float* g, int num_threads) {
    const auto n = static_cast<int64_t>(vK_.size());
    if (c.kind == Optimizer::SGD) return sgd_update(c, c.weight_decay, w, vK_.data(), g, n, num_threads);
    return adam_update(c, c.weight_decay, w, vK_.data(), sK_.data(), g, n, num_threads);
}

bool OptimizerState::update_bias(const OptimConfig& c, float* w, const float* g) {
    const auto n = static_cast<int64_t>(vb_.size());
    if (c.kind == Optimizer::SGD) return sgd_update(c, c.weight_decay, w, vb_.data(), g, n, 1);
    return adam_update(c, c.weight_decay, w, vb_.data(), sb_.data(), g, n, 1);
}

void Layer::sgd_step(float lr, float momentum, float weight_decay, int num_threads) {
    OptimConfig c;
    c.lr = lr;
    c.momentum = momentum;
    c.weight_decay = weight_decay;
    optimizer_step(c, num_threads);
}

void Layer::optimizer_step(const OptimConfig& c, int num_threads) {
    settle(num_threads);
    kt_current_ = false;    // K changes below, not through its transposed copy
    opt_.prepare(c.kind);   // Adam's second moments of K are sized even while a codebook trains K
    bool bad = false;       // with a codebook, K is regathered from the centroids: checked below
    if (has_codebook())
        codebook_.step(c, dK, K, pat_.version(), num_threads);
    else
        bad = opt_.update_weights(c, K.data(), dK.data(), num_threads);
    bad |= opt_.update_bias(c, b.data(), db.data());
    diverged_ = bad || (has_codebook() && !params_finite(num_threads));
}

void Layer::set_codebook(std::vector<int32_t> codes, std::vector<float> centroids, std::vector<float> v,
                         std::vector<float> s) {
    kt_current_ = false;    // K is set from the centroids
    codebook_.set(std::move(codes), std::move(centroids), std::move(v), std::move(s), K, pat_.version());
}

void Layer::clear_codebook() { codebook_.clear(); }

bool Layer::params_finite(int num_threads) const {
    const int64_t n = n_blocks();
    // One flag per fixed chunk, ORed afterwards: the answer does not depend on the thread count.
    constexpr int64_t kChunk = 4096;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<char> bad(static_cast<size_t>(chunks), 0);
    const float* k = K.data();
    parallel_for(chunks, grain_for(kChunk), threads_for(n, num_threads), [&](int64_t ch) {
        char any = 0;
        for (int64_t p = ch * kChunk; p < std::min(n, (ch + 1) * kChunk); ++p) any |= !std::isfinite(k[p]);
        bad[ch] = any;
    });
    char any = 0;
    for (char v : bad) any |= v;
    for (float v : b) any |= !std::isfinite(v);
    return any == 0;
}

double Layer::grad_sq_norm(int num_threads) const {
    settle(num_threads);
    // Fixed chunks summed in order, each chunk in kLanes interleaved partial sums added in a fixed
    // tree: the result does not depend on the thread count. (One running sum per chunk made a
    // chain of dependent additions, about a tenth of a small-batch step; the lanes vectorise.)
    constexpr int64_t kChunk = 4096;
    constexpr int kLanes = 8;
    const int64_t n = n_blocks(), chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    const float* __restrict g = dK.data();
    parallel_for(chunks, grain_for(kChunk), threads_for(n, num_threads), [&](int64_t c) {
        const int64_t p0 = c * kChunk, p1 = std::min(n, (c + 1) * kChunk);
        double lane[kLanes] = {};
        int64_t p = p0;
        for (; p + kLanes <= p1; p += kLanes)
            for (int j = 0; j < kLanes; ++j) lane[j] += static_cast<double>(g[p + j]) * g[p + j];
        for (int j = 0; p < p1; ++p, ++j) lane[j] += static_cast<double>(g[p]) * g[p];
        part[c] = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    });
    double total = 0.0;
    for (double v : part) total += v;
    for (float v : db) total += static_cast<double>(v) * v;
    return total;
}

}  // namespace motifcore
