#include "pattern.hpp"

#include <algorithm>
#include <stdexcept>

#include "parallel.hpp"

namespace motifcore {

// 11-bit digits: the pattern draws of million-block layers are sorted in a fraction of what a
// comparison sort needs.
void radix_sort(std::vector<uint64_t>& v, uint64_t bound) {
    constexpr int kBits = 11;
    constexpr size_t kBuckets = size_t(1) << kBits;
    int bits = 0;
    while (bits < 64 && (bound >> bits) != 0) ++bits;
    std::vector<uint64_t> tmp(v.size());
    std::vector<size_t> count(kBuckets);
    for (int shift = 0; shift < bits; shift += kBits) {
        std::fill(count.begin(), count.end(), 0);
        for (uint64_t x : v) ++count[(x >> shift) & (kBuckets - 1)];
        size_t sum = 0;
        for (auto& c : count) {
            const size_t here = c;
            c = sum;
            sum += here;
        }
        for (uint64_t x : v) tmp[count[(x >> shift) & (kBuckets - 1)]++] = x;
        v.swap(tmp);
    }
}

BlockPattern::BlockPattern(int64_t G_out, int64_t G_in, const std::vector<uint64_t>& pos, bool index)
    : G_out_(G_out), G_in_(G_in) {
    MC_CHECK(static_cast<int64_t>(pos.size()) <= kMaxBlocks,
             "a layer holds at most " << kMaxBlocks << " active blocks, got " << pos.size());
    indptr_.assign(static_cast<size_t>(G_out) + 1, 0);
    indices_.resize(pos.size());
    for (size_t p = 0; p < pos.size(); ++p) {
        ++indptr_[static_cast<int64_t>(pos[p] / static_cast<uint64_t>(G_in)) + 1];
        indices_[p] = static_cast<int32_t>(pos[p] % static_cast<uint64_t>(G_in));
    }
    for (int64_t r = 0; r < G_out; ++r) indptr_[r + 1] += indptr_[r];
    if (index)
        rebuild_transpose();
    else
        drop_transpose();
}

void BlockPattern::validate(int64_t G_out, int64_t G_in, const std::vector<int64_t>& indptr,
                            const std::vector<int32_t>& indices) {
    MC_CHECK(static_cast<int64_t>(indptr.size()) == G_out + 1,
             "indptr must have G_out + 1 = " << G_out + 1 << " entries, got " << indptr.size());
    MC_CHECK(static_cast<int64_t>(indices.size()) <= kMaxBlocks,
             "a layer holds at most " << kMaxBlocks << " active blocks, got " << indices.size());
    MC_CHECK(indptr[0] == 0 && indptr.back() == static_cast<int64_t>(indices.size()),
             "indptr must start at 0 and end at len(indices) = " << indices.size());
    for (int64_t r = 0; r < G_out; ++r)
        MC_CHECK(indptr[r] <= indptr[r + 1], "indptr must be non-decreasing (row " << r << ")");
    for (int64_t r = 0; r < G_out; ++r) {
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
            MC_CHECK(indices[p] >= 0 && indices[p] < G_in,
                     "block index " << indices[p] << " out of range [0, " << G_in << ") in row " << r);
            MC_CHECK(p == indptr[r] || indices[p - 1] < indices[p],
                     "indices of row " << r << " must be strictly increasing (sorted, no duplicates)");
        }
    }
}

void BlockPattern::assign(std::vector<int64_t> indptr, std::vector<int32_t> indices, bool reindex) {
    validate(G_out_, G_in_, indptr, indices);
    indptr_ = std::move(indptr);
    indices_ = std::move(indices);
    if (reindex)
        rebuild_transpose();
    else
        drop_transpose();
    ++version_;
}

void BlockPattern::compact(const uint8_t* keep, bool reindex) {
    std::vector<int64_t> new_indptr(static_cast<size_t>(G_out_) + 1, 0);
    int64_t q = 0;
    for (int64_t r = 0; r < G_out_; ++r) {
        for (int64_t p = indptr_[r]; p < indptr_[r + 1]; ++p)
            if (keep[p]) indices_[q++] = indices_[p];
        new_indptr[r + 1] = q;
    }
    indptr_ = std::move(new_indptr);
    indices_.resize(static_cast<size_t>(q));
    if (reindex)
        rebuild_transpose();
    else
        drop_transpose();
    ++version_;
}

void BlockPattern::check_transposed() const {
    if (t_stale_)
        throw std::logic_error("the transposed block index is stale (a pattern change without reindex; "
                               "reindex() builds it)");
}

