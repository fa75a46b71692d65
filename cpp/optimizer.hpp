// Optimizer settings of one in-place update, their check, the element-wise updates, and the
// optimizer state of a layer (OptimizerState). Layer::optimizer_step (optimizer.cpp) runs one update
// of a layer's K and b through its OptimizerState.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

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

/// What the optimizer keeps between updates of one layer: the momentum of SGD, which is also
/// Adam's first moment, and Adam's second moment, for the block weights K (one entry per active
/// block, in the CSR order of the layer's pattern) and for the biases b (one per bias). The second
/// moments are empty until the first Adam update sizes them. The state keeps no step count: Adam's
/// bias correction takes t from each update's OptimConfig (a Network counts its own steps).
///
/// The per-block vectors follow the layer's pattern through the same two mutations as the pattern
/// and K: compact (a keep mask; the removed entries go to a record of the last prune, in order) and
/// a Remap built entry by entry while the pattern merges new positions (an entry keeps an old
/// state, gets its state back from the record, or starts at zero). The owner (Layer) keeps the
/// record's positions and weights, aligned entry by entry with this record.
class OptimizerState {
public:
    OptimizerState() = default;
    /// Zero momentum for n_blocks weights and n_bias biases, no Adam state, no prune record.
    OptimizerState(int64_t n_blocks, int64_t n_bias);
    /// A checkpoint's state for n_blocks weights and n_bias biases: vK / vb empty mean zero
    /// momentum; sK and sb are both empty (no Adam state yet) or both sized. Checks the sizes only
    /// (std::invalid_argument); check_values() checks the values.
    OptimizerState(int64_t n_blocks, int64_t n_bias, std::vector<float> vK, std::vector<float> vb,
                   std::vector<float> sK, std::vector<float> sb);
    /// Throws std::invalid_argument if a value is NaN or infinite, or a second moment is negative.
    void check_values() const;
    /// Replaces the momentum / first moments with vK and vb (each empty: zero) and Adam's second
    /// moments with sK and sb (both empty: none), checked against the current sizes and for finite
    /// (second moments: non-negative) values before anything changes; the prune record stays.
    void set_moments(std::vector<float> vK, std::vector<float> vb, std::vector<float> sK, std::vector<float> sb);

    const std::vector<float>& weight_velocity() const { return vK_; }  ///< [|P|] momentum / first moment of K
    const std::vector<float>& bias_velocity() const { return vb_; }    ///< momentum / first moment of b
    const std::vector<float>& weight_sq() const { return sK_; }        ///< [|P|] Adam second moment of K (or empty)
    const std::vector<float>& bias_sq() const { return sb_; }          ///< Adam second moment of b (or empty)
    bool has_second_moments() const { return !sK_.empty(); }

    // ---- Pattern changes -----------------------------------------------------------------------
    /// Keeps per-block entry p iff keep[p] != 0 (one flag per entry, the mask the pattern compacts
    /// with), in order; the removed entries replace the prune record, in order. n_removed: how many
    /// flags are 0 (reserves the record exactly).
    void compact(const uint8_t* keep, int64_t n_removed);
    /// Forgets the prune record (its memory is released).
    void forget_removed();
    /// The state of the removed entries (momentum; Adam's second moment, empty without Adam state).
    const std::vector<float>& removed_velocity() const { return removed_v_; }
    const std::vector<float>& removed_sq() const { return removed_s_; }

    // In-place growth, for BlockPattern::merge_in_place: grow_to(n) appends zero entries, then each
    // entry of the new order is set from the back by exactly one of move_entry (from an old
    // position at or before it), restore_entry (entry i of the prune record) or zero_entry.
    // shrink_to(n) undoes grow_to(n) before any entry moved.
    void grow_to(size_t n) {
        const bool adam = has_second_moments();
        vK_.resize(n);
        if (adam) sK_.resize(n);
    }
    void shrink_to(size_t n) {
        vK_.resize(n);
        if (has_second_moments()) sK_.resize(n);
    }
    void move_entry(size_t to, size_t from) {
        vK_[to] = vK_[from];
        if (!sK_.empty()) sK_[to] = sK_[from];
    }
    void restore_entry(size_t to, size_t i) {
        vK_[to] = removed_v_[i];
        // A record taken before Adam's first update has no second moment: it starts at zero.
        if (!sK_.empty()) sK_[to] = removed_s_.empty() ? 0.f : removed_s_[i];
    }
    void zero_entry(size_t to) {
        vK_[to] = 0.f;
        if (!sK_.empty()) sK_[to] = 0.f;
    }

    /// The per-block state of a new pattern, one call per entry in the new CSR order; apply()
    /// installs it. A Remap dropped without apply (a merge that threw) leaves the state unchanged.
    class Remap {
    public:
        // Inline: a merge calls one of them per entry of the new pattern (40 M at the 1M network).
        void from_old(int64_t p) {     ///< the entry that was at position p
            v_.push_back(s_.vK_[static_cast<size_t>(p)]);
            if (adam_) sq_.push_back(s_.sK_[static_cast<size_t>(p)]);
        }
        void from_removed(size_t i);   ///< entry i of the prune record (its state comes back)
        void zero() {                  ///< a new entry: zero momentum and second moment
            v_.push_back(0.f);
            if (adam_) sq_.push_back(0.f);
        }

    private:
        friend class OptimizerState;
        Remap(const OptimizerState& s, size_t capacity);
        const OptimizerState& s_;
        bool adam_;                    ///< s_.has_second_moments()
        std::vector<float> v_, sq_;
    };
    /// Starts a Remap of up to `capacity` entries over this state.
    Remap remap(size_t capacity) const { return Remap(*this, capacity); }
    /// Installs the remapped per-block state (the biases' state is unchanged).
    void apply(Remap&& r);
    /// Reorders the per-block state: entry i becomes the entry that was at idx[i] (idx a
    /// permutation of the |P| entries; the owner's transposed order and back, Layer::settle). The
    /// prune record is unchanged. On up to num_threads threads; allocates one vector at a time.
    void permute_blocks(const int32_t* idx, int num_threads);

    // ---- Updates -------------------------------------------------------------------------------
    /// Sizes Adam's second moments (zero) on the first update of an Adam kind; nothing for SGD.
    void prepare(Optimizer kind);
    /// One update of the |P| block weights w from their gradient g (sgd_update / adam_update with
    /// c.weight_decay, on up to num_threads threads). Returns true if an updated weight is unusable.
    bool update_weights(const OptimConfig& c, float* w, const float* g, int num_threads);
    /// One update of the biases w from their gradient g, on one thread; as update_weights.
    bool update_bias(const OptimConfig& c, float* w, const float* g);

private:
    std::vector<float> vK_, vb_, sK_, sb_;
    std::vector<float> removed_v_, removed_s_;   // state of the entries removed by the last compact
};

}  // namespace motifcore
