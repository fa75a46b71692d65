// Cannistraci-Hebb CH3-L3 link prediction on a bipartite layer and the CHT evolution step
// (magnitude removal, chain removal, regrowth of the top-scored absent links).
//
// Orientation: row = output group, column = input group, as in Layer. The score of an absent
// link (i, j) sums over the 3-paths j -> i' <- j' -> i of the layer graph:
//   CH3-L3(i, j) = sum_{i' in N(j)} sum_{j' in N(i') ∩ N(i)} 1 / sqrt((k(i') - c(i', i)) (k(j') - c(j', j)))
// with k the degree and c(u, v) the number of neighbours u and v share (the CH3 "external degree
// plus one" of the path's inner nodes, Muscoloni & Cannistraci; the bipartite closed form of the
// path enumeration of the CHT code). Motif-SET layers are scored on their block graph.
#pragma once

#include <cstdint>
#include <vector>

#include "evolution.hpp"

namespace motifcore {

class Layer;

/// Positive CH3-L3 scores of the absent links of a G_out x G_in pattern, column by column
/// (CSC over inputs: col_ptr[G_in + 1], rows and values sorted by row within a column).
struct Ch3Scores {
    std::vector<int64_t> col_ptr;
    std::vector<int32_t> rows;
    std::vector<double> values;
};

/// CH3-L3 of every absent link of the pattern (indptr/indices: CSR over rows, sorted columns).
/// Scratch O(G_out + G_in) per thread; the result does not depend on num_threads.
Ch3Scores ch3_l3_scores(int64_t n_rows, int64_t n_cols, const std::vector<int64_t>& indptr,
                        const std::vector<int32_t>& indices, int num_threads);

/// Settings of one CHT evolution step of a network.
struct ChtConfig {
    bool chain_removal = true;             ///< drop the links of hidden neurons without input or output
    bool fill_random = true;               ///< top up with uniform random links when too few scores are > 0
    bool by_score = true;                  ///< false: regrow every link uniformly at random (RLR with CR)
    RegrowInit init = RegrowInit::Zero;    ///< value of regrown blocks (CHT: zero)
    /// Removal by sign as in the CHT code (sparse.py, sparse_layer.remove_connections,
    /// remove_method "weight_magnitude"): the round(zeta n-) negative blocks nearest zero, the
    /// round(zeta n+) positive blocks nearest zero and every block at exactly zero; false: the
    /// round(zeta |P|) smallest |K| of the layer.
    bool sign_removal = false;
    /// A block regrown at a position removed in this same step keeps its value and optimizer
    /// state (the CHT code multiplies the old weights by "kept or regrown"); false: it starts
    /// fresh with `init` like any other new block.
    bool restore = false;
};

/// What one CHT step did to one layer.
struct ChtStats {
    int64_t removed = 0;         ///< blocks removed by magnitude
    int64_t cr_removed = 0;      ///< blocks removed by chain removal
    int64_t regrown_score = 0;   ///< blocks regrown at the top CH3-L3 scores
    int64_t regrown_fill = 0;    ///< blocks regrown uniformly at random (fill)
    int64_t restored = 0;        ///< regrown blocks removed in this step (values kept if cfg.restore)
};

/// One CHT step over the layers of a network, in place. For every layer l with zetas[l] > 0:
/// remove the round(zeta |P|) smallest-|K| blocks (ties by position; cfg.sign_removal: per sign,
/// see ChtConfig); then, if chain removal is
/// on, remove in cascade the blocks of those layers whose output motif has no outgoing block in
/// the next layer (backward pass) or whose input motif has no incoming block in the previous
/// layer (forward pass) -- a motif counts as dead only if all of its neurons are; then regrow
/// exactly as many blocks as were removed at the highest CH3-L3 scores of the remaining pattern
/// (ties broken by a seeded hash of the position), filling up at random if fewer than that have a
/// positive score and fill_random is set. |P| of every evolved layer is conserved (with
/// fill_random). New blocks get `init` and zero optimizer state, except that with cfg.restore a
/// position removed in this step and regrown keeps its value and state. Layers with zeta 0 are left
/// unchanged. seeds[l] seeds layer l. The result does not depend on num_threads.
std::vector<ChtStats> cht_evolve(const std::vector<Layer*>& layers, const std::vector<double>& zetas,
                                 const std::vector<uint64_t>& seeds, const ChtConfig& cfg, int num_threads);

}  // namespace motifcore
