// C++ unit tests of the engine (no framework): built with -DMOTIFCORE_BUILD_TESTS=ON, run by ctest.
// EXPECT works in Release builds too (assert() would be compiled out by NDEBUG).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "expect.hpp"
#include "kernels.hpp"
#include "layer.hpp"
#include "network.hpp"
#include "parallel.hpp"
#include "pattern.hpp"

namespace {

using motifcore_test::g_failures;
using motifcore_test::throws;

using motifcore::Layer;
using motifcore::LayerConfig;

LayerConfig config(int64_t n_in, int64_t n_out, int64_t m_in, int64_t m_out, double density, uint64_t seed) {
    return LayerConfig{n_in, n_out, m_in, m_out, density, /*epsilon=*/0.0, motifcore::BiasMode::Neuron,
                       motifcore::Activation::Linear, seed, /*input_copies=*/1};
}

bool rows_sorted_unique(const Layer& l) {
    for (int64_t r = 0; r < l.G_out; ++r)
        for (int64_t p = l.pattern().indptr()[r] + 1; p < l.pattern().indptr()[r + 1]; ++p)
            if (l.pattern().indices()[p - 1] >= l.pattern().indices()[p]) return false;
    return true;
}

void test_sample_positions() {
    motifcore::Rng rng(7);
    for (uint64_t n : {0u, 1u, 10u, 450u, 900u}) {          // sparse and dense (selection sampling) cases
        auto taken = [](uint64_t pos) { return pos % 10 == 3; };
        const auto pos = motifcore::sample_positions(1000, n, 100, rng, taken);
        EXPECT(pos.size() == n);
        EXPECT(std::is_sorted(pos.begin(), pos.end()));
        EXPECT(std::adjacent_find(pos.begin(), pos.end()) == pos.end());
        EXPECT(std::none_of(pos.begin(), pos.end(), taken));
    }
    EXPECT(throws<std::invalid_argument>(
        [&] { motifcore::sample_positions(10, 11, 0, rng, [](uint64_t) { return false; }); }));
}

void test_er_pattern_and_transpose() {
    const LayerConfig c = config(111, 74, 3, 2, 0.2, 3);     // a 37 x 37 block grid
    Layer l(c);
    EXPECT(l.G_in == 37 && l.G_out == 37);
    EXPECT(l.n_blocks() == motifcore::target_blocks(c) && l.n_blocks() == std::llround(0.2 * 37 * 37));
    EXPECT(l.pattern().indptr().back() == l.n_blocks() && rows_sorted_unique(l));
    // the transposed index is built lazily: stale (its accessors throw) until needed
    EXPECT(!l.pattern().transposed_current() && throws<std::logic_error>([&] { l.pattern().t_rows(); }));
    l.ensure_transposed();
    EXPECT(l.pattern().transposed_current() && l.pattern().t_indptr().back() == l.n_blocks());
    for (int64_t col = 0; col < l.G_in; ++col)
        for (int64_t q = l.pattern().t_indptr()[col]; q < l.pattern().t_indptr()[col + 1]; ++q) {
            EXPECT(l.pattern().indices()[l.pattern().t_pos()[q]] == col);                                  // entry q sits in column col
            EXPECT(l.pattern().t_pos()[q] >= l.pattern().indptr()[l.pattern().t_rows()[q]] && l.pattern().t_pos()[q] < l.pattern().indptr()[l.pattern().t_rows()[q] + 1]);  // in row t_rows[q]
        }
    Layer twin(c);
    EXPECT(twin.pattern().indices() == l.pattern().indices() && twin.weights() == l.weights());        // deterministic for a seed
}

// The transposed index against an independent construction: entry positions stably sorted by
// column (so row order within a column), rows read off indptr, column starts from counts.
void expect_transpose_matches_stable_sort(Layer& l, int threads = 1) {
    l.ensure_transposed(threads);
    const int64_t nnz = l.n_blocks();
    std::vector<int64_t> order(nnz), row_of(nnz);
    for (int64_t p = 0; p < nnz; ++p) order[p] = p;
    for (int64_t r = 0; r < l.G_out; ++r)
        for (int64_t p = l.pattern().indptr()[r]; p < l.pattern().indptr()[r + 1]; ++p) row_of[p] = r;
    // The inverse positions (a copy of the pattern builds them, on the same thread count).
    motifcore::BlockPattern inv_pat = l.pattern();
    EXPECT(throws<std::logic_error>([&] { inv_pat.t_inv(); }) || inv_pat.t_inv().size() == static_cast<size_t>(nnz));
    inv_pat.reindex_inverse(threads);
    bool inverse_ok = static_cast<int64_t>(inv_pat.t_inv().size()) == nnz;
    for (int64_t q = 0; inverse_ok && q < nnz; ++q) inverse_ok = inv_pat.t_inv()[inv_pat.t_pos()[q]] == q;
    EXPECT(inverse_ok);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return l.pattern().indices()[a] < l.pattern().indices()[b]; });
    std::vector<int64_t> starts(l.G_in + 1, 0);
    for (int64_t p = 0; p < nnz; ++p) ++starts[l.pattern().indices()[p] + 1];
    for (int64_t c = 0; c < l.G_in; ++c) starts[c + 1] += starts[c];
    EXPECT(l.pattern().t_indptr() == starts);
    const auto& t_pos = l.pattern().t_pos();   // int32 positions
    EXPECT(std::equal(t_pos.begin(), t_pos.end(), order.begin(), order.end()));
    bool rows_ok = static_cast<int64_t>(l.pattern().t_rows().size()) == nnz;
    for (int64_t q = 0; rows_ok && q < nnz; ++q) rows_ok = l.pattern().t_rows()[q] == row_of[order[q]];
    EXPECT(rows_ok);
}

void test_transpose_matches_stable_sort() {
    // Widths on both sides of one column bucket (1024 columns), non-power-of-two last buckets,
    // a single column, and sparse layers with empty rows and columns.
    const int64_t shapes[][2] = {{1, 1}, {1, 40}, {37, 5}, {1023, 17}, {1024, 9}, {1025, 33}, {3000, 70}, {5003, 211}};
    uint64_t seed = 11;
    for (const auto& s : shapes)
        for (double density : {0.002, 0.05, 0.5}) {
            const double d = std::min(1.0, std::max(density, 1.0 / static_cast<double>(s[0] * s[1])));
            Layer l(config(s[0], s[1], 1, 1, d, ++seed));
            expect_transpose_matches_stable_sort(l);
        }
    Layer l(config(2500, 300, 1, 1, 0.02, 5));
    l.prune_smallest(l.n_blocks() / 3);  // after evolution primitives too
    EXPECT(!l.pattern().transposed_current());   // freed by the change, built again on demand
    expect_transpose_matches_stable_sort(l);
    l.grow_random(l.n_blocks() / 4, 3, motifcore::RegrowInit::Zero);
    expect_transpose_matches_stable_sort(l);
    // Large enough (>= 2^16 blocks) for the parallel rebuild: row ranges in pass 1, buckets in pass 2.
    for (int threads : {2, 3}) {
        Layer big(config(4000, 3001, 1, 1, 0.01, 17));
        EXPECT(big.n_blocks() >= (int64_t(1) << 16));
        expect_transpose_matches_stable_sort(big, threads);
        big.prune_smallest(big.n_blocks() / 3);
        expect_transpose_matches_stable_sort(big, threads);
    }
}

void test_forward_matches_dense() {
    Layer l(config(11, 7, 3, 2, 0.5, 5));                    // residual motifs on both sides
    const int64_t B = 4;
    std::vector<float> x(B * l.n_in), out(B * l.n_out), W(l.n_out * l.n_in);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * static_cast<float>(i));
    const motifcore::FloatSpan bias = l.params_in_place().b;
    for (int64_t i = 0; i < bias.size; ++i) bias[i] = 0.01f * static_cast<float>(i);
    l.forward_rowmajor(x.data(), B, out.data(), 2);
    l.to_dense(W.data());
    for (int64_t s = 0; s < B; ++s)
        for (int64_t i = 0; i < l.n_out; ++i) {
            double ref = l.bias()[i];
            for (int64_t j = 0; j < l.n_in; ++j) ref += static_cast<double>(W[i * l.n_in + j]) * x[s * l.n_in + j];
            EXPECT(std::fabs(out[s * l.n_out + i] - ref) < 1e-5);
        }
}

void test_sgd_and_adam_steps() {
    Layer l(config(20, 10, 1, 1, 0.5, 1));
    const motifcore::FloatSpan dK = l.params_in_place().dK;
    for (int64_t p = 0; p < dK.size; ++p) dK[p] = 0.1f * static_cast<float>(p % 7) - 0.3f;
    const auto K0 = l.weights(), g = l.grad_weights();
    l.sgd_step(0.1f, 0.9f, 0.01f, 1);                         // v = g + wd*w (v was 0); w -= lr*v
    for (size_t p = 0; p < K0.size(); ++p) EXPECT(std::fabs(l.weights()[p] - (K0[p] - 0.1f * (g[p] + 0.01f * K0[p]))) < 1e-6);
    motifcore::OptimConfig c;
    c.kind = motifcore::Optimizer::Adam;
    c.lr = 0.01f;
    c.weight_decay = 0.f;
    Layer a(config(20, 10, 1, 1, 0.5, 1));
    std::copy(g.begin(), g.end(), a.params_in_place().dK.begin());
    const auto A0 = a.weights();
    a.optimizer_step(c, 1);                                   // first Adam step moves each weight by ~lr*sign(g)
    for (size_t p = 0; p < A0.size(); ++p)
        if (std::fabs(g[p]) > 1e-3f) EXPECT(std::fabs((A0[p] - a.weights()[p]) - 0.01f * (g[p] > 0 ? 1.f : -1.f)) < 1e-4);
    EXPECT(l.grad_sq_norm(1) == l.grad_sq_norm(4));           // fixed chunks: thread-count independent
}

void test_prune_regrow() {
    Layer l(config(64, 48, 2, 2, 0.3, 9));
    const int64_t nb = l.n_blocks();
    std::vector<float> mags(l.weights().size());
    for (size_t p = 0; p < mags.size(); ++p) mags[p] = std::fabs(l.weights()[p]);
    std::sort(mags.begin(), mags.end());
    Layer twin = l;
    const auto stats = l.prune_regrow(0.25, 42, motifcore::RegrowInit::Zero);
    EXPECT(stats.removed == std::llround(0.25 * nb));
    EXPECT(stats.threshold == mags[stats.removed - 1]);       // the k smallest |K| were pruned
    EXPECT(l.n_blocks() == nb && rows_sorted_unique(l));
    EXPECT(std::count(l.weights().begin(), l.weights().end(), 0.f) >= stats.removed);  // regrown at zero
    twin.prune_regrow(0.25, 42, motifcore::RegrowInit::Zero);
    EXPECT(twin.pattern().indices() == l.pattern().indices() && twin.pattern().indptr() == l.pattern().indptr());      // deterministic for a seed
}

