// What one parallel region of the engine's pool costs: `chunks` chunks of private work (a
// dependent multiply-add chain of `iters` steps, no shared data) at 1 and at 2 threads, 3000 regions
// each, twice; prints the mean wall time per region. The difference between 2 threads and half of
// 1 thread is the pool's own cost per region (waking the worker, claims, counting, the join).
// Built against the engine's static library:
//
//   cmake -S . -B /tmp/mc-core -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOTIFCORE_BUILD_PYTHON=OFF
//   cmake --build /tmp/mc-core --target motifcore_core
//   g++ -O2 -std=c++17 -Icpp scripts/region_probe.cpp /tmp/mc-core/libmotifcore_core.a -pthread -o /tmp/region_probe
//   /tmp/region_probe 2000 16
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include "parallel.hpp"
static double work(int64_t iters) {
    double x = 1.0;
    for (int64_t i = 0; i < iters; ++i) x = x * 1.0000001 + 1e-9;
    return x;
}
int main(int argc, char** argv) {
    const int64_t iters = argc > 1 ? atoll(argv[1]) : 20000;   // ~ private work per chunk
    const int chunks = argc > 2 ? atoi(argv[2]) : 16;
    volatile double sink = 0;
    for (int t : {1, 2, 1, 2}) {
        const int reps = 3000;
        for (int r = 0; r < 200; ++r) motifcore::parallel_for(chunks, 1, t, [&](int64_t) { sink = sink + work(iters); });
        auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) motifcore::parallel_for(chunks, 1, t, [&](int64_t) { sink = sink + work(iters); });
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
        std::printf("threads %d: %.2f us per region (%d chunks)\n", t, us, chunks);
    }
}
