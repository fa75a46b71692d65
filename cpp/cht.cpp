// CH3-L3 scoring of absent links and the CHT evolution step (see cht.hpp).
#include "cht.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "common.hpp"
#include "layer.hpp"
#include "parallel.hpp"
#include "pattern.hpp"

namespace motifcore {

namespace {

/// A pattern in both orientations (CSR over rows, CSC over columns), rows and columns sorted.
struct Graph {
    int64_t n_rows = 0, n_cols = 0;
    std::vector<int64_t> rp;   // [n_rows + 1]
    std::vector<int32_t> ci;   // column of each entry, by row
    std::vector<int64_t> cp;   // [n_cols + 1]
    std::vector<int32_t> ri;   // row of each entry, by column

    Graph(int64_t rows, int64_t cols, std::vector<int64_t> indptr, std::vector<int32_t> indices)
        : n_rows(rows), n_cols(cols), rp(std::move(indptr)), ci(std::move(indices)) {
        cp.assign(n_cols + 1, 0);
        for (int32_t c : ci) ++cp[c + 1];
        for (int64_t c = 0; c < n_cols; ++c) cp[c + 1] += cp[c];
        ri.resize(ci.size());
        std::vector<int64_t> fill(cp.begin(), cp.end() - 1);
        for (int64_t r = 0; r < n_rows; ++r)
            for (int64_t p = rp[r]; p < rp[r + 1]; ++p) ri[fill[ci[p]]++] = static_cast<int32_t>(r);
    }
    int64_t row_deg(int64_t r) const { return rp[r + 1] - rp[r]; }
    int64_t col_deg(int64_t c) const { return cp[c + 1] - cp[c]; }
};

/// Per-thread scratch of the column scorer: O(n_rows + n_cols), reset after every column.
struct Scratch {
    std::vector<int32_t> cj, ci;
    std::vector<double> score;
    std::vector<char> linked, scored;
    std::vector<int32_t> touched_j, touched_i, touched_s;
    explicit Scratch(const Graph& g)
        : cj(g.n_cols, 0), ci(g.n_rows, 0), score(g.n_rows, 0.0), linked(g.n_rows, 0), scored(g.n_rows, 0) {}
};

/// Scores of the absent links (i, j) of column j with a positive score, appended as (i, score)
/// sorted by i. The summation order is fixed by the pattern, so the values are reproducible.
void score_column(const Graph& g, int32_t j, Scratch& s, std::vector<std::pair<int32_t, double>>& out) {
    for (int64_t p = g.cp[j]; p < g.cp[j + 1]; ++p) s.linked[g.ri[p]] = 1;
    // cj[j'] = number of rows adjacent to both j' and j
    for (int64_t p = g.cp[j]; p < g.cp[j + 1]; ++p) {
        const int32_t i1 = g.ri[p];
        for (int64_t q = g.rp[i1]; q < g.rp[i1 + 1]; ++q) {
            const int32_t j1 = g.ci[q];
            if (s.cj[j1]++ == 0) s.touched_j.push_back(j1);
        }
    }
    for (int64_t p = g.cp[j]; p < g.cp[j + 1]; ++p) {
        const int32_t i1 = g.ri[p];
        // ci[i] = number of columns adjacent to both i and i1
        for (int64_t q = g.rp[i1]; q < g.rp[i1 + 1]; ++q) {
            const int32_t j2 = g.ci[q];
            for (int64_t t = g.cp[j2]; t < g.cp[j2 + 1]; ++t) {
                const int32_t i = g.ri[t];
                if (s.ci[i]++ == 0) s.touched_i.push_back(i);
            }
        }
        const double k_i1 = static_cast<double>(g.row_deg(i1));
        for (int64_t q = g.rp[i1]; q < g.rp[i1 + 1]; ++q) {
            const int32_t j1 = g.ci[q];
            if (j1 == j) continue;
            const double w = 1.0 / std::sqrt(static_cast<double>(g.col_deg(j1) - s.cj[j1]));
            for (int64_t t = g.cp[j1]; t < g.cp[j1 + 1]; ++t) {
                const int32_t i = g.ri[t];
                if (i == i1 || s.linked[i]) continue;
                s.score[i] += w / std::sqrt(k_i1 - static_cast<double>(s.ci[i]));
                if (!s.scored[i]) {
                    s.scored[i] = 1;
                    s.touched_s.push_back(i);
                }
            }
        }
        for (int32_t i : s.touched_i) s.ci[i] = 0;
        s.touched_i.clear();
    }
    std::sort(s.touched_s.begin(), s.touched_s.end());
    for (int32_t i : s.touched_s) {
        if (s.score[i] > 0) out.emplace_back(i, s.score[i]);
        s.score[i] = 0.0;
        s.scored[i] = 0;
    }
    s.touched_s.clear();
    for (int32_t j1 : s.touched_j) s.cj[j1] = 0;
    s.touched_j.clear();
    for (int64_t p = g.cp[j]; p < g.cp[j + 1]; ++p) s.linked[g.ri[p]] = 0;
}

void check_pattern(int64_t n_rows, int64_t n_cols, const std::vector<int64_t>& indptr,
                   const std::vector<int32_t>& indices) {
    MC_CHECK(n_rows >= 1 && n_cols >= 1, "pattern shape must be positive, got " << n_rows << " x " << n_cols);
    MC_CHECK(n_rows < (int64_t{1} << 31) && n_cols < (int64_t{1} << 31), "pattern too large for 32-bit indices");
    MC_CHECK(static_cast<int64_t>(indptr.size()) == n_rows + 1, "indptr must have n_rows + 1 entries");
    MC_CHECK(indptr[0] == 0 && indptr.back() == static_cast<int64_t>(indices.size()),
             "indptr must start at 0 and end at len(indices)");
    for (int64_t r = 0; r < n_rows; ++r) {
        MC_CHECK(indptr[r] <= indptr[r + 1], "indptr must be non-decreasing");
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
            MC_CHECK(indices[p] >= 0 && indices[p] < n_cols, "column index " << indices[p] << " out of range");
            MC_CHECK(p == indptr[r] || indices[p - 1] < indices[p], "columns of row " << r << " must be sorted, unique");
        }
    }
}

/// A regrowth candidate; `better` is a strict total order, so the top k are unique.
struct Cand {
    double score;
    uint64_t key;
    uint64_t pos;
};
inline bool better(const Cand& a, const Cand& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.key != b.key) return a.key < b.key;
    return a.pos < b.pos;
}

