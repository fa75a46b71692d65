// A multi-layer perceptron of motif layers with a fused native training step
// (gather batch -> forward -> softmax cross-entropy -> backward -> SGD), one call per batch or epoch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "layer.hpp"

namespace motifcore {

/// Optimizer and regularisation settings of a training call; every field has its default.
struct TrainConfig {
    Optimizer optimizer = Optimizer::SGD;
    float momentum = 0.9f;       ///< SGD momentum
    float beta1 = 0.9f;          ///< Adam/AdamW first-moment decay
    float beta2 = 0.999f;        ///< Adam/AdamW second-moment decay
    float eps = 1e-8f;           ///< Adam/AdamW denominator term
    float weight_decay = 5e-4f;  ///< L2 added to the gradient (SGD, Adam) or decoupled decay (AdamW)
    float dropout = 0.f;         ///< inverted-dropout rate on hidden activations, in [0, 1)
    float max_grad_norm = 0.f;   ///< > 0: rescale the gradient of a step to at most this global L2 norm
};

/// Loss of a training call: softmax cross-entropy, or knowledge distillation (Hinton et al., 2015)
/// when `teacher` is set and `lambda > 0`: per sample, with p = softmax(z), q_S = softmax(z / T),
/// q_T = softmax(z_T / T), loss = (1 - lambda) * CE(y, p) + lambda * T^2 * KL(q_T || q_S) and
/// dloss/dz = (1 - lambda) * (p - e_y) + lambda * T * (q_S - q_T). `lambda == 0` is the CE path.
struct LossConfig {
    /// Teacher logits, row-major: [N, C] for train_epoch (gathered through `order` like y),
    /// [B, C] for train_step; nullptr = plain cross-entropy.
    const float* teacher = nullptr;
    float temperature = 1.f;  ///< T > 0
    float lambda = 0.f;       ///< weight of the distillation term, in [0, 1]
    bool distills() const { return teacher != nullptr && lambda > 0.f; }
};

/// Sequential network: hidden layers use their own activation (ReLU), the last layer is linear and
/// feeds a softmax cross-entropy loss.
class Network {
public:
    /// Takes shared ownership of `layers`; consecutive widths must match.
    Network(std::vector<std::shared_ptr<Layer>> layers, int num_threads);

    std::vector<std::shared_ptr<Layer>> layers;
    int num_threads;           ///< threads of every native call (>= 1)
    uint64_t dropout_seed = 0; ///< seed of the dropout masks
    uint64_t step = 0;         ///< training steps taken (drives dropout masks; checkpointed)

    int64_t n_in() const { return layers.front()->n_in; }
    int64_t n_classes() const { return layers.back()->n_out; }

    /// One SGD step on a batch; X is row-major [B, n_in], y in [0, n_classes). Returns the mean loss.
    /// `loss` selects cross-entropy (default) or knowledge distillation.
    double train_step(const float* X, const int64_t* y, int64_t B, float lr, const TrainConfig& cfg,
                      const LossConfig& loss = LossConfig{});

    /// One pass over `order` (indices into the N rows of X/y) in batches of `batch` (the last may be
    /// smaller), lr of batch k = lrs[k]. Returns the mean loss over the samples seen.
    double train_epoch(const float* X, const int64_t* y, int64_t N, const int64_t* order,
                       int64_t n_order, int64_t batch, const float* lrs, const TrainConfig& cfg,
                       const LossConfig& loss = LossConfig{});

    /// Forward and backward of the batch rows[0..B) of (X, y) without an optimizer step (dropout
    /// masks of the current step; the step counter does not move). For each layer l with
    /// k[l] > 0, right after its backward -- before the layer below overwrites the shared panels --
    /// out[l] = block_grad_topk over the positions not kept, kept = the active blocks except the
    /// drop[l] of smallest |K| (RigL's grow candidates). Returns the mean loss of the batch.
    double grad_step(const float* X, const int64_t* y, int64_t N, const int64_t* rows, int64_t B, float dropout,
                     const std::vector<int64_t>& k, const std::vector<int64_t>& drop,
                     const std::vector<TopkConfig>& cfg, std::vector<TopkResult>& out);

    /// Logits [N, n_classes] (row-major) of X [N, n_in], computed in chunks of `chunk` samples.
    void logits(const float* X, int64_t N, float* out, int64_t chunk);

    /// Mean loss and number of correct predictions on (X, y), in chunks (no training).
    std::pair<double, int64_t> evaluate(const float* X, const int64_t* y, int64_t N, int64_t chunk);

    /// Exclusive guard of the network's scratch and of every layer (rule: concurrency.hpp).
    StateGuard guard() const {
        std::vector<const StateMutex*> ms{&state_mutex_};
        for (const auto& l : layers) ms.push_back(&l->state_mutex());
        return StateGuard(std::move(ms));
    }

private:
    void update(float lr, const TrainConfig& cfg);
    /// Backward of every layer, top to bottom; `after(l)` runs right after layer l's backward.
    void backward_all(int64_t B, const TrainConfig& cfg, const std::function<void(size_t)>& after = {});
    void gather(const float* X, const int64_t* y, int64_t N, const int64_t* rows, int64_t B);
    void forward_all(int64_t B, float dropout);
    double loss_and_grad(int64_t B, bool want_grad, int64_t* correct);
    /// Copies the teacher logits of the batch rows (row-major [B, C]) into tb_ (distillation only).
    void gather_teacher(const float* teacher, const int64_t* rows, int64_t B);
    const LossConfig* loss_ = nullptr;  // the loss of the running training call; nullptr = cross-entropy
    std::vector<float> tb_;             // [B, C] teacher logits of the batch
    std::vector<LayerWork> work_;
    PanelVector x0_;       // [n_in, B] batch input, feature-major
    std::vector<int64_t> yb_;     // [B] labels of the batch
    PanelVector dlogits_;  // [C, B]
    std::vector<double> sample_loss_;  // [B] per-sample loss, summed in order (thread-independent)
    std::vector<char> hit_;            // [B] 1 where the prediction is right
    StateMutex state_mutex_;           // see guard()
};

}  // namespace motifcore
