// The compiled module motifcore._core: exception mapping, build facts, SIMD selection.
#include <pybind11/stl.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "build_info.hpp"
#include "common.hpp"
#include "concurrency.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "motifcore native engine (block-sparse motif layers, fused training steps)";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::out_of_range& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });
    m.def("build_info", &motifcore::build_info,
          "Compiler, flags, SIMD level, threading backend and default threads.");
    m.def("pool_workers", &motifcore::pool_workers, "Worker threads the engine's thread pool holds now.");
    m.def("pool_shutdown", &motifcore::pool_shutdown, py::call_guard<py::gil_scoped_release>(),
          "Stop and join the pool's workers (later calls start new ones); run at interpreter exit.");
    // Checks the pool from Python (tests): counts how often parallel_for visits each index of [0, n)
    // in chunks of `grain` on `threads` threads; index `fail_at` (if in range) raises ValueError.
    m.def(
        "parallel_visits",
        [](int64_t n, int64_t grain, int threads, int64_t fail_at) {
            MC_CHECK(n >= 0 && grain >= 1 && threads >= 1, "need n >= 0, grain >= 1 and threads >= 1");
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            motifcore::parallel_for(n, grain, threads, [&](int64_t i) {
                MC_CHECK(i != fail_at, "parallel check: index " << i << " failed");
                hits[static_cast<size_t>(i)].fetch_add(1);
            });
            std::vector<int> out(static_cast<size_t>(n));
            for (size_t i = 0; i < out.size(); ++i) out[i] = hits[i].load();
            return out;
        },
        py::arg("n"), py::arg("grain"), py::arg("threads"), py::arg("fail_at") = -1,
        py::call_guard<py::gil_scoped_release>());
    m.def("set_simd_level", &motifcore::set_simd_level, py::arg("level"),
          "Force the kernel SIMD level: 'avx512', 'avx2', 'generic' or 'auto'.");
    m.def("max_num_threads", &motifcore::max_num_threads,
          "Largest accepted thread count (4 x the logical CPUs, at least 8).");
    m.def("simd_level", [] { return std::string(motifcore::kernels().name); }, "SIMD level in use.");
    motifcore_py::register_layer(m);
    motifcore_py::register_network(m);
    motifcore_py::register_cht(m);
}
