// Binding of motifcore::Layer: converts and checks arrays, releases the GIL around numerics.
// register_layer is a list of named steps, one per area of the class (construction and geometry,
// parameters and state, the codebook, the batch calls, the drop/grow primitives, the optimizer).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>

#include <pybind11/stl.h>

#include "common.hpp"
#include "layer.hpp"

namespace motifcore_py {

using motifcore::Layer;
using motifcore::LayerConfig;

namespace {

using LayerClass = py::class_<Layer, std::shared_ptr<Layer>>;

// As locked(), under the guard of the row-major calls (Layer::rowmajor_guard: the layer's, the shared
// row-major scratch's and `other`'s when given).
template <class F>
auto rowmajor_locked(const Layer& l, const Layer* other, F&& fn) -> decltype(fn()) {
    py::gil_scoped_release release;
    const motifcore::StateGuard guard = l.rowmajor_guard(other);
    return fn();
}

// Whether the n floats at `a` share memory with `s` (false for a null or empty buffer).
bool overlaps(const float* a, int64_t n, const motifcore::FloatSpan& s) {
    if (!a || n <= 0 || !s.data || s.size <= 0) return false;
    const auto lo = reinterpret_cast<std::uintptr_t>(a);
    const auto hi = lo + static_cast<std::uintptr_t>(n) * sizeof(float);
    const auto slo = reinterpret_cast<std::uintptr_t>(s.data);
    const auto shi = slo + static_cast<std::uintptr_t>(s.size) * sizeof(float);
    return lo < shi && slo < hi;
}

// The caller's array `a` for a result the engine writes in place (not None): a writable, aligned,
// C-contiguous float32 NumPy array of `ndim` dimensions, else a TypeError naming `what`.
py::array writable_floats(const py::object& a, int ndim, const char* what) {
    if (!py::isinstance<py::array>(a))
        throw py::type_error(std::string(what) + " must be a float32 NumPy array or None");
    py::array arr = a.cast<py::array>();
    if (!arr.dtype().is(py::dtype::of<float>()) || arr.ndim() != ndim || !(arr.flags() & py::array::c_style) ||
        !(arr.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) || !arr.writeable())
        throw py::type_error(std::string(what) + " must be a writable, aligned, C-contiguous " + std::to_string(ndim) +
                             "-D float32 array");
    return arr;
}

// The [B, n] rows a row-major call writes: a new array, or the caller's `out` (a writable
// C-contiguous float32 [B, n] array that shares no memory with `in`: motifcore.torch hands back the
// buffer of an output no tensor holds any more), checked here; its overlap with the layer's
// parameters is checked under the layer's guard (out_overlaps_params).
farray rows_out(const py::object& out, int64_t B, int64_t n, const farray& in, const char* what) {
    if (out.is_none()) return farray({B, n});
    py::array arr = writable_floats(out, 2, what);
    if (arr.shape(0) != B || arr.shape(1) != n)
        throw py::value_error(std::string(what) + " must have shape (" + std::to_string(B) + ", " + std::to_string(n) +
                              "), got (" + std::to_string(arr.shape(0)) + ", " + std::to_string(arr.shape(1)) + ")");
    farray o = farray::ensure(arr);
    if (!o || o.data() != arr.data()) throw py::type_error(std::string(what) + " could not be used in place");
    if (overlaps(o.data(), B * n, motifcore::FloatSpan{const_cast<float*>(in.data()), in.size()}))
        throw py::value_error(std::string(what) + " shares memory with the input");
    return o;
}

// Where a vector of the layer lies, for the overlap checks (read only: params_in_place is for
// writing, and the layer takes a call of it as a view of K handed out).
motifcore::FloatSpan span_of(const std::vector<float>& v) {
    return {const_cast<float*>(v.data()), static_cast<int64_t>(v.size())};
}

// Whether the [B, n] rows at `o` share memory with the layer's weights or biases (under its guard).
bool out_overlaps_params(const Layer& l, const float* o, int64_t n) {
    return overlaps(o, n, span_of(l.weights())) || overlaps(o, n, span_of(l.bias()));
}

// Checks `in` is [B, n_in], then runs fn(in, B, out) on the [B, n_out] rows (rows_out) without the
// GIL and under the guard of the row-major calls.
template <class F>
farray rowmajor_call(const Layer& l, const farray& in, int64_t n_in, int64_t n_out, const char* name, F fn,
                     const py::object& out_obj = py::none()) {
    const auto info = in.request();
    check_2d(info, n_in, name);
    const int64_t B = info.shape[0];
    farray out = rows_out(out_obj, B, n_out, in, "out");
    float* o = out.mutable_data();
    const float* i = in.data();
    bool bad = false;
    rowmajor_locked(l, nullptr, [&] {
        if (!out_obj.is_none() && out_overlaps_params(l, o, B * n_out)) {
            bad = true;
            return;
        }
        fn(i, B, o);
    });
    if (bad) throw py::value_error("out shares memory with the layer's weights or biases");
    return out;
}

// Copy of one of the layer's own vectors (weights(), bias(), ...), taken under its guard.
template <class V>
auto state_copy(const V& (Layer::*getter)() const) {
    return [getter](const Layer& l) { return from_vector(locked(l, [&] { return (l.*getter)(); })); };
}

// Copy of a vector of one part of the layer (its pattern(), codebook() or optimizer_state()),
// taken under the layer's guard.
template <class Part, class V>
auto part_copy(const Part& (Layer::*part)() const, const V& (Part::*getter)() const) {
    return [part, getter](const Layer& l) { return from_vector(locked(l, [&] { return ((l.*part)().*getter)(); })); };
}

// Replaces K or b through `setter` (Layer::set_weights / set_bias) with `a`, under the layer's guard.
void assign_params(Layer& l, void (Layer::*setter)(std::vector<float>), const farray& a, const char* what) {
    if (a.ndim() != 1) throw py::value_error(std::string(what) + " must be a 1-D float32 array");
    std::vector<float> v = to_vector(a);
    locked(l, [&] { (l.*setter)(std::move(v)); });
}

// A writable float32 array over one of the layer's parameter vectors (Layer::params_in_place, no
// copy), kept alive by the layer object.
farray in_place_view(const py::object& self, motifcore::FloatSpan motifcore::ParamSpans::*which,
                     bool tracked = false) {
    Layer& l = self.cast<Layer&>();
    const motifcore::FloatSpan s = locked(l, [&] { return l.params_in_place(tracked).*which; });
    return farray({s.size}, {static_cast<py::ssize_t>(sizeof(float))}, s.data, self);
}

LayerConfig make_config(int64_t n_in, int64_t n_out, int64_t m_in, int64_t m_out, double density,
                        double epsilon, const std::string& bias, const std::string& activation, uint64_t seed,
                        int64_t input_copies) {
    if (m_in < 1 || m_out < 1)
        throw py::value_error("motif sizes must be >= 1, got m_in=" + std::to_string(m_in) + ", m_out=" +
                              std::to_string(m_out));
    if (bias != "neuron" && bias != "motif")
        throw py::value_error("bias must be 'neuron' or 'motif', got '" + bias + "'");
    if (activation != "linear" && activation != "relu")
        throw py::value_error("activation must be 'relu' or 'linear', got '" + activation + "'");
    return LayerConfig{n_in, n_out, m_in, m_out, density, epsilon,
                       bias == "motif" ? motifcore::BiasMode::Motif : motifcore::BiasMode::Neuron,
                       activation == "relu" ? motifcore::Activation::ReLU : motifcore::Activation::Linear, seed,
                       input_copies};
}

// Layer.set_state: converts the arrays, then replaces the state under the guard.
void set_state(Layer& l, const i64array& indptr, const i32array& indices, const farray& K, const farray& b,
               const farray& vK, const farray& vb, const farray& sK, const farray& sb) {
    auto a0 = to_vector(indptr); auto a1 = to_vector(indices); auto a2 = to_vector(K);
    auto a3 = to_vector(b); auto a4 = to_vector(vK); auto a5 = to_vector(vb);
    auto a6 = to_vector(sK); auto a7 = to_vector(sb);
    locked(l, [&] {
        l.set_state(std::move(a0), std::move(a1), std::move(a2), std::move(a3), std::move(a4),
                    std::move(a5), std::move(a6), std::move(a7));
    });
}

// Layer.backward: the input gradient of the last forward, or None with need_grad_in=False.
py::object backward(Layer& l, const farray& g, int64_t num_threads, bool need_grad_in) {
    const int nt = threads_arg(num_threads);
    if (!need_grad_in) {   // parameter gradients only (motifcore.torch, a first layer)
        const auto info = g.request();
        check_2d(info, l.n_out, "grad_out");
        const float* gp = g.data();
        rowmajor_locked(l, nullptr, [&] { l.backward_rowmajor(gp, info.shape[0], nullptr, nt); });
        return py::none();
    }
    return rowmajor_call(l, g, l.n_out, l.n_in, "grad_out", [&](const float* in, int64_t B, float* out) {
        l.backward_rowmajor(in, B, out, nt);
    });
}

// A writable float32 buffer of the caller (a torch tensor's .numpy()) for one of the layer's
// gradients, or nullptr for None. `size` is checked under the layer's guard (backward_into).
float* grad_buffer(const py::object& a, const char* what, int64_t* size) {
    if (a.is_none()) return nullptr;
    py::array arr = writable_floats(a, 1, what);
    *size = arr.shape(0);
    return static_cast<float*>(arr.mutable_data());
}

// What is wrong with the caller's buffers of one backward of `l` (under its guard), or "": the
// gradient arrays' sizes (nw, nb floats; null: the layer's own), their overlaps with the layer's
// weights and biases and with each other, an update asked for with them, and the caller's rows `o`
// for the input gradient ([B, n_in]; null: none or new).
std::string backward_buffers_problem(const Layer& l, const float* dK, int64_t nw, const float* db, int64_t nb,
                                     bool update, const float* o, int64_t B) {
    const motifcore::FloatSpan pK = span_of(l.weights()), pb = span_of(l.bias());
    if (dK && nw != l.n_blocks())
        return "grad_weights must hold " + std::to_string(l.n_blocks()) + " floats (one per block), got " +
               std::to_string(nw);
    if (db && nb != l.n_bias())
        return "grad_bias must hold " + std::to_string(l.n_bias()) + " floats, got " + std::to_string(nb);
    if (overlaps(dK, nw, pK) || overlaps(dK, nw, pb))
        return "grad_weights overlaps the layer's weights or biases (the kernels read them after writing it)";
    if (overlaps(db, nb, pK) || overlaps(db, nb, pb))
        return "grad_bias overlaps the layer's weights or biases (the kernels read them after writing it)";
    if (update && (dK || db))
        return "an update inside the backward writes the layer's own gradients: grad_weights and grad_bias must be "
               "None";
    if (dK && db && overlaps(dK, nw, motifcore::FloatSpan{const_cast<float*>(db), nb}))
        return "grad_weights and grad_bias overlap";
    const motifcore::FloatSpan rows{const_cast<float*>(o), B * l.n_in};
    if (o && (out_overlaps_params(l, o, B * l.n_in) || overlaps(dK, nw, rows) || overlaps(db, nb, rows)))
        return "out shares memory with the layer's weights or biases or with grad_weights / grad_bias";
    return "";
}

// Layer.backward_into / backward_handoff: as backward, but the block and bias gradients go straight
// into the caller's buffers (None: into the layer's own grad_weights / grad_bias); no copy of them.
// `next` (or nullptr): the layer whose backward_handoff stamped `stamp` returned grad_out as its
// input gradient; its gradient panel is read instead of converting grad_out while that backward is
// still its last call (under the guard of both layers). Sets *shared and *stamp_out.
py::object backward_rows(Layer& l, const farray& g, const py::object& grad_weights, const py::object& grad_bias,
                         int64_t num_threads, bool need_grad_in, const Layer* next, uint64_t stamp, bool* shared,
                         uint64_t* stamp_out, bool stream_rows = false, const py::object& out_obj = py::none(),
                         const motifcore::OptimConfig* update = nullptr) {
    const int nt = threads_arg(num_threads);
    int64_t nw = -1, nb = -1;
    float* dK = grad_buffer(grad_weights, "grad_weights", &nw);
    float* db = grad_buffer(grad_bias, "grad_bias", &nb);
    const auto info = g.request();
    check_2d(info, l.n_out, "grad_out");
    const int64_t B = info.shape[0];
    const float* gp = g.data();
    farray out = need_grad_in ? rows_out(out_obj, B, l.n_in, g, "out") : farray(0);
    float* o = need_grad_in ? out.mutable_data() : nullptr;
    std::string bad;
    {
        py::gil_scoped_release release;
        const motifcore::StateGuard guard = l.rowmajor_guard(next);
        bad = backward_buffers_problem(l, dK, nw, db, nb, update != nullptr, out_obj.is_none() ? nullptr : o, B);
        if (bad.empty()) {
            const motifcore::PanelHandoff h = next ? next->grad_in_panel(stamp) : motifcore::PanelHandoff{};
            *shared = l.backward_rowmajor(gp, B, o, nt, dK, db, next ? &h : nullptr, stream_rows, update);
            *stamp_out = l.backward_stamp();
        }
    }
    if (!bad.empty()) throw py::value_error(bad);
    return need_grad_in ? py::object(out) : py::object(py::none());
}

py::object backward_into(Layer& l, const farray& g, const py::object& grad_weights, const py::object& grad_bias,
                         int64_t num_threads, bool need_grad_in) {
    bool shared = false;
    uint64_t stamp = 0;
    return backward_rows(l, g, grad_weights, grad_bias, num_threads, need_grad_in, nullptr, 0, &shared, &stamp);
}

// Layer.backward_handoff: backward_into reading the gradient panel of `next` (a Layer or None);
// returns (grad_in or None, this call's stamp, whether the panel was read).
// `update`: None, or a dict of the optimizer update to make inside the backward ("optimizer":
// 'sgd' | 'adam' | 'adamw', "lr", and optionally "momentum", "beta1", "beta2", "eps",
// "weight_decay", "t"; the defaults of Layer.optimizer_step), checked before the backward runs.
motifcore::OptimConfig update_config(const py::dict& d) {
    static const char* known[] = {"optimizer", "lr", "momentum", "beta1", "beta2", "eps", "weight_decay", "t"};
    for (const auto& kv : d) {
        const auto key = py::str(kv.first).cast<std::string>();
        if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return key == k; }) ==
            std::end(known))
            throw py::value_error("update has an unknown setting '" + key + "'");
    }
    if (!d.contains("optimizer") || !d.contains("lr")) throw py::value_error("update needs 'optimizer' and 'lr'");
    motifcore::OptimConfig c;   // OptimConfig's defaults, but no weight decay unless given (as optimizer_step)
    c.kind = parse_optimizer(d["optimizer"].cast<std::string>());
    c.lr = d["lr"].cast<float>();
    c.weight_decay = 0.f;
    for (auto [key, field] : {std::pair<const char*, float*>{"momentum", &c.momentum}, {"beta1", &c.beta1},
                              {"beta2", &c.beta2}, {"eps", &c.eps}, {"weight_decay", &c.weight_decay}})
        if (d.contains(key)) *field = d[key].cast<float>();
    if (d.contains("t")) c.t = d["t"].cast<uint64_t>();
    if (!std::isfinite(c.lr)) throw py::value_error("update's lr must be finite");
    if (c.t < 1) throw py::value_error("update's t must be >= 1");
    try {
        motifcore::check_hyperparameters(c);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(std::string("update: ") + e.what());
    }
    return c;
}

