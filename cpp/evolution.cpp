// SET evolution of a layer, in place: magnitude pruning of whole blocks and random regrowth.
#include <algorithm>
#include <cmath>

#include "layer.hpp"

namespace motifcore {

PruneStats Layer::prune_regrow(double zeta, uint64_t seed, RegrowInit init) {
    MC_CHECK(zeta >= 0 && zeta < 1, "zeta must be in [0, 1), got " << zeta);
    const int64_t nnz = n_blocks();
    const uint64_t total = static_cast<uint64_t>(G_in) * static_cast<uint64_t>(G_out);
    const int64_t free_before = static_cast<int64_t>(total) - nnz;
    const int64_t k = std::min<int64_t>(static_cast<int64_t>(std::llround(zeta * static_cast<double>(nnz))), free_before);
    PruneStats stats;
    if (k <= 0) return stats;

    // The k smallest |K|, ties broken by position so the choice is deterministic (dst.cpp). The
    // transposed index is not rebuilt here: the next backward that needs it builds it (pattern()),
    // so an evaluation or a checkpoint between this step and the next training step goes without.
    // dK is left empty by the prune: the growth zeroes it at the new size.
    prune_smallest(k, false);
    for (float v : removed_K_) stats.threshold = std::max(stats.threshold, std::fabs(v));
    stats.removed = k;

    // New positions among those inactive before this step (the pruned ones are excluded).
    try {
        grow_random(k, seed, init, stats.threshold);
    } catch (...) {
        if (dK.size() != K.size()) dK.assign(K.size(), 0.f);
        throw;
    }
    return stats;
}

}  // namespace motifcore
