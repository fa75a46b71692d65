// Dynamic sparse training primitives of a layer: compaction, magnitude and threshold pruning,
// growth at explicit or random positions, and the exact / sampled top-k of block-gradient scores
// (RigL, DSR; SET's prune_regrow in evolution.cpp is built from the same pieces).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <utility>

#include "float_mode.hpp"
#include "kernels.hpp"
#include "layer.hpp"
#include "parallel.hpp"
#include "pattern.hpp"

namespace motifcore {

namespace {

// A candidate is one 128-bit key: the bits of its score (>= 0, so they order like the score) above
// the complement of its position. A larger key is a better candidate -- higher score, then lower
// position -- which is the strict total order of the selection, compared without branches.
using Key = unsigned __int128;

inline Key make_key(float score, uint64_t pos) {
    uint32_t bits;
    std::memcpy(&bits, &score, sizeof bits);
    return (static_cast<Key>(bits) << 64) | static_cast<Key>(~pos);
}
inline uint64_t key_pos(Key k) { return ~static_cast<uint64_t>(k); }

// One standard normal draw from two uniforms (Box-Muller, the cosine branch only): u1 in (0, 1],
// so the logarithm is finite; the same two Rng values always give the same number.
inline double standard_normal(Rng& rng) {
    const double u1 = 1.0 - rng.uniform();
    const double u2 = rng.uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}
inline float key_score(Key k) {
    const auto bits = static_cast<uint32_t>(k >> 64);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// Keeps the k best of `all` and returns them sorted by position (positions below `total`).
TopkResult finish_topk(std::vector<Key>& all, int64_t k, uint64_t total) {
    TopkResult out;
    const auto kk = static_cast<size_t>(std::min<int64_t>(k, static_cast<int64_t>(all.size())));
    if (kk < all.size()) std::nth_element(all.begin(), all.begin() + kk, all.end(), std::greater<Key>());
    all.resize(kk);
    out.positions.resize(kk);
    out.scores.resize(kk);
    if (total < (uint64_t(1) << 32)) {
        // (position, score bits) in one word, sorted in linear time.
        std::vector<uint64_t> packed(kk);
        for (size_t i = 0; i < kk; ++i) {
            uint32_t bits;
            const float sc = key_score(all[i]);
            std::memcpy(&bits, &sc, sizeof bits);
            packed[i] = (key_pos(all[i]) << 32) | bits;
        }
        radix_sort(packed, total << 32);
        for (size_t i = 0; i < kk; ++i) {
            out.positions[i] = packed[i] >> 32;
            const auto bits = static_cast<uint32_t>(packed[i]);
            std::memcpy(&out.scores[i], &bits, sizeof bits);
        }
    } else {
        std::sort(all.begin(), all.end(), [](Key a, Key b) { return key_pos(a) < key_pos(b); });
        for (size_t i = 0; i < kk; ++i) {
            out.positions[i] = key_pos(all[i]);
            out.scores[i] = key_score(all[i]);
        }
    }
    return out;
}

// The k best candidates seen, kept lazily: candidates go into a buffer; when it holds 2k + 1024,
// nth_element keeps the k best and the k-th best becomes a bar that later candidates must beat.
// A candidate that does not beat the k-th best seen so far can never be in the top-k, so the union
// of several threads' buffers always contains the global top-k (given a starting bar, the top-k
// of the candidates that beat it). O(1) per rejected candidate.
struct TopBuf {
    size_t k;
    std::vector<Key> v;
    Key bar = 0;
    float bar_score = -1.f;   // the bar's score once there is one (scores are >= 0): a cheap first filter
    void push(Key c) {
        if (c <= bar) return;   // without a starting bar, bar = 0: every real key is larger
        v.push_back(c);
        if (v.size() >= 2 * k + 1024) shrink();
    }
    void shrink() {
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k - 1), v.end(), std::greater<Key>());
        v.resize(k);
        bar = v[k - 1];
        bar_score = key_score(bar);
    }
};

}  // namespace