py::tuple backward_handoff(Layer& l, const farray& g, const py::object& grad_weights, const py::object& grad_bias,
                           int64_t num_threads, bool need_grad_in, const py::object& next, uint64_t stamp,
                           bool stream_rows, const py::object& out, const py::object& update) {
    const Layer* nx = next.is_none() ? nullptr : &next.cast<const Layer&>();
    bool shared = false;
    uint64_t out_stamp = 0;
    motifcore::OptimConfig cfg;
    if (!update.is_none()) cfg = update_config(update.cast<py::dict>());
    py::object gin = backward_rows(l, g, grad_weights, grad_bias, num_threads, need_grad_in, nx, stamp, &shared,
                                   &out_stamp, stream_rows, out, update.is_none() ? nullptr : &cfg);
    return py::make_tuple(gin, out_stamp, shared);
}

// Layer.forward_handoff: forward taking the output panel of `prev` (a Layer or None) as the input
// panel when x is that layer's output of the call stamped `stamp`, still its last forward; returns
// (out, this call's stamp, whether the panel was shared).
py::tuple forward_handoff(Layer& l, const farray& x, int64_t num_threads, const py::object& prev, uint64_t stamp,
                          bool stream_rows, const py::object& out_obj) {
    const int nt = threads_arg(num_threads);
    motifcore::PanelHandoff h;
    if (!prev.is_none()) {
        const Layer& p = prev.cast<const Layer&>();
        h = locked(p, [&] { return p.output_panel(stamp); });
    }
    bool shared = false;
    uint64_t out_stamp = 0;
    farray out = rowmajor_call(l, x, l.n_in, l.n_out, "x", [&](const float* in, int64_t B, float* o) {
        shared = l.forward_rowmajor(in, B, o, nt, prev.is_none() ? nullptr : &h, stream_rows);
        out_stamp = l.forward_stamp();
    }, out_obj);
    return py::make_tuple(out, out_stamp, shared);
}

