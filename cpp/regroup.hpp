// Regrouping a layer's blocks into coarser motifs: the step of a motif-size curriculum (the
// Motif-SET paper, Sec. 8: "begin with m = 1 for accuracy, then gradually increase m"), which turns
// a layer of motif sizes (m_out, m_in) into one of (k_out * m_out, k_in * m_in) mid-training.
//
// The new output group R covers the old output groups [R * k_out, (R + 1) * k_out) and the new
// input group C the old input groups [C * k_in, (C + 1) * k_in) (the last of either may be a
// residual group that covers fewer). A new block (R, C) covers the k_out x k_in old block positions
// of those groups; it is active when at least one of them is. Its values (docs/curriculum.md says
// why each rule is the one it is):
//
//   K'  = the mean of the effective matrix W over the new block: sum over the covered active old
//         blocks of K * (edges of the old block), divided by the edges of the new block (absent
//         old blocks count 0) -- the least-squares projection of W onto matrices constant on the
//         new blocks;
//   v'  = the sum of the covered momenta / Adam first moments (the gradient of K' is the sum of
//         the gradients of the old blocks it covers, and these buffers are linear in it);
//   s'  = (sum of sqrt(s))^2 over the covered Adam second moments (the largest second moment the
//         summed gradient can have, Cauchy-Schwarz: |v'| / sqrt(s') is at most the largest
//         |v| / sqrt(s) of the covered blocks, so the first step after the switch is no larger
//         than the largest step of a covered block).
//
// Biases: one per output neuron -- unchanged; one per output motif -- b' the size-weighted mean of
// the covered motifs' biases, its momentum and moments as the block weights'.
//
// A budget caps the number of new blocks: the `budget` of largest |K'| are kept (ties: the lower
// position R * G_in' + C), the others dropped with their state. With keep_norm, every kept K' is
// then multiplied by one factor per layer, ||W||_F / ||W'||_F (the Frobenius norms of the
// effective matrices before and after), so the layer keeps its gain on uncorrelated inputs
// (E|Wx|^2 = var(x) ||W||_F^2), which averaging and the budget shrink. Every sum runs in double,
// in a fixed order (old row, then old column), and each new row is computed by one index of a
// parallel_for: the result does not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

namespace motifcore {

/// The block pattern and per-block / per-bias values of one layer, in the CSR order of its pattern
/// (what Layer::set_state takes). sK and sb are empty when there is no Adam state.
struct BlockArrays {
    std::vector<int64_t> indptr;   ///< [G_out + 1]
    std::vector<int32_t> indices;  ///< [|P|] input group of each block, sorted within each row
    std::vector<float> K;          ///< [|P|] shared block weights
    std::vector<float> vK;         ///< [|P|] momentum / Adam first moment of K
    std::vector<float> sK;         ///< [|P|] Adam second moment of K, or empty
    std::vector<float> b;          ///< [n_out] (per-neuron bias) or [G_out] (per-motif bias)
    std::vector<float> vb;         ///< same size as b
    std::vector<float> sb;         ///< same size as b, or empty (then sK is empty too)
};

/// Geometry of the layer being regrouped.
struct RegroupGeometry {
    int64_t n_out = 0, n_in = 0;   ///< widths
    int64_t m_out = 1, m_in = 1;   ///< motif sizes now
    bool bias_per_motif = false;   ///< one bias per output motif (else one per output neuron)
};

/// What a regrouping did.
struct RegroupStats {
    int64_t covered = 0;  ///< new positions that cover at least one active old block
    int64_t kept = 0;     ///< of those, the blocks kept (covered, or the budget if smaller)
    double scale = 1.0;   ///< the factor keep_norm applied to the kept weights (1 without it)
};

/// The arrays of the layer regrouped into motifs of (k_out * m_out, k_in * m_in) (see the file
/// comment). budget < 0 keeps every covered block; keep_norm rescales the kept weights to the
/// layer's Frobenius norm. Throws std::invalid_argument on inconsistent input (pattern, sizes,
/// non-finite values, negative second moments, factors < 1, a new motif wider than the layer).
BlockArrays regroup_blocks(const RegroupGeometry& g, const BlockArrays& in, int64_t k_out, int64_t k_in,
                           int64_t budget, bool keep_norm, int num_threads, RegroupStats* stats = nullptr);

}  // namespace motifcore