void Layer::clear_removed() {
    // Swapped with empty vectors, not cleared: after a SET step of zeta 0.3 the record holds 16 bytes
    // per block of the layer (0.5 GB in a 3 x 1M network) that clear() would keep allocated.
    std::vector<uint64_t>().swap(removed_pos_);
    std::vector<float>().swap(removed_K_);
    opt_.forget_removed();
}

int64_t Layer::keep_where(const uint8_t* keep, bool zero_grad) {
    leave_transposed();   // per-block values in CSR order before the pattern changes (its index goes below)
    const int64_t nnz = n_blocks();
    clear_removed();
    pat_.drop_transposed();   // stale after the compaction anyway: freed before the record is taken
    int64_t n_removed = 0;
    for (int64_t p = 0; p < nnz; ++p) n_removed += keep[p] == 0;
    removed_pos_.reserve(static_cast<size_t>(n_removed));   // exact: no growth by doubling
    removed_K_.reserve(static_cast<size_t>(n_removed));
    // The per-block values follow the pattern's compaction (same order, same mask); the removed
    // ones go to the prune record, the optimizer state's part of it kept by opt_.
    const auto& indptr = pat_.indptr();
    const auto& indices = pat_.indices();
    int64_t q = 0;
    for (int64_t r = 0; r < G_out; ++r) {
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
            if (keep[p]) {
                K[q] = K[p];
                ++q;
            } else {
                removed_pos_.push_back(static_cast<uint64_t>(r) * static_cast<uint64_t>(G_in) +
                                       static_cast<uint64_t>(indices[p]));
                removed_K_.push_back(K[p]);
            }
        }
    }
    opt_.compact(keep, n_removed);
    pat_.compact(keep, false);   // the transposed index: at the next backward that needs it
    K.resize(q);
    std::vector<float>().swap(dK);   // zeroed at the new size, not kept at the old capacity
    if (zero_grad) dK.assign(q, 0.f);
    return nnz - q;
}

std::vector<uint8_t> Layer::smallest_blocks(int64_t k) const {
    const int64_t nnz = n_blocks();
    MC_CHECK(k >= 0 && k <= nnz, "cannot select " << k << " of " << nnz << " blocks");
    std::vector<uint8_t> mark(nnz, 0);
    if (k == 0) return mark;
    // The k smallest under the order (|K|, index): t = the k-th smallest |K|, then every block below
    // t and, in index order, as many at t as are still missing. t comes from a radix selection on
    // the bit patterns of |K| (for floats >= 0 they order as the values, and equal patterns are
    // equal values): one counting pass over K for the high 16 bits, one for the low 16 bits within
    // the bucket that holds the k-th smallest. No copy of the magnitudes (the nth_element selection
    // this replaces copied them: 160 MB on a 40M-block layer).
    // In the engine's flush mode (float_mode.hpp) a comparison reads a subnormal as 0, and so
    // does the key: the order is that of the comparisons |K[p]| < t of the selection it replaced.
    const bool flush = FlushSubnormals::kBits != 0 &&
                       (FlushSubnormals::read() & FlushSubnormals::kBits) == FlushSubnormals::kBits;
    const uint32_t smallest_normal = flush ? 0x00800000u : 0u;
    const float* Kp = K.data();
    auto key = [Kp, smallest_normal](int64_t p) {
        uint32_t u;
        std::memcpy(&u, Kp + p, sizeof u);
        u &= 0x7fffffffu;   // |K[p]|
        return u < smallest_normal ? 0u : u;
    };
    std::vector<int64_t> count(size_t(1) << 16, 0);
    for (int64_t p = 0; p < nnz; ++p) ++count[key(p) >> 16];
    int64_t below = 0;   // blocks whose |K| is below the bucket (then below t)
    uint32_t hi = 0;
    while (below + count[hi] < k) below += count[hi++];
    std::fill(count.begin(), count.end(), 0);
    for (int64_t p = 0; p < nnz; ++p) {
        const uint32_t u = key(p);
        if ((u >> 16) == hi) ++count[u & 0xffffu];
    }
    uint32_t lo = 0;
    while (below + count[lo] < k) below += count[lo++];
    const uint32_t t = (hi << 16) | lo;
    int64_t at_t = k - below;   // blocks at t still to mark, in index order
    for (int64_t p = 0; p < nnz; ++p) {
        const uint32_t u = key(p);
        if (u < t) {
            mark[p] = 1;
        } else if (u == t && at_t > 0) {
            mark[p] = 1;
            --at_t;
        }
    }
    return mark;
}