// ---- chains of row-major calls (motifcore.torch.MotifSequential) --------------------------------
// A chain runs consecutive layers in one call, under one guard (Layer::chain_guard): each layer
// takes the previous one's output panel (forward) or the next one's gradient panel (backward), and
// only the chain's own input and output are rows. The results are those of the layers' forward_handoff
// and backward_handoff calls one after the other, bit for bit: the same calls, the same panels.

// The chain's layers, checked: at least one, none twice, each one's n_in the previous one's n_out.
std::vector<Layer*> chain_of(const std::vector<std::shared_ptr<Layer>>& layers, size_t n_settings) {
    if (layers.empty()) throw py::value_error("a chain needs at least one layer");
    if (n_settings != layers.size())
        throw py::value_error("a chain needs one setting per layer: " + std::to_string(layers.size()) + " layers, " +
                              std::to_string(n_settings) + " settings");
    std::vector<Layer*> out;
    for (size_t k = 0; k < layers.size(); ++k) {
        Layer* l = layers[k].get();
        if (!l) throw py::type_error("a chain's layers must be Layer objects, not None");
        if (std::find(out.begin(), out.end(), l) != out.end())
            throw py::value_error("layer " + std::to_string(k) + " appears twice in the chain");
        if (k > 0 && l->n_in != out.back()->n_out)
            throw py::value_error("layer " + std::to_string(k) + " takes " + std::to_string(l->n_in) +
                                  " inputs, but layer " + std::to_string(k - 1) + " gives " +
                                  std::to_string(out.back()->n_out));
        out.push_back(l);
    }
    return out;
}

