#include "parallel.hpp"

#include "float_mode.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace motifcore {
namespace {

// True on pool workers, and on a caller while it runs chunks: a parallel call made there is nested
// and runs inline.
thread_local bool tls_inside = false;

// Body of the last region this thread started outside any chunk: part of the next region's kind.
thread_local uintptr_t tls_last_body = 0;

// The team choice of the model whose guard this thread holds (TeamScope); nullptr: the pool's own.
thread_local const TeamChoice* tls_team = nullptr;

// Sets tls_inside for a scope and restores it, also when a chunk throws.
class InsideScope {
public:
    InsideScope() : saved_(tls_inside) { tls_inside = true; }
    ~InsideScope() { tls_inside = saved_; }
    InsideScope(const InsideScope&) = delete;
    InsideScope& operator=(const InsideScope&) = delete;

private:
    bool saved_;
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Spins until done() holds or about `micros` have passed; returns done().
template <class Done>
bool spin_until(int micros, Done&& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
    for (int i = 1;; ++i) {
        if (done()) return true;
        cpu_relax();
        if (i % 64 == 0 && std::chrono::steady_clock::now() >= deadline) return done();
    }
}

// A wait this long is a descheduled thread, not a slow chunk.
constexpr double kStallMicros = 200.0;

inline double micros_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count();
}

inline uint64_t mix(uint64_t x) {
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ULL;
    return x ^ (x >> 29);
}

}  // namespace

namespace detail {

// ---- How many threads a region gets --------------------------------------------------------
//
// The pool runs every region with the full team (the thread count asked for) until it sees stalls:
// a region whose caller, out of chunks, waited far longer than a chunk takes for a worker to finish
// its last one, or whose workers claimed nothing while the caller worked for a while. On a quiet
// machine neither happens. When other processes take the cores, a worker is descheduled while it
// holds chunks, or wakes late, and the caller (and so the whole step) waits for it. A phase (about
// two steps of training) with stalls starts a trial phase with a reduced team (half of it: one
// thread for two), then a check phase with the full team; the two are compared region kind by
// region kind (a kind: the loop body, the chunk count, the team asked for and the body of the
// region before it, i.e. the same kernel on the same layer at the same point of a step). The check
// comes after the trial, not before it: the phase that started the trial was picked for its stalls
// and would flatter the reduced team. The faster one is kept: a reduced team holds for a while,
// then a probe phase times the full team again; each confirmation doubles the hold (each trial
// that keeps the full team doubles the wait before the next trial). The team is the same for every
// region of a phase, so a worker is either kept busy or left asleep, never woken for odd regions.
// Only who runs the chunks changes, never the chunks.
class TeamChooser {
public:
    // True: the next region gets the full team.
    bool full() const { return phase_ == Phase::Full || phase_ == Phase::Check || phase_ == Phase::Probe; }

    // True while the full team runs and its last phase had no stall (a quiet machine).
    bool quiet() const { return phase_ == Phase::Full && quiet_; }

