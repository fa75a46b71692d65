// C++ unit tests of the CH3-L3 scorer and the CHT evolution step (cpp/cht.hpp); no framework.
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <vector>

#include "cht.hpp"
#include "expect.hpp"
#include "layer.hpp"

namespace {

using motifcore_test::g_failures;

using motifcore::Layer;
using motifcore::LayerConfig;

// Dense score of (row, col) from the CSC result (0 when absent).
double score_at(const motifcore::Ch3Scores& s, int32_t row, int64_t col) {
    for (int64_t p = s.col_ptr[col]; p < s.col_ptr[col + 1]; ++p)
        if (s.rows[p] == row) return s.values[p];
    return 0.0;
}

void test_hand_cases() {
    // edges a0->b0, a1->b0, a1->b1, a2->b1 (rows = outputs b, columns = inputs a)
    const std::vector<int64_t> ip{0, 2, 4, 4};
    const std::vector<int32_t> ix{0, 1, 1, 2};
    const auto s = motifcore::ch3_l3_scores(3, 3, ip, ix, 1);
    EXPECT(std::fabs(score_at(s, 1, 0) - 1.0) < 1e-12);
    EXPECT(std::fabs(score_at(s, 0, 2) - 1.0) < 1e-12);
    EXPECT(s.rows.size() == 2);
    // add a1->b2: the four candidates around a1 score 1/sqrt(2)
    const std::vector<int64_t> ip2{0, 2, 4, 5};
    const std::vector<int32_t> ix2{0, 1, 1, 2, 1};
    const auto s2 = motifcore::ch3_l3_scores(3, 3, ip2, ix2, 2);
    const double r = 1.0 / std::sqrt(2.0);
    for (auto [i, j] : std::vector<std::pair<int32_t, int64_t>>{{1, 0}, {0, 2}, {2, 0}, {2, 2}})
        EXPECT(std::fabs(score_at(s2, i, j) - r) < 1e-12);
    bool threw = false;
    try {
        motifcore::ch3_l3_scores(3, 3, ip, std::vector<int32_t>{0, 1, 1, 7}, 1);
    } catch (const std::invalid_argument&) {
        threw = true;
    }
    EXPECT(threw);
}

std::vector<std::shared_ptr<Layer>> net(uint64_t seed) {
    std::vector<std::shared_ptr<Layer>> layers;
    const int64_t w[] = {60, 48, 48, 5};
    for (int i = 0; i < 3; ++i) {
        LayerConfig c;
        c.n_in = w[i];
        c.n_out = w[i + 1];
        c.density = i < 2 ? 0.08 : 1.0;
        c.seed = seed + static_cast<uint64_t>(i);
        layers.push_back(std::make_shared<Layer>(c));
    }
    return layers;
}

void test_evolve_threads_and_size() {
    auto a = net(3), b = net(3);
    std::vector<Layer*> pa, pb;
    for (auto& l : a) pa.push_back(l.get());
    for (auto& l : b) pb.push_back(l.get());
    const std::vector<int64_t> before{a[0]->n_blocks(), a[1]->n_blocks(), a[2]->n_blocks()};
    motifcore::ChtConfig cfg;
    for (uint64_t step = 0; step < 3; ++step) {
        const std::vector<uint64_t> seeds{step, step + 10, step + 20};
        const auto sa = motifcore::cht_evolve(pa, {0.3, 0.3, 0.0}, seeds, cfg, 1);
        const auto sb = motifcore::cht_evolve(pb, {0.3, 0.3, 0.0}, seeds, cfg, 2);
        for (int l = 0; l < 2; ++l) {
            EXPECT(sa[l].removed > 0);
            EXPECT(sa[l].removed + sa[l].cr_removed == sa[l].regrown_score + sa[l].regrown_fill);
            EXPECT(sa[l].regrown_score == sb[l].regrown_score);
        }
        EXPECT(sa[2].removed == 0 && sa[2].regrown_score == 0);
    }
    for (int l = 0; l < 3; ++l) {
        EXPECT(a[l]->n_blocks() == before[l]);
        EXPECT(a[l]->pattern().indices() == b[l]->pattern().indices() && a[l]->pattern().indptr() == b[l]->pattern().indptr() && a[l]->weights() == b[l]->weights());
    }
    bool threw = false;
    try {
        motifcore::cht_evolve(pa, {1.5, 0.0, 0.0}, {0, 0, 0}, cfg, 1);
    } catch (const std::invalid_argument&) {
        threw = true;
    }
    EXPECT(threw);
}

}  // namespace

int main() {
    test_hand_cases();
    test_evolve_threads_and_size();
    if (g_failures) {
        std::fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    std::printf("all CHT tests passed\n");
    return 0;
}