std::vector<const Layer*> const_chain(const std::vector<Layer*>& ls) { return {ls.begin(), ls.end()}; }

// chain_forward: forward_handoff of every layer in turn; returns (out, the layers' stamps, whether
// the first layer took prev's panel).
py::tuple chain_forward(const std::vector<std::shared_ptr<Layer>>& layers, const farray& x,
                        const std::vector<int64_t>& num_threads, const py::object& prev, uint64_t stamp,
                        const py::object& out_obj) {
    const std::vector<Layer*> ls = chain_of(layers, num_threads.size());
    std::vector<int> nts;
    for (int64_t t : num_threads) nts.push_back(threads_arg(t));
    const Layer* p = prev.is_none() ? nullptr : &prev.cast<const Layer&>();
    const auto info = x.request();
    check_2d(info, ls.front()->n_in, "x");
    const int64_t B = info.shape[0];
    farray out = rows_out(out_obj, B, ls.back()->n_out, x, "out");
    float* o = out.mutable_data();
    const float* xp = x.data();
    bool shared = false, bad = false;
    std::vector<uint64_t> stamps(ls.size(), 0);
    {
        py::gil_scoped_release release;
        const motifcore::StateGuard guard = Layer::chain_guard(const_chain(ls), p);
        for (const Layer* l : ls) bad = bad || (!out_obj.is_none() && out_overlaps_params(*l, o, B * ls.back()->n_out));
        if (!bad) {
            const motifcore::PanelHandoff h0 = p ? p->output_panel(stamp) : motifcore::PanelHandoff{};
            // The layers after the first release their last inputs (each the previous layer's output
            // panel) now, not when their own forward comes: every layer then writes its output into the
            // panel it wrote last time, as a network's layers do, instead of alternating with a spare one.
            for (size_t k = 1; k < ls.size(); ++k) ls[k]->forget_forward();
            for (size_t k = 0; k < ls.size(); ++k) {
                const motifcore::TeamScope team(ls[k]->team_choice());
                float* rows = k + 1 == ls.size() ? o : nullptr;   // the intermediate outputs stay panels
                // the first layer: x (or prev's panel); every other: the previous layer's output panel
                const motifcore::PanelHandoff h = k == 0 ? h0 : ls[k - 1]->output_panel(stamps[k - 1]);
                MC_CHECK(k == 0 || (h.data && h.B == B && h.rows == ls[k]->n_in && h.group == 1),
                         "internal: layer " << k - 1 << " of the chain did not hand its output panel on");
                const bool took = ls[k]->forward_rowmajor(k == 0 ? xp : nullptr, B, rows, nts[k],
                                                          (k > 0 || p) ? &h : nullptr);
                if (k == 0) shared = took;
                stamps[k] = ls[k]->forward_stamp();
            }
        }
    }
    if (bad) throw py::value_error("out shares memory with a layer's weights or biases");
    return py::make_tuple(out, py::cast(stamps), shared);
}

