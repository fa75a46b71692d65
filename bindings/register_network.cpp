// Binding of motifcore::Network: whole training steps/epochs as single GIL-free native calls.
#include <pybind11/stl.h>

#include <string>

#include "common.hpp"
#include "network.hpp"

namespace motifcore_py {

using motifcore::Network;
using motifcore::LossConfig;
using motifcore::TrainConfig;

namespace {

TrainConfig make_train(float momentum, float weight_decay, float dropout, const std::string& optimizer,
                       float beta1, float beta2, float eps, float max_grad_norm,
                       const std::vector<float>& weight_grad_factor) {
    TrainConfig c;
    c.optim.kind = parse_optimizer(optimizer);
    c.optim.momentum = momentum;
    c.optim.beta1 = beta1;
    c.optim.beta2 = beta2;
    c.optim.eps = eps;
    c.optim.weight_decay = weight_decay;
    c.dropout = dropout;
    c.max_grad_norm = max_grad_norm;
    c.weight_grad_factor = weight_grad_factor;
    return c;
}

void check_xy(const Network& net, const farray& X, const i64array& y) {
    check_2d(X.request(), net.n_in(), "X");
    if (y.ndim() != 1 || y.shape(0) != X.shape(0))
        throw py::value_error("y must be 1-D with one label per row of X (" + std::to_string(X.shape(0)) + ")");
}

/// The loss of a training call: distillation when `teacher` is an array of `rows` x n_classes
/// teacher logits (ValueError otherwise), label smoothing when `label_smoothing` > 0 (a uniform
/// teacher at T = 1 with weight `label_smoothing`; ValueError beside a teacher), cross-entropy
/// otherwise.
LossConfig make_loss(const Network& net, const py::object& teacher, int64_t rows, float temperature, float lambda,
                     float label_smoothing) {
    LossConfig l;
    l.temperature = temperature;
    l.lambda = lambda;
    if (!(label_smoothing >= 0.f && label_smoothing < 1.f))
        throw py::value_error("label_smoothing must be in [0, 1), got " + std::to_string(label_smoothing));
    if (label_smoothing > 0.f) {
        if (!teacher.is_none() || lambda > 0.f)
            throw py::value_error("label_smoothing cannot be combined with distillation (teacher=, kd_lambda=)");
        l.uniform = true;
        l.temperature = 1.f;
        l.lambda = label_smoothing;
        return l;
    }
    if (teacher.is_none()) return l;
    if (!py::isinstance<farray>(teacher))
        throw py::type_error("teacher must be a C-contiguous float32 array");
    const auto t = teacher.cast<farray>();
    check_2d(t.request(), net.n_classes(), "teacher");
    if (t.shape(0) != rows)
        throw py::value_error("teacher must hold one row of logits per row of X (" + std::to_string(rows) + ")");
    l.teacher = t.data();
    return l;
}

}  // namespace

void register_network(py::module_& m) {
    py::class_<Network>(m, "Network", "Sequential motif network with fused native training steps.")
        .def(py::init([](std::vector<std::shared_ptr<motifcore::Layer>> layers, int64_t num_threads) {
                 return new Network(std::move(layers), threads_arg(num_threads));
             }), py::arg("layers"), py::arg("num_threads"))
        .def_readonly("layers", &Network::layers)
        .def_property("num_threads", [](const Network& n) { return locked(n, [&] { return n.num_threads; }); },
                      [](Network& n, int64_t v) {
                          const int nt = threads_arg(v);
                          locked(n, [&] { n.num_threads = nt; });
                      })
        .def_property("dropout_seed", [](const Network& n) { return locked(n, [&] { return n.dropout_seed; }); },
                      [](Network& n, uint64_t v) { locked(n, [&] { n.dropout_seed = v; }); })
        .def_property("step", [](const Network& n) { return locked(n, [&] { return n.step; }); },
                      [](Network& n, uint64_t v) { locked(n, [&] { n.step = v; }); })
        .def("train_step", [](Network& n, const farray& X, const i64array& y, float lr, float momentum,
                              float weight_decay, float dropout, const std::string& optimizer, float beta1,
                              float beta2, float eps, float max_grad_norm, const py::object& teacher,
                              float temperature, float kd_lambda, const std::vector<float>& weight_grad_factor,
                              float label_smoothing) {
                check_xy(n, X, y);
                const TrainConfig c = make_train(momentum, weight_decay, dropout, optimizer, beta1, beta2, eps,
                                                 max_grad_norm, weight_grad_factor);
                const LossConfig l = make_loss(n, teacher, X.shape(0), temperature, kd_lambda, label_smoothing);
                return locked(n, [&] { return n.train_step(X.data(), y.data(), X.shape(0), lr, c, l); });
            }, py::arg("X").noconvert(), py::arg("y").noconvert(), py::arg("lr"), py::arg("momentum") = 0.9f,
            py::arg("weight_decay") = 5e-4f, py::arg("dropout") = 0.f, py::arg("optimizer") = "sgd",
            py::arg("beta1") = 0.9f, py::arg("beta2") = 0.999f, py::arg("eps") = 1e-8f, py::arg("max_grad_norm") = 0.f,
            py::arg("teacher") = py::none(), py::arg("temperature") = 1.f, py::arg("kd_lambda") = 0.f,
            py::arg("weight_grad_factor") = std::vector<float>{}, py::arg("label_smoothing") = 0.f)
        .def("train_epoch", [](Network& n, const farray& X, const i64array& y, const i64array& order,
                               int64_t batch, const farray& lrs, float momentum, float weight_decay, float dropout,
                               const std::string& optimizer, float beta1, float beta2, float eps,
                               float max_grad_norm, const py::object& teacher, float temperature,
                               float kd_lambda, const std::vector<float>& weight_grad_factor,
                               float label_smoothing) {
                check_xy(n, X, y);
                if (order.ndim() != 1) throw py::value_error("order must be 1-D");
                if (batch < 1) throw py::value_error("batch_size must be >= 1");
                const int64_t n_batches = (order.shape(0) + batch - 1) / batch;
                if (lrs.ndim() != 1 || lrs.shape(0) != n_batches)
                    throw py::value_error("lrs must hold one learning rate per batch (" + std::to_string(n_batches) + ")");
                const TrainConfig c = make_train(momentum, weight_decay, dropout, optimizer, beta1, beta2, eps,
                                                 max_grad_norm, weight_grad_factor);
                const LossConfig l = make_loss(n, teacher, X.shape(0), temperature, kd_lambda, label_smoothing);
                return locked(n, [&] {
                    return n.train_epoch(X.data(), y.data(), X.shape(0), order.data(), order.shape(0), batch,
                                         lrs.data(), c, l);
                });
            }, py::arg("X").noconvert(), py::arg("y").noconvert(), py::arg("order").noconvert(), py::arg("batch_size"),
            py::arg("lrs").noconvert(), py::arg("momentum") = 0.9f, py::arg("weight_decay") = 5e-4f,
            py::arg("dropout") = 0.f, py::arg("optimizer") = "sgd", py::arg("beta1") = 0.9f,
            py::arg("beta2") = 0.999f, py::arg("eps") = 1e-8f, py::arg("max_grad_norm") = 0.f,
            py::arg("teacher") = py::none(), py::arg("temperature") = 1.f, py::arg("kd_lambda") = 0.f,
            py::arg("weight_grad_factor") = std::vector<float>{}, py::arg("label_smoothing") = 0.f)
        .def("grad_step", [](Network& n, const farray& X, const i64array& y, const i64array& rows,
                             const std::vector<int64_t>& k, const std::vector<int64_t>& drop,
                             const std::vector<std::string>& topk, int64_t sample_factor,
                             const std::vector<uint64_t>& seeds, float dropout) {
                check_xy(n, X, y);
                if (rows.ndim() != 1 || rows.shape(0) < 1) throw py::value_error("rows must be a non-empty 1-D array");
                const size_t L = n.layers.size();
                if (topk.size() != L || seeds.size() != L)
                    throw py::value_error("topk and seeds need one entry per layer (" + std::to_string(L) + ")");
                std::vector<motifcore::TopkConfig> cfg(L);
                for (size_t l = 0; l < L; ++l) {
                    cfg[l].mode = parse_topk(topk[l]);
                    cfg[l].sample_factor = sample_factor;
                    cfg[l].seed = seeds[l];
                }
                std::vector<motifcore::TopkResult> out;
                const double loss = locked(n, [&] {
                    return n.grad_step(X.data(), y.data(), X.shape(0), rows.data(), rows.shape(0), dropout, k, drop,
                                       cfg, out);
                });
                py::list res;
                for (const auto& t : out) res.append(topk_to_python(t));
                return py::make_tuple(loss, res);
            }, py::arg("X").noconvert(), py::arg("y").noconvert(), py::arg("rows").noconvert(), py::arg("k"),
            py::arg("drop"), py::arg("topk"), py::arg("sample_factor") = 10, py::arg("seeds"), py::arg("dropout") = 0.f,
            "Forward and backward of X[rows] without an optimizer step; (mean loss, per layer (positions, "
            "scores) of the top-k block gradients among the positions not kept).")
        .def("logits", [](Network& n, const farray& X, int64_t chunk) {
                check_2d(X.request(), n.n_in(), "X");
                farray out({static_cast<int64_t>(X.shape(0)), n.n_classes()});
                float* o = out.mutable_data();
                locked(n, [&] { n.logits(X.data(), X.shape(0), o, chunk); });
                return out;
            }, py::arg("X").noconvert(), py::arg("chunk") = 256)
        .def("evaluate", [](Network& n, const farray& X, const i64array& y, int64_t chunk) {
                check_xy(n, X, y);
                return locked(n, [&] { return n.evaluate(X.data(), y.data(), X.shape(0), chunk); });
            }, py::arg("X").noconvert(), py::arg("y").noconvert(), py::arg("chunk") = 256,
            "(mean loss, number correct) without training.")
        .def("inference_bytes", [](const Network& n, int64_t chunk) {
                return locked(n, [&] { return n.inference_bytes(chunk); });
            }, py::arg("chunk"), "Bytes of the inference panels of logits/evaluate for a chunk of this many samples.")
        .def("auto_chunk", [](const Network& n, int64_t budget) {
                return locked(n, [&] { return n.auto_chunk(budget); });
            }, py::arg("budget"), "Largest chunk whose inference panels fit in budget bytes (at least 1).")
        .def("release_workspace", [](Network& n) { locked(n, [&] { n.release_workspace(); }); },
             "Free the training workspace; the next training call allocates it again.")
        .def("release_scratch", [](Network& n) { locked(n, [&] { n.release_scratch(); }); },
             "Free the shared backward scratch (input-gradient panel, transposed weights, cursors) only; "
             "the next training call allocates it again.")
        .def_property_readonly("workspace_bytes", [](const Network& n) {
                return locked(n, [&] { return n.workspace_bytes(); });
            }, "Bytes held by the training workspace.");
}

}  // namespace motifcore_py
