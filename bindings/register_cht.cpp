// Binding of the CH3-L3 scorer and the CHT evolution step: converts and checks, releases the GIL.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <tuple>

#include "cht.hpp"
#include "common.hpp"

namespace motifcore_py {

void register_cht(py::module_& m) {
    m.def("ch3_l3_scores", [](int64_t n_rows, int64_t n_cols, const i64array& indptr, const i32array& indices,
                              int64_t num_threads) {
              const int nt = threads_arg(num_threads);
              if (indptr.ndim() != 1 || indices.ndim() != 1)
                  throw py::value_error("indptr and indices must be 1-D arrays");
              auto ip = to_vector(indptr);
              auto ix = to_vector(indices);
              motifcore::Ch3Scores s;
              {
                  py::gil_scoped_release release;
                  s = motifcore::ch3_l3_scores(n_rows, n_cols, ip, ix, nt);
              }
              return std::make_tuple(from_vector(s.col_ptr), from_vector(s.rows), from_vector(s.values));
          }, py::arg("n_rows"), py::arg("n_cols"), py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
          py::arg("num_threads") = 1,
          "CH3-L3 scores of the absent links of a CSR pattern (rows = outputs): (col_ptr, rows, values), CSC.");
    m.def("cht_evolve", [](const std::vector<std::shared_ptr<motifcore::Layer>>& layers,
                           const std::vector<double>& zetas, const std::vector<uint64_t>& seeds, bool chain_removal,
                           bool fill_random, const std::string& regrow, int64_t num_threads, bool by_score,
                           const std::string& removal, bool restore) {
              motifcore::ChtConfig cfg;
              cfg.chain_removal = chain_removal;
              cfg.fill_random = fill_random;
              cfg.by_score = by_score;
              cfg.init = parse_regrow(regrow);
              if (removal != "magnitude" && removal != "sign")
                  throw py::value_error("removal must be 'magnitude' or 'sign', got '" + removal + "'");
              cfg.sign_removal = removal == "sign";
              cfg.restore = restore;
              const int nt = threads_arg(num_threads);
              std::vector<motifcore::Layer*> ptrs;
              std::vector<const motifcore::StateMutex*> mutexes;
              for (const auto& l : layers) {
                  if (!l) throw py::value_error("layers must not contain None");
                  ptrs.push_back(l.get());
                  mutexes.push_back(&l->state_mutex());
              }
              std::vector<motifcore::ChtStats> st;
              {
                  py::gil_scoped_release release;
                  const motifcore::StateGuard guard(std::move(mutexes));  // every layer (rule: concurrency.hpp)
                  st = motifcore::cht_evolve(ptrs, zetas, seeds, cfg, nt);
              }
              std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>> out;
              for (const auto& s : st)
                  out.emplace_back(s.removed, s.cr_removed, s.regrown_score, s.regrown_fill, s.restored);
              return out;
          }, py::arg("layers"), py::arg("zetas"), py::arg("seeds"), py::arg("chain_removal") = true,
          py::arg("fill_random") = true, py::arg("regrow") = "zero", py::arg("num_threads") = 1,
          py::arg("by_score") = true, py::arg("removal") = "magnitude", py::arg("restore") = false,
          "One CHT step in place over the layers of a network (by_score=False: random regrowth; removal='sign': "
          "the CHT code's per-sign removal; restore: a link removed and regrown in the step keeps its value); per "
          "layer (removed, chain-removed, regrown by score, regrown by fill, regrown among the removed).");
}

}  // namespace motifcore_py
