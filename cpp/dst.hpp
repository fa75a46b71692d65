// Settings and results of the dynamic-sparse-training primitives (RigL, DSR, global pruning):
// block-gradient top-k selection. The layer methods themselves are declared in layer.hpp and
// defined in dst.cpp.
#pragma once

#include <cstdint>
#include <vector>

namespace motifcore {

/// How the top-k block-gradient positions are found.
enum class TopkMode {
    Exact = 0,    ///< every non-kept position of the G_out x G_in grid is scored (tiled, exact)
    Sampled = 1,  ///< only sample_factor * k positions drawn uniformly among the non-kept ones
};

/// Settings of one block-gradient top-k; every field has its default.
struct TopkConfig {
    TopkMode mode = TopkMode::Exact;
    int64_t tile_rows = 64;       ///< exact mode: output groups per tile
    int64_t tile_cols = 0;        ///< exact mode: input groups per tile (0: about 256 KB of panel)
    int64_t sample_factor = 10;   ///< sampled mode: candidates = sample_factor * k
    uint64_t seed = 0;            ///< sampled mode: seed of the candidate draw
};

/// The k chosen positions r * G_in + c in increasing order, with their scores |dL/dK(r, c)|.
struct TopkResult {
    std::vector<uint64_t> positions;
    std::vector<float> scores;
};

}  // namespace motifcore
