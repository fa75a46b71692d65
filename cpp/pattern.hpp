// The block pattern of a layer (BlockPattern: CSR over output groups and its transposed index,
// kept in sync by the class) and block-position sampling: uniformly random sets of distinct block
// positions of a G_out x G_in grid, drawn without ever allocating O(G_out * G_in) memory (the
// Erdős–Rényi init and SET regrowth).
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

/// The active blocks of a G_out x G_in block grid: CSR over output groups (the columns of each
/// row strictly increasing) and the transposed index (CSC over input groups: for entry q in column
/// order, its row t_rows[q] and its CSR position t_pos[q]). The data is private; the only ways to
/// change it -- assign, compact, merge -- validate their input and rebuild the transposed index
/// (or, with reindex = false, leave it stale and freed until reindex()), and each bumps
/// version(), so a caller can tell that a pattern it saw is gone. Values that live per block
/// (weights, optimizer state) belong to the owner, which the mutations tell where each entry went
/// (compact: a keep mask; merge: a visitor called per entry of the new pattern).
/// Most active blocks one pattern holds: the transposed index stores CSR positions as int32
/// (4 bytes per block less than int64; 2^31 - 1 blocks would be 8 GB of weights alone).
constexpr int64_t kMaxBlocks = 2147483647;

class BlockPattern {
public:
    BlockPattern() = default;
    /// The pattern of the given strictly increasing positions r * G_in + c (not validated: the
    /// caller drew them). Version 0. index = false leaves the transposed index unbuilt (stale,
    /// its 8 bytes per block not allocated) until reindex().
    BlockPattern(int64_t G_out, int64_t G_in, const std::vector<uint64_t>& sorted_positions, bool index = true);

    int64_t rows() const { return G_out_; }
    int64_t cols() const { return G_in_; }
    int64_t n_blocks() const { return static_cast<int64_t>(indices_.size()); }
    /// Bumped by every change of the pattern (never by a change of the owner's values).
    uint64_t version() const { return version_; }

    const std::vector<int64_t>& indptr() const { return indptr_; }    ///< [G_out + 1]
    const std::vector<int32_t>& indices() const { return indices_; }  ///< [|P|] input group of each block
    /// Transposed index; throws std::logic_error while it is stale (reindex() builds it).
    const std::vector<int64_t>& t_indptr() const { check_transposed(); return t_indptr_; }  ///< [G_in + 1]
    const std::vector<int32_t>& t_rows() const { check_transposed(); return t_rows_; }      ///< [|P|]
    /// [|P|] CSR position of each transposed entry; int32, so a pattern holds at most kMaxBlocks.
    const std::vector<int32_t>& t_pos() const { check_transposed(); return t_pos_; }
    /// [|P|] the inverse of t_pos: the transposed position of each CSR entry (t_inv[t_pos[q]] == q).
    /// Built on demand by reindex_inverse() (the fused backward gathers dK through it: 4 bytes per
    /// block more, for the layers that take that route), freed with the transposed index and
    /// rebuilt with it; throws std::logic_error while it is not built.
    const std::vector<int32_t>& t_inv() const;
    bool transposed_current() const { return !t_stale_; }

    /// CSR position of block (r, c), or -1 when it is not active (binary search within row r).
    int64_t find(int64_t r, int32_t c) const {
        const auto b = indices_.begin() + indptr_[r], e = indices_.begin() + indptr_[r + 1];
        const auto it = std::lower_bound(b, e, c);
        return it != e && *it == c ? it - indices_.begin() : -1;
    }
    bool contains(uint64_t pos) const {
        return find(static_cast<int64_t>(pos / static_cast<uint64_t>(G_in_)),
                    static_cast<int32_t>(pos % static_cast<uint64_t>(G_in_))) >= 0;
    }

