#include "pattern.hpp"

#include <algorithm>

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

}  // namespace motifcore