void test_prune_grow_primitives() {
    Layer l(config(40, 30, 1, 1, 0.3, 5));
    const int64_t nb = l.n_blocks();
    std::vector<float> vk(static_cast<size_t>(nb));
    for (size_t p = 0; p < vk.size(); ++p) vk[p] = 0.001f * static_cast<float>(p);
    l.set_state(l.pattern().indptr(), l.pattern().indices(), l.weights(), l.bias(), vk, {});
    EXPECT(l.optimizer_state().weight_velocity() == vk);
    EXPECT(l.prune_smallest(10) == 10 && l.n_blocks() == nb - 10 && l.last_removed().size() == 10);
    EXPECT(l.optimizer_state().weight_velocity().size() == static_cast<size_t>(nb - 10));
    // re-activating the removed positions restores their weights and momentum exactly
    const auto pos = l.last_removed();
    const auto oldK = l.last_removed_weights(), oldV = l.optimizer_state().removed_velocity();
    EXPECT(oldV.size() == 10);
    EXPECT(l.grow_at(pos.data(), static_cast<int64_t>(pos.size()), motifcore::RegrowInit::Zero) == 10);
    EXPECT(l.n_blocks() == nb && rows_sorted_unique(l));
    for (size_t i = 0; i < pos.size(); ++i) {
        const int64_t r = static_cast<int64_t>(pos[i] / l.G_in);
        const int32_t c = static_cast<int32_t>(pos[i] % l.G_in);
        const auto it = std::lower_bound(l.pattern().indices().begin() + l.pattern().indptr()[r], l.pattern().indices().begin() + l.pattern().indptr()[r + 1], c);
        const auto p = it - l.pattern().indices().begin();
        EXPECT(l.weights()[p] == oldK[i] && l.optimizer_state().weight_velocity()[p] == oldV[i]);
    }
    // growth at random never lands on a just-removed position
    l.prune_below(1e9f, 5);
    EXPECT(l.n_blocks() == 5);
    const auto removed = l.last_removed();
    l.grow_random(200, 3, motifcore::RegrowInit::Zero);
    for (int64_t r = 0; r < l.G_out; ++r)
        for (int64_t p = l.pattern().indptr()[r]; p < l.pattern().indptr()[r + 1]; ++p) {
            const uint64_t q = static_cast<uint64_t>(r * l.G_in + l.pattern().indices()[p]);
            EXPECT(!std::binary_search(removed.begin(), removed.end(), q));
        }
    // top-k: the same selection and scores on 1 and 2 threads
    const int64_t B = 5, ld = motifcore::panel_ld(B);
    std::vector<float> dU(static_cast<size_t>(l.G_out * ld)), S(static_cast<size_t>(l.G_in * ld));
    for (size_t i = 0; i < dU.size(); ++i) dU[i] = std::sin(0.37f * static_cast<float>(i));
    for (size_t i = 0; i < S.size(); ++i) S[i] = std::cos(0.11f * static_cast<float>(i));
    std::vector<uint8_t> kept(static_cast<size_t>(l.n_blocks()), 1);
    motifcore::TopkConfig cfg;
    const auto a = l.block_grad_topk(dU.data(), S.data(), B, ld, kept.data(), 50, cfg, 1);
    const auto b = l.block_grad_topk(dU.data(), S.data(), B, ld, kept.data(), 50, cfg, 2);
    EXPECT(a.positions.size() == 50 && a.positions == b.positions && a.scores == b.scores);
}

// The optimizer state follows the pattern: a compaction keeps each surviving block's momentum and
// Adam second moment, in order, and records the removed ones; growing a removed position back
// restores them, a new position starts at zero; the biases' state does not move.
void test_optimizer_state_follows_pattern() {
    Layer l(config(40, 30, 1, 1, 0.3, 5));
    const int64_t nb = l.n_blocks();
    const motifcore::ParamSpans in_place = l.params_in_place();
    for (int64_t p = 0; p < in_place.dK.size; ++p) in_place.dK[p] = 0.01f * static_cast<float>(p % 13) - 0.05f;
    for (int64_t i = 0; i < in_place.db.size; ++i) in_place.db[i] = 0.02f * static_cast<float>(i % 5);
    motifcore::OptimConfig c;
    c.kind = motifcore::Optimizer::Adam;
    l.optimizer_step(c, 1);
    const motifcore::OptimizerState before = l.optimizer_state();
    const std::vector<int64_t> indptr = l.pattern().indptr();
    const std::vector<int32_t> indices = l.pattern().indices();
    EXPECT(before.has_second_moments() && before.weight_sq().size() == static_cast<size_t>(nb));
    std::vector<uint8_t> keep(static_cast<size_t>(nb), 1);
    for (int64_t p = 0; p < nb; p += 3) keep[p] = 0;
    const int64_t removed = l.keep_where(keep.data());
    const motifcore::OptimizerState& st = l.optimizer_state();
    size_t q = 0, k = 0;
    bool moved = true;
    for (int64_t p = 0; p < nb; ++p) {
        const auto& v = keep[p] ? st.weight_velocity() : st.removed_velocity();
        const auto& s2 = keep[p] ? st.weight_sq() : st.removed_sq();
        const size_t i = keep[p] ? q++ : k++;
        moved = moved && v[i] == before.weight_velocity()[p] && s2[i] == before.weight_sq()[p];
    }
    EXPECT(moved && q == st.weight_velocity().size() && q == st.weight_sq().size());
    EXPECT(static_cast<int64_t>(k) == removed && st.removed_sq().size() == k);
    EXPECT(st.bias_velocity() == before.bias_velocity() && st.bias_sq() == before.bias_sq());
    // Grow the removed positions back, and one position that was never active.
    std::vector<uint64_t> grow = l.last_removed();
    uint64_t fresh = 0;
    auto was_active = [&](uint64_t pos) {
        const int64_t r = static_cast<int64_t>(pos / l.G_in);
        return std::binary_search(indices.begin() + indptr[r], indices.begin() + indptr[r + 1],
                                  static_cast<int32_t>(pos % l.G_in));
    };
    while (was_active(fresh)) ++fresh;
    grow.insert(std::lower_bound(grow.begin(), grow.end(), fresh), fresh);
    EXPECT(l.grow_at(grow.data(), static_cast<int64_t>(grow.size()), motifcore::RegrowInit::Zero) == removed + 1);
    EXPECT(st.removed_velocity().empty() && st.removed_sq().empty());   // the record is used up
    bool restored = st.weight_velocity().size() == static_cast<size_t>(nb + 1);
    for (int64_t r = 0; restored && r < l.G_out; ++r)
        for (int64_t p = l.pattern().indptr()[r]; p < l.pattern().indptr()[r + 1]; ++p) {
            const uint64_t pos = static_cast<uint64_t>(r * l.G_in + l.pattern().indices()[p]);
            if (pos == fresh) {
                restored = restored && st.weight_velocity()[p] == 0.f && st.weight_sq()[p] == 0.f;
                continue;
            }
            const auto old = std::lower_bound(indices.begin() + indptr[r], indices.begin() + indptr[r + 1],
                                              l.pattern().indices()[p]) - indices.begin();
            restored = restored && st.weight_velocity()[p] == before.weight_velocity()[old] &&
                       st.weight_sq()[p] == before.weight_sq()[old];
        }
    EXPECT(restored);
    // A checkpoint's state: sizes checked by the constructor, values by check_values.
    EXPECT(throws<std::invalid_argument>([] { motifcore::OptimizerState(3, 2, {1.f, 2.f}, {}, {}, {}); }));
    EXPECT(throws<std::invalid_argument>([] { motifcore::OptimizerState(1, 1, {}, {}, {0.f}, {}); }));
    EXPECT(throws<std::invalid_argument>([] { motifcore::OptimizerState(1, 1, {}, {}, {-1.f}, {0.f}).check_values(); }));
    const motifcore::OptimizerState zero(2, 1, {}, {}, {}, {});
    EXPECT(zero.weight_velocity() == std::vector<float>(2, 0.f) && !zero.has_second_moments());
}

void test_checks_throw() {
    EXPECT(throws<std::invalid_argument>([] { motifcore::target_blocks(config(10, 10, 0, 1, 0.1, 0)); }));
    EXPECT(throws<std::invalid_argument>([] { motifcore::target_blocks(config(10, 10, 1, 0, 0.1, 0)); }));
    EXPECT(throws<std::invalid_argument>([] { Layer(config(10, 10, 1, 1, 1.5, 0)); }));
    Layer l(config(8, 8, 1, 1, 0.5, 0));
    auto idx = l.pattern().indices();
    std::reverse(idx.begin(), idx.end());
    EXPECT(throws<std::invalid_argument>([&] { l.set_state(l.pattern().indptr(), idx, l.weights(), l.bias(), {}, {}); }));
}

// Runs parallel_for over [0, n) and returns whether every index was visited exactly once.
bool covers_once(int64_t n, int64_t grain, int threads) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    motifcore::parallel_for(n, grain, threads, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
    return std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h.load() == 1; });
}

void test_pool_covers_each_index_once() {
    for (int64_t n : {0, 1, 5, 1000, 100003})
        for (int64_t grain : {1, 7, 1000, 200000})
            for (int threads : {1, 2, 3, 8}) EXPECT(covers_once(n, grain, threads));
    // Fixed chunks summed in chunk order: the same bits for every thread count.
    const int64_t n = 100000, grain = 333, chunks = (n + grain - 1) / grain;
    auto chunked_sum = [&](int threads) {
        std::vector<double> part(static_cast<size_t>(chunks), 0.0);
        motifcore::parallel_for(chunks, 1, threads, [&](int64_t c) {
            for (int64_t i = c * grain; i < std::min(n, (c + 1) * grain); ++i) part[c] += 1.0 / (1.0 + static_cast<double>(i));
        });
        double total = 0.0;
        for (double v : part) total += v;
        return total;
    };
    const double t1 = chunked_sum(1);
    EXPECT(chunked_sum(2) == t1 && chunked_sum(3) == t1);
}

