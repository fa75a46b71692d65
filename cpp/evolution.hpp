// Settings and results of SET evolution (prune the smallest blocks, regrow as many at random);
// the step itself is Layer::prune_regrow (evolution.cpp).
#pragma once

#include <cstdint>

namespace motifcore {

/// Value given to the blocks regrown by SET evolution.
enum class RegrowInit {
    He = 0,      ///< a fresh He-uniform draw with the row's new fan-in (the initialisation's)
    Zero = 1,    ///< zero, as RigL: a new block enters the function only through its gradient
    Pruned = 2,  ///< uniform in [-t, t], t = largest |K| among the blocks pruned in this step
    /// N(0, sigma^2), the paper's Algorithm 3 (line 13), sigma = the standard deviation of the He
    /// initialisation with the row's new fan-in: sigma = init_bound(r) / sqrt(3) = sqrt(2 / fan_in)
    Normal = 3,
};

/// Result of one SET evolution step.
struct PruneStats {
    int64_t removed = 0;     ///< blocks pruned (== regrown)
    float threshold = 0.f;   ///< largest |K| among the pruned blocks (0 when nothing was pruned)
};

}  // namespace motifcore