// chain_backward: backward_handoff of every layer, the last first; grad_weights / grad_bias / updates
// hold one entry per layer (as backward_handoff takes them). Returns (the first layer's input
// gradient or None, its stamp, whether the last layer read next's panel).
py::tuple chain_backward(const std::vector<std::shared_ptr<Layer>>& layers, const farray& g,
                         const std::vector<py::object>& grad_weights, const std::vector<py::object>& grad_bias,
                         const std::vector<py::object>& updates, const std::vector<int64_t>& num_threads,
                         bool need_grad_in, const py::object& next, uint64_t stamp, const py::object& out_obj,
                         const py::object& done_obj) {
    const std::vector<Layer*> ls = chain_of(layers, num_threads.size());
    const size_t n = ls.size();
    if (grad_weights.size() != n || grad_bias.size() != n || updates.size() != n)
        throw py::value_error("a chain needs one grad_weights, grad_bias and update entry per layer");
    std::vector<int> nts;
    for (int64_t t : num_threads) nts.push_back(threads_arg(t));
    std::vector<float*> dK(n), db(n);
    std::vector<int64_t> nw(n, -1), nb(n, -1);
    std::vector<motifcore::OptimConfig> cfg(n);
    std::vector<const motifcore::OptimConfig*> upd(n, nullptr);
    for (size_t k = 0; k < n; ++k) {
        dK[k] = grad_buffer(grad_weights[k], "grad_weights", &nw[k]);
        db[k] = grad_buffer(grad_bias[k], "grad_bias", &nb[k]);
        if (!updates[k].is_none()) {
            cfg[k] = update_config(updates[k].cast<py::dict>());
            upd[k] = &cfg[k];
        }
    }
    const Layer* nx = next.is_none() ? nullptr : &next.cast<const Layer&>();
    const auto info = g.request();
    check_2d(info, ls.back()->n_out, "grad_out");
    const int64_t B = info.shape[0];
    const float* gp = g.data();
    farray out = need_grad_in ? rows_out(out_obj, B, ls.front()->n_in, g, "out") : farray(0);
    float* o = need_grad_in ? out.mutable_data() : nullptr;
    uint8_t* done = nullptr;   // done[k] = 1 once layer k's backward (and update) is made: read after an error
    if (!done_obj.is_none()) {
        auto d = done_obj.cast<py::array_t<uint8_t, py::array::c_style>>();
        if (d.ndim() != 1 || d.shape(0) != static_cast<py::ssize_t>(n) || !d.writeable())
            throw py::value_error("done must be a writable uint8 array with one entry per layer");
        done = d.mutable_data();
    }
    std::string bad;
    bool shared = false;
    uint64_t out_stamp = 0;
    {
        py::gil_scoped_release release;
        const motifcore::StateGuard guard = Layer::chain_guard(const_chain(ls), nx);
        for (size_t k = 0; k < n && bad.empty(); ++k) {
            bad = backward_buffers_problem(*ls[k], dK[k], nw[k], db[k], nb[k], upd[k] != nullptr,
                                           k == 0 && !out_obj.is_none() ? o : nullptr, B);
            if (!bad.empty()) bad = "layer " + std::to_string(k) + " of the chain: " + bad;
        }
        for (size_t j = n; j-- > 0 && bad.empty();) {
            const motifcore::TeamScope team(ls[j]->team_choice());
            // the last layer: grad_out (or next's panel); every other: the next layer's gradient panel
            const bool last = j + 1 == n;
            const motifcore::PanelHandoff h = last ? (nx ? nx->grad_in_panel(stamp) : motifcore::PanelHandoff{})
                                                   : ls[j + 1]->grad_in_panel(ls[j + 1]->backward_stamp());
            MC_CHECK(last || (h.data && h.B == B && h.rows == ls[j]->n_out),
                     "internal: layer " << j + 1 << " of the chain did not hand its gradient panel on");
            const bool read = ls[j]->backward_rowmajor(last ? gp : nullptr, B, j == 0 ? o : nullptr, nts[j], dK[j],
                                                       db[j], (!last || nx) ? &h : nullptr, false, upd[j], j > 0);
            if (last) shared = read;
            if (done) done[j] = 1;
        }
        out_stamp = need_grad_in ? ls.front()->backward_stamp() : 0;
    }
    if (!bad.empty()) throw py::value_error(bad);
    return py::make_tuple(need_grad_in ? py::object(out) : py::object(py::none()), out_stamp, shared);
}

// The constructor, the fixed geometry and the switches read from the current pattern.
void bind_geometry(LayerClass& cls) {
    cls.def(py::init([](int64_t n_in, int64_t n_out, int64_t m_in, int64_t m_out, double density,
                      double epsilon, const std::string& bias, const std::string& activation, uint64_t seed,
                      int64_t input_copies) {
              const LayerConfig cfg =
                  make_config(n_in, n_out, m_in, m_out, density, epsilon, bias, activation, seed, input_copies);
              py::gil_scoped_release release;
              return std::make_shared<Layer>(cfg);
          }),
          py::arg("n_in"), py::arg("n_out"), py::arg("m_in") = 1, py::arg("m_out") = 1,
          py::arg("density") = 0.1, py::arg("epsilon") = 0.0, py::arg("bias") = "neuron",
          py::arg("activation") = "linear", py::arg("seed") = 0, py::arg("input_copies") = 1)
        .def_readonly("n_in", &Layer::n_in)
        .def_readonly("n_out", &Layer::n_out)
        .def_readonly("m_in", &Layer::m_in)
        .def_readonly("m_out", &Layer::m_out)
        .def_readonly("G_in", &Layer::G_in)
        .def_readonly("G_out", &Layer::G_out)
        .def_readonly("input_copies", &Layer::input_copies)
        .def_property_readonly("activation", [](const Layer& l) {
            return std::string(l.activation == motifcore::Activation::ReLU ? "relu" : "linear");
        })
        .def_property_readonly("bias_mode", [](const Layer& l) {
            return std::string(l.bias_mode == motifcore::BiasMode::Neuron ? "neuron" : "motif");
        })
        .def_property_readonly("n_blocks", [](const Layer& l) { return locked(l, [&] { return l.n_blocks(); }); })
        .def_property_readonly("n_bias", [](const Layer& l) { return locked(l, [&] { return l.n_bias(); }); })
        .def_property_readonly("n_edges", [](const Layer& l) { return locked(l, [&] { return l.n_edges(); }); })
        .def_property("dense_path", [](const Layer& l) { return locked(l, [&] { return l.dense_path; }); },
                      [](Layer& l, bool on) { locked(l, [&] { l.dense_path = on; }); },
                      "Whether the layer runs its products as GEMMs while every block is active (default "
                      "True); False forces the sparse kernels.")
        .def_property_readonly("uses_dense", [](const Layer& l) { return locked(l, [&] { return l.uses_dense(); }); },
                               "Whether forward and backward take the dense path now (dense_path and every "
                               "block active).")
        .def_property_readonly("transposed_index_held", [](const Layer& l) {
                                   return locked(l, [&] { return l.pattern().transposed_current(); });
                               },
                               "Whether the transposed block index (8 bytes per block) is built now: it is "
                               "built by the first backward that needs the input gradient and freed by every "
                               "pattern change.");
}