void test_pool_nested_calls_run_inline() {
    const int64_t outer = 64, inner = 100;
    std::vector<std::atomic<int>> hits(static_cast<size_t>(outer * inner));
    motifcore::parallel_for(outer, 1, 2, [&](int64_t i) {
        motifcore::parallel_for(inner, 10, 2, [&](int64_t j) { hits[static_cast<size_t>(i * inner + j)].fetch_add(1); });
    });
    EXPECT(std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h.load() == 1; }));
}

void test_pool_concurrent_submitters() {
    // Several threads submit at once (one gets the pool, the others run inline), many short jobs
    // back to back: every job still visits each index exactly once, and nothing deadlocks.
    std::atomic<int> bad{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t)
        callers.emplace_back([&bad, t] {
            for (int k = 0; k < 300; ++k)
                if (!covers_once(k % 3 == 0 ? 10000 : 4, k % 3 == 0 ? 64 : 1, 2 + t % 2)) bad.fetch_add(1);
        });
    for (auto& c : callers) c.join();
    EXPECT(bad.load() == 0);
}

void test_pool_exceptions_and_shutdown() {
    std::string what;
    try {
        motifcore::parallel_for(10000, 16, 2, [](int64_t i) {
            if (i == 5000) throw std::invalid_argument("chunk failed at 5000");
        });
    } catch (const std::invalid_argument& e) {
        what = e.what();
    }
    EXPECT(what == "chunk failed at 5000");
    EXPECT(throws<std::runtime_error>([] {           // thrown inside a nested (inline) call
        motifcore::parallel_for(100, 1, 2, [](int64_t i) {
            motifcore::parallel_for(10, 1, 2, [i](int64_t j) {
                if (i == 50 && j == 3) throw std::runtime_error("nested");
            });
        });
    }));
    EXPECT(covers_once(10000, 16, 2));                // the pool still works after an exception
    motifcore::pool_shutdown();
    EXPECT(motifcore::pool_workers() == 0);
    const int64_t full0 = motifcore::pool_counts().full;
    EXPECT(covers_once(10000, 16, 2));                // and restarts workers on demand (a reduced
    EXPECT(motifcore::pool_workers() == (motifcore::pool_counts().full > full0 ? 1 : 0));  // team: none)
    motifcore::pool_shutdown();
    EXPECT(motifcore::pool_workers() == 0);
}

// Runs `chunks` chunks of about 20 us each; a chunk run by a pool worker while `slow_workers` holds
// also sleeps 1 ms, as if the worker had been descheduled while holding it. Returns whether every
// chunk ran exactly once.
bool region_with_slow_workers(int64_t chunks, bool slow_workers) {
    const auto caller = std::this_thread::get_id();
    std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
    motifcore::parallel_for(chunks, 1, 2, [&](int64_t c) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
        while (std::chrono::steady_clock::now() < until) {
        }
        if (slow_workers && std::this_thread::get_id() != caller) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        hits[static_cast<size_t>(c)].fetch_add(1);
    });
    return std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h.load() == 1; });
}

void test_pool_runs_fewer_threads_while_workers_stall() {
    if (motifcore::usable_threads(2) < 2) return;  // one CPU: every region runs inline anyway
    // Workers that hold their chunks for 1 ms make every 2-thread region wait for them: the pool
    // tries, and keeps, one thread (the reduced team) ...
    const int64_t reduced0 = motifcore::pool_counts().reduced;
    bool each_once = true;
    for (int k = 0; k < 4000 && motifcore::pool_counts().reduced < reduced0 + 200; ++k)
        each_once = region_with_slow_workers(64, true) && each_once;
    EXPECT(each_once);
    EXPECT(motifcore::pool_counts().reduced >= reduced0 + 200);
    // ... where errors, nested calls and fixed-chunk sums behave as with the full team ...
    EXPECT(throws<std::runtime_error>([] {
        motifcore::parallel_for(1000, 10, 2, [](int64_t i) {
            if (i == 500) throw std::runtime_error("chunk failed");
        });
    }));
    std::vector<std::atomic<int>> hits(64 * 100);
    motifcore::parallel_for(64, 1, 2, [&](int64_t i) {
        motifcore::parallel_for(100, 10, 2, [&](int64_t j) { hits[static_cast<size_t>(i * 100 + j)].fetch_add(1); });
    });
    EXPECT(std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h.load() == 1; }));
    // ... and once the workers keep up again, a probe brings the full team back.
    const int64_t full0 = motifcore::pool_counts().full;
    for (int k = 0; k < 4000 && motifcore::pool_counts().full < full0 + 200; ++k)
        each_once = region_with_slow_workers(64, false) && each_once;
    EXPECT(each_once);
    EXPECT(motifcore::pool_counts().full >= full0 + 200);
}

// The team choice belongs to a model: stalls under model a's choice bring a's regions to the
// reduced team, while model b's regions keep the full team, and a's choice stays its own.
void test_pool_team_choice_is_per_model() {
    if (motifcore::usable_threads(2) < 2) return;  // one CPU: every region runs inline anyway
    const motifcore::TeamChoice a, b;
    bool each_once = true;
    {
        const motifcore::TeamScope in_a(&a);
        const int64_t reduced0 = motifcore::pool_counts().reduced;
        for (int k = 0; k < 4000 && motifcore::pool_counts().reduced < reduced0 + 100; ++k)
            each_once = region_with_slow_workers(64, true) && each_once;
        EXPECT(motifcore::pool_counts().reduced >= reduced0 + 100);
    }
    {
        // Fewer regions than a phase: b's first phase runs the full team, stalls or not.
        const motifcore::TeamScope in_b(&b);
        const motifcore::PoolCounts before = motifcore::pool_counts();
        for (int k = 0; k < 50; ++k) each_once = region_with_slow_workers(64, true) && each_once;
        EXPECT(motifcore::pool_counts().full == before.full + 50 && motifcore::pool_counts().reduced == before.reduced);
    }
    {
        const motifcore::TeamScope in_a(&a);
        const int64_t reduced0 = motifcore::pool_counts().reduced;
        each_once = region_with_slow_workers(64, true) && each_once;
        EXPECT(motifcore::pool_counts().reduced == reduced0 + 1);
    }
    EXPECT(each_once);
}

void test_state_pool() {
    // Every index's contribution lands in exactly one leased object; objects are reused, so a
    // parallel loop makes at most one per thread and an inline loop exactly one.
    for (int threads : {1, 3}) {
        motifcore::StatePool<std::vector<int64_t>> pool([] { return std::vector<int64_t>(); });
        motifcore::parallel_for(10000, 7, threads, [&](int64_t i) { pool.lease()->push_back(i); });
        int objects = 0;
        std::vector<int64_t> all;
        pool.for_each([&](std::vector<int64_t>& v) {
            ++objects;
            all.insert(all.end(), v.begin(), v.end());
        });
        std::sort(all.begin(), all.end());
        bool each_once = all.size() == 10000;
        for (size_t i = 0; i < all.size() && each_once; ++i) each_once = all[i] == static_cast<int64_t>(i);
        EXPECT(each_once);
        EXPECT(objects >= 1 && objects <= threads);
    }
}

}  // namespace

void test_kd_loss() {
    // One linear 2 -> 2 layer with zero weights and biases: on x = 0 the logits are [0, 0].
    // Teacher logits [ln 3, 0], y = 0, T = 2, lambda = 0.5: loss 0.419255, dL/dz = [-0.383975, 0.383975].
    auto layer = std::make_shared<Layer>(config(2, 2, 1, 1, 1.0, 0));
    const motifcore::FloatSpan K = layer->params_in_place().K;
    std::fill(K.begin(), K.end(), 0.f);
    motifcore::Network net({layer}, 1);
    const float x[2] = {0.f, 0.f}, teacher[2] = {std::log(3.f), 0.f};
    const int64_t y[1] = {0};
    motifcore::TrainConfig cfg;
    cfg.optim.weight_decay = 0.f;
    motifcore::LossConfig kd;
    kd.teacher = teacher;
    kd.temperature = 2.f;
    kd.lambda = 0.5f;
    const double loss = net.train_step(x, y, 1, 0.f, cfg, kd);
    EXPECT(std::fabs(loss - 0.419255) < 1e-5);
    EXPECT(std::fabs(layer->grad_bias()[0] + 0.383975f) < 1e-5 && std::fabs(layer->grad_bias()[1] - 0.383975f) < 1e-5);
    kd.lambda = 0.f;                                          // lambda = 0: cross-entropy, ln 2
    EXPECT(std::fabs(net.train_step(x, y, 1, 0.f, cfg, kd) - std::log(2.0)) < 1e-12);
    kd.lambda = 2.f;
    EXPECT(throws<std::invalid_argument>([&] { net.train_step(x, y, 1, 0.f, cfg, kd); }));
}

void test_codebook_step() {
    // Codes [0, 1, 0, 1], dK = [1, 2, 3, 4]: centroid gradients [4, 6]; SGD lr 0.1, no momentum.
    Layer l(config(2, 2, 1, 1, 1.0, 0));
    l.set_codebook({0, 1, 0, 1}, {1.f, 2.f});
    EXPECT(l.weights() == std::vector<float>({1.f, 2.f, 1.f, 2.f}));
    const std::vector<float> grad{1.f, 2.f, 3.f, 4.f};
    std::copy(grad.begin(), grad.end(), l.params_in_place().dK.begin());
    motifcore::OptimConfig c;
    c.lr = 0.1f;
    c.momentum = 0.f;
    c.weight_decay = 0.f;
    l.optimizer_step(c, 2);
    EXPECT(l.codebook().grad() == std::vector<float>({4.f, 6.f}));
    EXPECT(std::fabs(l.codebook().centroids()[0] - 0.6f) < 1e-6 && std::fabs(l.codebook().centroids()[1] - 1.4f) < 1e-6);
    EXPECT(l.weights()[0] == l.codebook().centroids()[0] && l.weights()[3] == l.codebook().centroids()[1]);
    EXPECT(throws<std::invalid_argument>([&] { l.set_codebook({0, 3, 0, 1}, {1.f, 2.f}); }));
}

