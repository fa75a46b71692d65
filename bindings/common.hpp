// Helpers shared by the binding units: array checks and conversions (no arithmetic here).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "concurrency.hpp"
#include "layer.hpp"

namespace motifcore_py {

namespace py = pybind11;
using farray = py::array_t<float, py::array::c_style>;
using i64array = py::array_t<int64_t, py::array::c_style>;
using i32array = py::array_t<int32_t, py::array::c_style>;

/// Raises ValueError unless `a` is 2-D with `cols` columns (cols < 0: any) and at least one row.
inline void check_2d(const py::buffer_info& a, int64_t cols, const char* what) {
    if (a.ndim != 2)
        throw py::value_error(std::string(what) + " must be 2-D, got " + std::to_string(a.ndim) + "-D");
    if (cols >= 0 && a.shape[1] != cols)
        throw py::value_error(std::string(what) + " must have " + std::to_string(cols) + " columns, got " +
                              std::to_string(a.shape[1]));
}

/// Runs fn() without the GIL while holding obj.guard(): the one way a binding touches the state
/// of a Layer or Network (the rule of cpp/concurrency.hpp). The GIL is released BEFORE the guard
/// is taken and re-acquired after it is dropped, so waiting threads never hold the interpreter.
/// fn must not touch Python objects; errors are thrown as C++ exceptions (MC_CHECK).
template <class T, class F>
auto locked(const T& obj, F&& fn) -> decltype(fn()) {
    py::gil_scoped_release release;
    const motifcore::StateGuard guard = obj.guard();
    return fn();
}

/// A thread count from Python, checked against the engine's bounds (ValueError otherwise).
inline int threads_arg(int64_t n) { return motifcore::check_num_threads(n); }

template <class T>
std::vector<T> to_vector(const py::array_t<T, py::array::c_style>& a) {
    auto r = a.template unchecked<1>();
    std::vector<T> v(static_cast<size_t>(r.shape(0)));
    for (py::ssize_t i = 0; i < r.shape(0); ++i) v[static_cast<size_t>(i)] = r(i);
    return v;
}

template <class T>
py::array_t<T> from_vector(const std::vector<T>& v) {
    py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

/// 'sgd' | 'adam' | 'adamw' -> Optimizer; ValueError otherwise.
inline motifcore::Optimizer parse_optimizer(const std::string& s) {
    if (s == "sgd") return motifcore::Optimizer::SGD;
    if (s == "adam") return motifcore::Optimizer::Adam;
    if (s == "adamw") return motifcore::Optimizer::AdamW;
    throw py::value_error("optimizer must be 'sgd', 'adam' or 'adamw', got '" + s + "'");
}

/// 'he' | 'zero' | 'pruned' | 'normal' -> RegrowInit; ValueError otherwise.
inline motifcore::RegrowInit parse_regrow(const std::string& s) {
    if (s == "he") return motifcore::RegrowInit::He;
    if (s == "zero") return motifcore::RegrowInit::Zero;
    if (s == "pruned") return motifcore::RegrowInit::Pruned;
    if (s == "normal") return motifcore::RegrowInit::Normal;
    throw py::value_error("regrow must be 'he', 'zero', 'pruned' or 'normal', got '" + s + "'");
}

/// 'exact' | 'sampled' -> TopkMode; ValueError otherwise.
inline motifcore::TopkMode parse_topk(const std::string& s) {
    if (s == "exact") return motifcore::TopkMode::Exact;
    if (s == "sampled") return motifcore::TopkMode::Sampled;
    throw py::value_error("topk must be 'exact' or 'sampled', got '" + s + "'");
}

/// (positions uint64, scores float32) of a top-k result.
inline py::tuple topk_to_python(const motifcore::TopkResult& t) {
    return py::make_tuple(from_vector(t.positions), from_vector(t.scores));
}

void register_layer(py::module_& m);
void register_network(py::module_& m);
void register_cht(py::module_& m);

}  // namespace motifcore_py