// Pattern, parameters, gradients and optimizer state: copies, checked replacement, and the
// zero-copy views of motifcore.torch.
void bind_state(LayerClass& cls) {
    using motifcore::BlockPattern;
    using motifcore::OptimizerState;
    cls.def_property_readonly("indptr", part_copy(&Layer::pattern, &BlockPattern::indptr))
        .def_property_readonly("indices", part_copy(&Layer::pattern, &BlockPattern::indices))
        .def_property_readonly("weights", state_copy(&Layer::weights))
        .def_property_readonly("bias", state_copy(&Layer::bias))
        .def_property_readonly("weight_velocity", part_copy(&Layer::optimizer_state, &OptimizerState::weight_velocity))
        .def_property_readonly("bias_velocity", part_copy(&Layer::optimizer_state, &OptimizerState::bias_velocity))
        .def_property_readonly("weight_sq", part_copy(&Layer::optimizer_state, &OptimizerState::weight_sq))
        .def_property_readonly("bias_sq", part_copy(&Layer::optimizer_state, &OptimizerState::bias_sq))
        .def_property_readonly("grad_weights", state_copy(&Layer::grad_weights))
        .def("pattern_snapshot", [](const Layer& l) {
                 auto v = locked(l, [&] {
                     return std::make_tuple(l.pattern().indptr(), l.pattern().indices(), l.weights(), l.bias());
                 });
                 return py::make_tuple(from_vector(std::get<0>(v)), from_vector(std::get<1>(v)),
                                       from_vector(std::get<2>(v)), from_vector(std::get<3>(v)));
             },
             "(indptr, indices, weights, bias) copied under one guard: a consistent view while other "
             "threads evolve the layer.")
        .def_property_readonly("grad_bias", state_copy(&Layer::grad_bias))
        .def("set_weights", [](Layer& l, const farray& w) { assign_params(l, &Layer::set_weights, w, "weights"); },
             py::arg("weights").noconvert())
        .def("set_bias", [](Layer& l, const farray& b) { assign_params(l, &Layer::set_bias, b, "bias"); },
             py::arg("bias").noconvert())
        .def("set_state", &set_state, py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
             py::arg("weights").noconvert(), py::arg("bias").noconvert(), py::arg("weight_velocity").noconvert(),
             py::arg("bias_velocity").noconvert(), py::arg("weight_sq").noconvert() = farray(0),
             py::arg("bias_sq").noconvert() = farray(0),
             "Replace pattern, parameters and optimizer state (validated); empty second moments = no Adam state.")
        // ---- zero-copy views for motifcore.torch -------------------------------------------------
        // Layer::params_in_place, the one way to write the parameters in place. Valid until the
        // next change of the block pattern (a prune/grow/set_state may reallocate K);
        // motifcore.torch re-points its parameters after every such change.
        .def("weights_view", [](const py::object& self, bool tracked) {
                return in_place_view(self, &motifcore::ParamSpans::K, tracked);
             }, py::arg("tracked") = false,
             "Writable view of the block weights K (no copy), valid until the pattern changes. tracked: the "
             "caller calls weights_written() after every write through it, before the next backward (then "
             "the layer may keep its transposed copy of K across steps; untracked, it never does again).")
        .def("weights_written", [](Layer& l) { locked(l, [&] { l.weights_written(); }); },
             "Reports a write of K through a tracked weights_view.")
        .def("set_moments", [](Layer& l, const farray& vK, const farray& vb, const farray& sK, const farray& sb) {
                for (const farray* a : {&vK, &vb, &sK, &sb})
                    if (a->ndim() != 1) throw py::value_error("moment arrays must be 1-D float32");
                auto a0 = to_vector(vK);
                auto a1 = to_vector(vb);
                auto a2 = to_vector(sK);
                auto a3 = to_vector(sb);
                locked(l, [&] { l.set_moments(std::move(a0), std::move(a1), std::move(a2), std::move(a3)); });
             }, py::arg("weight_velocity").noconvert(), py::arg("bias_velocity").noconvert(),
             py::arg("weight_sq").noconvert(), py::arg("bias_sq").noconvert(),
             "Replaces the optimizer's moments: momentum / Adam's first moments of the weights (CSR order) and "
             "biases (empty arrays: zero), Adam's second moments (both empty: none). Sizes and values are "
             "checked first.")
        .def("bias_view", [](const py::object& self) {
                return in_place_view(self, &motifcore::ParamSpans::b, true);   // (b has no transposed copy)
             },
             "Writable view of the biases b (no copy); b never changes size.")
        .def_property_readonly("weights_address", [](Layer& l) {
                const motifcore::FloatSpan k = locked(l, [&] { return span_of(l.weights()); });
                return k.size == 0 ? uintptr_t(0) : reinterpret_cast<uintptr_t>(k.data);
            }, "Address of the block weights K (what weights_view() would view) without making a view; 0 when "
               "the layer has no blocks (as torch's data_ptr() of an empty tensor).");
}

// Deep Compression's codebook: copies of its arrays, set and clear.
void bind_codebook(LayerClass& cls) {
    using motifcore::Codebook;
    cls.def_property_readonly("codes", part_copy(&Layer::codebook, &Codebook::codes))
        .def_property_readonly("centroids", part_copy(&Layer::codebook, &Codebook::centroids))
        .def_property_readonly("centroid_velocity", part_copy(&Layer::codebook, &Codebook::velocity))
        .def_property_readonly("centroid_sq", part_copy(&Layer::codebook, &Codebook::sq))
        .def_property_readonly("grad_centroids", part_copy(&Layer::codebook, &Codebook::grad))
        .def("set_codebook", [](Layer& l, const i32array& codes, const farray& centroids, const farray& v,
                                const farray& s) {
                auto c = to_vector(codes); auto k = to_vector(centroids); auto vv = to_vector(v); auto ss = to_vector(s);
                locked(l, [&] { l.set_codebook(std::move(c), std::move(k), std::move(vv), std::move(ss)); });
            }, py::arg("codes").noconvert(), py::arg("centroids").noconvert(),
            py::arg("centroid_velocity").noconvert() = farray(0), py::arg("centroid_sq").noconvert() = farray(0),
            "Share the block weights through a codebook (trained quantization); see Layer::set_codebook.")
        .def("clear_codebook", [](Layer& l) { locked(l, [&] { l.clear_codebook(); }); },
             "Train the block weights individually again.");
}