// rows_to_panel / panel_to_rows against plain loops: gathered rows, widths and batches that are
// not multiples of the 4 x 4 blocks or the 16 x 256 tiles, the non-finite count (only the copied
// rows count), and the group expansion of panel_to_rows, at 1 and 2 threads.
void test_layout_transposes() {
    const int64_t N = 40, d = 301;
    std::vector<float> X(N * d);
    for (int64_t i = 0; i < N * d; ++i) X[i] = static_cast<float>(i % 1009) - 500.f;
    for (int nt : {1, 2})
        for (int64_t B : {1, 3, 17, 33}) {
            std::vector<int64_t> rows(B);
            for (int64_t s = 0; s < B; ++s) rows[s] = (s * 7 + 3) % N;
            const int64_t ld = motifcore::panel_ld(B);
            std::vector<float> panel(d * ld, -1.f);
            EXPECT(motifcore::rows_to_panel(X.data(), d, rows.data(), B, panel.data(), ld, nt, true) == 0);
            bool same = true;
            for (int64_t j = 0; j < d; ++j)
                for (int64_t s = 0; s < B; ++s) same &= panel[j * ld + s] == X[rows[s] * d + j];
            EXPECT(same);
            for (int64_t group : {1, 3}) {
                const int64_t n = group == 1 ? d : 3 * d - 2;  // last group residual
                std::vector<float> out(B * n, 0.f);
                motifcore::panel_to_rows(panel.data(), ld, n, group, B, out.data(), nt);
                bool ok = true;
                for (int64_t s = 0; s < B; ++s)
                    for (int64_t j = 0; j < n; ++j) ok &= out[s * n + j] == panel[(j / group) * ld + s];
                EXPECT(ok);
            }
            std::vector<float> Y = X;
            Y[rows[B - 1] * d + d - 1] = std::nanf("");
            Y[rows[0] * d + 0] = -INFINITY;
            Y[1 * d + 5] = INFINITY;  // row 1 is copied for some batch sizes only
            int64_t expected = 0;
            for (int64_t s = 0; s < B; ++s)
                for (int64_t j = 0; j < d; ++j) expected += !std::isfinite(Y[rows[s] * d + j]);
            EXPECT(expected >= 1);
            EXPECT(motifcore::rows_to_panel(Y.data(), d, rows.data(), B, panel.data(), ld, nt, true) == expected);
            EXPECT(motifcore::rows_to_panel(Y.data(), d, rows.data(), B, panel.data(), ld, nt, false) == 0);
        }
}

// panel_to_rows's count of non-finite values on every SIMD level this CPU runs, at 1 and 2 threads
// (520 x 128 is large enough for two): one infinity or NaN at the corners of the 8 x 8 blocks
// (which check the registers they load), in the samples and features they leave over (a last
// sample tile of 4 or 12, 44 or 263 features), and behind grouped rows (group 3: no blocks). The
// count matches a brute-force count of the rows, and the rows match a naive transpose.
void test_panel_to_rows_counts_nonfinite() {
    struct Shape { int64_t rows, B; };
    const Shape shapes[] = {{44, 12}, {44, 20}, {44, 28}, {263, 9}, {520, 128}, {6, 5}};
    for (const char* level : {"generic", "avx2", "avx512"}) {
        try {
            motifcore::set_simd_level(level);
        } catch (const std::invalid_argument&) {
            continue;  // not compiled or not on this CPU
        }
        for (const Shape& sh : shapes)
            for (int64_t group : {1, 3}) {
                const int64_t n = group == 1 ? sh.rows : group * sh.rows - 1;   // a residual last group
                const int64_t B = sh.B, ld = motifcore::panel_ld(B);
                std::vector<float> panel(sh.rows * ld);
                for (size_t i = 0; i < panel.size(); ++i) panel[i] = static_cast<float>(i % 1009) - 500.f;
                const int64_t ss[] = {0, std::min<int64_t>(7, B - 1), std::min<int64_t>(8, B - 1), B / 2, B - 1};
                const int64_t rs[] = {0, std::min<int64_t>(7, sh.rows - 1), std::min<int64_t>(8, sh.rows - 1),
                                      sh.rows / 2, sh.rows - 1};
                int k = 0;
                for (int64_t s : ss)
                    for (int64_t r : rs)
                        for (int nt : {1, 2}) {
                            std::vector<float> p = panel, out(B * n, 0.f);
                            p[r * ld + s] = (k++ % 2) ? std::nanf("") : -INFINITY;
                            const int64_t got = motifcore::panel_to_rows(p.data(), ld, n, group, B, out.data(), nt,
                                                                         true, nt == 2);
                            int64_t expected = 0;
                            bool same = true;
                            for (int64_t t = 0; t < B; ++t)
                                for (int64_t j = 0; j < n; ++j) {
                                    const float v = p[(j / group) * ld + t], o = out[t * n + j];
                                    expected += !std::isfinite(v);
                                    same &= std::isnan(v) ? std::isnan(o) : o == v;
                                }
                            EXPECT(expected >= 1);
                            EXPECT(got == expected);
                            EXPECT(same);
                            EXPECT(motifcore::panel_to_rows(p.data(), ld, n, group, B, out.data(), nt, false) == 0);
                        }
                std::vector<float> out(B * n);
                EXPECT(motifcore::panel_to_rows(panel.data(), ld, n, group, B, out.data(), 2, true) == 0);
            }
    }
    motifcore::set_simd_level("auto");
}

// KernelTable::gemm (the dense path) on every SIMD level this CPU runs: the three operand layouts
// of a layer (forward K S, weight gradient dU S^T, input gradient K^T dU) at sizes that cross every
// block boundary (MC = 96, KC = 256, NC = 512) and leave edge tiles, against a double reference
// within the summation bound K * 2^-23 * sum |a| |b|; 1 and 2 threads bitwise equal; and a column
// of C bitwise the same when computed alone (a sample does not depend on the batch around it).
void test_dense_gemm() {
    struct Case { int64_t M, N, K; bool transposed_a, transposed_b; };
    const Case cases[] = {{100, 130, 300, false, false}, {7, 1, 5, false, false}, {97, 600, 130, false, true},
                          {300, 3, 101, true, false}, {13, 17, 513, true, false}};
    for (const char* level : {"generic", "avx2", "avx512"}) {
        try {
            motifcore::set_simd_level(level);
        } catch (const std::invalid_argument&) {
            continue;  // not compiled or not on this CPU
        }
        const motifcore::KernelTable& t = motifcore::kernels();
        for (const Case& c : cases) {
            // A is M x K (row-major, or stored K x M when transposed_a); B is K x N in a panel
            // (rows ld apart), or stored as the N x K panel when transposed_b.
            const int64_t lda = c.transposed_a ? c.M : c.K;
            const int64_t b_rows = c.transposed_b ? c.N : c.K, b_cols = c.transposed_b ? c.K : c.N;
            const int64_t ldb = motifcore::panel_ld(b_cols), ldc = motifcore::panel_ld(c.N);
            std::vector<float> a(c.M * c.K), b(b_rows * ldb, 0.f), c1(c.M * ldc, -1.f), c2(c.M * ldc, -2.f);
            for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.37f * static_cast<float>(i) + 0.1f);
            for (int64_t r = 0; r < b_rows; ++r)
                for (int64_t j = 0; j < b_cols; ++j) b[r * ldb + j] = std::cos(0.23f * static_cast<float>(r * b_cols + j));
            const int64_t a_rs = c.transposed_a ? 1 : lda, a_cs = c.transposed_a ? lda : 1;
            const int64_t b_rs = c.transposed_b ? 1 : ldb, b_cs = c.transposed_b ? ldb : 1;
            std::vector<float> pack(static_cast<size_t>(t.gemm_pack_floats(c.K, c.N, b_cs)) + 1);
            t.gemm(c.M, c.N, c.K, a.data(), a_rs, a_cs, b.data(), b_rs, b_cs, c1.data(), ldc, pack.data(), 1);
            t.gemm(c.M, c.N, c.K, a.data(), a_rs, a_cs, b.data(), b_rs, b_cs, c2.data(), ldc, pack.data(), 2);
            bool same = true, close = true;
            for (int64_t i = 0; i < c.M; ++i)
                for (int64_t j = 0; j < c.N; ++j) {
                    double ref = 0, mag = 0;
                    for (int64_t k = 0; k < c.K; ++k) {
                        const double x = a[i * a_rs + k * a_cs], y = b[k * b_rs + j * b_cs];
                        ref += x * y;
                        mag += std::fabs(x * y);
                    }
                    same = same && c1[i * ldc + j] == c2[i * ldc + j];
                    close = close && std::fabs(c1[i * ldc + j] - ref) <= static_cast<double>(c.K) * 0x1p-23 * mag;
                }
            EXPECT(same);
            EXPECT(close);
            if (!c.transposed_b && c.N > 1) {  // the last column alone: B and C shifted to start at it
                const int64_t j = c.N - 1;
                std::vector<float> bj(c.K * 16, 0.f), cj(c.M * 16, 0.f);
                for (int64_t k = 0; k < c.K; ++k) bj[k * 16] = b[k * ldb + j];
                t.gemm(c.M, 1, c.K, a.data(), a_rs, a_cs, bj.data(), 16, 1, cj.data(), 16, pack.data(), 2);
                bool col = true;
                for (int64_t i = 0; i < c.M; ++i) col = col && cj[i * 16] == c1[i * ldc + j];
                EXPECT(col);
            }
        }
    }
    motifcore::set_simd_level("auto");
}

// A layer at density 1 takes the dense path; its forward and backward agree with the sparse
// kernels on the same layer (dense_path = false) to the summation bound, for m = 1 and 2; a prune
// makes it sparse, and it switches back to the sparse kernels (bitwise the forced-sparse result).
void test_dense_layer_path() {
    for (int64_t m : {1, 2}) {
        LayerConfig cfg = config(45, 33, m, m, 1.0, 9);
        cfg.activation = motifcore::Activation::ReLU;
        Layer l(cfg);
        EXPECT(l.uses_dense());
        const int64_t B = 19;
        std::vector<float> x(B * l.n_in), g(B * l.n_out);
        for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.61f * static_cast<float>(i));
        for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.29f * static_cast<float>(i));
        auto run = [&](bool dense, std::vector<float>& out, std::vector<float>& gin, std::vector<float>& dK) {
            l.dense_path = dense;
            out.assign(B * l.n_out, 0.f);
            gin.assign(B * l.n_in, 0.f);
            l.forward_rowmajor(x.data(), B, out.data(), 2);
            l.backward_rowmajor(g.data(), B, gin.data(), 2);
            dK = l.grad_weights();
        };
        std::vector<float> o1, gi1, dk1, o2, gi2, dk2;
        run(true, o1, gi1, dk1);
        run(false, o2, gi2, dk2);
        auto near = [](const std::vector<float>& u, const std::vector<float>& v, double tol) {
            bool ok = u.size() == v.size();
            for (size_t i = 0; ok && i < u.size(); ++i) ok = std::fabs(u[i] - v[i]) <= tol * (1.0 + std::fabs(v[i]));
            return ok;
        };
        EXPECT(near(o1, o2, 1e-5) && near(gi1, gi2, 1e-5) && near(dk1, dk2, 1e-5));
        l.dense_path = true;
        l.prune_smallest(5);
        EXPECT(!l.uses_dense());
        run(true, o1, gi1, dk1);
        run(false, o2, gi2, dk2);
        EXPECT(o1 == o2 && gi1 == gi2 && dk1 == dk2);
    }
}