    // Records a region of kind `key` that took `micros` of wall time; `stall` as above.
    void record(uint64_t key, double micros, bool stall) {
        const int mode = full() ? 1 : 0;
        Kind& k = table_[mix(key) % table_.size()];
        if (k.key != key) k = Kind{key, {0.0, 0.0}, {0, 0}, {0.0, 0.0}, {0, 0}};
        k.sum[mode] += micros;
        ++k.count[mode];
        ++regions_;
        micros_ += micros;
        stalls_ += stall ? 1 : 0;
        since_trial_ += 1;
        if (regions_ < (phase_ == Phase::Reduced ? hold_ : kPhaseRegions) || micros_ < kPhaseMicros) return;
        const int64_t stalls = stalls_;
        if (mode == 1) quiet_ = stalls == 0;
        close_phase(mode);
        switch (phase_) {
            case Phase::Full:
                if (stalls >= kStallsForTrial && since_trial_ >= wait_) {
                    phase_ = Phase::Trial;
                    since_trial_ = 0;
                }
                break;
            case Phase::Trial:
                phase_ = Phase::Check;
                break;
            case Phase::Check:
                if (reduced_faster()) {
                    phase_ = Phase::Reduced;
                } else {
                    phase_ = Phase::Full;
                    wait_ = std::min(2 * std::max(wait_, kPhaseRegions), kMaxHold);
                }
                break;
            case Phase::Reduced:
                phase_ = Phase::Probe;
                break;
            case Phase::Probe:
                if (reduced_faster()) {
                    phase_ = Phase::Reduced;
                    hold_ = std::min(2 * hold_, kMaxHold);
                } else {
                    phase_ = Phase::Full;
                    hold_ = kFirstHold;
                    wait_ = 0;
                }
                break;
        }
    }

private:
    enum class Phase { Full, Trial, Check, Reduced, Probe };
    struct Kind {
        uint64_t key;
        double sum[2];     // wall time of this phase's regions of the kind: [reduced, full]
        int64_t count[2];  // and their number
        double mean[2];    // mean wall time in the last phase of each team size that ran the kind
        uint64_t stamp[2];  // that phase's number
    };

    // Ends the phase of team size `mode`: each kind it ran gets its mean.
    void close_phase(int mode) {
        ++phase_id_[mode];
        for (Kind& k : table_) {
            if (k.count[mode] == 0) continue;
            k.mean[mode] = k.sum[mode] / static_cast<double>(k.count[mode]);
            k.stamp[mode] = phase_id_[mode];
            k.sum[mode] = 0.0;
            k.count[mode] = 0;
        }
        regions_ = 0;
        micros_ = 0.0;
        stalls_ = 0;
    }

    // Whether the last reduced phase took less than kFaster x the last full phase, summed over the
    // kinds both ran (no common kind: no). Below 1, so that a tie keeps the full team.
    bool reduced_faster() const {
        double full = 0.0, reduced = 0.0;
        for (const Kind& k : table_)
            if (k.key != 0 && k.stamp[0] == phase_id_[0] && k.stamp[1] == phase_id_[1] && phase_id_[0] > 0) {
                reduced += k.mean[0];
                full += k.mean[1];
            }
        return full > 0.0 && reduced < kFaster * full;
    }

    // A phase lasts at least kPhaseRegions regions and kPhaseMicros of region time (a reduced hold:
    // hold_ regions); a phase with kStallsForTrial stalls starts a trial.
    static constexpr int64_t kPhaseRegions = 96, kFirstHold = 512, kMaxHold = 16384, kStallsForTrial = 3;
    static constexpr double kPhaseMicros = 20000.0, kFaster = 0.95;

    Phase phase_ = Phase::Full;
    int64_t regions_ = 0, stalls_ = 0, since_trial_ = 0;
    int64_t hold_ = kFirstHold;  // regions of a reduced hold
    int64_t wait_ = 0;           // regions after a trial before the next one
    double micros_ = 0.0;
    bool quiet_ = false;  // the last full phase had no stall
    uint64_t phase_id_[2] = {0, 0};
    std::array<Kind, 256> table_{};
};

}  // namespace detail

using detail::TeamChooser;

