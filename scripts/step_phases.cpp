// Probe (issue 21): where the training step of 784-3000-3000-3000-10 (density 0.1, m = 1, B = 128,
// SGD momentum) spends its wall time at 1 and 2 threads, phase by phase, and how the work of the
// fused backward's regions divides between the pool's threads.
//
// Not part of the build. Build the engine's static library, then this file against it:
//   cmake -S . -B /tmp/ph-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOTIFCORE_BUILD_PYTHON=OFF
//   cmake --build /tmp/ph-build --target motifcore_core
//   g++ -O3 -std=gnu++17 -mavx512f -mavx512vl -mavx2 -mfma -mprefer-vector-width=512 -Icpp
//       scripts/step_phases.cpp /tmp/ph-build/libmotifcore_core.a -lpthread -o /tmp/step_phases
//   /tmp/step_phases [rounds=30] [batch=128] [fresh|kept]
//
// The step is Network::train_step's sequence re-enacted with the engine's public pieces (Layer::
// forward, the kernel table, Layer::optimizer_step) and Layer::backward's fused route copied here,
// each piece timed by wall clock; rounds alternate 1 and 2 threads, and per phase the minimum and
// the median over the rounds are printed. The gradient goes back to CSR order by the engine's
// gather through the inverse positions (t_inv) in even rounds and by main b3f4352's scatter through
// t_pos in odd ones (the "scatter" rows; the sum leaves them out). "engine train_step" times
// Network::train_step itself on copies of the layers. A second table splits each region of the
// fused route at 2 threads by thread (an instrumented copy of the region bodies): the caller is
// thread 0; busy = the sum of the thread's chunk times. fresh (default): each step gets a new
// TeamChoice (the full team, waiting threads spin 20 us); kept: one per thread count, as a model
// keeps its own (250 us once a phase ran without stalls). FUSED_BUDGET_KB=N runs the kernel's
// copy with row blocks of N KiB of dU (default: the engine's 768). The copies carry the engine's
// prefetch of the next input row's segment and rows (branch step4).
//
// The "x:" rows (layer 2 only; left out of the sum) try a merge of two regions: layer 2's kernel
// again and layer 1's K -> Kt gather into a buffer of its own, once one after the other and once
// in one set of regions, the gather's chunks spread among the kernel's first region's chunks (a
// memory-bound pass on one core beside the kernel on the other). Rounds alternate which goes first.
//
// On a busy machine: run it under `chrt -f 1` (the other processes wait for the few seconds it
// takes); for 1-thread times that no other process's memory traffic disturbs, also hold the other
// CPU with an idle real-time spinner and pin the probe to this one (`taskset -c 0`).
#define MC_ISA_NS probe_avx512
#define MC_VEC_BYTES 64
#define MC_ISA_NAME "probe-avx512"
#define MC_TABLE_FN probe_step_kernels_avx512
#include "kernels_impl.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "layer.hpp"
#include "network.hpp"
#include "parallel.hpp"

namespace motifcore {
const KernelTable& probe_step_kernels_avx512();
}

using namespace motifcore;
using Clock = std::chrono::steady_clock;