// backward_rowmajor with caller buffers for dK and db (motifcore.torch's Layer.backward_into):
// the same values, bitwise, as into the layer's own gradients, which keep their previous values;
// sparse and dense paths, per-neuron and per-motif biases.
void test_backward_into_caller_buffers() {
    for (double density : {0.3, 1.0}) {
        for (int64_t m : {1, 3}) {
            LayerConfig cfg = config(23, 17, m, m, density, 5);
            cfg.activation = motifcore::Activation::ReLU;
            cfg.bias = m == 1 ? motifcore::BiasMode::Neuron : motifcore::BiasMode::Motif;
            Layer l(cfg);
            const int64_t B = 13;
            std::vector<float> x(B * l.n_in), g(B * l.n_out), g2(B * l.n_out);
            for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
            for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.53f * static_cast<float>(i));
            for (size_t i = 0; i < g2.size(); ++i) g2[i] = 0.5f * std::sin(0.11f * static_cast<float>(i));
            std::vector<float> out(B * l.n_out), gin(B * l.n_in), gin2(B * l.n_in);
            l.forward_rowmajor(x.data(), B, out.data(), 2);
            l.backward_rowmajor(g.data(), B, gin.data(), 2);
            const std::vector<float> dK = l.grad_weights(), db = l.grad_bias();
            // another upstream gradient into the layer's own buffers, then g into the caller's
            l.forward_rowmajor(x.data(), B, out.data(), 1);
            l.backward_rowmajor(g2.data(), B, gin2.data(), 1);
            const std::vector<float> dK2 = l.grad_weights(), db2 = l.grad_bias();
            std::vector<float> dK_out(dK.size(), -7.f), db_out(db.size(), -7.f);
            l.forward_rowmajor(x.data(), B, out.data(), 3);
            l.backward_rowmajor(g.data(), B, gin2.data(), 3, dK_out.data(), db_out.data());
            EXPECT(dK_out == dK && db_out == db && gin2 == gin);
            EXPECT(l.grad_weights() == dK2 && l.grad_bias() == db2);
        }
    }
}

// The panel handoff of the row-major API (motifcore.torch): the next layer's forward on the previous
// layer's output panel and the previous layer's backward on the next layer's input-gradient panel
// give the converting path's values bitwise (motifs that differ across the boundary); a handoff of
// a call that is no longer the layer's last, or whose gradient panel another layer overwrote in the
// shared scratch, is empty.
void test_panel_handoff() {
    LayerConfig c1 = config(13, 18, 1, 3, 0.5, 7);
    c1.activation = motifcore::Activation::ReLU;
    LayerConfig c2 = config(18, 9, 2, 1, 0.6, 8);
    Layer l1(c1), l2(c2), other(config(18, 9, 1, 1, 0.5, 9));
    const int64_t B = 11;
    std::vector<float> x(B * 13), g(B * 9);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.29f * static_cast<float>(i));
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.41f * static_cast<float>(i));
    auto run = [&](bool handoff, std::vector<float>& y, std::vector<float>& gx, std::vector<float>& dK1,
                   std::vector<float>& dK2) {
        std::vector<float> h(B * 18), gh(B * 18);
        y.assign(B * 9, 0.f);
        gx.assign(B * 13, 0.f);
        l1.forward_rowmajor(x.data(), B, h.data(), 2);
        const motifcore::PanelHandoff in = l1.output_panel(l1.forward_stamp());
        EXPECT(l2.forward_rowmajor(h.data(), B, y.data(), 2, handoff ? &in : nullptr) == handoff);
        l2.backward_rowmajor(g.data(), B, gh.data(), 2);
        const motifcore::PanelHandoff gin = l2.grad_in_panel(l2.backward_stamp());
        EXPECT(l1.backward_rowmajor(gh.data(), B, gx.data(), 2, nullptr, nullptr, handoff ? &gin : nullptr) == handoff);
        dK1 = l1.grad_weights();
        dK2 = l2.grad_weights();
    };
    std::vector<float> y1, gx1, a1, b1, y2, gx2, a2, b2;
    run(false, y1, gx1, a1, b1);
    run(true, y2, gx2, a2, b2);
    EXPECT(y1 == y2 && gx1 == gx2 && a1 == a2 && b1 == b2);
    // stale: a later forward of l1; another layer's input gradient in the shared scratch
    std::vector<float> h(B * 18), gh(B * 18), go(B * 18);
    l1.forward_rowmajor(x.data(), B, h.data(), 1);
    const uint64_t s1 = l1.forward_stamp();
    EXPECT(l1.output_panel(s1).data != nullptr);
    l1.forward_rowmajor(x.data(), B, h.data(), 1);
    EXPECT(l1.output_panel(s1).data == nullptr && l1.output_panel(l1.forward_stamp()).data != nullptr);
    l2.forward_rowmajor(h.data(), B, y1.data(), 1);
    l2.backward_rowmajor(g.data(), B, gh.data(), 1);
    const uint64_t s2 = l2.backward_stamp();
    EXPECT(l2.grad_in_panel(s2).data != nullptr);
    other.forward_rowmajor(h.data(), B, y1.data(), 1);
    other.backward_rowmajor(g.data(), B, go.data(), 1);
    EXPECT(l2.grad_in_panel(s2).data == nullptr);
}

// KernelTable::fused_backward against the split kernels on random patterns: dK bitwise the SDDMM's,
// dS the sum over each input row's blocks in ascending output row (bitwise that order, every step
// an FMA or every step a rounded product and an add; within the summation bound of a double
// reference), and bitwise the same at 1, 2 and 3 threads. The cases cover batches below one vector, with scalar
// tail columns, spanning several register tiles (and segments longer than one piece of dot
// accumulators), and layers with several row blocks.
// The SpMM on every SIMD level and thread count: against a double reference on a random pattern
// (rows of a part per thread, batch tiles and tail columns), bitwise the same at 1, 2 and 3 threads,
// and a call with no output rows writes nothing.
void test_spmm_parts() {
    for (const char* level : {"generic", "avx2", "avx512"}) {
        try {
            motifcore::set_simd_level(level);
        } catch (const std::invalid_argument&) {
            continue;
        }
        const motifcore::KernelTable& t = motifcore::kernels();
        for (int64_t B : {5, 64, 131}) {
            const int64_t G_out = 173, G_in = 97, ld = motifcore::panel_ld(B);
            motifcore::Rng rng(static_cast<uint64_t>(B));
            const auto pos = motifcore::sample_positions(static_cast<uint64_t>(G_out * G_in), 3000, 0, rng,
                                                         [](uint64_t) { return false; });
            const motifcore::BlockPattern pat(G_out, G_in, pos, true);
            std::vector<float> K(static_cast<size_t>(pat.n_blocks()));
            for (auto& k : K) k = static_cast<float>(rng.uniform() * 2 - 1);
            motifcore::PanelVector in(G_in * ld);
            for (auto& x : in) x = static_cast<float>(rng.uniform() * 2 - 1);
            std::vector<motifcore::PanelVector> outs;
            for (int nt : {1, 2, 3}) {
                outs.emplace_back(G_out * ld, 7.f);
                t.spmm(G_out, pat.indptr().data(), pat.indices().data(), K.data(), in.data(), G_in, outs.back().data(), B,
                       ld, nt);
            }
            bool close = true, same = true;
            for (int64_t r = 0; r < G_out; ++r)
                for (int64_t b = 0; b < B; ++b) {
                    double ref = 0, mag = 0;
                    for (int64_t p = pat.indptr()[r]; p < pat.indptr()[r + 1]; ++p) {
                        ref += static_cast<double>(K[p]) * in[pat.indices()[p] * ld + b];
                        mag += std::fabs(static_cast<double>(K[p]) * in[pat.indices()[p] * ld + b]);
                    }
                    const float v = outs[0][r * ld + b];
                    close = close && std::fabs(v - ref) <= 64 * 0x1p-23 * (mag + 1e-30);
                    same = same && v == outs[1][r * ld + b] && v == outs[2][r * ld + b];
                }
            EXPECT(close);
            EXPECT(same);
        }
        const int64_t indptr0[1] = {0};
        motifcore::PanelVector untouched(16, 3.f);
        t.spmm(0, indptr0, nullptr, nullptr, untouched.data(), 0, untouched.data(), 4, 16, 2);
        EXPECT(std::all_of(untouched.begin(), untouched.end(), [](float x) { return x == 3.f; }));
    }
    motifcore::set_simd_level("auto");
}

