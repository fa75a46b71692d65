// A multi-layer perceptron of motif layers with a fused native training step
// (gather batch -> forward -> softmax cross-entropy -> backward -> SGD), one call per batch or epoch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "layer.hpp"

namespace motifcore {

/// Settings of a training call: the optimizer's (one OptimConfig, defaults included) plus the
/// network's own regularisation; every field has its default.
struct TrainConfig {
    /// Optimizer and its hyper-parameters. The network sets lr (the call's), t (its step count + 1)
    /// and grad_scale (1, or the clipping factor of max_grad_norm) at every update.
    OptimConfig optim;
    float dropout = 0.f;         ///< inverted-dropout rate on hidden activations, in [0, 1)
    float max_grad_norm = 0.f;   ///< > 0: rescale the gradient of a step to at most this global L2 norm
    /// Empty, or one factor per layer: after the backward, layer l's block-weight gradient dK is
    /// multiplied by weight_grad_factor[l] (biases untouched), before clipping and the optimizer.
    /// Motif-SET's 1/m (the paper's dL/dW_sub = (1/m) A^T delta_sub). A factor of 1 is skipped, so
    /// an empty list or all ones leaves every step bit-identical.
    std::vector<float> weight_grad_factor;
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
    /// A uniform teacher (every logit 0) instead of `teacher`: with T = 1 the loss
    /// (1 - lambda) CE + lambda KL(u || p) is label smoothing with epsilon = lambda, its gradient
    /// p - ((1 - lambda) onehot(y) + lambda / C).
    bool uniform = false;
    bool distills() const { return (teacher != nullptr || uniform) && lambda > 0.f; }
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

    /// One SGD step on a batch; X is row-major [B, n_in] and finite (checked while it is copied:
    /// std::invalid_argument before anything changes), y in [0, n_classes). Returns the mean loss.
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
    /// Forward only: runs in an inference workspace of inference_bytes(min(chunk, N)) bytes that
    /// lives for the call (the training workspace is neither used nor grown).
    void logits(const float* X, int64_t N, float* out, int64_t chunk);

    /// Mean loss and number of correct predictions on (X, y), in chunks (no training); the same
    /// inference workspace as logits.
    std::pair<double, int64_t> evaluate(const float* X, const int64_t* y, int64_t N, int64_t chunk);

    /// Bytes of the inference panels for a chunk of B samples: 4 * panel_ld(B) * (2 W + S + U), W
    /// the widest of n_in and every n_out (two ping-pong activation panels), S the most input groups
    /// of a layer with m_in > 1 (its group sums), U the most output groups of a layer with m_out > 1
    /// (its block products). Per-sample buffers (labels, losses) of a few bytes are not counted.
    int64_t inference_bytes(int64_t B) const;

    /// The largest chunk whose inference panels fit in `budget` bytes, at least 1.
    int64_t auto_chunk(int64_t budget) const;

    /// Frees the training workspace (every layer's panels, the shared backward scratch, the layers'
    /// transposed copies of the update in backward, the batch input and the loss buffers); the next
    /// training call allocates it again. Results do not change.
    void release_workspace();

    /// Frees the shared backward scratch (the input-gradient panel, the transposed-weight copy or
    /// GEMM packing buffer, the cursors: nothing in it outlives one backward) and the layers'
    /// transposed copies of the update in backward, keeping the activation panels; the next
    /// training call allocates them again. MotifMLP.evolve calls it, so an evolution step's own
    /// scratch does not come on top of it. Results do not change.
    void release_scratch();

    /// Bytes held by the training workspace's panels, per-batch buffers and the layers' transposed
    /// copies of the update in backward (capacity, not size).
    int64_t workspace_bytes() const;

    /// Exclusive guard of the network's scratch and of every layer (rule: concurrency.hpp). Its
    /// regions use the network's own choice of team size (TeamChoice, parallel.hpp).
    StateGuard guard() const {
        std::vector<const StateMutex*> ms{&state_mutex_};
        for (const auto& l : layers) ms.push_back(&l->state_mutex());
        return StateGuard(std::move(ms), &team_);
    }

private:
    /// The optimizer settings of this step (lr, no gradient scale yet, Adam's t = step + 1).
    OptimConfig step_config(float lr, const TrainConfig& cfg) const;
    /// One training step's backward and optimizer update (backward_all, then update): where cfg
    /// neither clips the gradient norm nor scales a layer's gradient (both need every gradient
    /// before any update) and no layer is listed twice, each layer that can makes its update inside
    /// its backward (Layer::backward's `update`; the same results, bit for bit). What those
    /// backwards read (the transposed indices, Layer::prepare_update_in_backward) is allocated
    /// before the first of them, so that a failure there leaves every layer as it was, as with
    /// the update after the backward.
    void backward_update(int64_t B, float lr, const TrainConfig& cfg);
    /// The optimizer update of every layer not in `done` (the layers updated in their backward),
    /// then the step count and the divergence check.
    void update(const OptimConfig& o, const TrainConfig& cfg, const std::vector<char>& done);
    /// Backward of every layer, top to bottom; `after(l)` runs right after layer l's backward.
    /// `update`, when given, goes to each layer's backward; done[l] = whether layer l made it.
    void backward_all(int64_t B, float dropout, const std::function<void(size_t)>& after = {},
                      const OptimConfig* update = nullptr, std::vector<char>* done = nullptr);
    /// With check_x, X's gathered values must be finite (checked in the same pass; else
    /// std::invalid_argument naming their count, before anything changes).
    void gather(const float* X, const int64_t* y, int64_t N, const int64_t* rows, int64_t B, bool check_x = false);
    void forward_all(int64_t B, float dropout);
    /// Softmax cross-entropy of the logits panel Z [C, ld] against labels yb [B]: returns `total`
    /// plus the per-sample losses added in sample order, counts the right predictions into *correct
    /// (if set) and writes dlogits_ if want_grad; sample_loss [B] and hit [B] are scratch.
    double loss_and_grad(const float* Z, const int64_t* yb, int64_t B, bool want_grad, int64_t* correct,
                         double* sample_loss, char* hit, double total = 0.0);
    /// loss_and_grad of the training batch: logits of the last layer's panel, labels yb_, gradient on.
    double train_loss(int64_t B);
    struct InferWork;
    /// Forward of a chunk of B samples whose input panel is iw's first panel; returns the logits panel.
    const float* forward_infer(InferWork& iw, int64_t B);
    /// Copies the teacher logits of the batch rows (row-major [B, C]) into tb_ (distillation only).
    void gather_teacher(const float* teacher, const int64_t* rows, int64_t B);
    const LossConfig* loss_ = nullptr;  // the loss of the running training call; nullptr = cross-entropy
    std::vector<float> tb_;             // [B, C] teacher logits of the batch
    std::vector<uint64_t> row_state_;   // dropout: each neuron's stream state of the step
    std::vector<LayerWork> work_;
    /// The backward scratch of every layer (LayerWork::shared): one input-gradient panel and one
    /// transposed-weight copy or GEMM packing buffer, sized for the largest layer.
    BackwardScratch scratch_;
    PanelVector x0_;       // [n_in, B] batch input, feature-major
    std::vector<int64_t> yb_;     // [B] labels of the batch
    PanelVector dlogits_;  // [C, B]
    std::vector<double> sample_loss_;  // [B] per-sample loss, summed in order (thread-independent)
    std::vector<char> hit_;            // [B] 1 where the prediction is right
    StateMutex state_mutex_;           // see guard()
    TeamChoice team_;                  // see guard()
};

}  // namespace motifcore