    /// Checks that (indptr, indices) is a valid pattern of a G_out x G_in grid: sizes, ranges,
    /// sortedness, no duplicates (std::invalid_argument naming the problem).
    static void validate(int64_t G_out, int64_t G_in, const std::vector<int64_t>& indptr,
                         const std::vector<int32_t>& indices);
    /// Replaces the pattern after validate() (on a throw the pattern is unchanged). reindex = false
    /// leaves the transposed index stale and freed, as compact(keep, false).
    void assign(std::vector<int64_t> indptr, std::vector<int32_t> indices, bool reindex = true);
    /// Keeps entry p iff keep[p] != 0, in order. reindex = false leaves the transposed index stale
    /// (its accessors throw) and frees it, for a caller that merges right after: the merge (or
    /// reindex()) rebuilds it.
    void compact(const uint8_t* keep, bool reindex = true);
    /// Adds the strictly increasing, currently inactive positions `fresh`. visit(old_p, f) is called
    /// once per entry of the new pattern, in CSR order: old_p >= 0 for an entry that was at old_p,
    /// old_p = -1 for fresh[f]. Throws std::invalid_argument, with the pattern unchanged, when a
    /// position is already active (visit may have been called for some entries by then).
    /// reindex = false leaves the transposed index stale and frees it (reindex() rebuilds it): a
    /// caller that releases its own per-block arrays first keeps the rebuild's scratch off its peak.
    template <class Visit>
    void merge(const std::vector<uint64_t>& fresh, Visit visit, bool reindex = true);
    /// merge without a second copy: the new pattern is written over the old one from the back
    /// (indices grow in place; capacity kept by a compaction before is reused). First checks that
    /// every position of `fresh` (strictly increasing, below G_out * G_in) is inactive
    /// (std::invalid_argument, pattern unchanged); then visit(new_p, old_p, f) is called once per
    /// entry of the new pattern in *reverse* CSR order: old_p >= 0 for the entry that was at
    /// old_p (<= new_p, and not yet overwritten: an owner moves its per-block values the same
    /// way, from the back), old_p = -1 for fresh[f]. The transposed index is left stale and freed.
    template <class Visit>
    void merge_in_place(const std::vector<uint64_t>& fresh, Visit visit);
    /// Builds the transposed index if it is stale (a change with reindex = false, or a pattern
    /// constructed with index = false); the pattern and its version are unchanged.
    /// Runs on up to num_threads threads; the index does not depend on their number.
    void reindex(int num_threads = 1) {
        if (t_stale_) rebuild_transpose(num_threads);
    }
    /// reindex(), then builds t_inv() if it is not built. Runs on up to num_threads threads.
    void reindex_inverse(int num_threads = 1);
    /// Frees the transposed index (8 bytes per block; it is stale until reindex()). The
    /// pattern and its version are unchanged.
    void drop_transposed() { drop_transpose(); }

private:
    void rebuild_transpose(int num_threads = 1);
    /// Marks the transposed index stale and frees it (t_rows_ and t_pos_, 8 bytes per block, and
    /// t_indptr_, 8 bytes per input group): a stale index is never read, and rebuild_transpose
    /// sizes it anew.
    void drop_transpose() {
        t_stale_ = true;
        std::vector<int32_t>().swap(t_rows_);
        std::vector<int32_t>().swap(t_pos_);
        std::vector<int32_t>().swap(t_inv_);
        t_inv_built_ = false;
        std::vector<int64_t>().swap(t_indptr_);
    }
    void check_transposed() const;
    int64_t G_out_ = 0, G_in_ = 0;
    std::vector<int64_t> indptr_{0};
    std::vector<int32_t> indices_;
    std::vector<int64_t> t_indptr_{0};
    std::vector<int32_t> t_rows_;
    std::vector<int32_t> t_pos_;
    std::vector<int32_t> t_inv_;   // see t_inv(); t_inv_built_ says whether it is current
    bool t_inv_built_ = false;
    bool t_stale_ = false;
    uint64_t version_ = 0;
};

