#include "network.hpp"

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "kernels.hpp"

namespace motifcore {

namespace {

void check_config(const TrainConfig& c) {
    MC_CHECK(c.dropout >= 0.f && c.dropout < 1.f, "dropout must be in [0, 1), got " << c.dropout);
    MC_CHECK(c.momentum >= 0.f && c.momentum < 1.f, "momentum must be in [0, 1), got " << c.momentum);
    MC_CHECK(c.beta1 >= 0.f && c.beta1 < 1.f, "beta1 must be in [0, 1), got " << c.beta1);
    MC_CHECK(c.beta2 >= 0.f && c.beta2 < 1.f, "beta2 must be in [0, 1), got " << c.beta2);
    MC_CHECK(c.eps > 0.f && std::isfinite(c.eps), "eps must be > 0, got " << c.eps);
    MC_CHECK(c.weight_decay >= 0.f && std::isfinite(c.weight_decay), "weight_decay must be >= 0, got " << c.weight_decay);
    MC_CHECK(c.max_grad_norm >= 0.f && std::isfinite(c.max_grad_norm), "max_grad_norm must be >= 0, got " << c.max_grad_norm);
}

void check_loss(const LossConfig& l) {
    MC_CHECK(l.temperature > 0.f && std::isfinite(l.temperature), "temperature must be > 0, got " << l.temperature);
    MC_CHECK(l.lambda >= 0.f && l.lambda <= 1.f, "distillation weight lambda must be in [0, 1], got " << l.lambda);
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
    for (auto& w : work_) w.share_out = true;
}

void Network::gather(const float* X, const int64_t* y, int64_t N, const int64_t* rows, int64_t B) {
    const int64_t d = n_in();
    const int64_t C = n_classes();
    const int64_t ld = panel_ld(B);
    x0_.resize(static_cast<size_t>(std::max<int64_t>(static_cast<int64_t>(x0_.size()), d * ld)));
    yb_.resize(static_cast<size_t>(std::max<int64_t>(static_cast<int64_t>(yb_.size()), B)));
    float* x0 = x0_.data();
    // Rows and labels first (serial: B checks), then the tiled transpose into the feature-major
    // panel (a 5748-feature batch spent more time in a naive transpose than in its layer kernels).
    for (int64_t s = 0; s < B; ++s) {
        const int64_t row = rows ? rows[s] : s;
        MC_CHECK_RANGE(row >= 0 && row < N, "sample index " << row << " out of range [0, " << N << ")");
        if (y) {
            MC_CHECK_RANGE(y[row] >= 0 && y[row] < C,
                           "label " << y[row] << " of sample " << row << " is outside [0, " << C << ")");
            yb_[s] = y[row];
        }
    }
    rows_to_panel(X, d, rows, B, x0, ld, num_threads);
    for (size_t l = 0; l < layers.size(); ++l) work_[l].ensure(*layers[l], B);
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
            parallel_for(n, grain_for(B), threads_for(n * B, num_threads), [&](int64_t i) {
                uint64_t x = hash4(seed, st, l, static_cast<uint64_t>(i));
                float* a = A + i * ld;
                for (int64_t t = 0; t < B; t += 2) {
                    const uint64_t r = splitmix64(x);
                    a[t] = (r >> 40) < thr ? 0.f : a[t] * scale;
                    if (t + 1 < B) a[t + 1] = ((r >> 16) & 0xFFFFFF) < thr ? 0.f : a[t + 1] * scale;
                }
            });
        }
        in = work_[l].Ap;
    }
}

double Network::loss_and_grad(int64_t B, bool want_grad, int64_t* correct) {
    const int64_t C = n_classes();
    const int64_t ld = panel_ld(B);
    const float* Z = work_.back().Ap;
    if (want_grad) dlogits_.resize(static_cast<size_t>(std::max<int64_t>(static_cast<int64_t>(dlogits_.size()), C * ld)));
    if (static_cast<int64_t>(sample_loss_.size()) < B) {
        sample_loss_.resize(static_cast<size_t>(B));
        hit_.resize(static_cast<size_t>(B));
    }
    char* hit = hit_.data();
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
        const int64_t y = yb_[s];
        sample_loss_[s] = std::log(sum) - static_cast<double>(Z[y * ld + s] - mx);
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
            sample_loss_[s] = (1.0 - lam) * sample_loss_[s] + lam * T * T * kl;
        } else if (want_grad) {
            for (int64_t c = 0; c < C; ++c) {
                const double p = std::exp(static_cast<double>(Z[c * ld + s] - mx)) / sum;
                dz[c * ld + s] = static_cast<float>(p - (c == y ? 1.0 : 0.0)) * inv_b;
            }
        }
    });
    double total = 0.0;
    int64_t n_hit = 0;
    for (int64_t s = 0; s < B; ++s) {
        total += sample_loss_[s];
        n_hit += hit[s];
    }
    if (correct) *correct = n_hit;
    return total;
}

void Network::gather_teacher(const float* teacher, const int64_t* rows, int64_t B) {
    const int64_t C = n_classes();
    tb_.resize(static_cast<size_t>(B * C));
    for (int64_t s = 0; s < B; ++s) {
        const float* src = teacher + (rows ? rows[s] : s) * C;   // rows were range-checked by gather
        std::copy(src, src + C, tb_.data() + s * C);
    }
}