namespace {

// One job at a time, submitted by the thread that holds submit_. The job's state word is
// 2 * generation + open. To claim chunks a worker counts itself in active_, checks that the job it
// was woken for is still open (both sequentially consistent), takes a range of chunk indices and
// copies the job's fields, and leaves active_ again before running the chunks: the caller cannot
// finish the job before they are done, and once it has closed the job and seen active_ == 0 no
// worker can claim from it any more. Nothing slow (no lock, no system call) happens while a worker
// is counted in active_, so the caller's final wait for active_ == 0 is a few instructions long.
//
// A claim takes 1/8 of what is left of a member's part (at least one), from the front of its own
// part, then from the back of the others' (claim): few claims where chunks are tiny, single chunks
// at the end so the threads finish together, and a descheduled thread holds at most 1/16 of a
// region on two threads. Chunk counts of 2^31 or more take the earlier scheme, one counter over
// all chunks, 1/(8 x team) of the chunks left at a time.
class Pool {
public:
    // Runs the job on up to `threads` threads (>= 2) with the team that `choice` (nullptr: the
    // pool's own) picks for its kind; false if another caller has the pool.
    bool try_run(int64_t n, int threads, void (*call)(void*, int64_t), void* ctx, uint64_t key,
                 const TeamChoice* choice) {
        std::unique_lock<std::mutex> submit(submit_, std::try_to_lock);
        if (!submit.owns_lock() || stopping_.load()) return false;
        TeamChooser& chooser = choice ? choice->chooser() : chooser_;
        const int team = chooser.full() ? threads : std::max(1, threads / 2);
        const auto start = std::chrono::steady_clock::now();
        bool stall = false;
        if (team <= 1) {
            InsideScope inside;
            for (int64_t c = 0; c < n; ++c) call(ctx, c);
        } else {
            stall = run_team(n, team, call, ctx, start);
        }
        ++(team == threads ? counts_.full : counts_.reduced);
        chooser.record(key, micros_since(start), stall);
        spin_micros_.store(chooser.quiet() ? kQuietSpinMicros : kSpinMicros, std::memory_order_relaxed);
        return true;
    }

    void shutdown() {
        if (tls_inside) return;  // from inside a chunk: the pool is in use by this very call
        stopping_.store(true);
        {
            std::lock_guard<std::mutex> submit(submit_);
            {
                std::lock_guard<std::mutex> lock(m_);
                stop_ = true;
                stop_flag_.store(true);
            }
            work_cv_.notify_all();
            for (auto& t : threads_) t.join();
            threads_.clear();
            std::lock_guard<std::mutex> lock(m_);
            stop_ = false;
            stop_flag_.store(false);
        }
        stopping_.store(false);
    }

    PoolCounts counts() {
        std::lock_guard<std::mutex> submit(submit_);
        return counts_;
    }

    int workers() {
        std::lock_guard<std::mutex> submit(submit_);
        return static_cast<int>(threads_.size());
    }

private:
    // Runs the job on `team` threads, the caller included, started at `start`; rethrows the first
    // exception of a chunk. Returns whether it stalled: the caller, out of chunks, waited more than
    // kStallMicros and 4x its mean chunk time for the workers, or ran every chunk itself for more
    // than kStallMicros.
    bool run_team(int64_t n, int team, void (*call)(void*, int64_t), void* ctx,
                  std::chrono::steady_clock::time_point start) {
        const uint64_t g = (state_.load() >> 1) + 1;
        grow(team - 1, g - 1);
        n_ = n;
        split_ = 8 * static_cast<int64_t>(team);
        team_ = team;
        segmented_ = n < (int64_t(1) << 31);
        if (segmented_) {
            if (static_cast<int>(segs_.size()) < team) segs_ = std::vector<Segment>(static_cast<size_t>(team));
            for (int k = 0; k < team; ++k) {
                const uint64_t lo = static_cast<uint64_t>(n * k / team), hi = static_cast<uint64_t>(n * (k + 1) / team);
                segs_[static_cast<size_t>(k)].w.store(hi << 32 | lo, std::memory_order_relaxed);
            }
        }
        call_ = call;
        ctx_ = ctx;
        next_.store(0, std::memory_order_relaxed);
        done_.store(0, std::memory_order_relaxed);
        failed_.store(false, std::memory_order_relaxed);
        error_ = nullptr;
        participants_.store(team - 1, std::memory_order_relaxed);
        bool wake;
        {
            std::lock_guard<std::mutex> lock(m_);
            state_.store(2 * g + 1);
            wake = sleepers_ > 0;
        }
        if (wake) work_cv_.notify_all();
        int64_t mine = 0;
        {
            InsideScope inside;
            for (int64_t c, end; claim(0, c, end); mine += end - c) run_chunks(call, ctx, c, end);
            count_done(mine, n);
        }
        const double busy = micros_since(start);
        if (!spin_until(spin_micros_.load(std::memory_order_relaxed),
                        [&] { return done_.load(std::memory_order_acquire) == n; })) {
            std::unique_lock<std::mutex> lock(m_);
            done_cv_.wait(lock, [&] { return done_.load(std::memory_order_acquire) == n; });
        }
        state_.store(2 * g);  // close: workers that wake from now on skip this job
        for (int i = 0; active_.load() != 0; ++i) {
            if (i < 64)
                cpu_relax();
            else
                std::this_thread::yield();
        }
        std::exception_ptr error;
        {
            std::lock_guard<std::mutex> lock(m_);
            std::swap(error, error_);
        }
        if (error) std::rethrow_exception(error);
        const double waited = micros_since(start) - busy;
        return (waited > kStallMicros && waited > 4.0 * busy / static_cast<double>(std::max<int64_t>(mine, 1))) ||
               (mine == n && busy > kStallMicros);
    }

