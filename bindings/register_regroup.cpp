// Binding of the motif regrouping (cpp/regroup.hpp): converts and checks arrays, releases the GIL.
#include <string>

#include "common.hpp"
#include "regroup.hpp"

namespace motifcore_py {

void register_regroup(py::module_& m) {
    m.def("regroup_blocks", [](int64_t n_out, int64_t n_in, int64_t m_out, int64_t m_in, const std::string& bias,
                               int64_t k_out, int64_t k_in, const i64array& indptr, const i32array& indices,
                               const farray& weights, const farray& bias_values, const farray& weight_velocity,
                               const farray& bias_velocity, const farray& weight_sq, const farray& bias_sq,
                               int64_t budget, bool keep_norm, int64_t num_threads) {
              if (bias != "neuron" && bias != "motif")
                  throw py::value_error("bias must be 'neuron' or 'motif', got '" + bias + "'");
              for (const py::array* a : {static_cast<const py::array*>(&indptr), static_cast<const py::array*>(&indices),
                                         static_cast<const py::array*>(&weights), static_cast<const py::array*>(&bias_values),
                                         static_cast<const py::array*>(&weight_velocity),
                                         static_cast<const py::array*>(&bias_velocity),
                                         static_cast<const py::array*>(&weight_sq), static_cast<const py::array*>(&bias_sq)})
                  if (a->ndim() != 1) throw py::value_error("regroup_blocks takes 1-D arrays");
              const int nt = threads_arg(num_threads);
              const motifcore::RegroupGeometry g{n_out, n_in, m_out, m_in, bias == "motif"};
              motifcore::BlockArrays a{to_vector(indptr), to_vector(indices), to_vector(weights),
                                       to_vector(weight_velocity), to_vector(weight_sq), to_vector(bias_values),
                                       to_vector(bias_velocity), to_vector(bias_sq)};
              motifcore::BlockArrays r;
              motifcore::RegroupStats st;
              {
                  py::gil_scoped_release release;
                  r = motifcore::regroup_blocks(g, a, k_out, k_in, budget, keep_norm, nt, &st);
              }
              py::dict out;
              out["indptr"] = from_vector(r.indptr);
              out["indices"] = from_vector(r.indices);
              out["weights"] = from_vector(r.K);
              out["bias"] = from_vector(r.b);
              out["weight_velocity"] = from_vector(r.vK);
              out["bias_velocity"] = from_vector(r.vb);
              out["weight_sq"] = from_vector(r.sK);
              out["bias_sq"] = from_vector(r.sb);
              out["covered"] = st.covered;
              out["kept"] = st.kept;
              out["scale"] = st.scale;
              return out;
          }, py::arg("n_out"), py::arg("n_in"), py::arg("m_out"), py::arg("m_in"), py::arg("bias"), py::arg("k_out"),
          py::arg("k_in"), py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
          py::arg("weights").noconvert(), py::arg("bias_values").noconvert(),
          py::arg("weight_velocity").noconvert(), py::arg("bias_velocity").noconvert(),
          py::arg("weight_sq").noconvert(), py::arg("bias_sq").noconvert(), py::arg("budget") = -1,
          py::arg("keep_norm") = false, py::arg("num_threads") = 1,
          "A layer's block arrays regrouped into motifs (k_out * m_out, k_in * m_in) (cpp/regroup.hpp): a dict of "
          "the new indptr, indices, weights, bias, weight_velocity, bias_velocity, weight_sq, bias_sq (empty: no "
          "Adam state), the counts 'covered' (new blocks over an active old one) and 'kept' (after the budget; "
          "budget < 0 keeps all) and 'scale' (the factor keep_norm applied to keep the layer's Frobenius norm).");
}

}  // namespace motifcore_py
