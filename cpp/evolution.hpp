// Settings and results of SET evolution (prune the smallest blocks, regrow as many at random);
// the step itself is Layer::prune_regrow (evolution.cpp).
#pragma once

#include <cstdint>

namespace motifcore {

/// Value given to the blocks regrown by SET evolution.
enum class RegrowInit {
    He = 0,      ///< a fresh He-uniform draw with the row's new fan-in (the paper's choice)
    Zero = 1,    ///< zero, as RigL: a new block enters the function only through its gradient
    Pruned = 2,  ///< uniform in [-t, t], t = largest |K| among the blocks pruned in this step
};

/// Result of one SET evolution step.
struct PruneStats {
    int64_t removed = 0;     ///< blocks pruned (== regrown)
    float threshold = 0.f;   ///< largest |K| among the pruned blocks (0 when nothing was pruned)
};

}  // namespace motifcore
