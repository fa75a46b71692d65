#include "network.hpp"

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "kernels.hpp"

namespace motifcore {

namespace {

void check_dropout(float dropout) {
    MC_CHECK(dropout >= 0.f && dropout < 1.f, "dropout must be in [0, 1), got " << dropout);
}

void check_config(const TrainConfig& c, size_t n_layers) {
    check_dropout(c.dropout);
    check_hyperparameters(c.optim);
    MC_CHECK(c.max_grad_norm >= 0.f && std::isfinite(c.max_grad_norm), "max_grad_norm must be >= 0, got " << c.max_grad_norm);
    MC_CHECK(c.weight_grad_factor.empty() || c.weight_grad_factor.size() == n_layers,
             "weight_grad_factor needs one factor per layer (" << n_layers << "), got " << c.weight_grad_factor.size());
    for (float f : c.weight_grad_factor)
        MC_CHECK(f > 0.f && std::isfinite(f), "weight_grad_factor entries must be > 0 and finite, got " << f);
}

void check_loss(const LossConfig& l) {
    MC_CHECK(l.temperature > 0.f && std::isfinite(l.temperature), "temperature must be > 0, got " << l.temperature);
    MC_CHECK(l.lambda >= 0.f && l.lambda <= 1.f, "distillation weight lambda must be in [0, 1], got " << l.lambda);
    MC_CHECK(!(l.uniform && l.teacher), "a loss has teacher logits or a uniform teacher (label smoothing), not both");
}

// Clears Network::loss_ when a training call ends, also by an exception.
struct LossScope {
    const LossConfig*& slot;
    LossScope(const LossConfig*& s, const LossConfig& l) : slot(s) { slot = l.distills() ? &l : nullptr; }
    ~LossScope() { slot = nullptr; }
};

}  // namespace

Network::Network(std::vector<std::shared_ptr<Layer>> ls, int nt) : layers(std::move(ls)), num_threads(nt) {
    MC_CHECK(!layers.empty(), "a network needs at least one layer");
    check_num_threads(num_threads);
    for (size_t l = 1; l < layers.size(); ++l)
        MC_CHECK(layers[l]->n_in == layers[l - 1]->n_out,
                 "layer " << l << " expects " << layers[l]->n_in << " inputs but layer " << l - 1
                          << " has " << layers[l - 1]->n_out << " outputs");
    MC_CHECK(layers.back()->n_out >= 2, "the output layer needs at least 2 classes");
    work_.resize(layers.size());
    for (auto& w : work_) {
        w.share_out = true;
        w.shared = &scratch_;
    }
}

namespace {

// Checks the batch rows (rows[s], or s when rows is null) against [0, N) and, when y is set, copies
// their labels into yb [B], each checked to lie in [0, C). Messages number samples from `base`.
void gather_rows(const int64_t* y, int64_t N, const int64_t* rows, int64_t B, int64_t C, int64_t* yb,
                 int64_t base = 0) {
    for (int64_t s = 0; s < B; ++s) {
        const int64_t row = rows ? rows[s] : s;
        MC_CHECK_RANGE(row >= 0 && row < N, "sample index " << row << " out of range [0, " << N << ")");
        if (y) {
            MC_CHECK_RANGE(y[row] >= 0 && y[row] < C,
                           "label " << y[row] << " of sample " << base + row << " is outside [0, " << C << ")");
            yb[s] = y[row];
        }
    }
}

template <class V>
int64_t held_bytes(const V& v) {
    return static_cast<int64_t>(v.capacity() * sizeof(typename V::value_type));
}

template <class V>
void free_vector(V& v) {
    V().swap(v);
}

}  // namespace

void Network::gather(const float* X, const int64_t* y, int64_t N, const int64_t* rows, int64_t B, bool check_x) {
    const int64_t d = n_in();
    const int64_t ld = panel_ld(B);
    x0_.resize(static_cast<size_t>(std::max<int64_t>(static_cast<int64_t>(x0_.size()), d * ld)));
    yb_.resize(static_cast<size_t>(std::max<int64_t>(static_cast<int64_t>(yb_.size()), B)));
    gather_rows(y, N, rows, B, n_classes(), yb_.data());
    const int64_t bad = rows_to_panel(X, d, rows, B, x0_.data(), ld, num_threads, check_x);
    MC_CHECK(bad == 0, "x contains " << bad << " NaN or infinite values");
    // The transposed index of every layer whose input gradient is needed, before the workspace
    // grows: a rebuild after a pattern change then never has its scratch on top of the backward's.
    for (size_t l = 1; l < layers.size(); ++l)
        if (!layers[l]->uses_dense()) layers[l]->ensure_transposed(num_threads);
    for (size_t l = 0; l < layers.size(); ++l) work_[l].ensure(*layers[l], B, l > 0);
}

void Network::forward_all(int64_t B, float dropout) {
    const float* in = x0_.data();
    const size_t L = layers.size();
    for (size_t l = 0; l < L; ++l) {
        layers[l]->forward(in, B, work_[l], num_threads);
        if (dropout > 0.f && l + 1 < L) {
            // Inverted dropout. Each neuron's row of the batch draws from its own splitmix64 stream,
            // seeded by a stateless hash of (seed, step, layer, neuron): masks do not depend on the
            // thread count, and one 64-bit draw gives two 24-bit uniforms.
            const float scale = 1.f / (1.f - dropout);
            const int64_t ld = panel_ld(B);
            const int64_t n = layers[l]->n_out;
            float* A = work_[l].Ap;
            const uint64_t seed = dropout_seed, st = step;
            const uint64_t thr = static_cast<uint64_t>(static_cast<double>(dropout) * 16777216.0);
            row_state_.resize(static_cast<size_t>(n));
            uint64_t* rs = row_state_.data();
            parallel_for(n, 1024, threads_for(n * 16, num_threads),
                         [&](int64_t i) { rs[i] = hash4(seed, st, l, static_cast<uint64_t>(i)); });
            kernels().dropout(n, row_state_.data(), thr, scale, A, B, ld, num_threads);
        }
        in = work_[l].Ap;
    }
}

double Network::loss_and_grad(const float* Z, const int64_t* yb, int64_t B, bool want_grad, int64_t* correct,
                              double* sample_loss, char* hit, double total) {
    const int64_t C = n_classes();
    const int64_t ld = panel_ld(B);
    if (want_grad) dlogits_.resize(static_cast<size_t>(std::max<int64_t>(static_cast<int64_t>(dlogits_.size()), C * ld)));
    float* dz = dlogits_.data();
    const float inv_b = 1.f / static_cast<float>(B);
    const LossConfig* kd = want_grad ? loss_ : nullptr;  // evaluation always reports cross-entropy
    parallel_for(B, grain_for(C * 16), threads_for(C * B * 16, num_threads), [&](int64_t s) {
        float mx = Z[s];
        int64_t arg = 0;
        for (int64_t c = 1; c < C; ++c)
            if (Z[c * ld + s] > mx) {
                mx = Z[c * ld + s];
                arg = c;
            }
        double sum = 0.0;
        for (int64_t c = 0; c < C; ++c) sum += std::exp(static_cast<double>(Z[c * ld + s] - mx));
        const int64_t y = yb[s];
        sample_loss[s] = std::log(sum) - static_cast<double>(Z[y * ld + s] - mx);
        hit[s] = arg == y;
        if (kd) {
            // Distillation: both softened distributions in double, shifted by their maxima.
            const double T = kd->temperature, lam = kd->lambda;
            const float* zt = tb_.data() + s * C;
            float mt = zt[0];
            for (int64_t c = 1; c < C; ++c) mt = std::max(mt, zt[c]);
            double ss = 0.0, st = 0.0;
            for (int64_t c = 0; c < C; ++c) {
                ss += std::exp(static_cast<double>(Z[c * ld + s] - mx) / T);
                st += std::exp(static_cast<double>(zt[c] - mt) / T);
            }
            const double lss = std::log(ss), lst = std::log(st);
            double kl = 0.0;
            for (int64_t c = 0; c < C; ++c) {
                const double log_qt = static_cast<double>(zt[c] - mt) / T - lst;
                const double log_qs = static_cast<double>(Z[c * ld + s] - mx) / T - lss;
                const double qt = std::exp(log_qt);
                kl += qt * (log_qt - log_qs);
                if (want_grad) {
                    const double p = std::exp(static_cast<double>(Z[c * ld + s] - mx)) / sum;
                    const double g = (1.0 - lam) * (p - (c == y ? 1.0 : 0.0)) + lam * T * (std::exp(log_qs) - qt);
                    dz[c * ld + s] = static_cast<float>(g) * inv_b;
                }
            }
            sample_loss[s] = (1.0 - lam) * sample_loss[s] + lam * T * T * kl;
        } else if (want_grad) {
            for (int64_t c = 0; c < C; ++c) {
                const double p = std::exp(static_cast<double>(Z[c * ld + s] - mx)) / sum;
                dz[c * ld + s] = static_cast<float>(p - (c == y ? 1.0 : 0.0)) * inv_b;
            }
        }
    });
    int64_t n_hit = 0;
    for (int64_t s = 0; s < B; ++s) {
        total += sample_loss[s];
        n_hit += hit[s];
    }
    if (correct) *correct = n_hit;
    return total;
}

void Network::gather_teacher(const float* teacher, const int64_t* rows, int64_t B) {
    const int64_t C = n_classes();
    if (teacher == nullptr) {   // the uniform teacher of label smoothing
        tb_.assign(static_cast<size_t>(B * C), 0.f);
        return;
    }
    tb_.resize(static_cast<size_t>(B * C));
    for (int64_t s = 0; s < B; ++s) {
        const float* src = teacher + (rows ? rows[s] : s) * C;   // rows were range-checked by gather
        std::copy(src, src + C, tb_.data() + s * C);
    }
}

double Network::train_step(const float* X, const int64_t* y, int64_t B, float lr, const TrainConfig& cfg,
                           const LossConfig& loss) {
    MC_CHECK(B >= 1, "batch must hold at least one sample");
    check_config(cfg, layers.size());
    check_loss(loss);
    LossScope scope(loss_, loss);
    gather(X, y, B, nullptr, B, true);   // X's check rides on the copy (the Python layer leaves it here)
    if (loss_) gather_teacher(loss.teacher, nullptr, B);
    forward_all(B, cfg.dropout);
    const double total = train_loss(B);
    backward_update(B, lr, cfg);
    return total / static_cast<double>(B);
}

void Network::backward_update(int64_t B, float lr, const TrainConfig& cfg) {
    const OptimConfig o = step_config(lr, cfg);
    // Not with clipping or scaled gradients (every gradient is needed before any update), nor with
    // an Adam count the update refuses (the refusal then comes before any change, as without this
    // route), nor with a layer listed twice (its upper use would update K before its lower use
    // reads it).
    bool in_backward = cfg.max_grad_norm <= 0.f && (o.kind == Optimizer::SGD || o.t >= 1);
    for (float f : cfg.weight_grad_factor) in_backward = in_backward && f == 1.f;
    for (size_t l = 0; l < layers.size() && in_backward; ++l)
        for (size_t k = 0; k < l; ++k) in_backward = in_backward && layers[k] != layers[l];
    if (in_backward)   // what the route reads first: a failed allocation then changes no weight
        for (size_t l = 0; l < layers.size(); ++l) {
            layers[l]->ensure_backward_index(B, work_[l], l > 0, num_threads);
            layers[l]->prepare_update_in_backward(B, work_[l], l > 0, o.kind, num_threads);
        }
    std::vector<char> done(layers.size(), 0);
    backward_all(B, cfg.dropout, {}, in_backward ? &o : nullptr, &done);
    update(o, cfg, done);
}

void Network::backward_all(int64_t B, float dropout, const std::function<void(size_t)>& after,
                           const OptimConfig* update, std::vector<char>* done) {
    const size_t L = layers.size();
    const float scale = dropout > 0.f ? 1.f / (1.f - dropout) : 1.f;
    bool made = layers[L - 1]->backward(dlogits_.data(), 1, 1.f, B, work_[L - 1], L > 1, num_threads, nullptr,
                                        nullptr, update);
    if (done) (*done)[L - 1] = made;
    if (after) after(L - 1);
    for (size_t l = L - 1; l-- > 0;) {
        // The upstream gradient is layer l + 1's dS, in the shared scratch that layer l's own dS
        // then overwrites (Layer::backward reads it in full first).
        made = layers[l]->backward(scratch_.dS.data(), layers[l + 1]->m_in, scale, B, work_[l], l > 0, num_threads,
                                   nullptr, nullptr, update);
        if (done) (*done)[l] = made;
        if (after) after(l);
    }
}

double Network::grad_step(const float* X, const int64_t* y, int64_t N, const int64_t* rows, int64_t B,
                          float dropout, const std::vector<int64_t>& k, const std::vector<int64_t>& drop,
                          const std::vector<TopkConfig>& cfg, std::vector<TopkResult>& out) {
    const size_t L = layers.size();
    MC_CHECK(B >= 1, "batch must hold at least one sample");
    MC_CHECK(k.size() == L && drop.size() == L && cfg.size() == L,
             "k, drop and the top-k settings need one entry per layer (" << L << ")");
    check_dropout(dropout);
    // Drop sets first: a bad count fails before any work.
    std::vector<std::vector<uint8_t>> kept(L);
    for (size_t l = 0; l < L; ++l) {
        if (k[l] <= 0) continue;
        kept[l] = layers[l]->smallest_blocks(drop[l]);
        for (auto& v : kept[l]) v = !v;
    }
    gather(X, y, N, rows, B);
    forward_all(B, dropout);
    const double loss = train_loss(B);
    out.assign(L, TopkResult{});
    const int64_t ld = panel_ld(B);
    backward_all(B, dropout, [&](size_t l) {
        if (k[l] <= 0) return;
        out[l] = layers[l]->block_grad_topk(work_[l].dUp, work_[l].S_ptr, B, ld, kept[l].data(), k[l], cfg[l],
                                            num_threads);
    });
    return loss / static_cast<double>(B);
}

OptimConfig Network::step_config(float lr, const TrainConfig& cfg) const {
    OptimConfig o = cfg.optim;
    o.lr = lr;
    o.grad_scale = 1.f;
    o.t = step + 1;
    return o;
}

void Network::update(const OptimConfig& step_cfg, const TrainConfig& cfg, const std::vector<char>& done) {
    OptimConfig o = step_cfg;
    for (size_t l = 0; l < cfg.weight_grad_factor.size(); ++l) {
        const float f = cfg.weight_grad_factor[l];
        if (f == 1.f) continue;
        for (float& g : layers[l]->grad_weights_in_place()) g *= f;   // the paper's 1/m, before clipping
    }
    if (cfg.max_grad_norm > 0.f) {
        double sq = 0.0;
        for (const auto& layer : layers) sq += layer->grad_sq_norm(num_threads);
        const double norm = std::sqrt(sq);
        if (norm > cfg.max_grad_norm) o.grad_scale = static_cast<float>(cfg.max_grad_norm / norm);
    }
    for (size_t l = 0; l < layers.size(); ++l)
        if (!done[l]) layers[l]->optimizer_step(o, num_threads);
    ++step;
    for (size_t l = 0; l < layers.size(); ++l) {
        if (!layers[l]->diverged()) continue;
        float big = 0.f;  // the largest |weight| or |bias| (NaN if one is NaN), for the message only
        for (const auto* v : {&layers[l]->weights(), &layers[l]->bias()})
            for (float x : *v) big = (std::isnan(x) || std::isnan(big)) ? NAN : std::max(big, std::fabs(x));
        MC_CHECK_AS(std::overflow_error, false, "training diverged at step " << step << ": the update (lr " << o.lr
                        << ") made the weights of layer " << l << " NaN or infinite, or too large to compute with "
                        << "(|w| >= 2^64; largest |w| " << big << ")");
    }
}

double Network::train_epoch(const float* X, const int64_t* y, int64_t N, const int64_t* order,
                            int64_t n_order, int64_t batch, const float* lrs, const TrainConfig& cfg,
                            const LossConfig& loss) {
    MC_CHECK(batch >= 1, "batch size must be >= 1, got " << batch);
    check_config(cfg, layers.size());
    check_loss(loss);
    LossScope scope(loss_, loss);
    double total = 0.0;
    for (int64_t start = 0, k = 0; start < n_order; start += batch, ++k) {
        const int64_t B = std::min(batch, n_order - start);
        gather(X, y, N, order + start, B);
        if (loss_) gather_teacher(loss.teacher, order + start, B);
        forward_all(B, cfg.dropout);
        total += train_loss(B);
        backward_update(B, lrs[k], cfg);
    }
    return n_order > 0 ? total / static_cast<double>(n_order) : 0.0;
}

double Network::train_loss(int64_t B) {
    if (static_cast<int64_t>(sample_loss_.size()) < B) {
        sample_loss_.resize(static_cast<size_t>(B));
        hit_.resize(static_cast<size_t>(B));
    }
    return loss_and_grad(work_.back().Ap, yb_.data(), B, true, nullptr, sample_loss_.data(), hit_.data());
}

// ---- Inference: forward only, in a workspace that lives for one call ----------------------------

namespace {

// Widths the inference panels hold (see Network::inference_bytes).
struct InferShape {
    int64_t W = 0;  // widest activation panel: n_in or any n_out
    int64_t S = 0;  // most input groups of a layer with m_in > 1
    int64_t U = 0;  // most output groups of a layer with m_out > 1
    /// Floats of all inference panels per unit of the panel stride ld.
    int64_t floats_per_ld() const { return 2 * W + S + U; }
};

InferShape infer_shape(const std::vector<std::shared_ptr<Layer>>& layers) {
    InferShape sh;
    sh.W = layers.front()->n_in;
    for (const auto& l : layers) {
        sh.W = std::max(sh.W, l->n_out);
        if (l->m_in > 1) sh.S = std::max(sh.S, l->G_in);
        if (l->m_out > 1) sh.U = std::max(sh.U, l->G_out);
    }
    return sh;
}

}  // namespace

/// Two ping-pong activation panels (the input of a layer in one, its output in the other), the
/// group sums and block products of the layer running (in lw.S and lw.U), per-sample loss buffers.
struct Network::InferWork {
    PanelVector P[2];
    LayerWork lw;
    std::vector<int64_t> yb;
    std::vector<double> sample_loss;
    std::vector<char> hit;
    InferWork(const InferShape& sh, int64_t B, bool labels) {
        const int64_t ld = panel_ld(B);
        for (auto& p : P) p.resize(static_cast<size_t>(sh.W * ld));
        if (sh.S) lw.S.resize(static_cast<size_t>(sh.S * ld));
        if (sh.U) lw.U.resize(static_cast<size_t>(sh.U * ld));
        lw.B = B;
        if (labels) {
            yb.resize(static_cast<size_t>(B));
            sample_loss.resize(static_cast<size_t>(B));
            hit.resize(static_cast<size_t>(B));
        }
    }
};

const float* Network::forward_infer(InferWork& iw, int64_t B) {
    // The same layer kernels on the same panel layout as forward_all (U and A share a buffer when
    // m_out == 1), so the logits are bitwise those of the training path.
    int cur = 0;
    for (const auto& layer : layers) {
        float* out = iw.P[1 - cur].data();
        iw.lw.Ap = out;
        iw.lw.Up = layer->m_out == 1 ? out : iw.lw.U.data();
        layer->forward(iw.P[cur].data(), B, iw.lw, num_threads);
        cur = 1 - cur;
    }
    return iw.P[cur].data();
}

int64_t Network::inference_bytes(int64_t B) const {
    MC_CHECK(B >= 1, "chunk must be >= 1, got " << B);
    return static_cast<int64_t>(sizeof(float)) * panel_ld(B) * infer_shape(layers).floats_per_ld();
}

int64_t Network::auto_chunk(int64_t budget) const {
    MC_CHECK(budget >= 1, "memory budget must be >= 1 byte, got " << budget);
    const int64_t per_ld = static_cast<int64_t>(sizeof(float)) * infer_shape(layers).floats_per_ld();
    const int64_t ld_max = budget / per_ld;   // the panels of a chunk B fit iff panel_ld(B) <= ld_max
    int64_t B = ld_max;                       // panel_ld(B) >= B, so no larger chunk fits
    while (B > 1 && panel_ld(B) > ld_max) --B;   // at most 32 steps: panel_ld(B) <= B + 31
    return std::max<int64_t>(B, 1);
}

void Network::logits(const float* X, int64_t N, float* out, int64_t chunk) {
    MC_CHECK(chunk >= 1, "chunk must be >= 1");
    if (N <= 0) return;
    const int64_t C = n_classes();
    const int64_t d = n_in();
    InferWork iw(infer_shape(layers), std::min(chunk, N), false);
    for (int64_t start = 0; start < N; start += chunk) {
        const int64_t B = std::min(chunk, N - start);
        const int64_t ld = panel_ld(B);
        rows_to_panel(X + start * d, d, nullptr, B, iw.P[0].data(), ld, num_threads);
        panel_to_rows(forward_infer(iw, B), ld, C, 1, B, out + start * C, num_threads);
    }
}

std::pair<double, int64_t> Network::evaluate(const float* X, const int64_t* y, int64_t N, int64_t chunk) {
    MC_CHECK(chunk >= 1, "chunk must be >= 1");
    if (N <= 0) return {0.0, 0};
    const int64_t d = n_in();
    InferWork iw(infer_shape(layers), std::min(chunk, N), true);
    double total = 0.0;
    int64_t correct = 0;
    for (int64_t start = 0; start < N; start += chunk) {
        const int64_t B = std::min(chunk, N - start);
        gather_rows(y + start, B, nullptr, B, n_classes(), iw.yb.data(), start);
        rows_to_panel(X + start * d, d, nullptr, B, iw.P[0].data(), panel_ld(B), num_threads);
        const float* Z = forward_infer(iw, B);
        int64_t c = 0;
        // One running sum over the samples in order: the mean does not depend on the chunk.
        total = loss_and_grad(Z, iw.yb.data(), B, false, &c, iw.sample_loss.data(), iw.hit.data(), total);
        correct += c;
    }
    return {total / static_cast<double>(N), correct};
}

// ---- Training workspace ----------------------------------------------------------------------------

void Network::release_workspace() {
    for (auto& w : work_) {
        w = LayerWork{};
        w.share_out = true;
        w.shared = &scratch_;
    }
    scratch_ = BackwardScratch{};
    for (auto& l : layers) l->release_transposed_copies(num_threads);
    free_vector(x0_);
    free_vector(yb_);
    free_vector(dlogits_);
    free_vector(sample_loss_);
    free_vector(hit_);
    free_vector(tb_);
}

void Network::release_scratch() {
    scratch_ = BackwardScratch{};
    for (auto& l : layers) l->release_transposed_copies(num_threads);
}

int64_t Network::workspace_bytes() const {
    int64_t n = held_bytes(x0_) + held_bytes(yb_) + held_bytes(dlogits_) + held_bytes(sample_loss_) +
                held_bytes(hit_) + held_bytes(tb_);
    for (const auto& w : work_) n += held_bytes(w.S) + held_bytes(w.U) + held_bytes(w.A) + held_bytes(w.dU);
    n += held_bytes(scratch_.dS) + held_bytes(scratch_.buf) + held_bytes(scratch_.cursor);   // the layers' own scratch stays empty
    for (size_t l = 0; l < layers.size(); ++l)   // the update in backward's transposed copies (a layer once)
        if (std::find(layers.begin(), layers.begin() + static_cast<std::ptrdiff_t>(l), layers[l]) ==
            layers.begin() + static_cast<std::ptrdiff_t>(l))
            n += layers[l]->transposed_copy_bytes();
    return n;
}

}  // namespace motifcore
