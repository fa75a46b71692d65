// Probe (issue 21, branch step4): what bounds the permutations of the fused backward route, and
// whether the ways around them tried on 2026-12-06 are faster. A 3000 x 3000 block pattern at
// density 0.1 (900,000 blocks, each row's columns drawn uniformly, sorted), its transposed positions
// t_pos (Kt[q] = K[t_pos[q]]) and their inverse t_inv (dK[p] = dKt[t_inv[p]]), as BlockPattern
// builds them. Before every timed call a 64 MB buffer is written, so the arrays come from memory
// as in a training step whose working set exceeds L3; dKt is then touched again (the kernel has
// just written it). Minimum and median of 25 calls, 1 thread, µs.
//
// Not part of the build (needs AVX-512 for the hardware-gather rows):
//   g++ -O3 -std=gnu++20 scripts/permute_probe.cpp -o /tmp/permute_probe && /tmp/permute_probe
//
// Rows:
//   gather, prefetch 512 ahead     the engine's gather_prefetched (layer.cpp), one thread
//   gather, no prefetch / 512-bit hardware gather (vpgatherdd) / 256-bit / 512-bit + prefetch
//   source of S floats (warm)      the same loop through random positions into a source of S floats
//                                  that is in cache: L1 (16 KB), L2 (256 KB, 1 MB): the cost of the
//                                  random reads alone against the streams of the positions and output
//   gather + SGD, separate         gather dK, then the SGD-momentum update of K, v from dK (as now)
//   gather + SGD, per entry / in pieces of 256 / in chunks of 16,384: the two fused
//   blocked RB x CB                the gather in tiles of RB output rows x CB input rows (each tile's
//                                  source lines reused in L1), with and without prefetching
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