void keep_best(std::vector<Cand>& v, size_t k) {
    if (v.size() <= k) return;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end(), better);
    v.resize(k);
}

/// The k best positive-score positions of the pattern g (sorted by position), ties by a seeded hash.
std::vector<uint64_t> top_scored(const Graph& g, size_t k, uint64_t seed, int num_threads) {
    if (k == 0) return {};
    // Each leased state keeps a running best-k of the columns it scored; the union of the states
    // holds the k best overall, and `better` is a strict total order, so which state scored which
    // column does not change the result.
    struct State {
        Scratch s;
        std::vector<Cand> local;
        std::vector<std::pair<int32_t, double>> col;
    };
    StatePool<State> states([&] { return State{Scratch(g), {}, {}}; });
    parallel_for(g.n_cols, 16, num_threads, [&](int64_t j) {
        auto st = states.lease();
        st->col.clear();
        score_column(g, static_cast<int32_t>(j), st->s, st->col);
        for (const auto& [i, v] : st->col) {
            const uint64_t pos = static_cast<uint64_t>(i) * static_cast<uint64_t>(g.n_cols) + static_cast<uint64_t>(j);
            st->local.push_back({v, hash4(seed, pos, 0x43485433ULL, 0), pos});
        }
        if (st->local.size() > 2 * k + 1024) keep_best(st->local, k);
    });
    std::vector<Cand> best;
    states.for_each([&](State& st) {
        keep_best(st.local, k);
        best.insert(best.end(), st.local.begin(), st.local.end());
    });
    keep_best(best, k);
    std::vector<uint64_t> pos(best.size());
    for (size_t i = 0; i < best.size(); ++i) pos[i] = best[i].pos;
    std::sort(pos.begin(), pos.end());
    return pos;
}

}  // namespace