int64_t Layer::prune_smallest(int64_t k, bool zero_grad) {
    leave_transposed();   // before the transposed index goes
    pat_.drop_transposed();   // before the selection's scratch (keep_where would free it anyway)
    std::vector<uint8_t> keep = smallest_blocks(k);
    for (auto& v : keep) v = !v;
    return keep_where(keep.data(), zero_grad);
}

int64_t Layer::prune_below(float H, int64_t keep_min) {
    MC_CHECK(std::isfinite(H) && H >= 0, "threshold must be finite and >= 0, got " << H);
    MC_CHECK(keep_min >= 0, "keep_min must be >= 0, got " << keep_min);
    const int64_t nnz = n_blocks();
    std::vector<uint8_t> keep(nnz);
    int64_t kept = 0;
    for (int64_t p = 0; p < nnz; ++p) kept += keep[p] = std::fabs(K[p]) >= H;
    const int64_t floor_keep = std::min(keep_min, nnz);
    if (kept < floor_keep) {
        // Keep the floor_keep largest |K| instead: everything but the nnz - floor_keep smallest.
        keep = smallest_blocks(nnz - floor_keep);
        for (auto& v : keep) v = !v;
    }
    return keep_where(keep.data());
}

int64_t Layer::grow_sorted(const std::vector<uint64_t>& fresh, RegrowInit init, Rng& rng, float pruned_bound) {
    leave_transposed();   // per-block values in CSR order before the pattern changes
    const int64_t nnz = n_blocks();
    const int64_t n = static_cast<int64_t>(fresh.size());
    // dK is zeroed at the new size below: freed first. The merge writes the new pattern, K and
    // the optimizer state over the old ones from the back (BlockPattern::merge_in_place): no second
    // copy of them (12 B per block of the layer before 2026-12-06, and as much memory faulted in
    // afresh), the capacity a prune's compaction kept is reused. The callers rule out active
    // positions first; should the merge's own check still throw (or an allocation fail), the layer
    // keeps its pattern and values and a zero gradient.
    std::vector<float>().swap(dK);
    std::vector<char> is_new;
    try {
        is_new.assign(static_cast<size_t>(nnz + n), 0);
        K.resize(static_cast<size_t>(nnz + n));
        opt_.grow_to(static_cast<size_t>(nnz + n));
        size_t rm = removed_pos_.size();   // the prune record, searched from the back
        // The per-block values follow the merge entry by entry; a position removed by the last
        // prune comes back with its old state.
        pat_.merge_in_place(fresh, [&](int64_t q, int64_t p, size_t f) {
            if (p >= 0) {
                K[q] = K[p];
                opt_.move_entry(static_cast<size_t>(q), static_cast<size_t>(p));
                return;
            }
            while (rm > 0 && removed_pos_[rm - 1] > fresh[f]) --rm;
            if (rm > 0 && removed_pos_[rm - 1] == fresh[f]) {
                K[q] = removed_K_[rm - 1];
                opt_.restore_entry(static_cast<size_t>(q), rm - 1);
            } else {
                K[q] = 0.f;
                opt_.zero_entry(static_cast<size_t>(q));
                is_new[q] = 1;
            }
        });
        // The transposed index stays stale and freed until the next backward that needs it
        // (pattern()). The prune record goes before dK is allocated at the new size.
    } catch (...) {
        if (n_blocks() == nnz) {   // the merge did not start: sizes back (no entry moved)
            K.resize(static_cast<size_t>(nnz));
            opt_.shrink_to(static_cast<size_t>(nnz));
        }
        dK.assign(static_cast<size_t>(nnz), 0.f);
        throw;
    }
    clear_removed();
    dK.assign(K.size(), 0.f);
    // New weights, drawn in position order: He bound of the row's new fan-in, or the pruned scale
    // (uniform in [-bound, bound]); Normal: N(0, sigma^2) with sigma = He bound / sqrt(3), the
    // standard deviation of that He-uniform draw.
    const auto& indptr = pat_.indptr();
    for (int64_t r = 0; r < G_out && init != RegrowInit::Zero; ++r) {
        float bound = -1.f;
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
            if (!is_new[p]) continue;
            if (bound < 0) bound = init == RegrowInit::Pruned ? pruned_bound : init_bound(r);
            if (init == RegrowInit::Normal)
                K[p] = static_cast<float>(standard_normal(rng) * (static_cast<double>(bound) / std::sqrt(3.0)));
            else
                K[p] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
        }
    }
    return n;
}

