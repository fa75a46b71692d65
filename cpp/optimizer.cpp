// In-place optimizer updates of a layer's block weights and biases (SGD, Adam, AdamW) and the
// gradient norm used for global clipping.
#include <algorithm>
#include <cmath>

#include "kernels.hpp"
#include "layer.hpp"

namespace motifcore {

void Layer::sgd_step(float lr, float momentum, float weight_decay, int num_threads) {
    OptimConfig c;
    c.lr = lr;
    c.momentum = momentum;
    c.weight_decay = weight_decay;
    optimizer_step(c, num_threads);
}

void Layer::optimizer_step(const OptimConfig& c, int num_threads) {
    if (c.kind == Optimizer::SGD) {
        const float gs = c.grad_scale, mu = c.momentum, wd = c.weight_decay, lr = c.lr;
        auto sgd = [=](float* w, float* v, const float* g, int64_t n, int nt) {
            parallel_for(n, grain_for(1), threads_for(n, nt), [&](int64_t p) {
                v[p] = mu * v[p] + (gs * g[p] + wd * w[p]);
                w[p] -= lr * v[p];
            });
        };
        sgd(K.data(), vK.data(), dK.data(), n_blocks(), num_threads);
        sgd(b.data(), vb.data(), db.data(), n_bias(), 1);
        return;
    }
    MC_CHECK(c.t >= 1, "Adam step count must be >= 1");
    if (sK.size() != K.size()) sK.assign(K.size(), 0.f);
    if (sb.size() != b.size()) sb.assign(b.size(), 0.f);
    const bool decoupled = c.kind == Optimizer::AdamW;
    const double td = static_cast<double>(c.t);
    const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta1), td));
    const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta2), td));
    const float gs = c.grad_scale, b1 = c.beta1, b2 = c.beta2, eps = c.eps, lr = c.lr;
    const float l2 = decoupled ? 0.f : c.weight_decay;
    const float shrink = decoupled ? 1.f - c.lr * c.weight_decay : 1.f;
    const float step = lr / bc1, inv_sqrt_bc2 = 1.f / std::sqrt(bc2);
    auto adam = [=](float* w, float* m, float* s, const float* g, int64_t n, int nt) {
        parallel_for(n, grain_for(1), threads_for(n, nt), [&](int64_t p) {
            const float gp = gs * g[p] + l2 * w[p];
            m[p] = b1 * m[p] + (1.f - b1) * gp;
            s[p] = b2 * s[p] + (1.f - b2) * gp * gp;
            w[p] = w[p] * shrink - step * m[p] / (std::sqrt(s[p]) * inv_sqrt_bc2 + eps);
        });
    };
    adam(K.data(), vK.data(), sK.data(), dK.data(), n_blocks(), num_threads);
    adam(b.data(), vb.data(), sb.data(), db.data(), n_bias(), 1);
}

double Layer::grad_sq_norm(int num_threads) const {
    // Fixed chunks summed in order: the result does not depend on the thread count.
    constexpr int64_t kChunk = 4096;
    const int64_t n = n_blocks(), chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    const float* g = dK.data();
    parallel_for(chunks, grain_for(kChunk), threads_for(n, num_threads), [&](int64_t c) {
        double acc = 0.0;
        for (int64_t p = c * kChunk; p < std::min(n, (c + 1) * kChunk); ++p) acc += static_cast<double>(g[p]) * g[p];
        part[c] = acc;
    });
    double total = 0.0;
    for (double v : part) total += v;
    for (float v : db) total += static_cast<double>(v) * v;
    return total;
}

}  // namespace motifcore
