// Shared utilities of the motifcore engine: argument checks, a portable seeded RNG, thread helpers.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>
#include <exception>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

namespace motifcore {

/// Throws `Exception` with a message built from the streamed arguments when `cond` is false.
#define MC_CHECK_AS(Exception, cond, ...)                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            std::ostringstream mc_msg_;                                       \
            mc_msg_ << __VA_ARGS__;                                           \
            throw Exception(mc_msg_.str());                                   \
        }                                                                     \
    } while (0)

/// Throws std::invalid_argument (ValueError in Python) when `cond` is false.
#define MC_CHECK(cond, ...) MC_CHECK_AS(std::invalid_argument, cond, __VA_ARGS__)

/// Throws std::out_of_range (mapped to IndexError / ValueError by the bindings) when `cond` is false.
#define MC_CHECK_RANGE(cond, ...) MC_CHECK_AS(std::out_of_range, cond, __VA_ARGS__)

/// All ones if x is NaN or infinite (its exponent field all ones), else 0: a branch-free test that
/// compilers vectorise (compare and OR) when it is ORed over an array, even at baseline SSE2.
inline uint32_t nonfinite_mask(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return (u & 0x7f800000u) == 0x7f800000u ? ~0u : 0u;
}

/// splitmix64's state increment.
constexpr uint64_t kSplitmix64Step = 0x9E3779B97F4A7C15ULL;

/// splitmix64's output function of an advanced state.
inline uint64_t splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/// splitmix64: used to expand a user seed into RNG state and as a stateless hash.
inline uint64_t splitmix64(uint64_t& x) { return splitmix64_mix(x += kSplitmix64Step); }

/// Stateless 64-bit hash of (a, b, c, d); the same on every platform and thread count.
inline uint64_t hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t s = a;
    uint64_t h = splitmix64(s);
    s = h ^ b;
    h = splitmix64(s);
    s = h ^ c;
    h = splitmix64(s);
    s = h ^ d;
    return splitmix64(s);
}

/// xoshiro256** generator with its own uniform helpers, so a seed gives the same stream on every
/// platform (std:: distributions are implementation-defined).
class Rng {
public:
    /// Seeds the four state words from `seed` through splitmix64.
    explicit Rng(uint64_t seed = 0) {
        uint64_t x = seed;
        for (auto& w : s_) w = splitmix64(x);
    }
    /// Next raw 64-bit value.
    uint64_t next() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    /// Uniform integer in [0, n), n >= 1, without modulo bias (Lemire's method).
    uint64_t below(uint64_t n) {
        unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
        uint64_t low = static_cast<uint64_t>(m);
        if (low < n) {
            const uint64_t threshold = (0 - n) % n;
            while (low < threshold) {
                m = static_cast<unsigned __int128>(next()) * n;
                low = static_cast<uint64_t>(m);
            }
        }
        return static_cast<uint64_t>(m >> 64);
    }
    /// Uniform double in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4];
};

/// Allocator for activation panels: 64-byte aligned, and large buffers are 2 MiB aligned and
/// advised for transparent huge pages. Kernels gather panel rows at random, and with 4 KiB pages
/// almost every such access misses the first-level TLB.
template <class T>
struct PanelAllocator {
    using value_type = T;
    PanelAllocator() = default;
    template <class U>
    PanelAllocator(const PanelAllocator<U>&) noexcept {}
    T* allocate(size_t n);
    void deallocate(T* p, size_t) noexcept { std::free(p); }
    template <class U>
    bool operator==(const PanelAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const PanelAllocator<U>&) const noexcept { return false; }
};

/// Allocates `bytes` with the panel policy above (throws std::bad_alloc on failure);
/// huge_pages = false: 64-byte aligned, no huge-page advice (StreamAllocator).
void* panel_alloc(size_t bytes, bool huge_pages = true);

template <class T>
T* PanelAllocator<T>::allocate(size_t n) {
    return static_cast<T*>(panel_alloc(n * sizeof(T)));
}

/// Allocator for buffers that kernels only stream through in order (the backward scratch): 64-byte
/// aligned, on ordinary pages. Their accesses do not miss the TLB at random, and a huge page costs
/// much more to fault in than its 512 small pages where the kernel compacts memory for it or a
/// hypervisor backs guest memory lazily (measured 1.2-5.8 s against 0.43-0.5 s per fresh GiB on
/// this project's VM, 2026-12-06): the first training step after `evolve` or
/// `release_workspace()` faults these buffers in again.
template <class T>
struct StreamAllocator {
    using value_type = T;
    StreamAllocator() = default;
    template <class U>
    StreamAllocator(const StreamAllocator<U>&) noexcept {}
    T* allocate(size_t n) { return static_cast<T*>(panel_alloc(n * sizeof(T), false)); }
    void deallocate(T* p, size_t) noexcept { std::free(p); }
    template <class U>
    bool operator==(const StreamAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const StreamAllocator<U>&) const noexcept { return false; }
};

/// A float buffer with the panel allocation policy.
using PanelVector = std::vector<float, PanelAllocator<float>>;
/// A float buffer that kernels stream through (StreamAllocator).
using StreamVector = std::vector<float, StreamAllocator<float>>;

/// Default thread count of the engine: the CPUs in the process's affinity mask.
int default_num_threads();

}  // namespace motifcore