int64_t Layer::grow_at(const uint64_t* pos, int64_t n, RegrowInit init, uint64_t seed, float pruned_bound) {
    MC_CHECK(n >= 0, "cannot grow a negative number of blocks");
    const uint64_t total = static_cast<uint64_t>(G_in) * static_cast<uint64_t>(G_out);
    std::vector<uint64_t> fresh(pos, pos + n);
    for (int64_t i = 0; i < n; ++i) {
        MC_CHECK(fresh[i] < total, "position " << fresh[i] << " out of range [0, " << total << ")");
        MC_CHECK(i == 0 || fresh[i - 1] < fresh[i], "positions must be strictly increasing");
        MC_CHECK(!pat_.contains(fresh[i]), "position " << fresh[i] << " is already active");
    }
    MC_CHECK(std::isfinite(pruned_bound) && pruned_bound >= 0, "pruned_bound must be >= 0");
    Rng rng(seed);
    return grow_sorted(fresh, init, rng, pruned_bound);
}

int64_t Layer::grow_random(int64_t n, uint64_t seed, RegrowInit init, float pruned_bound) {
    MC_CHECK(n >= 0, "cannot grow a negative number of blocks");
    const uint64_t total = static_cast<uint64_t>(G_in) * static_cast<uint64_t>(G_out);
    const uint64_t taken_n = static_cast<uint64_t>(n_blocks()) + removed_pos_.size();
    const int64_t m = std::min<int64_t>(n, static_cast<int64_t>(total - taken_n));
    Rng rng(seed);
    // sample_positions asks in increasing order within a round: cursors walk the pattern (a
    // row's columns from where the last question left them; a binary search per question cost a
    // fifth of an evolution step at 40 M blocks) and the removal list (a binary search only when a
    // new round starts below it). The answers are those of pat_.contains.
    const auto& removed = removed_pos_;
    const auto& indptr = pat_.indptr();
    const auto& indices = pat_.indices();
    const uint64_t g_in = static_cast<uint64_t>(G_in);
    int64_t row = -1, at = 0;   // the pattern cursor: row and CSR position
    uint64_t row_base = 0;      // row * G_in: a position in the same row needs no division
    size_t cur = 0;
    auto taken = [&](uint64_t pos) {
        int64_t r = row;
        if (row < 0 || pos < row_base || pos - row_base >= g_in) {
            r = static_cast<int64_t>(pos / g_in);
            row_base = static_cast<uint64_t>(r) * g_in;
        }
        const auto c = static_cast<int32_t>(pos - row_base);
        if (r != row || (at > indptr[r] && indices[at - 1] >= c)) {   // another row, or behind the cursor
            row = r;
            at = indptr[r];
        }
        const int64_t end = indptr[r + 1];
        while (at < end && indices[at] < c) ++at;
        if (at < end && indices[at] == c) return true;
        if (cur > 0 && removed[cur - 1] >= pos)
            cur = static_cast<size_t>(std::lower_bound(removed.begin(), removed.end(), pos) - removed.begin());
        while (cur < removed.size() && removed[cur] < pos) ++cur;
        return cur < removed.size() && removed[cur] == pos;
    };
    const auto fresh = sample_positions(total, static_cast<uint64_t>(std::max<int64_t>(m, 0)), taken_n, rng, taken);
    return grow_sorted(fresh, init, rng, pruned_bound);
}