// The row-major batch calls and the dense matrix.
void bind_compute(LayerClass& cls) {
    cls.def("forward", [](Layer& l, const farray& x, int64_t num_threads) {
             const int nt = threads_arg(num_threads);
             return rowmajor_call(l, x, l.n_in, l.n_out, "x", [&](const float* in, int64_t B, float* out) {
                 l.forward_rowmajor(in, B, out, nt);
             });
         }, py::arg("x").noconvert(), py::arg("num_threads") = 1)
        .def("backward", &backward, py::arg("grad_out").noconvert(), py::arg("num_threads") = 1,
             py::arg("need_grad_in") = true,
             "Input gradient of the last forward (None with need_grad_in=False); fills grad_weights/grad_bias.")
        .def("backward_into", &backward_into, py::arg("grad_out").noconvert(), py::arg("grad_weights"),
             py::arg("grad_bias"), py::arg("num_threads") = 1, py::arg("need_grad_in") = true,
             "As backward, but writes the block and bias gradients into the given writable float32 arrays "
             "(n_blocks and n_bias long; None: into grad_weights / grad_bias), without a copy.")
        // ---- panel handoff between consecutive layers (motifcore.torch) ----------------------------
        .def("forward_handoff", &forward_handoff, py::arg("x").noconvert(), py::arg("num_threads") = 1,
             py::arg("prev") = py::none(), py::arg("stamp") = 0, py::arg("stream_rows") = false,
             py::arg("out") = py::none(),
             "forward, returning (out, stamp, shared). When x is prev's output of its forward_handoff stamped "
             "`stamp` and that is still prev's last forward, prev's output panel is the input panel (shared, "
             "not converted from x again: the same values). The caller vouches that x was not modified since. "
             "stream_rows: out will not be read soon (a large out is written past the caches). out: a [B, n_out] "
             "float32 array to write into (None: a new one).")
        .def("backward_handoff", &backward_handoff, py::arg("grad_out").noconvert(), py::arg("grad_weights"),
             py::arg("grad_bias"), py::arg("num_threads") = 1, py::arg("need_grad_in") = true,
             py::arg("next") = py::none(), py::arg("stamp") = 0, py::arg("stream_rows") = false,
             py::arg("out") = py::none(), py::arg("update") = py::none(),
             "backward_into, returning (grad_in or None, stamp, shared). When grad_out is next's input "
             "gradient of its backward_handoff stamped `stamp` and that is still next's last call, next's "
             "gradient panel is read instead of converting grad_out. The caller vouches that grad_out was not "
             "modified since. stream_rows: grad_in will not be read soon (written past the caches if large). "
             "out: a [B, n_in] float32 array for grad_in (None: a new one). update: None, or a dict "
             "{'optimizer': 'sgd' | 'adam' | 'adamw', 'lr': ..., and optionally 'momentum', 'beta1', 'beta2', "
             "'eps', 'weight_decay', 't'} of an optimizer update made inside this call on the layer's own "
             "gradients and state (grad_weights and grad_bias None), as optimizer_step right after it would.")
        .def("to_dense", [](const Layer& l) {
            farray out({l.n_out, l.n_in});
            float* o = out.mutable_data();
            locked(l, [&] { l.to_dense(o); });
            return out;
        });
}

// SET and the drop/grow primitives of dynamic sparse training, with the block-gradient top-k.
void bind_evolution(LayerClass& cls) {
    cls.def("prune_regrow", [](Layer& l, double zeta, uint64_t seed, const std::string& regrow) {
             const motifcore::RegrowInit init = parse_regrow(regrow);
             const auto s = locked(l, [&] { return l.prune_regrow(zeta, seed, init); });
             return std::make_pair(s.removed, s.threshold);
         }, py::arg("zeta"), py::arg("seed"), py::arg("regrow") = "he",
         "SET step in place; regrow is 'he', 'zero', 'pruned' or 'normal'; returns (blocks removed == regrown, "
         "largest pruned |K|).")
        .def("keep_where", [](Layer& l, const py::array_t<uint8_t, py::array::c_style>& keep) {
                if (keep.ndim() != 1 || keep.shape(0) != l.n_blocks())
                    throw py::value_error("keep must be a 1-D boolean array with one entry per block (" +
                                          std::to_string(l.n_blocks()) + ")");
                return locked(l, [&] { return l.keep_where(keep.data()); });
            }, py::arg("keep"), "Keep the blocks where keep != 0, remove the others; returns blocks removed.")
        .def("prune_smallest", [](Layer& l, int64_t k) {
                return locked(l, [&] { return l.prune_smallest(k); });
            }, py::arg("k"), "Remove the k blocks of smallest |K| (ties: lower position); returns k.")
        .def("prune_below", [](Layer& l, float threshold, int64_t keep_min) {
                return locked(l, [&] { return l.prune_below(threshold, keep_min); });
            }, py::arg("threshold"), py::arg("keep_min") = 1,
            "Remove the blocks with |K| < threshold, keeping at least keep_min; returns blocks removed.")
        .def("grow_at", [](Layer& l, const py::array_t<uint64_t, py::array::c_style>& pos, const std::string& regrow,
                           uint64_t seed, float pruned_bound) {
                if (pos.ndim() != 1) throw py::value_error("positions must be 1-D");
                const motifcore::RegrowInit init = parse_regrow(regrow);
                return locked(l, [&] { return l.grow_at(pos.data(), pos.shape(0), init, seed, pruned_bound); });
            }, py::arg("positions"), py::arg("regrow") = "zero", py::arg("seed") = 0, py::arg("pruned_bound") = 0.f,
            "Activate the given increasing flat positions r * G_in + c; positions removed by the last prune "
            "get their old weight and optimizer state back. Returns the number grown.")
        .def("grow_random", [](Layer& l, int64_t n, uint64_t seed, const std::string& regrow) {
                const motifcore::RegrowInit init = parse_regrow(regrow);
                return locked(l, [&] { return l.grow_random(n, seed, init); });
            }, py::arg("n"), py::arg("seed"), py::arg("regrow") = "zero",
            "Grow up to n blocks uniformly among the inactive positions not removed by the last prune.")
        .def_property_readonly("last_removed", state_copy(&Layer::last_removed))
        .def("grad_topk", [](Layer& l, int64_t k, int64_t drop, const std::string& topk, int64_t tile_rows,
                             int64_t tile_cols, int64_t sample_factor, uint64_t seed, int64_t num_threads) {
                const motifcore::TopkConfig c{parse_topk(topk), tile_rows, tile_cols, sample_factor, seed};
                const int nt = threads_arg(num_threads);
                const motifcore::TopkResult r = locked(l, [&] { return l.grad_topk_last(k, drop, c, nt); });
                return topk_to_python(r);
            }, py::arg("k"), py::arg("drop") = 0, py::arg("topk") = "exact", py::arg("tile_rows") = 64,
            py::arg("tile_cols") = 0, py::arg("sample_factor") = 10, py::arg("seed") = 0, py::arg("num_threads") = 1,
            "Top-k block-gradient positions of the last forward/backward (see Layer::block_grad_topk).");
}