void BlockPattern::rebuild_transpose(int nt) {
    // A counting sort by column in two cache-sized passes. Scattering every entry straight to its
    // column would write at random over the whole index (hundreds of MB for a 1M-wide layer).
    // Pass 1 distributes the entries, in row order, into at most 1024 buckets of 2^shift
    // consecutive columns (one open write position per bucket, so the writes stay in cache);
    // pass 2 sorts each bucket by column, its entries and counters fitting in L2. Both passes are
    // stable, so a column's entries keep the row order: the same index as a direct counting sort.
    // In parallel: pass 1 over `parts` contiguous row ranges, each writing its entries of a bucket
    // after those of the ranges above it (so the bucket keeps the row order), pass 2 over buckets.
    // The index is a function of the pattern alone: the same for any thread count.
    std::vector<int32_t>().swap(t_inv_);   // the inverse of the old t_pos: rebuilt on demand
    t_inv_built_ = false;
    const int64_t nnz = n_blocks();
    const int64_t G_in = G_in_;
    int shift = 0;
    while ((G_in - 1) >> shift >= 1024) ++shift;
    const int64_t n_buckets = ((G_in - 1) >> shift) + 1, span = int64_t(1) << shift;
    const int64_t parts = nnz < (int64_t(1) << 16) ? 1 : std::max(1, nt);
    std::vector<int64_t> row_begin(static_cast<size_t>(parts) + 1, G_out_);
    row_begin[0] = 0;
    for (int64_t t = 1; t < parts; ++t)   // ranges of about nnz / parts entries
        row_begin[t] = std::lower_bound(indptr_.begin(), indptr_.end() - 1, t * nnz / parts) - indptr_.begin();
    // next[t * n_buckets + k]: the next write position of range t in bucket k.
    std::vector<int64_t> next(static_cast<size_t>(parts * n_buckets), 0);
    parallel_for(parts, 1, static_cast<int>(parts), [&](int64_t t) {
        int64_t* cnt = next.data() + t * n_buckets;
        for (int64_t p = indptr_[row_begin[t]]; p < indptr_[row_begin[t + 1]]; ++p) ++cnt[indices_[p] >> shift];
    });
    std::vector<int64_t> start(n_buckets + 1);  // first entry of each bucket, and nnz
    int64_t at = 0;
    for (int64_t k = 0; k < n_buckets; ++k) {
        start[k] = at;
        for (int64_t t = 0; t < parts; ++t) {
            const int64_t n = next[t * n_buckets + k];
            next[t * n_buckets + k] = at;
            at += n;
        }
    }
    start[n_buckets] = at;
    std::vector<int32_t> local(nnz);         // column of each entry within its bucket
    t_rows_.resize(nnz);
    t_pos_.resize(nnz);
    parallel_for(parts, 1, static_cast<int>(parts), [&](int64_t t) {
        int64_t* pos = next.data() + t * n_buckets;
        for (int64_t r = row_begin[t]; r < row_begin[t + 1]; ++r)
            for (int64_t p = indptr_[r]; p < indptr_[r + 1]; ++p) {
                const int32_t c = indices_[p];
                const int64_t q = pos[c >> shift]++;
                t_rows_[q] = static_cast<int32_t>(r);
                t_pos_[q] = static_cast<int32_t>(p);   // p < kMaxBlocks (constructor, validate, merge)
                local[q] = c & static_cast<int32_t>(span - 1);
            }
    });
    t_indptr_.assign(G_in + 1, 0);
    struct Scratch {
        std::vector<int64_t> col_next;
        std::vector<int32_t> rows_tmp, pos_tmp;
    };
    StatePool<Scratch> scratch([&] { return Scratch{std::vector<int64_t>(span), {}, {}}; });
    parallel_for(n_buckets, 1, parts > 1 ? nt : 1, [&](int64_t k) {   // each bucket: its own columns
        auto sc = scratch.lease();
        std::vector<int64_t>& col_next = sc->col_next;
        const int64_t q0 = start[k], q1 = start[k + 1], c0 = k * span, cols = std::min(span, G_in - c0);
        std::fill(col_next.begin(), col_next.begin() + cols, 0);
        for (int64_t q = q0; q < q1; ++q) ++col_next[local[q]];
        int64_t to = q0;
        for (int64_t j = 0; j < cols; ++j) {
            const int64_t n = col_next[j];
            col_next[j] = to;
            to += n;
            t_indptr_[c0 + j + 1] = to;
        }
        sc->rows_tmp.assign(t_rows_.begin() + q0, t_rows_.begin() + q1);
        sc->pos_tmp.assign(t_pos_.begin() + q0, t_pos_.begin() + q1);
        for (int64_t q = q0; q < q1; ++q) {
            const int64_t d = col_next[local[q]]++;
            t_rows_[d] = sc->rows_tmp[q - q0];
            t_pos_[d] = sc->pos_tmp[q - q0];
        }
    });
    t_stale_ = false;
}

const std::vector<int32_t>& BlockPattern::t_inv() const {
    check_transposed();
    if (!t_inv_built_)
        throw std::logic_error("the inverse transposed positions are not built (reindex_inverse() builds them)");
    return t_inv_;
}

void BlockPattern::reindex_inverse(int nt) {
    reindex(nt);
    if (t_inv_built_) return;
    const int64_t nnz = n_blocks();
    t_inv_.resize(static_cast<size_t>(nnz));
    // Each entry written once: the same array for any thread count.
    parallel_for(nnz, grain_for(2), nnz < (int64_t(1) << 16) ? 1 : nt, [&](int64_t q) { t_inv_[t_pos_[q]] = static_cast<int32_t>(q); });
    t_inv_built_ = true;
}

}  // namespace motifcore