namespace {

// The steps of Layer::block_grad_topk. A position is scored by KernelTable::score_tile on the
// row's dU panel and a [B, Cp] transposed gather of the S columns, whichever step scores it, so a
// score is bitwise the same in every mode.

/// The block-gradient problem of one call: the pattern, the panels and which blocks are kept.
struct GradTopk {
    const BlockPattern& pat;
    const float* dU;       // [G_out, ld]
    const float* S;        // [G_in, ld]
    int64_t B, ld;
    const uint8_t* kept;   // [|P|]
    int64_t n_kept;
    int nt;
    uint64_t total() const { return static_cast<uint64_t>(pat.rows()) * static_cast<uint64_t>(pat.cols()); }
    /// Whether position r * G_in + c is an active block marked kept.
    bool is_kept(uint64_t pos) const {
        const int64_t p = pat.find(static_cast<int64_t>(pos / static_cast<uint64_t>(pat.cols())),
                                   static_cast<int32_t>(pos % static_cast<uint64_t>(pat.cols())));
        return p >= 0 && kept[p] != 0;
    }
};

/// n candidates drawn uniformly among the positions not kept, each row's gathered, transposed, in
/// chunks of up to 64 and scored; rows are scored in parallel. Keys of (|score|, position).
std::vector<Key> score_sampled(const GradTopk& g, uint64_t n, uint64_t seed) {
    const int64_t G_out = g.pat.rows(), G_in = g.pat.cols(), B = g.B, ld = g.ld;
    Rng rng(seed);
    const auto cand = sample_positions(g.total(), n, static_cast<uint64_t>(g.n_kept), rng,
                                       [&](uint64_t pos) { return g.is_kept(pos); });
    std::vector<int64_t> row_start(G_out + 1, 0);
    for (uint64_t pos : cand) ++row_start[static_cast<int64_t>(pos / G_in) + 1];
    for (int64_t r = 0; r < G_out; ++r) row_start[r + 1] += row_start[r];
    std::vector<float> sc(cand.size());
    // Work items: up to kChunk consecutive candidates of one row; groups of kItems items run in
    // parallel, each writing only its own candidates' scores.
    constexpr int64_t kChunk = 64, kItems = 16;
    std::vector<std::pair<int64_t, int64_t>> items;   // (row, first candidate)
    for (int64_t r = 0; r < G_out; ++r)
        for (int64_t a = row_start[r]; a < row_start[r + 1]; a += kChunk) items.emplace_back(r, a);
    const int64_t n_items = static_cast<int64_t>(items.size());
    struct Scratch {
        std::vector<float> St, out;
    };
    StatePool<Scratch> scratch([&] { return Scratch{std::vector<float>(static_cast<size_t>(B * kChunk)),
                                                    std::vector<float>(kChunk)}; });
    const auto& K_ = kernels();
    parallel_for((n_items + kItems - 1) / kItems, 1, threads_for(static_cast<int64_t>(cand.size()) * B, g.nt),
                 [&](int64_t gi) {
        auto s = scratch.lease();
        std::vector<float>& St = s->St;
        for (int64_t it = gi * kItems; it < std::min(n_items, (gi + 1) * kItems); ++it) {
            const auto [r, a] = items[static_cast<size_t>(it)];
            const int64_t m = std::min(kChunk, row_start[r + 1] - a);
            const int64_t Cp = (m + 15) / 16 * 16;
            std::fill(St.begin(), St.begin() + B * Cp, 0.f);
            for (int64_t j = 0; j < m; ++j) {
                const float* src = g.S + static_cast<int64_t>(cand[a + j] % G_in) * ld;
                for (int64_t b = 0; b < B; ++b) St[b * Cp + j] = src[b];
            }
            K_.score_tile(g.dU + r * ld, 1, St.data(), Cp, B, ld, s->out.data());
            std::copy(s->out.begin(), s->out.begin() + m, sc.begin() + a);
        }
    });
    std::vector<Key> keys(cand.size());
    for (size_t i = 0; i < cand.size(); ++i) keys[i] = make_key(std::fabs(sc[i]), cand[i]);
    return keys;
}

/// A starting bar for the exact scan from a sample of up to 8192 free positions: the sampled key
/// at the rank where about 2k of all free positions are expected to beat it (0: no bar, when the
/// sample would be too small to say). Most candidates then fail one float comparison.
Key starting_bar(const GradTopk& g, int64_t k, int64_t free_pos, uint64_t seed) {
    const int64_t n_s = std::min<int64_t>(free_pos, 8192);
    const int64_t rank = static_cast<int64_t>(2.0 * static_cast<double>(k) * static_cast<double>(n_s) /
                                              static_cast<double>(free_pos));
    if (n_s < 1024 || rank >= n_s) return 0;
    auto smp = score_sampled(g, static_cast<uint64_t>(n_s), seed ^ 0xB1A5ULL);
    std::nth_element(smp.begin(), smp.begin() + rank, smp.end(), std::greater<Key>());
    return smp[rank];
}

/// The exact scan: tiles of Rt x Ct positions, column tile major, scheduled dynamically. A thread
/// transposes the S columns of its tile into [B, Cp] (kept while it stays on the same column tile),
/// scores every position of the tile, and offers the positions that are not kept and beat the bar
/// to its own TopBuf; the union of the buffers (returned) holds the top-k of those positions,
/// whichever state scanned which tile.
std::vector<Key> scan_tiles(const GradTopk& g, int64_t k, int64_t Rt, int64_t Ct, Key bar0) {
    const int64_t G_out = g.pat.rows(), G_in = g.pat.cols(), B = g.B, ld = g.ld;
    const auto& indptr = g.pat.indptr();
    const auto& indices = g.pat.indices();
    const int64_t n_rt = (G_out + Rt - 1) / Rt, n_ct = (G_in + Ct - 1) / Ct;
    const int64_t n_tiles = n_rt * n_ct;
    const int64_t Cp = (Ct + 15) / 16 * 16;
    const uint64_t work = std::min<uint64_t>(g.total() * static_cast<uint64_t>(B), uint64_t(1) << 40);
    struct ScanState {
        TopBuf top;
        std::vector<float> St, sc;
        int64_t have_ct;
    };
    StatePool<ScanState> states([&] {
        return ScanState{TopBuf{static_cast<size_t>(k), {}, bar0, bar0 ? key_score(bar0) : -1.f},
                         std::vector<float>(static_cast<size_t>(B * Cp)),
                         std::vector<float>(static_cast<size_t>(std::min(Rt, G_out) * Cp)), -1};
    });
    const auto& K_ = kernels();
    parallel_for(n_tiles, 1, threads_for(static_cast<int64_t>(work), g.nt), [&](int64_t t) {
        auto st = states.lease();
        TopBuf& top = st->top;
        std::vector<float>& St = st->St;
        std::vector<float>& sc = st->sc;
        const int64_t ct = t / n_rt;
        const int64_t r0 = (t % n_rt) * Rt, r1 = std::min(G_out, r0 + Rt);
        const int32_t c0 = static_cast<int32_t>(ct * Ct);
        const int32_t c1 = static_cast<int32_t>(std::min<int64_t>(G_in, c0 + Ct));
        if (ct != st->have_ct) {
            std::fill(St.begin(), St.end(), 0.f);
            for (int32_t c = c0; c < c1; ++c) {
                const float* src = g.S + static_cast<int64_t>(c) * ld;
                for (int64_t b = 0; b < B; ++b) St[b * Cp + (c - c0)] = src[b];
            }
            st->have_ct = ct;
        }
        K_.score_tile(g.dU + r0 * ld, r1 - r0, St.data(), Cp, B, ld, sc.data());
        for (int64_t r = r0; r < r1; ++r) {
            const float* row = sc.data() + (r - r0) * Cp;
            const auto b = indices.begin() + indptr[r], e = indices.begin() + indptr[r + 1];
            int64_t p = std::lower_bound(b, e, c0) - indices.begin();
            const int64_t pe = indptr[r + 1];
            const uint64_t base = static_cast<uint64_t>(r) * static_cast<uint64_t>(G_in);
            for (int32_t c = c0; c < c1; ++c) {
                const float sc_c = std::fabs(row[c - c0]);
                if (sc_c < top.bar_score) continue;   // cannot enter the top-k: skip the kept check
                while (p < pe && indices[p] < c) ++p;
                if (p < pe && indices[p] == c && g.kept[p]) continue;
                top.push(make_key(sc_c, base + static_cast<uint64_t>(c)));
            }
        }
    });
    std::vector<Key> all;
    states.for_each([&](ScanState& st) { all.insert(all.end(), st.top.v.begin(), st.top.v.end()); });
    return all;
}

}  // namespace

