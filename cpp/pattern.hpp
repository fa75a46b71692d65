// Block-pattern sampling: uniformly random sets of distinct block positions of a G_out x G_in grid,
// drawn without ever allocating O(G_out * G_in) memory (the Erdős–Rényi init and SET regrowth).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace motifcore {

/// Sorts values below `bound` in linear time (LSD radix sort, 11-bit digits).
void radix_sort(std::vector<uint64_t>& v, uint64_t bound);

// Sorted distinct positions in [0, total), `n` of them, uniform among the positions for which
// `taken(pos)` is false (`n_taken` of them are true). Never allocates O(total) memory.
template <class Taken>
std::vector<uint64_t> sample_positions(uint64_t total, uint64_t n, uint64_t n_taken, Rng& rng,
                                       Taken taken) {
    const uint64_t available = total - n_taken;
    MC_CHECK(n <= available, "cannot place " << n << " blocks: only " << available << " free positions");
    std::vector<uint64_t> out;
    if (n == 0) return out;
    if (n * 2 > available) {
        out.reserve(n);
        // Dense case: selection sampling over the free positions (Knuth's algorithm S); time is
        // O(total) but total < 2n + n_taken here, i.e. proportional to the blocks that exist.
        uint64_t need = n, left = available;
        for (uint64_t pos = 0; pos < total && need > 0; ++pos) {
            if (taken(pos)) continue;
            if (rng.below(left) < need) {
                out.push_back(pos);
                --need;
            }
            --left;
        }
        return out;
    }
    // Sparse case: i.i.d. uniform draws, drop taken positions and repeats, draw the deficit again.
    // Every round is symmetric under permutations of the free positions, so the final set is a
    // uniform n-subset of them. A round sorts its draws before it asks `taken`: the lookups (binary
    // searches in a pattern and a removal list of millions of entries) then walk memory in order
    // instead of at random -- the set, and the draws, are the same as when filtering as drawn.
    // Peak memory: the first round's draws and the radix sort's buffer, 16 bytes per position.
    while (out.size() < n) {
        const uint64_t need = n - out.size();
        std::vector<uint64_t> fresh;
        fresh.reserve(need);
        for (uint64_t i = 0; i < need; ++i) fresh.push_back(rng.below(total));
        radix_sort(fresh, total);
        fresh.erase(std::unique(fresh.begin(), fresh.end()), fresh.end());
        fresh.erase(std::remove_if(fresh.begin(), fresh.end(), taken), fresh.end());
        if (out.empty()) {
            out.swap(fresh);
            out.reserve(n);
            continue;
        }
        const auto mid = static_cast<std::ptrdiff_t>(out.size());
        out.insert(out.end(), fresh.begin(), fresh.end());
        std::inplace_merge(out.begin(), out.begin() + mid, out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
    }
    return out;
}

}  // namespace motifcore