    // Claims chunks [c, end) of the open job for team member k (the caller is 0); false when none
    // are left. Segmented: member k takes from the front of its own part, 1/8 of what is left there
    // at a time, then from the back of the others' parts (a member keeps the same part of the
    // index range from one region to the next; the kernels order their chunks so that it is the
    // same data). Otherwise one counter over all chunks.
    bool claim(int k, int64_t& c, int64_t& end) {
        if (segmented_) {
            const int team = team_;
            for (int j = 0; j < team; ++j) {
                Segment& sg = segs_[static_cast<size_t>((k + j) % team)];
                uint64_t w = sg.w.load(std::memory_order_relaxed);
                for (;;) {
                    const uint64_t lo = w & 0xffffffffu, hi = w >> 32;
                    if (lo >= hi) break;
                    const uint64_t take = std::max<uint64_t>(1, (hi - lo) / 8);
                    const uint64_t nw = j == 0 ? (hi << 32 | (lo + take)) : ((hi - take) << 32 | lo);
                    if (sg.w.compare_exchange_weak(w, nw, std::memory_order_relaxed)) {
                        c = static_cast<int64_t>(j == 0 ? lo : hi - take);
                        end = c + static_cast<int64_t>(take);
                        return true;
                    }
                }
            }
            return false;
        }
        const int64_t n = n_, split = split_;
        int64_t cur = next_.load(std::memory_order_relaxed);
        for (;;) {
            if (cur >= n) return false;
            const int64_t take = std::max<int64_t>(1, (n - cur) / split);
            if (next_.compare_exchange_weak(cur, cur + take, std::memory_order_relaxed)) {
                c = cur;
                end = cur + take;
                return true;
            }
        }
    }

    // Starts workers up to `want`; they start waiting for the job after generation `seen`.
    void grow(int want, uint64_t seen) {
        while (static_cast<int>(threads_.size()) < want) {
            const int index = static_cast<int>(threads_.size());
            try {
                threads_.emplace_back([this, index, seen] { worker_main(index, seen); });
            } catch (const std::exception&) {
                return;  // no more threads available: run with the ones we have
            }
        }
    }

