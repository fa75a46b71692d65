// Probe (issue 21): does this machine's second core give a second core's worth of work? Per-thread
// rates with 1 thread alone, then 2 threads at once: fused multiply-adds in registers (no memory
// traffic; two vCPUs that share one physical core's FMA units would fall towards 0.5), and read
// bandwidth over a private buffer of 1 MiB (L2), 8 MiB (L3) and 64 MiB (DRAM) per thread; and what
// the two threads pay to share data: the round trip of one cache line passed back and forth (a
// counter each thread increments in turn), and the rate at which one thread reads 1 MiB the other
// has just written (as the step's phases do with their panels).
//
// Not part of the build:  gcc -O2 -mavx512f -mfma -pthread scripts/core_probe.c -o /tmp/core_probe
//                         /tmp/core_probe [rounds=1]
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static volatile float sink;

typedef struct { size_t n; float* buf; double rate; } Job;

static void* fma_job(void* arg) {             // GFMA/s of 8 independent chains of 16 lanes
    Job* j = arg;
    __m512 a[8];
    const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
    for (int i = 0; i < 8; ++i) a[i] = _mm512_set1_ps((float)i);
    const long iters = 40000000;
    const double t0 = now();
    for (long k = 0; k < iters; ++k)
        for (int i = 0; i < 8; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
    const double t1 = now();
    float s = 0;
    for (int i = 0; i < 8; ++i) s += _mm512_reduce_add_ps(a[i]);
    sink = s;
    j->rate = iters * 8.0 * 16 / (t1 - t0) / 1e9;
    return 0;
}

static void* read_job(void* arg) {            // GB/s read of j->n floats, repeated for ~2 GB
    Job* j = arg;
    size_t passes = (size_t)(2e9 / (j->n * 4.0));
    if (passes < 3) passes = 3;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const double t0 = now();
    for (size_t p = 0; p < passes; ++p)
        for (size_t i = 0; i < j->n; i += 64)
            for (int k = 0; k < 4; ++k) acc[k] = _mm512_add_ps(acc[k], _mm512_load_ps(j->buf + i + 16 * k));
    const double t1 = now();
    sink = _mm512_reduce_add_ps(acc[0]) + _mm512_reduce_add_ps(acc[3]);
    j->rate = passes * j->n * 4.0 / (t1 - t0) / 1e9;
    return 0;
}

// Cache-line ping-pong: thread 0 waits for even values, thread 1 for odd ones, each adds one.
static _Atomic long ball __attribute__((aligned(64)));
static void* pong(void* arg) {
    const long parity = (long)(size_t)arg, last = 2000000;
    for (;;) {
        long v = ball;
        if (v >= last) return 0;
        if ((v & 1) == parity) ball = v + 1;
    }
}
static double pingpong_ns(void) {
    ball = 0;
    pthread_t th;
    const double t0 = now();
    pthread_create(&th, 0, pong, (void*)1);
    pong((void*)0);
    pthread_join(th, 0);
    return (now() - t0) / 2000000 * 2 * 1e9;   // ns per round trip (two hand-overs)
}

// Handoff bandwidth: in turns, one thread writes 1 MiB, the other reads it (GB/s of the reads).
static float* shared_buf;
static _Atomic int turn;
static double handoff_read_s;
static void* reader(void* arg) {
    (void)arg;
    const size_t n = 1 << 18;
    double t = 0;
    for (int r = 0; r < 200; ++r) {
        while (turn != 2 * r + 1) {}
        const double t0 = now();
        __m512 acc = _mm512_setzero_ps();
        for (size_t i = 0; i < n; i += 16) acc = _mm512_add_ps(acc, _mm512_load_ps(shared_buf + i));
        t += now() - t0;
        sink = _mm512_reduce_add_ps(acc);
        turn = 2 * r + 2;
    }
    handoff_read_s = t;
    return 0;
}
static double handoff_gbs(void) {
    const size_t n = 1 << 18;
    shared_buf = aligned_alloc(64, n * 4);
    turn = 0;
    pthread_t th;
    pthread_create(&th, 0, reader, 0);
    for (int r = 0; r < 200; ++r) {
        while (turn != 2 * r) {}
        for (size_t i = 0; i < n; i += 16) _mm512_store_ps(shared_buf + i, _mm512_set1_ps((float)r));
        turn = 2 * r + 1;
    }
    pthread_join(th, 0);
    free(shared_buf);
    return 200.0 * n * 4 / handoff_read_s / 1e9;
}

static void one_then_two(const char* name, void* (*fn)(void*), Job* j) {
    fn(&j[0]);
    const double one = j[0].rate;
    pthread_t th[2];
    for (int i = 0; i < 2; ++i) pthread_create(&th[i], 0, fn, &j[i]);
    for (int i = 0; i < 2; ++i) pthread_join(th[i], 0);
    printf("%-16s 1 thread %6.1f; 2 threads %6.1f + %6.1f  (per-thread ratio %.2f)\n", name, one, j[0].rate,
           j[1].rate, (j[0].rate + j[1].rate) / 2 / one);
}

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 1;
    const size_t sizes[] = {1 << 18, 2 << 20, 16 << 20};   // floats per thread: 1, 8, 64 MiB
    const char* names[] = {"read 1 MiB GB/s", "read 8 MiB GB/s", "read 64 MiB GB/s"};
    for (int r = 0; r < rounds; ++r) {
        Job j[2] = {{0, 0, 0}, {0, 0, 0}};
        printf("cache-line round trip between the threads %.0f ns; reading 1 MiB the other thread wrote %.1f GB/s\n",
               pingpong_ns(), handoff_gbs());
        one_then_two("FMA GFMA/s", fma_job, j);
        for (int s = 0; s < 3; ++s) {
            for (int i = 0; i < 2; ++i) {
                j[i].n = sizes[s];
                j[i].buf = aligned_alloc(64, sizes[s] * 4);
                for (size_t k = 0; k < sizes[s]; ++k) j[i].buf[k] = 1.f;
            }
            one_then_two(names[s], read_job, j);
            free(j[0].buf);
            free(j[1].buf);
        }
    }
    return 0;
}
