// C++ unit tests of the engine (no framework): built with -DMOTIFCORE_BUILD_TESTS=ON, run by ctest.
// EXPECT works in Release builds too (assert() would be compiled out by NDEBUG).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "expect.hpp"
#include "layer.hpp"
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
        for (int64_t p = l.indptr[r] + 1; p < l.indptr[r + 1]; ++p)
            if (l.indices[p - 1] >= l.indices[p]) return false;
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
    EXPECT(l.indptr.back() == l.n_blocks() && rows_sorted_unique(l));
    EXPECT(l.t_indptr.back() == l.n_blocks());
    for (int64_t col = 0; col < l.G_in; ++col)
        for (int64_t q = l.t_indptr[col]; q < l.t_indptr[col + 1]; ++q) {
            EXPECT(l.indices[l.t_pos[q]] == col);                                  // entry q sits in column col
            EXPECT(l.t_pos[q] >= l.indptr[l.t_rows[q]] && l.t_pos[q] < l.indptr[l.t_rows[q] + 1]);  // in row t_rows[q]
        }
    Layer twin(c);
    EXPECT(twin.indices == l.indices && twin.K == l.K);        // deterministic for a seed
}

void test_forward_matches_dense() {
    Layer l(config(11, 7, 3, 2, 0.5, 5));                    // residual motifs on both sides
    const int64_t B = 4;
    std::vector<float> x(B * l.n_in), out(B * l.n_out), W(l.n_out * l.n_in);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * static_cast<float>(i));
    for (size_t i = 0; i < l.b.size(); ++i) l.b[i] = 0.01f * static_cast<float>(i);
    l.forward_rowmajor(x.data(), B, out.data(), 2);
    l.to_dense(W.data());
    for (int64_t s = 0; s < B; ++s)
        for (int64_t i = 0; i < l.n_out; ++i) {
            double ref = l.b[i];
            for (int64_t j = 0; j < l.n_in; ++j) ref += static_cast<double>(W[i * l.n_in + j]) * x[s * l.n_in + j];
            EXPECT(std::fabs(out[s * l.n_out + i] - ref) < 1e-5);
        }
}

void test_sgd_and_adam_steps() {
    Layer l(config(20, 10, 1, 1, 0.5, 1));
    for (size_t p = 0; p < l.dK.size(); ++p) l.dK[p] = 0.1f * static_cast<float>(p % 7) - 0.3f;
    const auto K0 = l.K, g = l.dK;
    l.sgd_step(0.1f, 0.9f, 0.01f, 1);                         // v = g + wd*w (v was 0); w -= lr*v
    for (size_t p = 0; p < K0.size(); ++p) EXPECT(std::fabs(l.K[p] - (K0[p] - 0.1f * (g[p] + 0.01f * K0[p]))) < 1e-6);
    motifcore::OptimConfig c;
    c.kind = motifcore::Optimizer::Adam;
    c.lr = 0.01f;
    c.weight_decay = 0.f;
    Layer a(config(20, 10, 1, 1, 0.5, 1));
    a.dK = g;
    const auto A0 = a.K;
    a.optimizer_step(c, 1);                                   // first Adam step moves each weight by ~lr*sign(g)
    for (size_t p = 0; p < A0.size(); ++p)
        if (std::fabs(g[p]) > 1e-3f) EXPECT(std::fabs((A0[p] - a.K[p]) - 0.01f * (g[p] > 0 ? 1.f : -1.f)) < 1e-4);
    EXPECT(l.grad_sq_norm(1) == l.grad_sq_norm(4));           // fixed chunks: thread-count independent
}

void test_prune_regrow() {
    Layer l(config(64, 48, 2, 2, 0.3, 9));
    const int64_t nb = l.n_blocks();
    std::vector<float> mags(l.K.size());
    for (size_t p = 0; p < l.K.size(); ++p) mags[p] = std::fabs(l.K[p]);
    std::sort(mags.begin(), mags.end());
    Layer twin = l;
    const auto stats = l.prune_regrow(0.25, 42, motifcore::RegrowInit::Zero);
    EXPECT(stats.removed == std::llround(0.25 * nb));
    EXPECT(stats.threshold == mags[stats.removed - 1]);       // the k smallest |K| were pruned
    EXPECT(l.n_blocks() == nb && rows_sorted_unique(l));
    EXPECT(std::count(l.K.begin(), l.K.end(), 0.f) >= stats.removed);  // regrown at zero
    twin.prune_regrow(0.25, 42, motifcore::RegrowInit::Zero);
    EXPECT(twin.indices == l.indices && twin.indptr == l.indptr);      // deterministic for a seed
}

void test_checks_throw() {
    EXPECT(throws<std::invalid_argument>([] { motifcore::target_blocks(config(10, 10, 0, 1, 0.1, 0)); }));
    EXPECT(throws<std::invalid_argument>([] { motifcore::target_blocks(config(10, 10, 1, 0, 0.1, 0)); }));
    EXPECT(throws<std::invalid_argument>([] { Layer(config(10, 10, 1, 1, 1.5, 0)); }));
    Layer l(config(8, 8, 1, 1, 0.5, 0));
    auto idx = l.indices;
    std::reverse(idx.begin(), idx.end());
    EXPECT(throws<std::invalid_argument>([&] { l.set_state(l.indptr, idx, l.K, l.b, {}, {}); }));
}

}  // namespace

int main() {
    const std::vector<std::pair<const char*, std::function<void()>>> tests = {
        {"sample_positions", test_sample_positions},
        {"er_pattern_and_transpose", test_er_pattern_and_transpose},
        {"forward_matches_dense", test_forward_matches_dense},
        {"sgd_and_adam_steps", test_sgd_and_adam_steps},
        {"prune_regrow", test_prune_regrow},
        {"checks_throw", test_checks_throw},
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