    void worker_main(int index, uint64_t seen) {
        tls_inside = true;
        FlushSubnormals::enable_for_thread();  // workers run only engine code (float_mode.hpp)
        while (wait_job(seen)) {
            if (index >= participants_.load(std::memory_order_relaxed)) continue;
            int64_t ran = 0, n = 0;   // chunks run in this job, counted done once at the end
            for (;;) {
                active_.fetch_add(1);
                if (state_.load() != 2 * seen + 1) {
                    active_.fetch_sub(1);
                    break;
                }
                int64_t c = 0, end = 0;
                const bool got = claim(index + 1, c, end);
                n = n_;
                const auto call = call_;
                void* const ctx = ctx_;
                active_.fetch_sub(1);
                if (!got) break;
                run_chunks(call, ctx, c, end);
                ran += end - c;
            }
            count_done(ran, n);   // (0 when the job closed first: it closes only when all are counted)
        }
    }

    // Waits for a generation after `seen` (updated); false when the pool stops.
    bool wait_job(uint64_t& seen) {
        auto fresh = [&] { return (state_.load(std::memory_order_acquire) >> 1) != seen; };
        if (!spin_until(spin_micros_.load(std::memory_order_relaxed),
                        [&] { return fresh() || stop_flag_.load(std::memory_order_relaxed); })) {
            std::unique_lock<std::mutex> lock(m_);
            ++sleepers_;
            work_cv_.wait(lock, [&] { return fresh() || stop_; });
            --sleepers_;
        }
        if (stop_flag_.load()) return false;
        seen = state_.load(std::memory_order_acquire) >> 1;
        return true;
    }

