// SET evolution of a layer, in place: magnitude pruning of whole blocks and random regrowth.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "layer.hpp"
#include "pattern.hpp"

namespace motifcore {

PruneStats Layer::prune_regrow(double zeta, uint64_t seed, RegrowInit init) {
    MC_CHECK(zeta >= 0 && zeta < 1, "zeta must be in [0, 1), got " << zeta);
    const int64_t nnz = n_blocks();
    const uint64_t total = static_cast<uint64_t>(G_in) * static_cast<uint64_t>(G_out);
    const int64_t free_before = static_cast<int64_t>(total) - nnz;
    const int64_t k = std::min<int64_t>(static_cast<int64_t>(std::llround(zeta * static_cast<double>(nnz))), free_before);
    PruneStats stats;
    if (k <= 0) return stats;

    // The k smallest |K|, ties broken by position so the choice is deterministic.
    std::vector<int64_t> order(nnz);
    std::iota(order.begin(), order.end(), 0);
    auto smaller = [&](int64_t a, int64_t c) {
        const float fa = std::fabs(K[a]), fc = std::fabs(K[c]);
        return fa < fc || (fa == fc && a < c);
    };
    std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), smaller);
    std::vector<char> removed(nnz, 0);
    for (int64_t i = 0; i < k; ++i) {
        removed[order[i]] = 1;
        stats.threshold = std::max(stats.threshold, std::fabs(K[order[i]]));
    }
    stats.removed = k;

    // New positions among those inactive before this step (the pruned ones are excluded).
    Rng rng(seed);
    auto active = [&](uint64_t pos) {
        const int64_t r = static_cast<int64_t>(pos / G_in);
        const int32_t c = static_cast<int32_t>(pos % G_in);
        return std::binary_search(indices.begin() + indptr[r], indices.begin() + indptr[r + 1], c);
    };
    const auto fresh = sample_positions(total, static_cast<uint64_t>(k), static_cast<uint64_t>(nnz), rng, active);

    // Merge survivors and new blocks row by row, keeping columns sorted.
    std::vector<int64_t> new_indptr(G_out + 1, 0);
    std::vector<int32_t> new_indices;
    std::vector<float> new_K, new_vK, new_sK;
    std::vector<char> is_new;
    const bool adam_state = !sK.empty();
    new_indices.reserve(nnz);
    new_K.reserve(nnz);
    new_vK.reserve(nnz);
    if (adam_state) new_sK.reserve(nnz);
    is_new.reserve(nnz);
    size_t f = 0;
    for (int64_t r = 0; r < G_out; ++r) {
        int64_t p = indptr[r];
        const int64_t pe = indptr[r + 1];
        while (true) {
            while (p < pe && removed[p]) ++p;
            const bool have_old = p < pe;
            const bool have_new = f < fresh.size() && static_cast<int64_t>(fresh[f] / G_in) == r;
            if (!have_old && !have_new) break;
            const int32_t c_new = have_new ? static_cast<int32_t>(fresh[f] % G_in) : 0;
            if (have_old && (!have_new || indices[p] < c_new)) {
                new_indices.push_back(indices[p]);
                new_K.push_back(K[p]);
                new_vK.push_back(vK[p]);
                if (adam_state) new_sK.push_back(sK[p]);
                is_new.push_back(0);
                ++p;
            } else {
                new_indices.push_back(c_new);
                new_K.push_back(0.f);
                new_vK.push_back(0.f);
                if (adam_state) new_sK.push_back(0.f);
                is_new.push_back(1);
                ++f;
            }
        }
        new_indptr[r + 1] = static_cast<int64_t>(new_indices.size());
    }
    indptr = std::move(new_indptr);
    indices = std::move(new_indices);
    K = std::move(new_K);
    vK = std::move(new_vK);
    if (adam_state) sK = std::move(new_sK);
    dK.assign(K.size(), 0.f);
    // New weights, drawn in position order: He bound of the row's new fan-in, or the pruned scale.
    for (int64_t r = 0; r < G_out && init != RegrowInit::Zero; ++r) {
        float bound = -1.f;
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
            if (!is_new[p]) continue;
            if (bound < 0) bound = init == RegrowInit::He ? init_bound(r) : stats.threshold;
            K[p] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
        }
    }
    rebuild_transpose();
    ++pattern_version_;
    return stats;
}

}  // namespace motifcore