template <class Visit>
void BlockPattern::merge(const std::vector<uint64_t>& fresh, Visit visit, bool reindex) {
    const uint64_t G_in = static_cast<uint64_t>(G_in_);
    MC_CHECK(static_cast<int64_t>(indices_.size() + fresh.size()) <= kMaxBlocks,
             "a layer holds at most " << kMaxBlocks << " active blocks, growth would give "
                                      << indices_.size() + fresh.size());
    std::vector<int64_t> new_indptr(static_cast<size_t>(G_out_) + 1, 0);
    std::vector<int32_t> new_indices;
    new_indices.reserve(indices_.size() + fresh.size());
    size_t f = 0;
    // Row and column of fresh[f], divided out once per fresh position (not once per entry).
    int64_t f_row = -1;
    int32_t f_col = 0;
    auto next_fresh = [&] {
        if (f < fresh.size()) {
            f_row = static_cast<int64_t>(fresh[f] / G_in);
            f_col = static_cast<int32_t>(fresh[f] % G_in);
        } else {
            f_row = -1;
        }
    };
    next_fresh();
    for (int64_t r = 0; r < G_out_; ++r) {
        int64_t p = indptr_[r];
        const int64_t pe = indptr_[r + 1];
        while (true) {
            const bool have_old = p < pe;
            const bool have_new = f_row == r;
            if (!have_old && !have_new) break;
            const int32_t c_new = have_new ? f_col : 0;
            if (have_old && have_new) MC_CHECK(indices_[p] != c_new, "position " << fresh[f] << " is already active");
            if (have_old && (!have_new || indices_[p] < c_new)) {
                new_indices.push_back(indices_[p]);
                visit(p, f);
                ++p;
            } else {
                new_indices.push_back(c_new);
                visit(int64_t{-1}, f);
                ++f;
                next_fresh();
            }
        }
        new_indptr[r + 1] = static_cast<int64_t>(new_indices.size());
    }
    indptr_ = std::move(new_indptr);
    indices_ = std::move(new_indices);
    if (reindex) {
        rebuild_transpose();
    } else {
        drop_transpose();
    }
    ++version_;
}

template <class Visit>
void BlockPattern::merge_in_place(const std::vector<uint64_t>& fresh, Visit visit) {
    const uint64_t G_in = static_cast<uint64_t>(G_in_);
    const int64_t nnz = n_blocks(), n = static_cast<int64_t>(fresh.size());
    MC_CHECK(nnz + n <= kMaxBlocks,
             "a layer holds at most " << kMaxBlocks << " active blocks, growth would give " << nnz + n);
    // Rows are walked in order with their first position r * G_in: no division per position (a
    // 64-bit division per fresh block was a fifth of this merge at 12 M fresh blocks).
    {   // Every fresh position inactive: a cursor per row walks the columns (both sorted).
        int64_t row = 0, at = 0;
        uint64_t base = 0;   // row * G_in
        for (int64_t f = 0; f < n; ++f) {
            MC_CHECK(fresh[f] < static_cast<uint64_t>(G_out_) * G_in && (f == 0 || fresh[f - 1] < fresh[f]),
                     "fresh positions must be strictly increasing and below " << static_cast<uint64_t>(G_out_) * G_in);
            while (fresh[f] - base >= G_in) {
                ++row;
                base += G_in;
                at = indptr_[row];
            }
            const auto c = static_cast<int32_t>(fresh[f] - base);
            while (at < indptr_[row + 1] && indices_[at] < c) ++at;
            MC_CHECK(at == indptr_[row + 1] || indices_[at] != c, "position " << fresh[f] << " is already active");
        }
    }
    drop_transpose();
    indices_.resize(static_cast<size_t>(nnz + n));
    int64_t f = n - 1;
    int64_t dst = nnz + n;          // one past the next entry written
    int64_t old_end = nnz;          // end of row r in the old pattern (indptr_[r + 1] is rewritten)
    for (int64_t r = G_out_ - 1; r >= 0; --r) {
        const int64_t old_begin = indptr_[r];
        const uint64_t base = static_cast<uint64_t>(r) * G_in;   // fresh[f] < base + G_in here
        int64_t p = old_end - 1;
        indptr_[r + 1] = dst;
        while (true) {
            const bool have_old = p >= old_begin;
            const bool have_new = f >= 0 && fresh[f] >= base;
            if (!have_old && !have_new) break;
            const int32_t c_new = have_new ? static_cast<int32_t>(fresh[f] - base) : 0;
            --dst;
            if (have_old && (!have_new || indices_[p] > c_new)) {
                indices_[dst] = indices_[p];
                visit(dst, p, static_cast<size_t>(f < 0 ? 0 : f));
                --p;
            } else {
                indices_[dst] = c_new;
                visit(dst, int64_t{-1}, static_cast<size_t>(f));
                --f;
            }
        }
        old_end = old_begin;
    }
    indptr_[0] = 0;   // dst == 0 here
    ++version_;
}

}  // namespace motifcore
