// Probe: what one panel_to_rows of a 3000-feature layer at batch 128 (a MotifLinear output or
// input gradient, 1.5 MB) costs with and without its non-finite check, against a memcpy of the
// same bytes. The panel is read back into the caches before each call (as after the kernel that
// wrote it); a 32 MB pass in between evicts the rows written by the last call.
//
// Not part of the build. Build the engine's static library, then this file against it:
//   cmake -S . -B /tmp/ph-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOTIFCORE_BUILD_PYTHON=OFF
//   cmake --build /tmp/ph-build --target motifcore_core
//   g++ -O3 -std=gnu++17 -Icpp scripts/transpose_probe.cpp /tmp/ph-build/libmotifcore_core.a -lpthread
//       -o /tmp/transpose_probe   (one command)
//   /tmp/transpose_probe [rounds=3]
// To compare two builds, build each tree's library and probe, and run them in turn.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common.hpp"
#include "kernels.hpp"

using namespace motifcore;

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 3;
    const int64_t B = 128, n = 3000, ld = panel_ld(B);
    std::vector<float, PanelAllocator<float>> panel(n * ld), out(B * n), copy(B * n);
    for (size_t i = 0; i < panel.size(); ++i) panel[i] = float(i % 1000);
    std::vector<float> evict(8 << 20);
    const char* names[] = {"panel_to_rows, cached stores, check", "panel_to_rows, streamed, check",
                           "panel_to_rows, streamed, no check", "memcpy of the same bytes"};
    std::printf("SIMD level %s, B = %lld, n = %lld, 1 thread; us per call over 40 calls\n", kernels().name,
                static_cast<long long>(B), static_cast<long long>(n));
    for (int r = 0; r < rounds; ++r)
        for (int mode = 0; mode < 4; ++mode) {
            std::vector<double> ts;
            for (int it = 0; it < 40; ++it) {
                for (size_t i = 0; i < evict.size(); i += 16) evict[i] += 1.f;
                for (size_t i = 0; i < panel.size(); i += 16) panel[i] += 0.f;
                const auto t0 = std::chrono::steady_clock::now();
                if (mode == 3)
                    std::memcpy(copy.data(), panel.data(), static_cast<size_t>(B * n) * sizeof(float));
                else
                    panel_to_rows(panel.data(), ld, n, 1, B, out.data(), 1, mode != 2, mode != 0);
                ts.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
            }
            std::sort(ts.begin(), ts.end());
            std::printf("round %d  %-38s min %6.1f  median %6.1f\n", r + 1, names[mode], ts[0], ts[ts.size() / 2]);
        }
    return 0;
}