static double us_since(Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

// ---- per-thread accounting of chunks -------------------------------------------------------------
static std::atomic<int> g_next_tid{0};
static thread_local int tls_tid = -1;
static int tid() {
    if (tls_tid < 0) tls_tid = g_next_tid.fetch_add(1);
    return tls_tid;
}
struct ThreadAcct {
    double busy[8] = {};
    int64_t chunks[8] = {};
    void reset() { *this = ThreadAcct{}; }
};
static ThreadAcct g_acct;
static bool g_scatter = false;   // how dK comes back: this round's choice

// parallel_for whose chunks add their time to g_acct under the running thread's index.
template <class F>
static void timed_for(int64_t n, int64_t grain, int threads, F&& f) {
    const int64_t n_chunks = (n + grain - 1) / grain;
    parallel_for(n_chunks, 1, threads, [&](int64_t c) {
        const auto t0 = Clock::now();
        for (int64_t i = c * grain; i < std::min(n, (c + 1) * grain); ++i) f(i);
        const int t = tid() & 7;
        g_acct.busy[t] += us_since(t0);   // one thread per slot: no race between threads
        g_acct.chunks[t] += 1;
    });
}

// Layer.cpp's permute_prefetched, with per-thread accounting.
static void permute(int64_t n, const int32_t* pos, const float* src, float* dst, bool gather, int nt) {
    constexpr int64_t kAhead = 512, kChunk = int64_t(1) << 14;
    timed_for((n + kChunk - 1) / kChunk, 1, threads_for(n, nt), [&](int64_t c) {
        const int64_t q0 = c * kChunk, q1 = std::min(n, q0 + kChunk), qp = std::min(q1, n - kAhead);
        int64_t q = q0;
        if (gather) {
            for (; q < qp; ++q) {
                __builtin_prefetch(src + pos[q + kAhead]);
                dst[q] = src[pos[q]];
            }
            for (; q < q1; ++q) dst[q] = src[pos[q]];
        } else {
            for (; q < qp; ++q) {
                __builtin_prefetch(dst + pos[q + kAhead], 1);
                dst[pos[q]] = src[q];
            }
            for (; q < q1; ++q) dst[pos[q]] = src[q];
        }
    });
}

// kernels_impl.hpp's fused_backward driver, with per-thread accounting (one region per row block).
namespace motifcore::probe_avx512 {
static void fused_backward_acct(int64_t cols, int64_t rows, const int64_t* t_indptr, const int32_t* t_rows,
                                const float* Kt, const float* dU, const float* S, float* dKt, float* dS, int64_t B,
                                int64_t ld, int64_t* cur, int num_threads, std::vector<double>* region_wall) {
    const char* kb = std::getenv("FUSED_BUDGET_KB");   // the row budget, to try others (default the engine's)
    const int64_t budget = kb ? std::atol(kb) * 1024 : kFusedRowBudget;
    const int64_t rb_max = std::max<int64_t>(16, budget / (ld * 4));
    const int64_t per_col = t_indptr[cols] / std::max<int64_t>(1, cols);
    const int64_t n_rb = std::max<int64_t>(1, std::min((rows + rb_max - 1) / rb_max, per_col / kFusedMinSegment));
    const int64_t rb = (rows + n_rb - 1) / n_rb;
    const int64_t Bv = B - B % W, nvec = Bv / W, n_tiles = (nvec + kFusedNV - 1) / kFusedNV;
    std::copy(t_indptr, t_indptr + cols, cur);
    const int threads = threads_for(t_indptr[cols] * B + cols, num_threads);
    constexpr int64_t kChunkCols = 16;
    for (int64_t k = 0; k < n_rb; ++k) {
        const int32_t r_end = static_cast<int32_t>(std::min(rows, (k + 1) * rb));
        const auto t0 = Clock::now();
        timed_for((cols + kChunkCols - 1) / kChunkCols, 1, threads, [&](int64_t chunk) {
            alignas(64) float dot[kDotEntries * W];
            const int64_t c_stop = std::min(cols, (chunk + 1) * kChunkCols);
            for (int64_t c = chunk * kChunkCols; c < c_stop; ++c) {
                const int64_t p = cur[c], pe = t_indptr[c + 1];
                int64_t q = p;
                while (q < pe && t_rows[q] < r_end) ++q;
                cur[c] = q;
                if (c + 1 < c_stop) {   // the engine's prefetch of the next input row's segment and rows
                    const int64_t a = cur[c + 1], z = std::min(t_indptr[c + 2], a + (q - p) + 16);
                    for (int64_t f = a; f < z; f += 16) {
                        __builtin_prefetch(t_rows + f);
                        __builtin_prefetch(Kt + f);
                        __builtin_prefetch(dKt + f, 1);
                    }
                    for (int64_t b = 0; b < B; b += 16) {
                        __builtin_prefetch(S + (c + 1) * ld + b);
                        __builtin_prefetch(dS + (c + 1) * ld + b, 1);
                    }
                }
                const bool fresh = k == 0;
                if (q == p && !fresh) continue;
                const float* s = S + c * ld;
                float* g = dS + c * ld;
                const int64_t piece = n_tiles > 1 ? kDotEntries : std::max<int64_t>(1, q - p);
                for (int64_t e0 = p; e0 < q || e0 == p; e0 += piece) {
                    const int64_t e1 = std::min(q, e0 + piece);
                    for (int64_t t = 0; t < n_tiles; ++t) {
                        const int nv = static_cast<int>(std::min<int64_t>(kFusedNV, nvec - t * kFusedNV));
                        fused_tile_n<kFusedNV>(nv, t, n_tiles, t_rows + e0, Kt + e0, e1 - e0, dU, ld,
                                               t * kFusedNV * W, s, g, fresh && e0 == p, dot, dKt + e0);
                    }
                }
            }
        });
        if (region_wall) region_wall->push_back(us_since(t0));
    }
}
// The same driver with a second, independent pass in its first region: the K -> Kt gather of
// another layer (chunks of 16,384 entries, prefetched as permute()), its chunks spread evenly among
// the kernel's chunks of 16 input rows, so that a thread of a 2-thread team runs one beside the
// other's kernel work (a memory-bound pass beside an L2-bound one) instead of both at once.
static void fused_backward_merged(int64_t cols, int64_t rows, const int64_t* t_indptr, const int32_t* t_rows,
                                  const float* Kt, const float* dU, const float* S, float* dKt, float* dS, int64_t B,
                                  int64_t ld, int64_t* cur, int num_threads, int64_t g_n, const int32_t* g_pos,
                                  const float* g_src, float* g_dst) {
    const int64_t budget = kFusedRowBudget;
    const int64_t rb_max = std::max<int64_t>(16, budget / (ld * 4));
    const int64_t per_col = t_indptr[cols] / std::max<int64_t>(1, cols);
    const int64_t n_rb = std::max<int64_t>(1, std::min((rows + rb_max - 1) / rb_max, per_col / kFusedMinSegment));
    const int64_t rb = (rows + n_rb - 1) / n_rb;
    const int64_t Bv = B - B % W, nvec = Bv / W, n_tiles = (nvec + kFusedNV - 1) / kFusedNV;
    std::copy(t_indptr, t_indptr + cols, cur);
    const int threads = threads_for(t_indptr[cols] * B + cols, num_threads);
    constexpr int64_t kChunkCols = 16, kAhead = 512, kGChunk = int64_t(1) << 14;
    const int64_t nF = (cols + kChunkCols - 1) / kChunkCols, nG = (g_n + kGChunk - 1) / kGChunk;
    for (int64_t k = 0; k < n_rb; ++k) {
        const int32_t r_end = static_cast<int32_t>(std::min(rows, (k + 1) * rb));
        const int64_t extra = k == 0 ? nG : 0, T = nF + extra;
        parallel_for(T, 1, threads, [&](int64_t i) {
            const int64_t before = extra ? i * extra / T : 0;
            if (extra && (i + 1) * extra / T > before) {   // a gather chunk
                const int64_t q0 = before * kGChunk, q1 = std::min(g_n, q0 + kGChunk), qp = std::min(q1, g_n - kAhead);
                int64_t q = q0;
                for (; q < qp; ++q) {
                    __builtin_prefetch(g_src + g_pos[q + kAhead]);
                    g_dst[q] = g_src[g_pos[q]];
                }
                for (; q < q1; ++q) g_dst[q] = g_src[g_pos[q]];
                return;
            }
            const int64_t chunk = i - before;
            alignas(64) float dot[kDotEntries * W];
            const int64_t c_stop = std::min(cols, (chunk + 1) * kChunkCols);
            for (int64_t c = chunk * kChunkCols; c < c_stop; ++c) {
                const int64_t p = cur[c], pe = t_indptr[c + 1];
                int64_t q = p;
                while (q < pe && t_rows[q] < r_end) ++q;
                cur[c] = q;
                if (c + 1 < c_stop) {   // the engine's prefetch of the next input row's segment and rows
                    const int64_t a = cur[c + 1], z = std::min(t_indptr[c + 2], a + (q - p) + 16);
                    for (int64_t f = a; f < z; f += 16) {
                        __builtin_prefetch(t_rows + f);
                        __builtin_prefetch(Kt + f);
                        __builtin_prefetch(dKt + f, 1);
                    }
                    for (int64_t b = 0; b < B; b += 16) {
                        __builtin_prefetch(S + (c + 1) * ld + b);
                        __builtin_prefetch(dS + (c + 1) * ld + b, 1);
                    }
                }
                const bool fresh = k == 0;
                if (q == p && !fresh) continue;
                const float* s = S + c * ld;
                float* g = dS + c * ld;
                const int64_t piece = n_tiles > 1 ? kDotEntries : std::max<int64_t>(1, q - p);
                for (int64_t e0 = p; e0 < q || e0 == p; e0 += piece) {
                    const int64_t e1 = std::min(q, e0 + piece);
                    for (int64_t t = 0; t < n_tiles; ++t) {
                        const int nv = static_cast<int>(std::min<int64_t>(kFusedNV, nvec - t * kFusedNV));
                        fused_tile_n<kFusedNV>(nv, t, n_tiles, t_rows + e0, Kt + e0, e1 - e0, dU, ld,
                                               t * kFusedNV * W, s, g, fresh && e0 == p, dot, dKt + e0);
                    }
                }
            }
        });
    }
}
}  // namespace motifcore::probe_avx512

// ---- the step, phase by phase --------------------------------------------------------------------
struct Phases {
    std::vector<std::string> names;
    std::map<std::string, std::vector<double>> t;   // per phase, one entry per round
    Clock::time_point t0;
    void start() { t0 = Clock::now(); }
    void stop(const std::string& name) {
        const double us = us_since(t0);
        if (!t.count(name)) names.push_back(name);
        t[name].push_back(us);
        t0 = Clock::now();
    }
};

struct Model {
    std::vector<std::shared_ptr<Layer>> layers;
    std::vector<LayerWork> work;
    BackwardScratch scratch;
    PanelVector x0, dlogits;
    std::vector<float> X, kt_other;
    std::vector<int64_t> y;
    int64_t B;
};

static void step_phases(Model& m, int nt, Phases& ph, bool acct_2t, std::map<std::string, ThreadAcct>* acct) {
    const int64_t B = m.B, ld = panel_ld(B);
    const size_t L = m.layers.size();
    const KernelTable& kt = kernels();
    auto account = [&](const std::string& name) {
        if (acct) (*acct)[name] = g_acct;
        g_acct.reset();
    };
    g_acct.reset();
    ph.start();
    rows_to_panel(m.X.data(), m.layers[0]->n_in, nullptr, B, m.x0.data(), ld, nt);
    ph.stop("gather input");
    const float* in = m.x0.data();
    for (size_t l = 0; l < L; ++l) {
        m.layers[l]->forward(in, B, m.work[l], nt);
        in = m.work[l].Ap;
        ph.stop("forward L" + std::to_string(l));
    }
    // Softmax cross-entropy gradient (serial: 10 x B).
    const float* Z = m.work[L - 1].Ap;
    const int64_t C = m.layers[L - 1]->n_out;
    for (int64_t s = 0; s < B; ++s) {
        float mx = Z[s];
        for (int64_t c = 1; c < C; ++c) mx = std::max(mx, Z[c * ld + s]);
        double sum = 0;
        for (int64_t c = 0; c < C; ++c) sum += std::exp(double(Z[c * ld + s] - mx));
        for (int64_t c = 0; c < C; ++c)
            m.dlogits[c * ld + s] =
                float(std::exp(double(Z[c * ld + s] - mx)) / sum - (c == m.y[s] ? 1.0 : 0.0)) / float(B);
    }
    ph.stop("loss");
    for (size_t l = L; l-- > 0;) {
        Layer& layer = *m.layers[l];
        LayerWork& w = m.work[l];
        const float* grad = l + 1 == L ? m.dlogits.data() : m.scratch.dS.data();
        const std::string sfx = " L" + std::to_string(l);
        auto pis = layer.params_in_place();
        kt.group_backward(layer.G_out, 1, layer.n_out, grad, 1, w.Ap, layer.activation == Activation::ReLU, 1.f,
                          true, w.dUp, pis.db.data, B, ld, nt);
        ph.stop("group_backward" + sfx);
        const auto& pat = layer.pattern();
        if (l == 0) {
            g_acct.reset();
            kt.sddmm(layer.G_out, pat.indptr().data(), pat.indices().data(), w.dUp, w.S_ptr, pis.dK.data, B, ld,
                     m.scratch.cursor.data(), nt);
            ph.stop("sddmm" + sfx);
            continue;
        }
        const int64_t nnz = layer.n_blocks();
        float* Kt = m.scratch.buf.data();
        float* dKt = Kt + nnz;
        const int32_t* pos = pat.t_pos().data();
        g_acct.reset();
        permute(nnz, pos, layer.weights().data(), Kt, true, nt);
        ph.stop("permute K->Kt" + sfx);
        account("permute K->Kt" + sfx);
        if (acct || std::getenv("FUSED_BUDGET_KB")) {
            std::vector<double> walls;
            probe_avx512::fused_backward_acct(layer.G_in, layer.G_out, pat.t_indptr().data(), pat.t_rows().data(), Kt,
                                              w.dUp, w.S_ptr, dKt, m.scratch.dS.data(), B, ld,
                                              m.scratch.cursor.data(), nt, &walls);
        } else {
            kt.fused_backward(layer.G_in, layer.G_out, pat.t_indptr().data(), pat.t_rows().data(), Kt, w.dUp, w.S_ptr,
                              dKt, m.scratch.dS.data(), B, ld, m.scratch.cursor.data(), nt);
        }
        ph.stop("fused kernel" + sfx);
        account("fused kernel" + sfx);
        if (g_scatter) {   // main b3f4352: a scatter through t_pos
            permute(nnz, pos, dKt, pis.dK.data, false, nt);
            ph.stop("scatter dKt->dK" + sfx);
            account("scatter dKt->dK" + sfx);
        } else {           // since: a gather through the inverse positions
            permute(nnz, pat.t_inv().data(), dKt, pis.dK.data, true, nt);
            ph.stop("inv. gather dK<-dKt" + sfx);
            account("inv. gather dK<-dKt" + sfx);
        }
        if (l == 2 && !acct) {
            // "x:" rows (left out of the sum): layer 2's kernel again, and layer 1's K -> Kt gather
            // (into a buffer of its own), once as two phases and once merged into one first region.
            Layer& prev = *m.layers[1];
            const auto& pp = prev.pattern();
            const int64_t n1 = prev.n_blocks();
            m.kt_other.resize(static_cast<size_t>(n1));
            auto separate = [&] {
                kt.fused_backward(layer.G_in, layer.G_out, pat.t_indptr().data(), pat.t_rows().data(), Kt, w.dUp,
                                  w.S_ptr, dKt, m.scratch.dS.data(), B, ld, m.scratch.cursor.data(), nt);
                permute(n1, pp.t_pos().data(), prev.weights().data(), m.kt_other.data(), true, nt);
                ph.stop("x: kernel L2, then gather K->Kt L1");
            };
            auto merged = [&] {
                probe_avx512::fused_backward_merged(layer.G_in, layer.G_out, pat.t_indptr().data(),
                                                    pat.t_rows().data(), Kt, w.dUp, w.S_ptr, dKt,
                                                    m.scratch.dS.data(), B, ld, m.scratch.cursor.data(), nt, n1,
                                                    pp.t_pos().data(), prev.weights().data(), m.kt_other.data());
                ph.stop("x: the two in merged regions");
            };
            if (g_scatter) {
                merged();
                separate();
            } else {
                separate();
                merged();
            }
        }
    }
    OptimConfig o;
    o.lr = 0.01f;
    o.momentum = 0.9f;
    for (size_t l = 0; l < L; ++l) {
        m.layers[l]->optimizer_step(o, nt);
        ph.stop("optimizer L" + std::to_string(l));
    }
    (void)acct_2t;
}

static double pct(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

int main(int argc, char** argv) {
    (void)tid();   // the calling thread is thread 0
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 30;
    const int64_t B = argc > 2 ? std::atol(argv[2]) : 128;
    const bool keep_choice = argc > 3 && std::string(argv[3]) == "kept";
    TeamChoice kept[3];
    const std::vector<int64_t> sizes{784, 3000, 3000, 3000, 10};
    Model m;
    m.B = B;
    for (size_t l = 0; l + 1 < sizes.size(); ++l) {
        LayerConfig c;
        c.n_in = sizes[l];
        c.n_out = sizes[l + 1];
        c.density = 0.1;
        c.activation = l + 2 < sizes.size() ? Activation::ReLU : Activation::Linear;
        c.seed = 1000 + l;
        m.layers.push_back(std::make_shared<Layer>(c));
    }
    const int64_t ld = panel_ld(B);
    m.work.resize(m.layers.size());
    m.X.resize(static_cast<size_t>(B * sizes[0]));
    m.y.resize(static_cast<size_t>(B));
    uint64_t st = 12345;
    for (auto& v : m.X) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        v = static_cast<float>(static_cast<double>(st >> 40) / 16777216.0);
    }
    for (int64_t s = 0; s < B; ++s) m.y[s] = s % 10;
    m.x0.resize(static_cast<size_t>(sizes[0] * ld));
    m.dlogits.resize(static_cast<size_t>(10 * ld));
    for (size_t l = 0; l < m.layers.size(); ++l) {
        m.work[l].share_out = true;
        m.work[l].shared = &m.scratch;
        if (l > 0) m.layers[l]->ensure_transposed(2);
        if (l > 0) const_cast<BlockPattern&>(m.layers[l]->pattern()).reindex_inverse(2);
        m.work[l].ensure(*m.layers[l], B, l > 0);
    }
    // The same network through the engine's own step, for comparison.
    std::vector<std::shared_ptr<Layer>> copies;
    for (auto& p : m.layers) copies.push_back(std::make_shared<Layer>(*p));
    Network net1(copies, 1), net2(copies, 2);
    TrainConfig tc;
    tc.optim.lr = 0.01f;
    tc.optim.momentum = 0.9f;

    Phases ph[3];   // [threads]
    std::map<std::string, ThreadAcct> acct_sum;
    std::map<std::string, std::vector<double>> imbalance;   // per region: |busy0 - busy1| / wall
    std::vector<double> eng[3];
    for (int r = 0; r < rounds + 2; ++r) {
        g_scatter = r % 2 == 1;
        for (int nt = 1; nt <= 2; ++nt) {
            Phases scratch_ph;
            {
                // The full team: a fresh choice per step (too short for the pool's trial of fewer
                // threads; its waiting threads spin 20 us), or one kept as a model keeps its own
                // (spins 250 us once a phase ran without stalls).
                TeamChoice fresh;
                TeamScope scope(keep_choice ? &kept[nt] : &fresh);
                step_phases(m, nt, r >= 2 ? ph[nt] : scratch_ph, false, nullptr);
            }
            Network& net = nt == 1 ? net1 : net2;
            TeamChoice fresh;
            TeamScope scope(keep_choice ? &kept[nt] : &fresh);
            const auto t0 = Clock::now();
            net.train_step(m.X.data(), m.y.data(), B, 0.01f, tc);
            if (r >= 2) eng[nt].push_back(us_since(t0));
        }
        // An accounted 2-thread step (instrumented region bodies): per-thread busy time.
        std::map<std::string, ThreadAcct> acct;
        Phases acc_ph;
        {
            TeamChoice fresh;
            TeamScope scope(&fresh);
            step_phases(m, 2, acc_ph, true, &acct);
        }
        if (r >= 2)
            for (auto& kv : acct) {
                auto& s = acct_sum[kv.first];
                for (int t = 0; t < 8; ++t) {
                    s.busy[t] += kv.second.busy[t];
                    s.chunks[t] += kv.second.chunks[t];
                }
                const double wall = acc_ph.t[kv.first].back();
                double mx = 0, tot = 0;
                for (int t = 0; t < 8; ++t) {
                    mx = std::max(mx, kv.second.busy[t]);
                    tot += kv.second.busy[t];
                }
                imbalance[kv.first + " wall"].push_back(wall);
                imbalance[kv.first + " busiest"].push_back(mx);
                imbalance[kv.first + " total"].push_back(tot);
            }
    }
    std::printf("%-24s %10s %10s %10s %10s %8s %8s\n", "phase (us)", "1T min", "1T med", "2T min", "2T med",
                "min x", "med x");
    double s1 = 0, s2 = 0, m1 = 0, m2 = 0;
    for (const auto& n : ph[1].names) {
        const double a = pct(ph[1].t[n], 0), b = pct(ph[2].t[n], 0), am = pct(ph[1].t[n], 0.5), bm = pct(ph[2].t[n], 0.5);
        // the sum: the inverse gather's route (no scatter rows, no "x:" experiments)
        if (n.rfind("scatter", 0) != 0 && n.rfind("x: ", 0) != 0) s1 += a, s2 += b, m1 += am, m2 += bm;
        std::printf("%-24s %10.1f %10.1f %10.1f %10.1f %8.2f %8.2f\n", n.c_str(), a, am, b, bm, a / b, am / bm);
    }
    std::printf("%-24s %10.1f %10.1f %10.1f %10.1f %8.2f %8.2f\n", "sum (inverse gather)", s1, m1, s2, m2, s1 / s2, m1 / m2);
    std::printf("%-24s %10.1f %10.1f %10.1f %10.1f %8.2f %8.2f\n", "engine train_step", pct(eng[1], 0),
                pct(eng[1], 0.5), pct(eng[2], 0), pct(eng[2], 0.5), pct(eng[1], 0) / pct(eng[2], 0),
                pct(eng[1], 0.5) / pct(eng[2], 0.5));
    std::printf("\n2 threads, instrumented regions (medians over rounds; thread 0 = the caller)\n");
    std::printf("%-24s %9s %9s %9s %9s %9s %9s %9s\n", "region", "wall", "busiest", "sum busy", "busy t0", "busy t1",
                "chunks t0", "chunks t1");
    for (auto& kv : acct_sum) {
        const std::string& n = kv.first;
        const double nr = static_cast<double>(rounds);
        std::printf("%-24s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", n.c_str(), pct(imbalance[n + " wall"], 0.5),
                    pct(imbalance[n + " busiest"], 0.5), pct(imbalance[n + " total"], 0.5), kv.second.busy[0] / nr,
                    kv.second.busy[1] / nr, kv.second.chunks[0] / nr, kv.second.chunks[1] / nr);
    }
    const auto pc = pool_counts();
    std::printf("\npool regions: full team %lld, reduced %lld\n", (long long)pc.full, (long long)pc.reduced);
    return 0;
}