Ch3Scores ch3_l3_scores(int64_t n_rows, int64_t n_cols, const std::vector<int64_t>& indptr,
                        const std::vector<int32_t>& indices, int num_threads) {
    check_pattern(n_rows, n_cols, indptr, indices);
    MC_CHECK(num_threads >= 1, "num_threads must be >= 1");
    const Graph g(n_rows, n_cols, indptr, indices);
    std::vector<std::vector<std::pair<int32_t, double>>> cols(static_cast<size_t>(n_cols));
    StatePool<Scratch> scratch([&] { return Scratch(g); });   // reset after every column
    parallel_for(n_cols, 16, num_threads, [&](int64_t j) {
        auto s = scratch.lease();
        score_column(g, static_cast<int32_t>(j), *s, cols[j]);
    });
    Ch3Scores out;
    out.col_ptr.assign(n_cols + 1, 0);
    for (int64_t j = 0; j < n_cols; ++j) out.col_ptr[j + 1] = out.col_ptr[j] + static_cast<int64_t>(cols[j].size());
    out.rows.reserve(out.col_ptr.back());
    out.values.reserve(out.col_ptr.back());
    for (auto& c : cols)
        for (const auto& [i, v] : c) {
            out.rows.push_back(i);
            out.values.push_back(v);
        }
    return out;
}

