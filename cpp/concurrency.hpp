// Thread safety of engine objects and the bounds on thread counts.
//
// THE RULE. A Layer or a Network may be used from several threads at once (Python releases the
// GIL around every native call). Every entry point that reads or writes an object's state --
// parameters, pattern, optimizer state, gradients, scratch buffers -- holds that object's
// StateGuard for the whole call:
//
//     auto g = layer.guard();    // one layer (and its row-major scratch)
//     auto g = net.guard();      // a network: its own scratch AND every one of its layers
//
// The bindings take the guard after releasing the GIL (bindings/common.hpp: `locked`), so a
// thread waiting for a model never blocks the interpreter and two threads cannot deadlock on
// GIL + guard. Engine functions never take a guard themselves (no recursion, no nesting), so a new
// method -- a new evolution rule, a new loss -- only has to be bound through `locked` like its
// neighbours. Calls on one object are serialised; calls on different objects run in parallel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <vector>

#include "float_mode.hpp"
#include "parallel.hpp"

namespace motifcore {

/// A mutex that can sit inside a copyable object: a copy gets its own, unlocked mutex.
class StateMutex {
public:
    StateMutex() = default;
    StateMutex(const StateMutex&) {}
    StateMutex& operator=(const StateMutex&) { return *this; }
    std::mutex& get() const { return m_; }

private:
    mutable std::mutex m_;
};

/// Holds a set of StateMutexes, locked in address order (so two guards over overlapping sets
/// cannot deadlock) and each once (a layer listed twice is locked once). Move-only RAII. While it
/// lives, the thread computes with subnormals flushed to zero (float_mode.hpp): every entry point
/// holds a guard, so every engine call runs in that mode and the caller's mode returns after it.
/// It also makes `team` -- the guarded model's TeamChoice (parallel.hpp), or nullptr for the
/// pool's own -- the choice of team size for the regions the call starts.
class StateGuard {
public:
    explicit StateGuard(std::vector<const StateMutex*> ms, const TeamChoice* team = nullptr)
        : held_(std::move(ms)), team_(team) {
        std::sort(held_.begin(), held_.end());
        held_.erase(std::unique(held_.begin(), held_.end()), held_.end());
        for (const StateMutex* m : held_) m->get().lock();
    }
    StateGuard(StateGuard&& o) noexcept
        : held_(std::move(o.held_)), float_mode_(std::move(o.float_mode_)), team_(std::move(o.team_)) {
        o.held_.clear();
    }
    StateGuard(const StateGuard&) = delete;
    StateGuard& operator=(const StateGuard&) = delete;
    StateGuard& operator=(StateGuard&&) = delete;
    ~StateGuard() {
        for (auto it = held_.rbegin(); it != held_.rend(); ++it) (*it)->get().unlock();
    }

private:
    std::vector<const StateMutex*> held_;
    FlushSubnormals float_mode_;
    TeamScope team_;
};

/// Largest thread count an entry point accepts: 4 x the logical CPUs (at least 8). Results never
/// depend on the count, and the pool never runs more threads than the CPUs it may use; the cap
/// turns a typo such as 5000 (or a negative value) into a clear error.
int max_num_threads();

/// Throws std::invalid_argument unless 1 <= n <= max_num_threads(); returns n.
int check_num_threads(int64_t n);

}  // namespace motifcore
