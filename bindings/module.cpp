// The compiled module motifcore._core: exception translation, build facts, SIMD selection.
#include <pybind11/stl.h>

#include <atomic>
#include <exception>
#include <new>
#include <stdexcept>
#include <vector>

#include "build_info.hpp"
#include "common.hpp"
#include "concurrency.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace py = pybind11;

namespace motifcore_py {
void register_regroup(py::module_& m);  // bindings/register_regroup.cpp
}  // namespace motifcore_py

namespace {

/// Raises the motifcore.errors class `name` with `what` as its message. The module is imported on
/// the first engine error (the translator runs with the GIL held), not at import of _core, so the
/// package's __init__ may import _core first; the class objects are kept for the process's life.
void raise_as(const char* name, const char* what) {
    static PyObject* errors = nullptr;
    if (!errors) errors = py::module_::import("motifcore.errors").release().ptr();
    py::object cls = py::reinterpret_steal<py::object>(PyObject_GetAttrString(errors, name));
    if (!cls) throw py::error_already_set();
    PyErr_SetString(cls.ptr(), what);
}

/// Every C++ exception that leaves the engine or the bindings arrives in Python as a class of
/// motifcore.errors (all MotifcoreError) that also keeps the builtin type pybind11 gave it before
/// (ValueError, IndexError, OverflowError, MemoryError, RuntimeError); std::out_of_range, which
/// the bindings used to raise as ValueError, is both an IndexError and a ValueError. Python
/// exceptions passing through C++ (error_already_set) and pybind11's other builtin exceptions
/// (TypeError, KeyError, StopIteration, cast errors) are left to pybind11's own translation.
void translate_engine_error(std::exception_ptr p) {
    try {
        if (p) std::rethrow_exception(p);
    } catch (const py::error_already_set&) {
        throw;
    } catch (const py::value_error& e) {
        raise_as("EngineValueError", e.what());
    } catch (const py::index_error& e) {
        raise_as("EngineIndexError", e.what());
    } catch (const py::builtin_exception&) {
        throw;
    } catch (const std::out_of_range& e) {
        raise_as("EngineIndexError", e.what());
    } catch (const std::logic_error& e) {  // invalid_argument, domain_error, length_error, ...
        raise_as("EngineValueError", e.what());
    } catch (const std::overflow_error& e) {
        raise_as("EngineOverflowError", e.what());
    } catch (const std::range_error& e) {
        raise_as("EngineValueError", e.what());
    } catch (const std::bad_alloc& e) {
        raise_as("EngineMemoryError", e.what());
    } catch (const std::exception& e) {
        raise_as("EngineRuntimeError", e.what());
    }
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "motifcore native engine (block-sparse motif layers, fused training steps)";
    py::register_exception_translator(translate_engine_error);
    // MOTIFCORE_SIMD is read here, once: a bad value fails the import with a message naming it.
    motifcore::init_simd_from_env();
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
    motifcore_py::register_regroup(m);
}