void test_fused_backward() {
    struct Case { int64_t G_out, G_in; double density; int64_t B; };
    const Case cases[] = {{37, 41, 0.3, 1},      {37, 41, 0.3, 7},      {64, 50, 0.2, 16},  {64, 50, 0.2, 21},
                          {90, 70, 0.25, 128},   {90, 70, 0.25, 131},   {40, 33, 0.5, 300}, {400, 30, 0.5, 300},
                          {2000, 20, 0.1, 128},  {1000, 25, 0.2, 300},  {3, 500, 0.01, 40}};
    for (const char* level : {"generic", "avx2", "avx512"}) {
        try {
            motifcore::set_simd_level(level);
        } catch (const std::invalid_argument&) {
            continue;  // not compiled or not on this CPU
        }
        const motifcore::KernelTable& t = motifcore::kernels();
        for (const Case& c : cases) {
            motifcore::Rng rng(static_cast<uint64_t>(c.G_out * 131 + c.B));
            const uint64_t total = static_cast<uint64_t>(c.G_out * c.G_in);
            const auto pos = motifcore::sample_positions(
                total, static_cast<uint64_t>(std::llround(c.density * static_cast<double>(total))), 0, rng,
                [](uint64_t) { return false; });
            const motifcore::BlockPattern pat(c.G_out, c.G_in, pos, true);
            const int64_t nnz = pat.n_blocks(), ld = motifcore::panel_ld(c.B);
            std::vector<float> K(nnz), Kt(nnz), dK_ref(nnz), dKt(nnz), dK(nnz);
            for (auto& k : K) k = static_cast<float>(rng.uniform() * 2 - 1);
            motifcore::PanelVector S(c.G_in * ld), dU(c.G_out * ld);
            for (auto& x : S) x = static_cast<float>(rng.uniform() * 2 - 1);
            for (auto& x : dU) x = static_cast<float>(rng.uniform() * 2 - 1);
            for (int64_t q = 0; q < nnz; ++q) Kt[q] = K[pat.t_pos()[q]];
            std::vector<int64_t> cursor(std::max(c.G_out, c.G_in));
            t.sddmm(c.G_out, pat.indptr().data(), pat.indices().data(), dU.data(), S.data(), c.G_in, dK_ref.data(), c.B, ld,
                    cursor.data(), 1);
            std::vector<motifcore::PanelVector> dS;
            for (int nt : {1, 2, 3}) {
                dS.emplace_back(c.G_in * ld, 9.f);   // stale values: every row must be overwritten
                std::fill(dKt.begin(), dKt.end(), 9.f);
                t.fused_backward(c.G_in, c.G_out, pat.t_indptr().data(), pat.t_rows().data(), Kt.data(), dU.data(),
                                 S.data(), dKt.data(), dS.back().data(), c.B, ld, cursor.data(), nt);
                for (int64_t q = 0; q < nnz; ++q) dK[pat.t_pos()[q]] = dKt[q];
                EXPECT(dK == dK_ref);
            }
            // The ascending-row sum, with each step one FMA or (no FMA instruction, or a compiler
            // that does not contract, e.g. at -O1) a rounded product and an add: every element must
            // match the same one of the two.
            bool same = true, as_fma = true, as_mul_add = true, close = true;
            for (int64_t col = 0; col < c.G_in; ++col)
                for (int64_t b = 0; b < c.B; ++b) {
                    float with_fma = 0.f, with_mul_add = 0.f;
                    double ref = 0, mag = 0;
                    for (int64_t q = pat.t_indptr()[col]; q < pat.t_indptr()[col + 1]; ++q) {
                        const float u = dU[pat.t_rows()[q] * ld + b];
                        with_fma = std::fma(Kt[q], u, with_fma);
                        const volatile float prod = Kt[q] * u;   // rounded: no contraction here
                        with_mul_add = with_mul_add + prod;
                        ref += static_cast<double>(Kt[q]) * u;
                        mag += std::fabs(static_cast<double>(Kt[q]) * u);
                    }
                    const float v = dS[0][col * ld + b];
                    same = same && v == dS[1][col * ld + b] && v == dS[2][col * ld + b];
                    as_fma = as_fma && v == with_fma;
                    as_mul_add = as_mul_add && v == with_mul_add;
                    close = close && std::fabs(v - ref) <= static_cast<double>(c.G_out + 1) * 0x1p-23 * mag;
                }
            EXPECT(same);
            EXPECT(as_fma || as_mul_add);
            EXPECT(close);
        }
    }
    motifcore::set_simd_level("auto");
    // Routing: the fused kernel from 4 samples and up to a 24 MiB output-gradient panel, the split
    // kernels otherwise.
    EXPECT(motifcore::fused_backward_fits(3000, 128));
    EXPECT(!motifcore::fused_backward_fits(1000000, 32));
    EXPECT(motifcore::fused_backward_fits(motifcore::kHugePanelBytes / (4 * 144), 128));   // ld 144
    EXPECT(!motifcore::fused_backward_fits(motifcore::kHugePanelBytes / (4 * 144) + 1, 128));
    EXPECT(motifcore::fused_backward_fits(3000, 4) && !motifcore::fused_backward_fits(3000, 3));   // batches of 1-3: split
}

// A layer's weight gradient is the same, bitwise, whether its backward also computes the input
// gradient (the fused kernel from 4 samples on) or not (the SDDMM alone); m = 1, 2 and residual
// motifs.
void test_layer_fused_backward_weight_gradient() {
    // dK of the fused route (2 threads) is the SDDMM's (1 thread, no input gradient), also after
    // pattern changes (the gradient comes back through the inverse positions, rebuilt with them).
    for (int64_t m : {1, 2, 3}) {
        LayerConfig cfg = config(50, 47, m, m, 0.3, 11);
        cfg.activation = motifcore::Activation::ReLU;
        Layer l(cfg);
        EXPECT(!l.uses_dense());
        for (int64_t B : {1, 2, 3, 5, 20, 130, -20, -5}) {
            if (B < 0) {   // evolve first
                l.prune_smallest(l.n_blocks() / 3);
                l.grow_random(l.n_blocks() / 4, static_cast<uint64_t>(-B), motifcore::RegrowInit::He);
                B = -B;
            }
            std::vector<float> x(B * l.n_in), g(B * l.n_out), out(B * l.n_out), gin(B * l.n_in);
            for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.41f * static_cast<float>(i));
            for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.17f * static_cast<float>(i));
            l.forward_rowmajor(x.data(), B, out.data(), 2);
            l.backward_rowmajor(g.data(), B, gin.data(), 2);
            const std::vector<float> fused = l.grad_weights();
            l.forward_rowmajor(x.data(), B, out.data(), 1);
            l.backward_rowmajor(g.data(), B, nullptr, 1);
            EXPECT(l.grad_weights() == fused);
        }
    }
}

void test_update_in_backward() {
    // Layer::backward with `update` makes the optimizer step inside the fused route's gather: the
    // same weights, momentum / Adam moments, biases and gradients, bit for bit, as backward and then
    // optimizer_step; a route that cannot (no input gradient: the SDDMM) says so and leaves K alone.
    for (motifcore::Optimizer kind : {motifcore::Optimizer::SGD, motifcore::Optimizer::Adam, motifcore::Optimizer::AdamW})
        for (int64_t m : {1, 2})
            for (int nt : {1, 2}) {
                LayerConfig cfg = config(400, 300, m, m, 0.1, 7);
                cfg.activation = motifcore::Activation::ReLU;
                Layer a(cfg), b(cfg);
                EXPECT(!a.uses_dense());
                const int64_t B = 37, ld = motifcore::panel_ld(B);
                std::vector<float> x(static_cast<size_t>(a.n_in * ld)), g(static_cast<size_t>(a.n_out * ld));
                for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
                for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.11f * static_cast<float>(i));
                // one step of both: a updates inside its backward, b after it
                const auto step_both = [&](const motifcore::OptimConfig& oc, motifcore::LayerWork& wa,
                                           motifcore::LayerWork& wb) {
                    wa.ensure(a, B);
                    wb.ensure(b, B);
                    a.forward(x.data(), B, wa, nt);
                    b.forward(x.data(), B, wb, nt);
                    EXPECT(a.backward(g.data(), 1, 1.f, B, wa, true, nt, nullptr, nullptr, &oc));
                    EXPECT(!b.backward(g.data(), 1, 1.f, B, wb, true, nt));
                    b.optimizer_step(oc, nt);
                };
                motifcore::OptimConfig c;
                c.kind = kind;
                c.lr = 0.05f;
                for (uint64_t t = 1; t <= 3; ++t) {   // the state carries over between steps
                    c.t = t;
                    motifcore::LayerWork wa, wb;
                    step_both(c, wa, wb);
                    EXPECT(a.weights() == b.weights() && a.bias() == b.bias());
                    EXPECT(a.grad_weights() == b.grad_weights());
                    EXPECT(a.optimizer_state().weight_velocity() == b.optimizer_state().weight_velocity());
                    EXPECT(a.optimizer_state().weight_sq() == b.optimizer_state().weight_sq());
                    EXPECT(a.optimizer_state().bias_velocity() == b.optimizer_state().bias_velocity());
                    EXPECT(!a.diverged() && !b.diverged());
                    bool same_dS = true;   // the input gradient, [G_in, ld] of which B columns are used
                    for (int64_t r = 0; r < a.G_in; ++r)
                        for (int64_t s0 = 0; s0 < B; ++s0)
                            same_dS = same_dS && wa.scratch().dS[r * ld + s0] == wb.scratch().dS[r * ld + s0];
                    EXPECT(same_dS);
                }
                // no input gradient (a first layer): the SDDMM route, no update
                motifcore::LayerWork w;
                w.ensure(a, B, false);
                a.forward(x.data(), B, w, nt);
                const auto K0 = a.weights();
                EXPECT(!a.backward(g.data(), 1, 1.f, B, w, false, nt, nullptr, nullptr, &c));
                EXPECT(a.weights() == K0);
                // a diverging update is flagged on this route too
                motifcore::OptimConfig huge = c;
                huge.lr = 1e38f;
                huge.t = 4;
                motifcore::LayerWork wa, wb;
                step_both(huge, wa, wb);
                EXPECT(a.diverged() && b.diverged());
            }
}

void test_network_update_in_backward() {
    // Network::train_step with the update inside the backward (no clipping) against the update
    // after it (a clipping bound no gradient reaches: the scale stays 1), bit for bit; also for a
    // network that lists one layer twice, where the upper use must not update K before the lower
    // use reads it.
    using motifcore::Network;
    const int64_t n_in = 64, n_out = 4, rows = 40;
    std::vector<float> X(rows * n_in);
    std::vector<int64_t> y(rows);
    for (size_t i = 0; i < X.size(); ++i) X[i] = std::sin(0.23f * static_cast<float>(i));
    for (int64_t i = 0; i < rows; ++i) y[i] = i % n_out;
    for (bool twice : {false, true})
        for (motifcore::Optimizer kind : {motifcore::Optimizer::SGD, motifcore::Optimizer::Adam}) {
            std::vector<std::vector<float>> K[2];
            for (int route = 0; route < 2; ++route) {
                LayerConfig c0 = config(n_in, 300, 1, 1, 0.2, 1), c1 = config(300, 300, 1, 1, 0.1, 2),
                            c2 = config(300, n_out, 1, 1, 0.5, 3);
                c0.activation = c1.activation = motifcore::Activation::ReLU;
                auto l0 = std::make_shared<Layer>(c0), l1 = std::make_shared<Layer>(c1);
                auto l2 = std::make_shared<Layer>(c2);
                std::vector<std::shared_ptr<Layer>> layers{l0, l1};
                if (twice) layers.push_back(l1);
                layers.push_back(l2);
                Network net(layers, 2);
                motifcore::TrainConfig cfg;
                cfg.optim.kind = kind;
                cfg.max_grad_norm = route == 0 ? 0.f : 1e30f;
                for (int step = 0; step < 3; ++step) net.train_step(X.data(), y.data(), rows, 0.01f, cfg);
                for (const auto& l : {l0, l1, l2}) {
                    K[route].push_back(l->weights());
                    K[route].push_back(l->bias());
                    K[route].push_back(l->optimizer_state().weight_velocity());
                }
            }
            EXPECT(K[0] == K[1]);
        }
}