using Clock = std::chrono::steady_clock;
static double us_since(Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

template <int64_t A>
__attribute__((noinline)) void gather_pf(int64_t n, const int32_t* pos, const float* src, float* dst) {
    int64_t q = 0;
    for (; q < n - A; ++q) {
        __builtin_prefetch(src + pos[q + A]);
        dst[q] = src[pos[q]];
    }
    for (; q < n; ++q) dst[q] = src[pos[q]];
}
__attribute__((noinline)) void gather_plain(int64_t n, const int32_t* pos, const float* src, float* dst) {
    for (int64_t q = 0; q < n; ++q) dst[q] = src[pos[q]];
}
template <bool PF>
__attribute__((target("avx512f"), noinline)) void gather_512(int64_t n, const int32_t* pos, const float* src,
                                                             float* dst) {
    constexpr int64_t A = 256;
    int64_t q = 0;
    for (; q + 16 <= n; q += 16) {
        if (PF && q + A + 16 <= n)
            for (int k = 0; k < 16; ++k) __builtin_prefetch(src + pos[q + A + k]);
        _mm512_storeu_ps(dst + q, _mm512_i32gather_ps(_mm512_loadu_si512(pos + q), src, 4));
    }
    for (; q < n; ++q) dst[q] = src[pos[q]];
}
__attribute__((target("avx2"), noinline)) void gather_256(int64_t n, const int32_t* pos, const float* src, float* dst) {
    int64_t q = 0;
    for (; q + 8 <= n; q += 8)
        _mm256_storeu_ps(dst + q, _mm256_i32gather_ps(src, _mm256_loadu_si256((const __m256i*)(pos + q)), 4));
    for (; q < n; ++q) dst[q] = src[pos[q]];
}

constexpr float kMu = 0.9f, kLr = 0.01f, kWd = 5e-4f;
__attribute__((noinline)) void sgd(int64_t n, float* __restrict w, float* __restrict v, const float* __restrict g) {
    for (int64_t p = 0; p < n; ++p) {
        v[p] = kMu * v[p] + (g[p] + kWd * w[p]);
        w[p] -= kLr * v[p];
    }
}
__attribute__((noinline)) void gather_sgd_entry(int64_t n, const int32_t* __restrict pos, const float* __restrict src,
                                                float* __restrict dK, float* __restrict w, float* __restrict v) {
    constexpr int64_t A = 512;
    for (int64_t p = 0; p < n; ++p) {
        if (p + A < n) __builtin_prefetch(src + pos[p + A]);
        const float g = src[pos[p]];
        dK[p] = g;
        v[p] = kMu * v[p] + (g + kWd * w[p]);
        w[p] -= kLr * v[p];
    }
}
template <int64_t P>
__attribute__((noinline)) void gather_sgd_pieces(int64_t n, const int32_t* pos, const float* src, float* dK, float* w,
                                                 float* v) {
    for (int64_t p0 = 0; p0 < n; p0 += P) {
        const int64_t p1 = std::min(n, p0 + P);
        gather_pf<512>(p1 - p0, pos + p0, src, dK + p0);   // prefetch stays inside the piece
        sgd(p1 - p0, w + p0, v + p0, dK + p0);
    }
}

// Output row d holds entries [dind[d], dind[d + 1]), whose source positions ascend; source row s
// holds [sind[s], sind[s + 1]). Tiles of RB output rows x CB source rows.
template <bool PF>
__attribute__((noinline)) void gather_blocked(int64_t nd, const int64_t* dind, int64_t ns, const int64_t* sind,
                                              const int32_t* __restrict pos, const float* __restrict src,
                                              float* __restrict dst, int64_t RB, int64_t CB) {
    std::vector<int64_t> cur(static_cast<size_t>(RB));
    for (int64_t d0 = 0; d0 < nd; d0 += RB) {
        const int64_t d1 = std::min(nd, d0 + RB);
        for (int64_t d = d0; d < d1; ++d) cur[d - d0] = dind[d];
        for (int64_t s0 = 0; s0 < ns; s0 += CB) {
            const int64_t thr = sind[std::min(ns, s0 + CB)], thr2 = sind[std::min(ns, s0 + 2 * CB)];
            for (int64_t d = d0; d < d1; ++d) {
                int64_t q = cur[d - d0];
                const int64_t qe = dind[d + 1];
                if (PF)   // this row's entries of the next tile
                    for (int64_t f = q; f < std::min(qe, q + 64) && pos[f] < thr2; ++f)
                        if (pos[f] >= thr) __builtin_prefetch(src + pos[f]);
                for (; q < qe && pos[q] < thr; ++q) dst[q] = src[pos[q]];
                cur[d - d0] = q;
            }
        }
    }
}

int main() {
    const int R = 3000, C = 3000;
    const double density = 0.1;
    std::mt19937 rng(1);
    std::vector<int64_t> indptr(R + 1, 0);
    std::vector<int32_t> idx, cols(C);
    for (int c = 0; c < C; ++c) cols[c] = c;
    for (int r = 0; r < R; ++r) {
        std::shuffle(cols.begin(), cols.end(), rng);
        std::vector<int32_t> s(cols.begin(), cols.begin() + static_cast<int>(density * C));
        std::sort(s.begin(), s.end());
        idx.insert(idx.end(), s.begin(), s.end());
        indptr[r + 1] = static_cast<int64_t>(idx.size());
    }
    const int64_t n = static_cast<int64_t>(idx.size());
    std::vector<int64_t> tind(C + 1, 0);
    for (int32_t c : idx) tind[c + 1]++;
    for (int c = 0; c < C; ++c) tind[c + 1] += tind[c];
    std::vector<int64_t> fill(tind.begin(), tind.end() - 1);
    std::vector<int32_t> t_pos(n), t_inv(n);
    for (int r = 0; r < R; ++r)
        for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
            const int64_t q = fill[idx[p]]++;
            t_pos[q] = static_cast<int32_t>(p);
            t_inv[p] = static_cast<int32_t>(q);
        }
    std::vector<float> K(n), Kt(n), Kt_ref(n), dKt(n), dK(n), v(n, 0.f), big(16 << 20);
    for (auto& x : K) x = static_cast<float>(rng() % 1000) * 1e-4f;
    for (auto& x : dKt) x = static_cast<float>(rng() % 1000) * 1e-5f;
    gather_plain(n, t_pos.data(), K.data(), Kt_ref.data());

    auto run = [&](const char* name, auto f) {
        std::vector<double> t;
        for (int rep = 0; rep < 25; ++rep) {
            for (auto& x : big) x += 1.f;
            for (auto& x : dKt) x += 0.f;
            const auto t0 = Clock::now();
            f();
            t.push_back(us_since(t0));
        }
        std::sort(t.begin(), t.end());
        std::printf("%-44s min %8.1f  med %8.1f\n", name, t[0], t[t.size() / 2]);
    };
    std::printf("%lld blocks; K -> Kt through t_pos unless named\n", static_cast<long long>(n));
    run("gather, prefetch 512 ahead", [&] { gather_pf<512>(n, t_pos.data(), K.data(), Kt.data()); });
    run("gather, prefetch 128 ahead", [&] { gather_pf<128>(n, t_pos.data(), K.data(), Kt.data()); });
    run("gather, prefetch 2048 ahead", [&] { gather_pf<2048>(n, t_pos.data(), K.data(), Kt.data()); });
    run("gather, no prefetch", [&] { gather_plain(n, t_pos.data(), K.data(), Kt.data()); });
    run("gather, 512-bit hardware gather", [&] { gather_512<false>(n, t_pos.data(), K.data(), Kt.data()); });
    run("gather, 512-bit hardware gather + prefetch", [&] { gather_512<true>(n, t_pos.data(), K.data(), Kt.data()); });
    run("gather, 256-bit hardware gather", [&] { gather_256(n, t_pos.data(), K.data(), Kt.data()); });
    std::printf("Kt bitwise as the plain gather: %s\n", Kt == Kt_ref ? "yes" : "NO");
    for (int64_t S : {int64_t(4096), int64_t(65536), int64_t(262144)}) {
        std::vector<int32_t> pos(n);
        for (auto& p : pos) p = static_cast<int32_t>(rng() % S);
        char name[64];
        std::snprintf(name, sizeof name, "random source of %lld floats (warm)", static_cast<long long>(S));
        run(name, [&] {
            for (int64_t i = 0; i < S; ++i) K[i] += 0.f;
            gather_pf<512>(n, pos.data(), K.data(), Kt.data());
        });
    }
    run("dKt -> dK through t_inv, prefetch 512", [&] { gather_pf<512>(n, t_inv.data(), dKt.data(), dK.data()); });
    run("gather + SGD, separate (as now)", [&] {
        gather_pf<512>(n, t_inv.data(), dKt.data(), dK.data());
        sgd(n, K.data(), v.data(), dK.data());
    });
    run("gather + SGD, fused per entry", [&] { gather_sgd_entry(n, t_inv.data(), dKt.data(), dK.data(), K.data(), v.data()); });
    run("gather + SGD, fused in pieces of 256", [&] {
        gather_sgd_pieces<256>(n, t_inv.data(), dKt.data(), dK.data(), K.data(), v.data());
    });
    run("gather + SGD, fused in chunks of 16384", [&] {
        gather_sgd_pieces<16384>(n, t_inv.data(), dKt.data(), dK.data(), K.data(), v.data());
    });
    for (int64_t RB : {int64_t(128), int64_t(256), int64_t(512)})
        for (int64_t CB : {int64_t(128), int64_t(256)})
            for (bool pf : {false, true}) {
                char name[64];
                std::snprintf(name, sizeof name, "blocked %lld x %lld%s", static_cast<long long>(RB),
                              static_cast<long long>(CB), pf ? ", prefetch" : "");
                std::fill(Kt.begin(), Kt.end(), 0.f);
                run(name, [&] {
                    if (pf)
                        gather_blocked<true>(C, tind.data(), R, indptr.data(), t_pos.data(), K.data(), Kt.data(), RB, CB);
                    else
                        gather_blocked<false>(C, tind.data(), R, indptr.data(), t_pos.data(), K.data(), Kt.data(), RB, CB);
                });
            }
    gather_plain(n, t_pos.data(), K.data(), Kt_ref.data());
    std::printf("blocked Kt bitwise as the plain gather: %s\n", Kt == Kt_ref ? "yes" : "NO");
    return 0;
}
