// Deep Compression's trained quantization of a layer (weight sharing): the blocks share k trained
// centroids, a block's weight being the centroid of its code. The owner (Layer) keeps K, the
// per-block weights the kernels read, equal to the gathered centroids.
#pragma once

#include <cstdint>
#include <vector>

#include "optimizer.hpp"

namespace motifcore {

/// Codes and centroids with their optimizer state, valid for the block pattern (by version) they
/// were set for. Empty: no weight sharing.
class Codebook {
public:
    bool empty() const { return centroids_.empty(); }
    const std::vector<int32_t>& codes() const { return codes_; }        ///< [|P|] centroid of each block
    const std::vector<float>& centroids() const { return centroids_; }  ///< [k] shared values
    const std::vector<float>& velocity() const { return v_; }  ///< [k] momentum / Adam first moment
    const std::vector<float>& sq() const { return s_; }        ///< [k] Adam second moment (empty until Adam)
    const std::vector<float>& grad() const { return d_; }      ///< [k] centroid gradient of the last step

    /// Installs the codebook after checking it (at least one centroid; one code per entry of K, each
    /// in range; `v`/`s` empty or one entry per centroid; every value finite) and sets
    /// K[p] = centroids[codes[p]]. `pattern_version` is the version of the pattern K follows now.
    void set(std::vector<int32_t> codes, std::vector<float> centroids, std::vector<float> v,
             std::vector<float> s, std::vector<float>& K, uint64_t pattern_version);
    void clear();
    /// One optimizer update of the centroids: g_j = sum of dK[p] over the blocks with code j (fixed
    /// chunks, double partial sums added in chunk order: thread-count independent), the update of
    /// `c` without weight decay, then K regathered. Throws if the pattern changed since set().
    void step(const OptimConfig& c, const std::vector<float>& dK, std::vector<float>& K, uint64_t pattern_version,
              int num_threads);

private:
    std::vector<int32_t> codes_;
    std::vector<float> centroids_, v_, s_, d_;
    uint64_t version_ = 0;
};

}  // namespace motifcore