// Two layers of one config stepped on the same data: `a` with the update in its backward where it
// takes it, `b` with backward then optimizer_step; the input gradients compared at every step.
struct RoutePair {
    Layer a, b;
    uint64_t t = 0;
    int nt;
    bool ds_same = true;
    RoutePair(const LayerConfig& c, int nt_) : a(c), b(c), nt(nt_) {}
    bool step(motifcore::OptimConfig c, int64_t B, bool route = true) {
        c.t = ++t;
        const int64_t ld = motifcore::panel_ld(B);
        std::vector<float> x(static_cast<size_t>(a.n_in * ld)), g(static_cast<size_t>(a.n_out * ld));
        for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.29f * static_cast<float>(i) + 0.1f * static_cast<float>(t));
        for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.013f * static_cast<float>(i * t));
        motifcore::LayerWork wa, wb;
        wa.ensure(a, B);
        wb.ensure(b, B);
        a.forward(x.data(), B, wa, nt);
        b.forward(x.data(), B, wb, nt);
        const bool routed = a.backward(g.data(), 1, 1.f, B, wa, true, nt, nullptr, nullptr, route ? &c : nullptr);
        if (!routed) a.optimizer_step(c, nt);
        EXPECT(!b.backward(g.data(), 1, 1.f, B, wb, true, nt));
        b.optimizer_step(c, nt);
        for (int64_t r = 0; r < a.G_in; ++r)
            for (int64_t s0 = 0; s0 < B; ++s0) ds_same = ds_same && wa.scratch().dS[r * ld + s0] == wb.scratch().dS[r * ld + s0];
        return routed;
    }
    bool same() const {
        return ds_same && a.weights() == b.weights() && a.bias() == b.bias() && a.grad_weights() == b.grad_weights() &&
               a.optimizer_state().weight_velocity() == b.optimizer_state().weight_velocity() &&
               a.optimizer_state().weight_sq() == b.optimizer_state().weight_sq() &&
               a.optimizer_state().bias_velocity() == b.optimizer_state().bias_velocity() &&
               a.pattern().indices() == b.pattern().indices();
    }
};

void test_update_in_transposed_order_across_steps() {
    // The update in backward keeps K's transposed copy, the gradient and the optimizer state in
    // transposed order from one step to the next. Against a layer that updates after its backward
    // (optimizer_step), bit for bit: many steps with nothing read between them, and every way K,
    // the pattern or the state can change between two steps (set_weights, a SET step, a growth, a
    // plain optimizer_step, a codebook, set_state, a write through params_in_place), each followed
    // by more steps on the route.
    for (motifcore::Optimizer kind : {motifcore::Optimizer::SGD, motifcore::Optimizer::Adam})
        for (int nt : {1, 2}) {
            LayerConfig cfg = config(300, 200, 1, 1, 0.1, 11);
            cfg.activation = motifcore::Activation::ReLU;
            RoutePair p(cfg, nt);
            Layer &a = p.a, &b = p.b;
            motifcore::OptimConfig c;
            c.kind = kind;
            c.lr = 0.02f;
            bool routed = true;   // a's last step took the route
            const auto steps = [&](int n, bool route = true) {
                for (int k = 0; k < n; ++k) routed = p.step(c, 24, route);
            };
            steps(4);
            EXPECT(routed && p.same());
            steps(2);
            std::vector<float> w = a.weights();   // the same new weights for both
            for (float& v : w) v *= 0.5f;
            a.set_weights(w);
            b.set_weights(w);
            steps(2);
            EXPECT(routed && p.same());
            steps(1);
            a.prune_regrow(0.2, 5);               // straight after a step on the route
            b.prune_regrow(0.2, 5);
            steps(2);
            EXPECT(routed && p.same());
            steps(1);
            a.grow_random(25, 9, motifcore::RegrowInit::He);   // a growth alone, straight after a step
            b.grow_random(25, 9, motifcore::RegrowInit::He);
            steps(2);
            EXPECT(routed && p.same());
            steps(1, false);                      // one step updated after the backward
            steps(2);
            EXPECT(routed && p.same());
            const auto n = static_cast<size_t>(a.n_blocks());
            std::vector<int32_t> codes(n);
            for (size_t q = 0; q < n; ++q) codes[q] = static_cast<int32_t>(q % 3);
            a.set_codebook(codes, {0.01f, -0.02f, 0.03f});
            b.set_codebook(codes, {0.01f, -0.02f, 0.03f});
            steps(1);                             // a codebook: not the route
            EXPECT(!routed);
            a.clear_codebook();
            b.clear_codebook();
            steps(2);
            EXPECT(routed && p.same());
            a.set_codebook(codes, {0.01f, -0.02f, 0.03f});   // K from the centroids, then no step with them
            b.set_codebook(codes, {0.01f, -0.02f, 0.03f});
            a.clear_codebook();
            b.clear_codebook();
            steps(2);
            EXPECT(routed && p.same());
            steps(1);
            const auto& st = b.optimizer_state();
            a.set_state(b.pattern().indptr(), b.pattern().indices(), b.weights(), b.bias(), st.weight_velocity(),
                        st.bias_velocity(), st.weight_sq(), st.bias_sq());
            steps(2);
            EXPECT(routed && p.same());
            steps(1);
            const motifcore::ParamSpans pa = a.params_in_place();   // a view: the copy is never trusted again
            const motifcore::ParamSpans pb = b.params_in_place();
            for (int64_t q = 0; q < pa.K.size; q += 7) pa.K[q] = pb.K[q] = 0.125f;
            steps(3);
            EXPECT(!routed && p.same());
        }
}

void test_update_in_transposed_order_without_reads_between() {
    // The cases where nothing reads the layer between a step on the route and what follows it (a
    // read settles dK and the state, which would hide a missing settle): a step off the route (no
    // update given; a batch of 2, which the fused kernel does not take), a growth alone, a prune
    // and the growth of its blocks back, the gradient norm as the first read, a SET step before a
    // fused step off the route, the optimizer changing between steps.
    motifcore::OptimConfig c;
    c.lr = 0.02f;
    for (motifcore::Optimizer kind : {motifcore::Optimizer::SGD, motifcore::Optimizer::Adam})
        for (int nt : {1, 2}) {
            c.kind = kind;
            LayerConfig cfg = config(300, 200, 1, 1, 0.1, 11);
            cfg.activation = motifcore::Activation::ReLU;
            {
                RoutePair p(cfg, nt);
                EXPECT(p.step(c, 24) && p.step(c, 24));
                EXPECT(!p.step(c, 24, false));
                EXPECT(p.step(c, 24));
                EXPECT(!p.step(c, 2));
                EXPECT(p.step(c, 24) && p.step(c, 24));
                EXPECT(p.same());
            }
            {
                RoutePair p(cfg, nt);
                EXPECT(p.step(c, 24) && p.step(c, 24));
                std::vector<uint64_t> fresh;
                for (uint64_t pos = 0; pos < 300 * 200 && fresh.size() < 50; pos += 37)
                    if (!p.a.pattern().contains(pos)) fresh.push_back(pos);
                for (Layer* l : {&p.a, &p.b}) l->grow_at(fresh.data(), static_cast<int64_t>(fresh.size()), motifcore::RegrowInit::Zero);
                EXPECT(p.step(c, 24) && p.step(c, 24));
                EXPECT(p.same());
                EXPECT(p.step(c, 24));
                std::vector<uint8_t> keep(static_cast<size_t>(p.a.n_blocks()));
                for (size_t i = 0; i < keep.size(); ++i) keep[i] = (i % 5) != 0;
                for (Layer* l : {&p.a, &p.b}) l->keep_where(keep.data());
                const std::vector<uint64_t> back(p.a.last_removed().begin(), p.a.last_removed().begin() + 20);
                for (Layer* l : {&p.a, &p.b}) l->grow_at(back.data(), 20, motifcore::RegrowInit::Zero);
                EXPECT(p.step(c, 24) && p.step(c, 24));
                EXPECT(p.same());
            }
            {
                RoutePair p(cfg, nt);
                EXPECT(p.step(c, 24) && p.step(c, 24));
                EXPECT(p.a.grad_sq_norm(nt) == p.b.grad_sq_norm(nt));
                EXPECT(p.same());
            }
            {
                RoutePair p(cfg, nt);
                EXPECT(p.step(c, 24) && p.step(c, 24));
                p.a.prune_regrow(0.2, 5);
                p.b.prune_regrow(0.2, 5);
                EXPECT(!p.step(c, 24, false));
                EXPECT(p.step(c, 24));
                EXPECT(p.same());
            }
        }
    for (int nt : {1, 2}) {
        LayerConfig cfg = config(300, 200, 1, 1, 0.1, 14);
        cfg.activation = motifcore::Activation::ReLU;
        RoutePair p(cfg, nt);
        const auto with = [&](motifcore::Optimizer k) {
            c.kind = k;
            return c;
        };
        EXPECT(p.step(with(motifcore::Optimizer::SGD), 24) && p.step(with(motifcore::Optimizer::SGD), 24));
        EXPECT(p.step(with(motifcore::Optimizer::Adam), 24) && p.step(with(motifcore::Optimizer::AdamW), 24));
        EXPECT(p.step(with(motifcore::Optimizer::SGD), 24) && p.step(with(motifcore::Optimizer::Adam), 24));
        EXPECT(p.same());
    }
    // A network over epochs whose last batch is short (2 samples: off the route), a SET step
    // between epochs, against the same network updating after the backward (a clipping bound no
    // gradient reaches); also what release_scratch frees.
    for (motifcore::Optimizer kind : {motifcore::Optimizer::SGD, motifcore::Optimizer::Adam}) {
        const int64_t n_in = 64, n_out = 4, rows = 42;
        std::vector<float> X(rows * n_in);
        std::vector<int64_t> y(rows), order(rows);
        for (size_t i = 0; i < X.size(); ++i) X[i] = std::sin(0.23f * static_cast<float>(i));
        for (int64_t i = 0; i < rows; ++i) y[i] = i % n_out, order[i] = (i * 17) % rows;
        std::vector<std::vector<float>> R[2];
        for (int route = 0; route < 2; ++route) {
            LayerConfig c0 = config(n_in, 300, 1, 1, 0.2, 1), c1 = config(300, 300, 1, 1, 0.1, 2),
                        c2 = config(300, n_out, 1, 1, 0.5, 3);
            c0.activation = c1.activation = motifcore::Activation::ReLU;
            std::vector<std::shared_ptr<Layer>> ls{std::make_shared<Layer>(c0), std::make_shared<Layer>(c1),
                                                   std::make_shared<Layer>(c2)};
            motifcore::Network net(ls, 2);
            motifcore::TrainConfig tc;
            tc.optim.kind = kind;
            tc.max_grad_norm = route ? 0.f : 1e30f;
            std::vector<float> lrs(6, 0.01f);
            for (int e = 0; e < 3; ++e) {
                net.train_epoch(X.data(), y.data(), rows, order.data(), rows, 8, lrs.data(), tc, motifcore::LossConfig{});
                if (e == 1) {
                    if (route) EXPECT(ls[1]->transposed_copy_bytes() > 0);
                    net.release_scratch();
                    EXPECT(ls[1]->transposed_copy_bytes() == 0);
                    for (auto& l : ls) l->prune_regrow(0.2, 9 + e);
                }
            }
            for (auto& l : ls) {
                R[route].push_back(l->weights());
                R[route].push_back(l->grad_weights());
                R[route].push_back(l->optimizer_state().weight_velocity());
                R[route].push_back(l->optimizer_state().weight_sq());
            }
        }
        EXPECT(R[0] == R[1]);
    }
}