// One optimizer update from the stored gradients, and the gradient norm for clipping.
void bind_optimizer(LayerClass& cls) {
    cls.def("optimizer_step", [](Layer& l, const std::string& optimizer, float lr, float momentum, float beta1,
                               float beta2, float eps, float weight_decay, float grad_scale, uint64_t t,
                               int64_t num_threads) {
             const motifcore::OptimConfig c{parse_optimizer(optimizer), lr, momentum, beta1, beta2, eps,
                                            weight_decay, grad_scale, t};
             const int nt = threads_arg(num_threads);
             locked(l, [&] { l.optimizer_step(c, nt); });
         }, py::arg("optimizer"), py::arg("lr"), py::arg("momentum") = 0.9f, py::arg("beta1") = 0.9f,
         py::arg("beta2") = 0.999f, py::arg("eps") = 1e-8f, py::arg("weight_decay") = 0.f,
         py::arg("grad_scale") = 1.f, py::arg("t") = 1, py::arg("num_threads") = 1,
         "One optimizer update ('sgd', 'adam', 'adamw') from the stored gradients.")
        .def("update_from", [](Layer& l, const farray& grad_weights, const farray& grad_bias, const py::dict& update,
                               int64_t num_threads) {
                const motifcore::OptimConfig c = update_config(update);
                const int nt = threads_arg(num_threads);
                if (grad_weights.ndim() != 1 || grad_bias.ndim() != 1)
                    throw py::value_error("grad_weights and grad_bias must be 1-D float32 arrays");
                const float* gw = grad_weights.data();
                const float* gb = grad_bias.data();
                const int64_t nw = grad_weights.shape(0), nb = grad_bias.shape(0);
                std::string bad;
                {
                    py::gil_scoped_release release;
                    const motifcore::StateGuard guard = l.guard();
                    if (nw != l.n_blocks() || nb != l.n_bias()) {
                        bad = "grad_weights and grad_bias must hold " + std::to_string(l.n_blocks()) + " and " +
                              std::to_string(l.n_bias()) + " floats, got " + std::to_string(nw) + " and " +
                              std::to_string(nb);
                    } else {
                        const motifcore::ParamSpans s = l.params_in_place(true);   // (K changes below anyway)
                        std::copy(gw, gw + nw, s.dK.data);
                        std::copy(gb, gb + nb, s.db.data);
                        l.optimizer_step(c, nt);
                    }
                }
                if (!bad.empty()) throw py::value_error(bad);
             }, py::arg("grad_weights").noconvert(), py::arg("grad_bias").noconvert(), py::arg("update"),
             py::arg("num_threads") = 1,
             "One optimizer update (update: as backward_handoff's) from the given gradients, which replace the "
             "stored ones (motifcore.torch: a layer whose backward made no update, e.g. in a compiled graph).")
        .def("grad_sq_norm", [](const Layer& l, int64_t num_threads) {
                const int nt = threads_arg(num_threads);
                return locked(l, [&] { return l.grad_sq_norm(nt); });
            }, py::arg("num_threads") = 1, "Sum of squares of the stored gradients (float64).")
        .def("sgd_step", [](Layer& l, float lr, float momentum, float weight_decay, int64_t num_threads) {
                const int nt = threads_arg(num_threads);
                locked(l, [&] { l.sgd_step(lr, momentum, weight_decay, nt); });
            }, py::arg("lr"), py::arg("momentum") = 0.9f, py::arg("weight_decay") = 5e-4f, py::arg("num_threads") = 1);
}

}  // namespace

void register_layer(py::module_& m) {
    LayerClass cls(m, "Layer", "Block-sparse motif layer (native).");
    bind_geometry(cls);
    bind_state(cls);
    bind_codebook(cls);
    bind_compute(cls);
    bind_evolution(cls);
    bind_optimizer(cls);

    m.def("target_blocks", [](int64_t n_in, int64_t n_out, int64_t m_in, int64_t m_out, double density, double epsilon) {
              return motifcore::target_blocks(
                  make_config(n_in, n_out, m_in, m_out, density, epsilon, "neuron", "linear", 0, 1));
          }, py::arg("n_in"), py::arg("n_out"), py::arg("m_in") = 1, py::arg("m_out") = 1,
          py::arg("density") = 0.1, py::arg("epsilon") = 0.0, "Exact number of blocks the ER init draws.");
    m.def("chain_forward", &chain_forward, py::arg("layers"), py::arg("x").noconvert(), py::arg("num_threads"),
          py::arg("prev") = py::none(), py::arg("stamp") = 0, py::arg("out") = py::none(),
          "forward_handoff of consecutive layers in one call: each takes the previous one's output panel (no rows "
          "in between); num_threads: one per layer. Returns (out, the layers' stamps, whether the first layer "
          "took prev's panel).");
    m.def("chain_backward", &chain_backward, py::arg("layers"), py::arg("grad_out").noconvert(),
          py::arg("grad_weights"), py::arg("grad_bias"), py::arg("updates"), py::arg("num_threads"),
          py::arg("need_grad_in") = true, py::arg("next") = py::none(), py::arg("stamp") = 0, py::arg("out") = py::none(),
          py::arg("done") = py::none(),
          "backward_handoff of the layers of the last chain_forward, the last first, in one call: each reads the "
          "next one's gradient panel (no rows in between); grad_weights, grad_bias, num_threads and updates hold "
          "one entry per layer. Returns (the first layer's input gradient or None, its stamp, whether the last "
          "layer read next's panel). done: None, or a uint8 array with one entry per layer, set to 1 as each "
          "layer's backward (and update) is made (what was made when the call raises).");
}

}  // namespace motifcore_py
