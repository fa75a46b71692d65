#include "codebook.hpp"

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace motifcore {

void Codebook::set(std::vector<int32_t> new_codes, std::vector<float> new_c, std::vector<float> v,
                   std::vector<float> s, std::vector<float>& K, uint64_t pattern_version) {
    MC_CHECK(!new_c.empty(), "a codebook needs at least one centroid");
    MC_CHECK(new_codes.size() == K.size(), "codes must have one entry per block (" << K.size() << "), got "
                                                                                    << new_codes.size());
    const int64_t k = static_cast<int64_t>(new_c.size());
    for (int32_t j : new_codes) MC_CHECK(j >= 0 && j < k, "code " << j << " out of range [0, " << k << ")");
    if (v.empty()) v.assign(new_c.size(), 0.f);
    MC_CHECK(v.size() == new_c.size() && (s.empty() || s.size() == new_c.size()),
             "centroid optimizer state must have one entry per centroid (" << k << ")");
    for (const auto* a : {&new_c, &v, &s})
        for (float x : *a) MC_CHECK(std::isfinite(x), "codebook holds a NaN or infinite value");
    codes_ = std::move(new_codes);
    centroids_ = std::move(new_c);
    v_ = std::move(v);
    s_ = std::move(s);
    d_.assign(centroids_.size(), 0.f);
    for (size_t p = 0; p < K.size(); ++p) K[p] = centroids_[static_cast<size_t>(codes_[p])];
    version_ = pattern_version;
}

void Codebook::clear() {
    codes_.clear();
    centroids_.clear();
    v_.clear();
    s_.clear();
    d_.clear();
}

void Codebook::step(const OptimConfig& c, const std::vector<float>& dK, std::vector<float>& K,
                    uint64_t pattern_version, int num_threads) {
    MC_CHECK(version_ == pattern_version && codes_.size() == K.size(),
             "the block pattern changed since the codebook was set; set it again");
    // Segmented reduction of dK by code: per-chunk partial sums in double, added in chunk order.
    constexpr int64_t kChunk = 4096;
    const int64_t n = static_cast<int64_t>(K.size()), k = static_cast<int64_t>(centroids_.size());
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> part(static_cast<size_t>(chunks * k), 0.0);
    const float* g = dK.data();
    const int32_t* code = codes_.data();
    parallel_for(chunks, grain_for(kChunk), threads_for(n, num_threads), [&](int64_t ch) {
        double* acc = part.data() + ch * k;
        for (int64_t p = ch * kChunk; p < std::min(n, (ch + 1) * kChunk); ++p) acc[code[p]] += g[p];
    });
    std::vector<double> sum(static_cast<size_t>(k), 0.0);
    for (int64_t ch = 0; ch < chunks; ++ch)
        for (int64_t j = 0; j < k; ++j) sum[j] += part[ch * k + j];
    for (int64_t j = 0; j < k; ++j) d_[j] = static_cast<float>(sum[j]);
    if (c.kind == Optimizer::SGD) {
        sgd_update(c, 0.f, centroids_.data(), v_.data(), d_.data(), k, 1);
    } else {
        if (s_.size() != centroids_.size()) s_.assign(centroids_.size(), 0.f);
        adam_update(c, 0.f, centroids_.data(), v_.data(), s_.data(), d_.data(), k, 1);
    }
    const float* cent = centroids_.data();
    float* w = K.data();
    parallel_for(n, grain_for(1), threads_for(n, num_threads), [&](int64_t p) { w[p] = cent[code[p]]; });
}

}  // namespace motifcore
