// Binding of motifcore::Network: whole training steps/epochs as single GIL-free native calls.
#include <pybind11/stl.h>

#include <string>

#include "common.hpp"
#include "network.hpp"

namespace motifcore_py {

using motifcore::Network;
using motifcore::TrainConfig;

namespace {

TrainConfig make_train(float momentum, float weight_decay, float dropout, const std::string& optimizer,
                       float beta1, float beta2, float eps, float max_grad_norm) {
    TrainConfig c;
    c.momentum = momentum;
    c.weight_decay = weight_decay;
    c.dropout = dropout;
    c.optimizer = parse_optimizer(optimizer);
    c.beta1 = beta1;
    c.beta2 = beta2;
    c.eps = eps;
    c.max_grad_norm = max_grad_norm;
    return c;
}

void check_xy(const Network& net, const farray& X, const i64array& y) {
    check_2d(X.request(), net.n_in(), "X");
    if (y.ndim() != 1 || y.shape(0) != X.shape(0))
        throw py::value_error("y must be 1-D with one label per row of X (" + std::to_string(X.shape(0)) + ")");
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
                              float beta2, float eps, float max_grad_norm) {
                check_xy(n, X, y);
                const TrainConfig c = make_train(momentum, weight_decay, dropout, optimizer, beta1, beta2, eps,
                                                 max_grad_norm);
                return locked(n, [&] { return n.train_step(X.data(), y.data(), X.shape(0), lr, c); });
            }, py::arg("X").noconvert(), py::arg("y").noconvert(), py::arg("lr"), py::arg("momentum") = 0.9f,
            py::arg("weight_decay") = 5e-4f, py::arg("dropout") = 0.f, py::arg("optimizer") = "sgd",
            py::arg("beta1") = 0.9f, py::arg("beta2") = 0.999f, py::arg("eps") = 1e-8f, py::arg("max_grad_norm") = 0.f)
        .def("train_epoch", [](Network& n, const farray& X, const i64array& y, const i64array& order,
                               int64_t batch, const farray& lrs, float momentum, float weight_decay, float dropout,
                               const std::string& optimizer, float beta1, float beta2, float eps,
                               float max_grad_norm) {
                check_xy(n, X, y);
                if (order.ndim() != 1) throw py::value_error("order must be 1-D");
                if (batch < 1) throw py::value_error("batch_size must be >= 1");
                const int64_t n_batches = (order.shape(0) + batch - 1) / batch;
                if (lrs.ndim() != 1 || lrs.shape(0) != n_batches)
                    throw py::value_error("lrs must hold one learning rate per batch (" + std::to_string(n_batches) + ")");
                const TrainConfig c = make_train(momentum, weight_decay, dropout, optimizer, beta1, beta2, eps,
                                                 max_grad_norm);
                return locked(n, [&] {
                    return n.train_epoch(X.data(), y.data(), X.shape(0), order.data(), order.shape(0), batch,
                                         lrs.data(), c);
                });
            }, py::arg("X").noconvert(), py::arg("y").noconvert(), py::arg("order").noconvert(), py::arg("batch_size"),
            py::arg("lrs").noconvert(), py::arg("momentum") = 0.9f, py::arg("weight_decay") = 5e-4f,
            py::arg("dropout") = 0.f, py::arg("optimizer") = "sgd", py::arg("beta1") = 0.9f,
            py::arg("beta2") = 0.999f, py::arg("eps") = 1e-8f, py::arg("max_grad_norm") = 0.f)
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
            "(mean loss, number correct) without training.");
}

}  // namespace motifcore_py