    // Runs claimed chunks [c, end) of the open job; after a chunk has thrown, the chunks claimed
    // later are skipped (the claiming thread still counts them, in count_done).
    void run_chunks(void (*call)(void*, int64_t), void* ctx, int64_t c, int64_t end) {
        for (int64_t i = c; i < end && !failed_.load(std::memory_order_relaxed); ++i) {
            try {
                call(ctx, i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(m_);
                if (!error_) error_ = std::current_exception();
                failed_.store(true, std::memory_order_relaxed);
            }
        }
    }

    // Counts the `ran` chunks a thread ran in the job (of n chunks) done, once, after its last
    // claim came back empty: one update of the shared counter per thread and job instead of one
    // per claim (each moves the counter's cache line between the cores).
    void count_done(int64_t ran, int64_t n) {
        if (ran == 0) return;
        if (done_.fetch_add(ran, std::memory_order_acq_rel) + ran == n) {
            std::lock_guard<std::mutex> lock(m_);
            done_cv_.notify_all();
        }
    }

    std::mutex submit_;                  // held by the one caller using the pool
    std::atomic<bool> stopping_{false};  // shutdown waiting: callers run inline
    std::vector<std::thread> threads_;   // guarded by submit_
    TeamChooser chooser_;                // regions outside a model's guard; guarded by submit_
    PoolCounts counts_;                  // guarded by submit_

    std::mutex m_;
    std::condition_variable work_cv_, done_cv_;
    int sleepers_ = 0;  // guarded by m_
    bool stop_ = false;  // guarded by m_
    std::atomic<bool> stop_flag_{false};
    std::atomic<int> spin_micros_{kSpinMicros};  // how long a waiting thread spins before it sleeps

    // The current job. Fields are written by the caller while the job is closed and no worker
    // is active; workers read them only after entering the open job.
    // The counters the threads update during a job each have a cache line of their own, so that
    // updating one does not take the others' line away from the threads reading them.
    alignas(64) std::atomic<uint64_t> state_{0};
    alignas(64) std::atomic<int> active_{0};
    alignas(64) std::atomic<int64_t> next_{0};
    alignas(64) std::atomic<int64_t> done_{0};
    alignas(64) std::atomic<int> participants_{0};
    int64_t n_ = 0, split_ = 1;
    struct alignas(64) Segment {
        std::atomic<uint64_t> w{0};   // (end << 32) | next of one member's part of the chunks
        Segment() = default;
        Segment(const Segment&) : w(0) {}
    };
    std::vector<Segment> segs_;       // resized only while no job is open
    int team_ = 1;
    bool segmented_ = false;
    void (*call_)(void*, int64_t) = nullptr;
    void* ctx_ = nullptr;
    std::atomic<bool> failed_{false};
    std::exception_ptr error_;  // guarded by m_
};

// Never destroyed: workers may still be parked when the process exits (pool_shutdown joins them
// first when the interpreter exits normally).
Pool* g_pool = nullptr;

Pool& pool() {
    static Pool* p = [] {
        g_pool = new Pool();
#if defined(__linux__)
        // A forked child has none of the parent's workers, and a lock the parent held at the fork
        // stays held: the child starts with a fresh pool (the old one is leaked).
        pthread_atfork(nullptr, nullptr, [] { g_pool = new Pool(); });
#endif
        return g_pool;
    }();
    (void)p;
    return *g_pool;
}

}  // namespace

namespace {

// CPUs in the process's affinity mask (0: unknown), re-read at most once a second: a parallel
// region costs no system call, and a process that changes its mask (taskset, os.sched_setaffinity)
// is followed within a second. Only the team size depends on it, never a result.
int affinity_cpus() {
#if defined(__linux__)
    static std::atomic<int> cached{-1};
    static std::atomic<int64_t> read_at{0};
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count();
    int n = cached.load(std::memory_order_relaxed);
    if (n < 0 || now - read_at.load(std::memory_order_relaxed) >= 1000) {
        cpu_set_t set;
        CPU_ZERO(&set);
        n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
        cached.store(n, std::memory_order_relaxed);
        read_at.store(now, std::memory_order_relaxed);
    }
    return n;
#else
    return 0;
#endif
}

}  // namespace

int usable_threads(int requested) {
    if (requested <= 1) return 1;
    const int cpus = affinity_cpus();
    return cpus > 0 ? std::max(1, std::min(requested, cpus)) : requested;
}

void parallel_run(int64_t n_chunks, int threads, void (*call)(void*, int64_t), void* ctx) {
    const FlushSubnormals float_mode;  // the caller computes in the workers' mode (float_mode.hpp)
    if (!tls_inside) {
        const uintptr_t body = reinterpret_cast<uintptr_t>(call), before = tls_last_body;
        tls_last_body = body;
        if (n_chunks > 1 && threads > 1) {
            const int t = static_cast<int>(std::min<int64_t>(usable_threads(threads), n_chunks));
            const uint64_t key = mix(body) ^ mix(static_cast<uint64_t>(n_chunks) << 8 | static_cast<uint64_t>(t)) ^
                                 (mix(before) << 1);
            if (t > 1 && pool().try_run(n_chunks, t, call, ctx, key, tls_team)) return;
        }
    }
    for (int64_t c = 0; c < n_chunks; ++c) call(ctx, c);
}

TeamChoice::TeamChoice() noexcept = default;
TeamChoice::~TeamChoice() = default;
TeamChoice::TeamChoice(const TeamChoice&) noexcept {}
TeamChoice& TeamChoice::operator=(const TeamChoice&) noexcept { return *this; }

TeamChooser& TeamChoice::chooser() const {
    if (!impl_) impl_ = std::make_unique<TeamChooser>();
    return *impl_;
}

TeamScope::TeamScope(const TeamChoice* choice) noexcept : saved_(tls_team) { tls_team = choice; }
TeamScope::TeamScope(TeamScope&& o) noexcept : saved_(o.saved_), owns_(o.owns_) { o.owns_ = false; }
TeamScope::~TeamScope() {
    if (owns_) tls_team = saved_;
}

int pool_workers() { return pool().workers(); }

PoolCounts pool_counts() { return pool().counts(); }

void pool_shutdown() { pool().shutdown(); }

std::string threading_backend() {
    return "motifcore pool (std::thread workers, fixed-size chunks in one part per thread, fewer threads after "
           "stalls, spin " +
           std::to_string(kSpinMicros) + "-" + std::to_string(kQuietSpinMicros) + " us then sleep)";
}

}  // namespace motifcore
