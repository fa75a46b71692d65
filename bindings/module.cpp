// The compiled module motifcore._core: exception mapping, build facts, SIMD selection.
#include <pybind11/stl.h>

#include <stdexcept>

#include "build_info.hpp"
#include "common.hpp"
#include "concurrency.hpp"
#include "kernels.hpp"

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
    m.def("build_info", &motifcore::build_info, "Compiler, flags, SIMD level, OpenMP and default threads.");
    m.def("set_simd_level", &motifcore::set_simd_level, py::arg("level"),
          "Force the kernel SIMD level: 'avx512', 'avx2', 'generic' or 'auto'.");
    m.def("max_num_threads", &motifcore::max_num_threads,
          "Largest accepted thread count (4 x the logical CPUs, at least 8, within OpenMP's limit).");
    m.def("simd_level", [] { return std::string(motifcore::kernels().name); }, "SIMD level in use.");
    motifcore_py::register_layer(m);
    motifcore_py::register_network(m);
    motifcore_py::register_cht(m);
}
