// The engine's own thread pool: every parallel loop of the engine runs through parallel_for.
//
// Why not OpenMP: libgomp reads its wait policy once, when it is loaded, and a process has one
// libgomp per soname, owned by whichever library loaded it first (torch ships its own). With the
// default policy a waiting thread spins for milliseconds and steals the core a descheduled team
// member, or another process, needs. This pool is independent of any library's load-time
// environment: a waiting thread spins for a short time (kSpinMicros; kQuietSpinMicros while the
// machine looks quiet) and then sleeps.
//
// Work is cut into chunks of `grain` consecutive indices; the boundaries depend only on the
// problem, never on the thread count. Each member of the team (the caller is member 0) owns one
// contiguous part of the chunk range (below 2^31 chunks) and claims from its front, 1/8 of what
// is left there at a time (at least one), then from the back of the other parts once its own is
// empty, so a worker that is descheduled or wakes late holds up only what it has claimed and not
// yet counted (a thread counts its chunks done once, after its last claim), and a thread gets the
// same part of every region while the team is the same (the SpMM orders its chunks so that the
// part is about the same rows from one step to the next: their cache lines stay on that thread's
// core). Code whose every output element is computed by one index, in a fixed order, therefore
// gives bitwise the same result for any thread count.
//
// How many threads a region gets adapts to the machine (parallel.cpp, TeamChooser): the thread
// count asked for while that is fastest; after regions that stalled on a descheduled worker, a
// trial of half the threads (one for two) timed against the full team, kept while it is faster and
// probed again later. That choice belongs to a model (TeamChoice, owned by each Layer and Network
// and made current by its guard), so stalls seen while one model runs do not shrink the team of
// another; regions started outside a model's guard share the pool's own choice.
// Which thread runs a chunk changes; the chunks, and so the results, do not.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace motifcore {

namespace detail {
class TeamChooser;  // parallel.cpp
}

/// One model's choice of how many threads its regions get (the timing described above). A Layer
/// and a Network each own one; their guard makes it current on the calling thread for the call
/// (TeamScope in StateGuard, concurrency.hpp). Made on the first region that uses it (about 18 KB
/// of timing state). A copy starts afresh, with the full team. Only the team size depends on it.
class TeamChoice {
public:
    TeamChoice() noexcept;
    ~TeamChoice();
    TeamChoice(const TeamChoice&) noexcept;
    TeamChoice& operator=(const TeamChoice&) noexcept;  ///< keeps its own timing state
    /// The timing state, made on first use. Only the pool calls it, for the thread that holds the
    /// owning model's guard, so one thread at a time.
    detail::TeamChooser& chooser() const;

private:
    mutable std::unique_ptr<detail::TeamChooser> impl_;
};

/// While it lives, the parallel regions this thread starts use `choice` (nullptr: the pool's own
/// choice); the thread's previous choice comes back when it ends. Nests; moving hands the restore
/// over. `choice` must outlive the scope.
class TeamScope {
public:
    explicit TeamScope(const TeamChoice* choice) noexcept;
    TeamScope(TeamScope&& o) noexcept;
    TeamScope(const TeamScope&) = delete;
    TeamScope& operator=(const TeamScope&) = delete;
    TeamScope& operator=(TeamScope&&) = delete;
    ~TeamScope();

private:
    const TeamChoice* saved_;
    bool owns_ = true;
};

/// How long a waiting thread (worker or caller) spins before it sleeps, in microseconds: on a
/// quiet machine (the full team ran its last phase without a stall) long enough to cover the serial
/// code between two regions, so a worker is not put to sleep and woken again between them (a wake-up
/// costs tens of microseconds in a virtual machine); otherwise short, so a waiting thread does not
/// take a core another process, or a descheduled team member, needs.
constexpr int kSpinMicros = 20, kQuietSpinMicros = 250;

