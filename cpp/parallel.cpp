#include "parallel.hpp"

#include <algorithm>
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

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Spins until done() holds or about kSpinMicros have passed; returns done().
template <class Done>
bool spin_until(Done&& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 1;; ++i) {
        if (done()) return true;
        cpu_relax();
        if (i % 64 == 0 && std::chrono::steady_clock::now() >= deadline) return done();
    }
}

// One job at a time, submitted by the thread that holds submit_. The job's state word is
// 2 * generation + open. To claim a chunk a worker counts itself in active_, checks that the job it
// was woken for is still open (both sequentially consistent), takes a chunk index and copies the
// job's fields, and leaves active_ again before running the chunk: the caller cannot finish the job
// before that chunk is done, and once it has closed the job and seen active_ == 0 no worker can
// claim from it any more. Nothing slow (no lock, no system call) happens while a worker is counted
// in active_, so the caller's final wait for active_ == 0 is a few instructions long.
class Pool {
public:
    // Runs the job with up to `threads` threads (>= 2); false if another caller has the pool.
    bool try_run(int64_t n, int threads, void (*call)(void*, int64_t), void* ctx) {
        std::unique_lock<std::mutex> submit(submit_, std::try_to_lock);
        if (!submit.owns_lock() || stopping_.load()) return false;
        const uint64_t g = (state_.load() >> 1) + 1;
        grow(threads - 1, g - 1);
        n_ = n;
        call_ = call;
        ctx_ = ctx;
        next_.store(0, std::memory_order_relaxed);
        done_.store(0, std::memory_order_relaxed);
        failed_.store(false, std::memory_order_relaxed);
        error_ = nullptr;
        participants_.store(threads - 1, std::memory_order_relaxed);
        bool wake;
        {
            std::lock_guard<std::mutex> lock(m_);
            state_.store(2 * g + 1);
            wake = sleepers_ > 0;
        }
        if (wake) work_cv_.notify_all();
        tls_inside = true;
        for (int64_t c; (c = next_.fetch_add(1, std::memory_order_relaxed)) < n;) run_chunk(call, ctx, c, n);
        tls_inside = false;
        if (!spin_until([&] { return done_.load(std::memory_order_acquire) == n; })) {
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
        submit.unlock();
        if (error) std::rethrow_exception(error);
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

    int workers() {
        std::lock_guard<std::mutex> submit(submit_);
        return static_cast<int>(threads_.size());
    }

private:
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
        while (wait_job(seen)) {
            if (index >= participants_.load(std::memory_order_relaxed)) continue;
            for (;;) {
                active_.fetch_add(1);
                if (state_.load() != 2 * seen + 1) {
                    active_.fetch_sub(1);
                    break;
                }
                const int64_t c = next_.fetch_add(1, std::memory_order_relaxed), n = n_;
                const auto call = call_;
                void* const ctx = ctx_;
                active_.fetch_sub(1);
                if (c >= n) break;
                run_chunk(call, ctx, c, n);
            }
        }
    }

    // Waits for a generation after `seen` (updated); false when the pool stops.
    bool wait_job(uint64_t& seen) {
        auto fresh = [&] { return (state_.load(std::memory_order_acquire) >> 1) != seen; };
        if (!spin_until([&] { return fresh() || stop_flag_.load(std::memory_order_relaxed); })) {
            std::unique_lock<std::mutex> lock(m_);
            ++sleepers_;
            work_cv_.wait(lock, [&] { return fresh() || stop_; });
            --sleepers_;
        }
        if (stop_flag_.load()) return false;
        seen = state_.load(std::memory_order_acquire) >> 1;
        return true;
    }

    // Runs claimed chunk c of the open job (of n chunks) and counts it done.
    void run_chunk(void (*call)(void*, int64_t), void* ctx, int64_t c, int64_t n) {
        if (!failed_.load(std::memory_order_relaxed)) {
            try {
                call(ctx, c);
            } catch (...) {
                std::lock_guard<std::mutex> lock(m_);
                if (!error_) error_ = std::current_exception();
                failed_.store(true, std::memory_order_relaxed);
            }
        }
        if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
            std::lock_guard<std::mutex> lock(m_);
            done_cv_.notify_all();
        }
    }

    std::mutex submit_;                  // held by the one caller using the pool
    std::atomic<bool> stopping_{false};  // shutdown waiting: callers run inline
    std::vector<std::thread> threads_;   // guarded by submit_

    std::mutex m_;
    std::condition_variable work_cv_, done_cv_;
    int sleepers_ = 0;  // guarded by m_
    bool stop_ = false;  // guarded by m_
    std::atomic<bool> stop_flag_{false};

    // The current job. Fields are written by the caller while the job is closed and no worker
    // is active; workers read them only after entering the open job.
    std::atomic<uint64_t> state_{0};
    std::atomic<int> active_{0};
    std::atomic<int> participants_{0};
    int64_t n_ = 0;
    void (*call_)(void*, int64_t) = nullptr;
    void* ctx_ = nullptr;
    std::atomic<int64_t> next_{0}, done_{0};
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

int usable_threads(int requested) {
    if (requested <= 1) return 1;
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, std::min(requested, CPU_COUNT(&set)));
#endif
    return requested;
}

void parallel_run(int64_t n_chunks, int threads, void (*call)(void*, int64_t), void* ctx) {
    if (n_chunks > 1 && threads > 1 && !tls_inside) {
        const int t = static_cast<int>(std::min<int64_t>(usable_threads(threads), n_chunks));
        if (t > 1 && pool().try_run(n_chunks, t, call, ctx)) return;
    }
    for (int64_t c = 0; c < n_chunks; ++c) call(ctx, c);
}

int pool_workers() { return pool().workers(); }

void pool_shutdown() { pool().shutdown(); }

std::string threading_backend() {
    return "motifcore pool (std::thread workers, dynamic fixed-size chunks, spin " + std::to_string(kSpinMicros) +
           " us then sleep)";
}

}  // namespace motifcore