TopkResult Layer::block_grad_topk(const float* dU, const float* S, int64_t B, int64_t ld, const uint8_t* kept,
                                  int64_t k, const TopkConfig& cfg, int nt) const {
    MC_CHECK(k >= 0, "k must be >= 0, got " << k);
    MC_CHECK(cfg.tile_rows >= 1 && cfg.tile_cols >= 0, "tile sizes must be >= 1");
    MC_CHECK(cfg.sample_factor >= 1, "sample_factor must be >= 1");
    const uint64_t total = static_cast<uint64_t>(G_in) * static_cast<uint64_t>(G_out);
    const int64_t nnz = n_blocks();
    int64_t n_kept = 0;
    for (int64_t p = 0; p < nnz; ++p) n_kept += kept[p] != 0;
    const int64_t free_pos = static_cast<int64_t>(total) - n_kept;
    k = std::min(k, free_pos);
    std::vector<Key> all;
    if (k <= 0) return finish_topk(all, 0, total);
    const GradTopk g{pat_, dU, S, B, ld, kept, n_kept, nt};

    if (cfg.mode == TopkMode::Sampled) {
        const uint64_t n_cand = static_cast<uint64_t>(std::min<int64_t>(
            free_pos, k > free_pos / cfg.sample_factor ? free_pos : k * cfg.sample_factor));
        all = score_sampled(g, n_cand, cfg.seed);
        return finish_topk(all, k, total);
    }
    // Exact. The result does not depend on the bar: if fewer than k positions beat it (an unlucky
    // sample), the scan is repeated without one.
    const int64_t Ct = cfg.tile_cols > 0 ? cfg.tile_cols : std::max<int64_t>(16, (int64_t(256) << 10) / (B * 4) / 16 * 16);
    all = scan_tiles(g, k, cfg.tile_rows, Ct, starting_bar(g, k, free_pos, cfg.seed));
    if (static_cast<int64_t>(all.size()) < k) all = scan_tiles(g, k, cfg.tile_rows, Ct, 0);
    return finish_topk(all, k, total);
}

TopkResult Layer::grad_topk_last(int64_t k, int64_t drop, const TopkConfig& cfg, int nt) {
    MC_CHECK(have_grad_, "grad_topk needs a forward and a backward first");
    MC_CHECK(pat_.version() == forward_version_,
             "the block pattern changed since the last forward; call forward and backward again");
    std::vector<uint8_t> kept = smallest_blocks(drop);
    for (auto& v : kept) v = !v;
    const float* S = m_in == 1 ? x_src_ : own_.S.data();
    return block_grad_topk(own_.dUp, S, last_B_, panel_ld(last_B_), kept.data(), k, cfg, nt);
}

}  // namespace motifcore