namespace {

// The phases of cht_evolve. `keep[l]` marks, per block of layer l (CSR order), whether it survives
// the step; the removal phases clear entries, the regrowth compacts the layer to them.
using KeepMasks = std::vector<std::vector<uint8_t>>;

/// 1 for the blocks the CHT code's sign-wise magnitude removal drops: every block at exactly
/// zero, the round(zeta n-) negative blocks of smallest |K| and the round(zeta n+) positive ones
/// (ties: lower position first), 0 elsewhere.
std::vector<uint8_t> sign_removal_blocks(const Layer& ly, double zeta) {
    const int64_t nnz = ly.n_blocks();
    std::vector<uint8_t> drop(static_cast<size_t>(nnz), 0);
    std::vector<int64_t> neg, pos;
    for (int64_t p = 0; p < nnz; ++p) {
        if (ly.weights()[p] < 0.f) neg.push_back(p);
        else if (ly.weights()[p] > 0.f) pos.push_back(p);
        else drop[p] = 1;
    }
    for (auto* side : {&neg, &pos}) {
        const int64_t k = std::llround(zeta * static_cast<double>(side->size()));
        if (k <= 0) continue;
        auto nearer_zero = [&](int64_t a, int64_t b) {
            const float fa = std::fabs(ly.weights()[a]), fb = std::fabs(ly.weights()[b]);
            return fa != fb ? fa < fb : a < b;
        };
        std::nth_element(side->begin(), side->begin() + (k - 1), side->end(), nearer_zero);
        for (int64_t i = 0; i < k; ++i) drop[(*side)[i]] = 1;
    }
    return drop;
}

/// Phase 1: the round(zeta |P|) smallest-|K| blocks of each evolved layer (Layer::smallest_blocks,
/// the selection DST uses), or the sign-wise selection of the CHT code (cfg.sign_removal).
/// Records the count and the largest removed |K| (RegrowInit::Pruned).
void remove_by_magnitude(const std::vector<Layer*>& layers, const std::vector<double>& zetas, bool by_sign,
                         KeepMasks& keep, std::vector<float>& threshold, std::vector<ChtStats>& stats) {
    for (size_t l = 0; l < layers.size(); ++l) {
        const Layer& ly = *layers[l];
        const int64_t nnz = ly.n_blocks();
        keep[l].assign(static_cast<size_t>(nnz), 1);
        if (zetas[l] <= 0) continue;
        if (by_sign) {
            keep[l] = sign_removal_blocks(ly, zetas[l]);
        } else {
            const int64_t k = std::min<int64_t>(std::llround(zetas[l] * static_cast<double>(nnz)), nnz);
            if (k <= 0) continue;
            keep[l] = ly.smallest_blocks(k);
        }
        int64_t k = 0;
        for (int64_t p = 0; p < nnz; ++p)
            if (keep[l][p]) {
                threshold[l] = std::max(threshold[l], std::fabs(ly.weights()[p]));
                ++k;
            }
        for (auto& v : keep[l]) v = !v;
        stats[l].removed = k;
    }
}

/// How many of the sorted positions `fresh` are blocks of the layer's pattern that `keep` drops,
/// i.e. links removed in this step and chosen again.
int64_t count_regrown_removed(const Layer& ly, const std::vector<uint8_t>& keep, const std::vector<uint64_t>& fresh) {
    const auto& indptr = ly.pattern().indptr();
    const auto& indices = ly.pattern().indices();
    int64_t n = 0;
    for (uint64_t pos : fresh) {
        const int64_t r = static_cast<int64_t>(pos / static_cast<uint64_t>(ly.G_in));
        const int32_t c = static_cast<int32_t>(pos % static_cast<uint64_t>(ly.G_in));
        const auto b = indices.begin() + indptr[r], e = indices.begin() + indptr[r + 1];
        const auto it = std::lower_bound(b, e, c);
        if (it != e && *it == c && !keep[static_cast<size_t>(it - indices.begin())]) ++n;
    }
    return n;
}

/// Per input group of layer l: whether any of its blocks is kept.
std::vector<char> inputs_with_kept_block(const Layer& ly, const std::vector<uint8_t>& keep) {
    std::vector<char> has(static_cast<size_t>(ly.G_in), 0);
    const auto& indices = ly.pattern().indices();
    for (size_t p = 0; p < keep.size(); ++p)
        if (keep[p]) has[indices[p]] = 1;
    return has;
}

/// Per output group of layer l: whether any of its blocks is kept.
std::vector<char> outputs_with_kept_block(const Layer& ly, const std::vector<uint8_t>& keep) {
    std::vector<char> has(static_cast<size_t>(ly.G_out), 0);
    const auto& indptr = ly.pattern().indptr();
    for (int64_t r = 0; r < ly.G_out; ++r)
        for (int64_t p = indptr[r]; p < indptr[r + 1] && !has[r]; ++p) has[r] = static_cast<char>(keep[p]);
    return has;
}

/// Phase 2: chain removal at neuron resolution between motif partitions (only evolved layers
/// change). Backward pass: the blocks of an output motif none of whose neurons feeds a kept block
/// of the next layer; forward pass: the blocks of an input motif none of whose neurons is fed by
/// a kept block of the previous layer.
void remove_chains(const std::vector<Layer*>& layers, const std::vector<double>& zetas, KeepMasks& keep,
                   std::vector<ChtStats>& stats) {
    const size_t L = layers.size();
    for (size_t l = L - 1; l-- > 0;) {
        const Layer& ly = *layers[l];
        if (zetas[l] <= 0) continue;
        const auto has = inputs_with_kept_block(*layers[l + 1], keep[l + 1]);
        const int64_t m_next = layers[l + 1]->m_in;
        const auto& indptr = ly.pattern().indptr();
        for (int64_t r = 0; r < ly.G_out; ++r) {
            bool dead = true;
            for (int64_t u = r * ly.m_out; u < std::min(ly.n_out, (r + 1) * ly.m_out) && dead; ++u)
                dead = !has[u / m_next];
            if (!dead) continue;
            for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p)
                if (keep[l][p]) {
                    keep[l][p] = 0;
                    ++stats[l].cr_removed;
                }
        }
    }
    for (size_t l = 1; l < L; ++l) {
        const Layer& ly = *layers[l];
        if (zetas[l] <= 0) continue;
        const auto has = outputs_with_kept_block(*layers[l - 1], keep[l - 1]);
        const int64_t m_prev = layers[l - 1]->m_out;
        std::vector<char> dead(static_cast<size_t>(ly.G_in), 0);
        for (int64_t c = 0; c < ly.G_in; ++c) {
            bool d = true;
            for (int64_t u = c * ly.m_in; u < std::min(ly.n_in, (c + 1) * ly.m_in) && d; ++u) d = !has[u / m_prev];
            dead[c] = d;
        }
        const auto& indices = ly.pattern().indices();
        for (size_t p = 0; p < keep[l].size(); ++p)
            if (keep[l][p] && dead[indices[p]]) {
                keep[l][p] = 0;
                ++stats[l].cr_removed;
            }
    }
}