/// Runs call(ctx, c) for every chunk c in [0, n_chunks) on up to `threads` threads, the calling
/// thread included (fewer while the pool finds that faster, see above). The first exception thrown by a chunk is rethrown here after every chunk that
/// started has finished (chunks not yet started are skipped). Runs every chunk inline, in order,
/// when threads <= 1, n_chunks <= 1, the call is nested inside a chunk, or another thread is using
/// the pool (two models trained from two Python threads never wait for each other).
void parallel_run(int64_t n_chunks, int threads, void (*call)(void*, int64_t), void* ctx);

/// Calls f(i) for every i in [0, n), in chunks of `grain` indices (see parallel_run).
template <class F>
void parallel_for(int64_t n, int64_t grain, int threads, F&& f) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    struct Ctx {
        F* f;
        int64_t n, grain;
    } ctx{&f, n, grain};
    auto call = [](void* p, int64_t c) {
        const Ctx& x = *static_cast<const Ctx*>(p);
        const int64_t i1 = c * x.grain + x.grain < x.n ? c * x.grain + x.grain : x.n;
        for (int64_t i = c * x.grain; i < i1; ++i) (*x.f)(i);
    };
    parallel_run((n + grain - 1) / grain, threads, call, &ctx);
}

/// Indices per chunk for a loop whose every index costs about `work_per_index` operations:
/// chunks of about 16k operations (a few microseconds), so claiming one is cheap beside its work.
inline int64_t grain_for(int64_t work_per_index) {
    constexpr int64_t kChunkWork = int64_t(1) << 14;
    return work_per_index >= kChunkWork ? 1 : kChunkWork / (work_per_index < 1 ? 1 : work_per_index);
}

/// Working state a parallel loop body needs beyond one index (scratch buffers, a running top-k):
/// an index leases an object, made by `make()` when none is free, and the lease gives it back when
/// it ends, so no more objects exist than indices ran at once (at most the thread count). Which
/// object an index gets depends on timing, so use it for scratch that each index resets, or for
/// partial results merged afterwards in a way that does not depend on their order (for_each).
template <class T>
class StatePool {
public:
    template <class Make>
    explicit StatePool(Make make) : make_(std::move(make)) {}

    class Lease {
    public:
        Lease(StatePool& pool, T* obj) : pool_(pool), obj_(obj) {}
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() { pool_.give_back(obj_); }
        T& operator*() const { return *obj_; }
        T* operator->() const { return obj_; }

    private:
        StatePool& pool_;
        T* obj_;
    };

    Lease lease() {
        {
            std::lock_guard<std::mutex> lock(m_);
            if (!free_.empty()) {
                T* obj = free_.back();
                free_.pop_back();
                return Lease(*this, obj);
            }
        }
        auto made = std::make_unique<T>(make_());
        T* obj = made.get();
        std::lock_guard<std::mutex> lock(m_);
        all_.push_back(std::move(made));
        return Lease(*this, obj);
    }

    /// Calls f(obj) for every object made so far (after the parallel loop; no lease may be open).
    template <class F>
    void for_each(F&& f) {
        for (auto& obj : all_) f(*obj);
    }

private:
    void give_back(T* obj) {
        std::lock_guard<std::mutex> lock(m_);
        free_.push_back(obj);
    }

    std::function<T()> make_;
    std::mutex m_;
    std::vector<std::unique_ptr<T>> all_;
    std::vector<T*> free_;
};

/// Threads a parallel call may use now: min(requested, CPUs in the process's affinity mask), the
/// mask being re-read at most once a second (no system call per region).
int usable_threads(int requested);

/// Worker threads the pool holds now (it grows on demand, to the largest thread count asked - 1).
int pool_workers();

/// Regions the pool has run (so far, in this process, for every model) with the full thread count
/// asked for and with a reduced team (half of it), by the choice of the per-region-kind timing.
struct PoolCounts {
    int64_t full = 0, reduced = 0;
};
PoolCounts pool_counts();

/// Stops and joins the pool's workers (waits for a running call to finish). Calls made afterwards
/// start new workers as needed. Called at interpreter exit.
void pool_shutdown();

/// Short description of the threading backend, for build_info().
std::string threading_backend();

}  // namespace motifcore