double Network::train_step(const float* X, const int64_t* y, int64_t B, float lr, const TrainConfig& cfg,
                           const LossConfig& loss) {
    MC_CHECK(B >= 1, "batch must hold at least one sample");
    check_config(cfg);
    check_loss(loss);
    LossScope scope(loss_, loss);
    gather(X, y, B, nullptr, B);
    if (loss_) gather_teacher(loss.teacher, nullptr, B);
    forward_all(B, cfg.dropout);
    const double total = loss_and_grad(B, true, nullptr);
    backward_all(B, cfg);
    update(lr, cfg);
    return total / static_cast<double>(B);
}

void Network::backward_all(int64_t B, const TrainConfig& cfg, const std::function<void(size_t)>& after) {
    const size_t L = layers.size();
    const float scale = cfg.dropout > 0.f ? 1.f / (1.f - cfg.dropout) : 1.f;
    layers[L - 1]->backward(dlogits_.data(), 1, 1.f, B, work_[L - 1], L > 1, num_threads);
    if (after) after(L - 1);
    for (size_t l = L - 1; l-- > 0;) {
        layers[l]->backward(work_[l + 1].dS.data(), layers[l + 1]->m_in, scale, B, work_[l], l > 0, num_threads);
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
    TrainConfig tc;
    tc.dropout = dropout;
    check_config(tc);
    // Drop sets first: a bad count fails before any work.
    std::vector<std::vector<uint8_t>> kept(L);
    for (size_t l = 0; l < L; ++l) {
        if (k[l] <= 0) continue;
        kept[l] = layers[l]->smallest_blocks(drop[l]);
        for (auto& v : kept[l]) v = !v;
    }
    gather(X, y, N, rows, B);
    forward_all(B, dropout);
    const double loss = loss_and_grad(B, true, nullptr);
    out.assign(L, TopkResult{});
    const int64_t ld = panel_ld(B);
    backward_all(B, tc, [&](size_t l) {
        if (k[l] <= 0) return;
        out[l] = layers[l]->block_grad_topk(work_[l].dUp, work_[l].S_ptr, B, ld, kept[l].data(), k[l], cfg[l],
                                            num_threads);
    });
    return loss / static_cast<double>(B);
}

void Network::update(float lr, const TrainConfig& cfg) {
    OptimConfig o;
    o.kind = cfg.optimizer;
    o.lr = lr;
    o.momentum = cfg.momentum;
    o.beta1 = cfg.beta1;
    o.beta2 = cfg.beta2;
    o.eps = cfg.eps;
    o.weight_decay = cfg.weight_decay;
    o.t = step + 1;
    if (cfg.max_grad_norm > 0.f) {
        double sq = 0.0;
        for (const auto& layer : layers) sq += layer->grad_sq_norm(num_threads);
        const double norm = std::sqrt(sq);
        if (norm > cfg.max_grad_norm) o.grad_scale = static_cast<float>(cfg.max_grad_norm / norm);
    }
    for (auto& layer : layers) layer->optimizer_step(o, num_threads);
    ++step;
    for (size_t l = 0; l < layers.size(); ++l)
        MC_CHECK_AS(std::overflow_error, !layers[l]->diverged, "training diverged at step " << step << ": the update (lr " << lr
                                          << ") made the weights of layer " << l << " NaN or infinite");
}

double Network::train_epoch(const float* X, const int64_t* y, int64_t N, const int64_t* order,
                            int64_t n_order, int64_t batch, const float* lrs, const TrainConfig& cfg,
                            const LossConfig& loss) {
    MC_CHECK(batch >= 1, "batch size must be >= 1, got " << batch);
    check_config(cfg);
    check_loss(loss);
    LossScope scope(loss_, loss);
    double total = 0.0;
    for (int64_t start = 0, k = 0; start < n_order; start += batch, ++k) {
        const int64_t B = std::min(batch, n_order - start);
        gather(X, y, N, order + start, B);
        if (loss_) gather_teacher(loss.teacher, order + start, B);
        forward_all(B, cfg.dropout);
        total += loss_and_grad(B, true, nullptr);
        backward_all(B, cfg);
        update(lrs[k], cfg);
    }
    return n_order > 0 ? total / static_cast<double>(n_order) : 0.0;
}

void Network::logits(const float* X, int64_t N, float* out, int64_t chunk) {
    MC_CHECK(chunk >= 1, "chunk must be >= 1");
    const int64_t C = n_classes();
    for (int64_t start = 0; start < N; start += chunk) {
        const int64_t B = std::min(chunk, N - start);
        gather(X + start * n_in(), nullptr, B, nullptr, B);
        forward_all(B, 0.f);
        const float* Z = work_.back().Ap;
        const int64_t ld = panel_ld(B);
        for (int64_t s = 0; s < B; ++s)
            for (int64_t c = 0; c < C; ++c) out[(start + s) * C + c] = Z[c * ld + s];
    }
}

std::pair<double, int64_t> Network::evaluate(const float* X, const int64_t* y, int64_t N, int64_t chunk) {
    MC_CHECK(chunk >= 1, "chunk must be >= 1");
    double total = 0.0;
    int64_t correct = 0;
    for (int64_t start = 0; start < N; start += chunk) {
        const int64_t B = std::min(chunk, N - start);
        gather(X + start * n_in(), y + start, B, nullptr, B);
        forward_all(B, 0.f);
        int64_t c = 0;
        total += loss_and_grad(B, false, &c);
        correct += c;
    }
    return {N > 0 ? total / static_cast<double>(N) : 0.0, correct};
}

}  // namespace motifcore