void test_block_pattern_mutations() {
    // 3 x 4 grid, blocks at (0,1) (0,3) (1,0) (2,2) (2,3)
    motifcore::BlockPattern p(3, 4, {1, 3, 4, 10, 11});
    EXPECT(p.n_blocks() == 5 && p.version() == 0 && p.find(2, 2) == 3 && p.find(1, 1) == -1);
    EXPECT(p.t_indptr() == std::vector<int64_t>({0, 1, 2, 3, 5}));
    // compaction keeps the order and, without reindex, guards the stale transposed index
    const std::vector<uint8_t> keep{1, 0, 1, 1, 0};
    p.compact(keep.data(), false);
    EXPECT(p.version() == 1 && p.n_blocks() == 3 && !p.transposed_current());
    EXPECT(p.indptr() == std::vector<int64_t>({0, 1, 2, 3}) && p.indices() == std::vector<int32_t>({1, 0, 2}));
    EXPECT(throws<std::logic_error>([&] { p.t_pos(); }) && throws<std::logic_error>([&] { p.t_inv(); }));
    p.reindex_inverse();
    EXPECT(p.transposed_current() && p.t_inv() == std::vector<int32_t>({1, 0, 2}));   // t_pos {1, 0, 2}
    // merge: an active position is rejected with the pattern unchanged; a valid one reindexes
    EXPECT(throws<std::invalid_argument>([&] { p.merge({5, 10}, [](int64_t, size_t) {}); }));
    EXPECT(p.version() == 1 && p.n_blocks() == 3);
    std::vector<int64_t> src;
    p.merge({3, 7}, [&](int64_t old_p, size_t f) { src.push_back(old_p >= 0 ? old_p : -1 - static_cast<int64_t>(f)); });
    EXPECT(p.version() == 2 && p.transposed_current());
    EXPECT(p.indices() == std::vector<int32_t>({1, 3, 0, 3, 2}) && src == std::vector<int64_t>({0, -1, 1, -2, 2}));
    EXPECT(p.t_indptr() == std::vector<int64_t>({0, 1, 2, 3, 5}) && p.t_pos() == std::vector<int32_t>({2, 0, 4, 1, 3}));
    EXPECT(throws<std::logic_error>([&] { p.t_inv(); }));   // the reindex freed the old inverse
    p.reindex_inverse();
    EXPECT(p.t_inv() == std::vector<int32_t>({1, 3, 0, 4, 2}));
    // assign validates before it replaces
    EXPECT(throws<std::invalid_argument>([&] { p.assign({0, 1, 1, 2}, {2, 9}); }));
    EXPECT(p.version() == 2 && p.n_blocks() == 5);
    p.assign({0, 0, 2, 2}, {0, 3});
    EXPECT(p.version() == 3 && p.n_blocks() == 2 && p.t_rows() == std::vector<int32_t>({1, 1}));
}

void test_block_pattern_merge_in_place() {
    // merge_in_place gives merge's pattern, visiting every entry of it once from the back with the
    // old position it came from; random patterns with empty rows and fresh blocks in every row.
    motifcore::Rng rng(5);
    for (int trial = 0; trial < 20; ++trial) {
        const int64_t G_out = 1 + static_cast<int64_t>(rng.below(40)), G_in = 1 + static_cast<int64_t>(rng.below(40));
        const uint64_t total = static_cast<uint64_t>(G_out * G_in);
        const auto n_old = rng.below(total + 1);
        const auto pos = motifcore::sample_positions(total, n_old, 0, rng, [](uint64_t) { return false; });
        motifcore::BlockPattern a(G_out, G_in, pos, false), b(G_out, G_in, pos, false);
        const auto fresh = motifcore::sample_positions(total, rng.below(total - n_old + 1), n_old, rng,
                                                       [&](uint64_t q) { return a.contains(q); });
        std::vector<int64_t> src_a, src_b(n_old + fresh.size(), -100), order;
        a.merge(fresh, [&](int64_t old_p, size_t f) { src_a.push_back(old_p >= 0 ? old_p : -1 - static_cast<int64_t>(f)); },
                false);
        b.merge_in_place(fresh, [&](int64_t q, int64_t old_p, size_t f) {
            EXPECT(old_p <= q);
            src_b[q] = old_p >= 0 ? old_p : -1 - static_cast<int64_t>(f);
            order.push_back(q);
        });
        EXPECT(a.indptr() == b.indptr() && a.indices() == b.indices() && src_a == src_b);
        EXPECT(b.version() == 1 && !b.transposed_current());
        bool reverse = static_cast<int64_t>(order.size()) == b.n_blocks();
        for (size_t i = 0; i < order.size(); ++i) reverse = reverse && order[i] == b.n_blocks() - 1 - static_cast<int64_t>(i);
        EXPECT(reverse);
        // an active position among the fresh ones: rejected before anything changes
        if (b.n_blocks() > 0 && b.n_blocks() < static_cast<int64_t>(total)) {
            const auto before = b.indices();
            const uint64_t active = static_cast<uint64_t>(std::upper_bound(b.indptr().begin(), b.indptr().end(), 0) -
                                                          b.indptr().begin() - 1) * static_cast<uint64_t>(G_in) +
                                    static_cast<uint64_t>(b.indices()[0]);
            EXPECT(throws<std::invalid_argument>([&] { b.merge_in_place({active}, [](int64_t, int64_t, size_t) {}); }));
            EXPECT(b.indices() == before && b.version() == 1);
        }
    }
}

void test_simd_level_from_env() {
    EXPECT(motifcore::simd_level_from_env(nullptr) == "auto" && motifcore::simd_level_from_env("") == "auto");
    EXPECT(motifcore::simd_level_from_env("generic") == "generic" && motifcore::simd_level_from_env("avx2") == "avx2");
    bool named = false;
    try {
        motifcore::simd_level_from_env("avx9");
    } catch (const std::invalid_argument& e) {
        named = std::string(e.what()).find("MOTIFCORE_SIMD='avx9'") != std::string::npos;
    }
    EXPECT(named);
    // Read once: after the first read, a later value of the variable changes nothing.
    motifcore::init_simd_from_env();
    const std::string before = motifcore::kernels().name;
    setenv("MOTIFCORE_SIMD", "avx9", 1);
    motifcore::init_simd_from_env();
    EXPECT(motifcore::kernels().name == before);
    unsetenv("MOTIFCORE_SIMD");
}

int main() {
    const std::vector<std::pair<const char*, std::function<void()>>> tests = {
        {"sample_positions", test_sample_positions},
        {"er_pattern_and_transpose", test_er_pattern_and_transpose},
        {"transpose_matches_stable_sort", test_transpose_matches_stable_sort},
        {"block_pattern_mutations", test_block_pattern_mutations},
        {"block_pattern_merge_in_place", test_block_pattern_merge_in_place},
        {"forward_matches_dense", test_forward_matches_dense},
        {"sgd_and_adam_steps", test_sgd_and_adam_steps},
        {"prune_regrow", test_prune_regrow},
        {"prune_grow_primitives", test_prune_grow_primitives},
        {"optimizer_state_follows_pattern", test_optimizer_state_follows_pattern},
        {"checks_throw", test_checks_throw},
        {"kd_loss", test_kd_loss},
        {"codebook_step", test_codebook_step},
        {"pool_covers_each_index_once", test_pool_covers_each_index_once},
        {"pool_nested_calls_run_inline", test_pool_nested_calls_run_inline},
        {"pool_concurrent_submitters", test_pool_concurrent_submitters},
        {"pool_exceptions_and_shutdown", test_pool_exceptions_and_shutdown},
        {"pool_runs_fewer_threads_while_workers_stall", test_pool_runs_fewer_threads_while_workers_stall},
        {"pool_team_choice_is_per_model", test_pool_team_choice_is_per_model},
        {"state_pool", test_state_pool},
        {"layout_transposes", test_layout_transposes},
        {"panel_to_rows_counts_nonfinite", test_panel_to_rows_counts_nonfinite},
        {"dense_gemm", test_dense_gemm},
        {"simd_level_from_env", test_simd_level_from_env},
        {"dense_layer_path", test_dense_layer_path},
        {"backward_into_caller_buffers", test_backward_into_caller_buffers},
        {"panel_handoff", test_panel_handoff},
        {"spmm_parts", test_spmm_parts},
        {"fused_backward", test_fused_backward},
        {"layer_fused_backward_weight_gradient", test_layer_fused_backward_weight_gradient},
        {"update_in_backward", test_update_in_backward},
        {"network_update_in_backward", test_network_update_in_backward},
        {"update_in_transposed_order_across_steps", test_update_in_transposed_order_across_steps},
        {"update_in_transposed_order_without_reads_between", test_update_in_transposed_order_without_reads_between},
    };
    for (const auto& [name, fn] : tests) {
        const int before = g_failures;
        try {
            fn();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: unexpected exception: %s\n", name, e.what());
            ++g_failures;
        }
        std::printf("%s %s\n", g_failures == before ? "ok  " : "FAIL", name);
    }
    return g_failures == 0 ? 0 : 1;
}