/// Phase 3 of one layer: the positions to regrow so that |P| is conserved -- the top CH3-L3 scores
/// of the kept pattern, then (fill_random, or !by_score) uniform draws among the rest.
std::vector<uint64_t> regrowth_positions(const Layer& ly, const std::vector<uint8_t>& keep, uint64_t seed,
                                         const ChtConfig& cfg, int num_threads, ChtStats& st) {
    const int64_t nnz = ly.n_blocks();
    const auto& indptr = ly.pattern().indptr();
    const auto& indices = ly.pattern().indices();
    std::vector<int64_t> kp(static_cast<size_t>(ly.G_out) + 1, 0);
    std::vector<int32_t> ki;
    ki.reserve(static_cast<size_t>(nnz));
    for (int64_t r = 0; r < ly.G_out; ++r) {
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p)
            if (keep[p]) ki.push_back(indices[p]);
        kp[r + 1] = static_cast<int64_t>(ki.size());
    }
    const int64_t kept = static_cast<int64_t>(ki.size());
    const int64_t k = nnz - kept;
    std::vector<uint64_t> fresh;
    if (k == 0) return fresh;
    const Graph g(ly.G_out, ly.G_in, kp, ki);
    if (cfg.by_score) fresh = top_scored(g, static_cast<size_t>(k), seed, num_threads);
    st.regrown_score = static_cast<int64_t>(fresh.size());
    const int64_t need = k - st.regrown_score;
    if (need > 0 && (cfg.fill_random || !cfg.by_score)) {
        Rng rng(seed);
        const uint64_t total = static_cast<uint64_t>(ly.G_out) * static_cast<uint64_t>(ly.G_in);
        auto taken = [&](uint64_t pos) {
            const int64_t r = static_cast<int64_t>(pos / static_cast<uint64_t>(ly.G_in));
            const int32_t c = static_cast<int32_t>(pos % static_cast<uint64_t>(ly.G_in));
            return std::binary_search(ki.begin() + kp[r], ki.begin() + kp[r + 1], c) ||
                   std::binary_search(fresh.begin(), fresh.end(), pos);
        };
        auto extra = sample_positions(total, static_cast<uint64_t>(need), static_cast<uint64_t>(kept) + fresh.size(),
                                      rng, taken);
        st.regrown_fill = need;
        fresh.insert(fresh.end(), extra.begin(), extra.end());
        std::sort(fresh.begin(), fresh.end());
    }
    return fresh;
}

}  // namespace

std::vector<ChtStats> cht_evolve(const std::vector<Layer*>& layers, const std::vector<double>& zetas,
                                 const std::vector<uint64_t>& seeds, const ChtConfig& cfg, int num_threads) {
    const size_t L = layers.size();
    MC_CHECK(L >= 1, "cht_evolve needs at least one layer");
    MC_CHECK(zetas.size() == L && seeds.size() == L, "zetas and seeds need one entry per layer (" << L << ")");
    MC_CHECK(num_threads >= 1, "num_threads must be >= 1");
    for (size_t l = 0; l < L; ++l) {
        MC_CHECK(zetas[l] >= 0 && zetas[l] < 1, "zeta must be in [0, 1), got " << zetas[l] << " for layer " << l);
        MC_CHECK(l == 0 || layers[l]->n_in == layers[l - 1]->n_out,
                 "layer " << l << " has " << layers[l]->n_in << " inputs, layer " << l - 1 << " has "
                          << layers[l - 1]->n_out << " outputs");
    }
    std::vector<ChtStats> stats(L);
    KeepMasks keep(L);
    std::vector<float> threshold(L, 0.f);
    remove_by_magnitude(layers, zetas, cfg.sign_removal, keep, threshold, stats);
    if (cfg.chain_removal && L >= 2) remove_chains(layers, zetas, keep, stats);
    for (size_t l = 0; l < L; ++l) {
        if (zetas[l] <= 0 || stats[l].removed + stats[l].cr_removed == 0) continue;
        const std::vector<uint64_t> fresh = regrowth_positions(*layers[l], keep[l], seeds[l], cfg, num_threads, stats[l]);
        // compact to the kept blocks, then grow the new positions: fresh, or (cfg.restore) a position
        // removed in this step with its old value and optimizer state (Layer::grow_at's record)
        Layer& ly = *layers[l];
        stats[l].restored = count_regrown_removed(ly, keep[l], fresh);
        ly.keep_where(keep[l].data());
        if (!cfg.restore) ly.clear_removed();
        ly.grow_at(fresh.data(), static_cast<int64_t>(fresh.size()), cfg.init, hash4(seeds[l], 0x494e4954ULL, 0, 0),
                   threshold[l]);
    }
    return stats;
}

}  // namespace motifcore
