// Subnormal floats: the engine computes with them flushed to zero.
//
// A float below 2^-126 (~1.2e-38) in magnitude is subnormal. On x86 every multiply or add that
// reads or produces one takes a microcode assist, tens to a hundred times the cost of a normal
// one. Training makes them: a weight that receives no gradient (a neuron without a path to the
// loss) shrinks geometrically under weight decay, and with Adam it reaches the subnormal range in a
// few thousand steps; a third of a layer's weights there made whole epochs 3-5x slower.
//
// So the engine runs every call in flush-to-zero / denormals-are-zero mode (x86: MXCSR FTZ and DAZ;
// AArch64: FPCR.FZ): a subnormal result becomes 0 and a subnormal input reads as 0. The mode is
// per thread. The pool's workers set it once when they start (they run nothing but engine code);
// the calling thread gets it for the duration of each engine call (FlushSubnormals in StateGuard
// and in parallel_run) and its previous mode back on return, so the user's own NumPy code keeps
// IEEE gradual underflow. Every thread that computes part of a result runs in the same mode, so
// results stay independent of the thread count.
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include <xmmintrin.h>
#define MOTIFCORE_FLOAT_MODE_X86 1
#elif defined(__aarch64__)
#define MOTIFCORE_FLOAT_MODE_ARM64 1
#endif

namespace motifcore {

/// RAII: flush-to-zero and denormals-are-zero on this thread for the object's lifetime; the
/// thread's previous mode comes back when it ends. Nests; moving hands the restore over.
class FlushSubnormals {
public:
#if defined(MOTIFCORE_FLOAT_MODE_X86)
    using Word = unsigned int;
    static constexpr Word kBits = 0x8040u;  // MXCSR bit 15 (FTZ) | bit 6 (DAZ)
    static Word read() noexcept { return _mm_getcsr(); }
    static void write(Word w) noexcept { _mm_setcsr(w); }
#elif defined(MOTIFCORE_FLOAT_MODE_ARM64)
    using Word = uint64_t;
    static constexpr Word kBits = Word(1) << 24;  // FPCR.FZ
    static Word read() noexcept {
        Word w;
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(w));
        return w;
    }
    static void write(Word w) noexcept { __asm__ __volatile__("msr fpcr, %0" : : "r"(w)); }
#else
    using Word = unsigned int;
    static constexpr Word kBits = 0;  // no known control: IEEE mode stays (slower, same contract)
    static Word read() noexcept { return 0; }
    static void write(Word) noexcept {}
#endif

    FlushSubnormals() noexcept : saved_(read()) {
        if ((saved_ & kBits) != kBits) {
            write(saved_ | kBits);
            owns_ = true;
        }
    }
    FlushSubnormals(FlushSubnormals&& o) noexcept : saved_(o.saved_), owns_(o.owns_) { o.owns_ = false; }
    FlushSubnormals(const FlushSubnormals&) = delete;
    FlushSubnormals& operator=(const FlushSubnormals&) = delete;
    FlushSubnormals& operator=(FlushSubnormals&&) = delete;
    ~FlushSubnormals() {
        if (owns_) write(saved_);
    }

    /// Sets the mode on this thread for good (the pool's workers, at start).
    static void enable_for_thread() noexcept { write(read() | kBits); }

    /// True when this thread flushes subnormals now (always false where no control is known).
    static bool active() noexcept { return kBits != 0 && (read() & kBits) == kBits; }

private:
    Word saved_;
    bool owns_ = false;
};

}  // namespace motifcore
