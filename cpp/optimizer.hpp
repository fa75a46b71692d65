// Optimizer settings of one in-place update and their check; the update itself is
// Layer::optimizer_step (optimizer.cpp).
#pragma once

#include <cstdint>

namespace motifcore {

/// Optimizer of a training step.
enum class Optimizer { SGD = 0, Adam = 1, AdamW = 2 };

/// Hyper-parameters of one optimizer update; every field has its default.
struct OptimConfig {
    Optimizer kind = Optimizer::SGD;
    float lr = 0.01f;
    float momentum = 0.9f;        ///< SGD momentum
    float beta1 = 0.9f;           ///< Adam first-moment decay
    float beta2 = 0.999f;         ///< Adam second-moment decay
    float eps = 1e-8f;            ///< Adam denominator term
    float weight_decay = 5e-4f;   ///< L2 added to the gradient (SGD, Adam); decoupled decay (AdamW)
    float grad_scale = 1.f;       ///< multiplies every gradient first (global-norm clipping)
    uint64_t t = 1;               ///< 1-based update count, for Adam's bias correction
};

/// In-place SGD update of n entries (momentum in v, gradient g, L2 weight decay wd; the rest from
/// c); fixed chunks, thread-count independent. Returns true if an updated weight is NaN or infinite.
bool sgd_update(const OptimConfig& c, float wd, float* w, float* v, const float* g, int64_t n, int nt);
/// In-place Adam/AdamW update of n entries (moments m and s), as sgd_update otherwise.
bool adam_update(const OptimConfig& c, float wd, float* w, float* m, float* s, const float* g, int64_t n, int nt);

/// Checks momentum, beta1, beta2 (in [0, 1)), eps (> 0) and weight_decay (>= 0), the settings a
/// training call fixes for all of its steps (std::invalid_argument naming the first bad one).
void check_hyperparameters(const OptimConfig& c);

}  // namespace motifcore
