#include "regroup.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common.hpp"
#include "kernels.hpp"
#include "parallel.hpp"
#include "pattern.hpp"

namespace motifcore {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Neurons of group g of a width n in groups of m (m, or fewer for the last, residual group).
int64_t group_size(int64_t n, int64_t m, int64_t g) { return std::min(m, n - g * m); }

void check_values(const std::vector<float>& v, const char* what, bool non_negative) {
    for (float x : v) {
        MC_CHECK(std::isfinite(x), what << " holds a NaN or infinite value");
        MC_CHECK(!non_negative || x >= 0.f, what << " must be >= 0 (an Adam second moment)");
    }
}

// An old block as a new row sees it: its new column, old row and old CSR position.
struct Covered {
    int32_t col;
    int64_t row, pos;
};

// One new block before the budget: its column and values.
struct NewBlock {
    int32_t col;
    float K, v, s;
};

}  // namespace

BlockArrays regroup_blocks(const RegroupGeometry& g, const BlockArrays& in, int64_t k_out, int64_t k_in,
                           int64_t budget, bool keep_norm, int num_threads, RegroupStats* stats) {
    MC_CHECK(g.n_out >= 1 && g.n_in >= 1, "layer widths must be >= 1, got n_out=" << g.n_out << ", n_in=" << g.n_in);
    MC_CHECK(g.m_out >= 1 && g.m_in >= 1 && g.m_out <= g.n_out && g.m_in <= g.n_in,
             "motif sizes (" << g.m_out << ", " << g.m_in << ") must be in [1, width] of a " << g.n_out << " x "
                             << g.n_in << " layer");
    MC_CHECK(k_out >= 1 && k_in >= 1, "regroup factors must be >= 1, got (" << k_out << ", " << k_in << ")");
    const int64_t M_out = g.m_out * k_out, M_in = g.m_in * k_in;
    MC_CHECK(M_out <= g.n_out && M_in <= g.n_in,
             "the regrouped motif (" << M_out << ", " << M_in << ") is wider than the " << g.n_out << " x " << g.n_in
                                     << " layer");
    const int64_t G_out = ceil_div(g.n_out, g.m_out), G_in = ceil_div(g.n_in, g.m_in);
    const int64_t H_out = ceil_div(g.n_out, M_out);  // new output groups (the new input groups follow from C = c / k_in)
    BlockPattern::validate(G_out, G_in, in.indptr, in.indices);
    const size_t nnz = in.indices.size();
    const bool adam = !in.sK.empty();
    MC_CHECK(in.K.size() == nnz && in.vK.size() == nnz,
             "weights and their momentum must have one entry per block (" << nnz << ")");
    MC_CHECK(!adam || in.sK.size() == nnz, "weight second moments must have one entry per block (" << nnz << ")");
    const size_t n_bias = static_cast<size_t>(g.bias_per_motif ? G_out : g.n_out);
    MC_CHECK(in.b.size() == n_bias && in.vb.size() == n_bias,
             "bias and its momentum must have " << n_bias << " entries, got " << in.b.size() << " and " << in.vb.size());
    MC_CHECK(in.sb.empty() == !adam, "Adam second moments must be given for both weights and biases, or neither");
    MC_CHECK(!adam || in.sb.size() == n_bias, "bias second moments must have " << n_bias << " entries");
    check_values(in.K, "weights", false);
    check_values(in.vK, "weight momentum", false);
    check_values(in.sK, "weight second moments", true);
    check_values(in.b, "bias", false);
    check_values(in.vb, "bias momentum", false);
    check_values(in.sb, "bias second moments", true);

    // Each new row R gathers the blocks of its old rows, sorts them by new column (stable: old row,
    // then old column within a new column) and folds each run into one new block.
    std::vector<std::vector<NewBlock>> rows(static_cast<size_t>(H_out));
    const int64_t avg = G_out > 0 ? static_cast<int64_t>(nnz) / G_out + 1 : 1;
    parallel_for(H_out, grain_for(avg * k_out * 8), threads_for(static_cast<int64_t>(nnz), num_threads), [&](int64_t R) {
        const int64_t r0 = R * k_out, r1 = std::min(G_out, r0 + k_out);
        std::vector<Covered> items;
        items.reserve(static_cast<size_t>(in.indptr[r1] - in.indptr[r0]));
        for (int64_t r = r0; r < r1; ++r)
            for (int64_t p = in.indptr[r]; p < in.indptr[r + 1]; ++p)
                items.push_back({static_cast<int32_t>(in.indices[p] / k_in), r, p});
        std::stable_sort(items.begin(), items.end(), [](const Covered& a, const Covered& b) { return a.col < b.col; });
        const double new_out = static_cast<double>(group_size(g.n_out, M_out, R));
        auto& out = rows[static_cast<size_t>(R)];
        for (size_t i = 0; i < items.size();) {
            const int32_t C = items[i].col;
            double kw = 0.0, v = 0.0, sq = 0.0;
            for (; i < items.size() && items[i].col == C; ++i) {
                const int64_t r = items[i].row, p = items[i].pos;
                const double edges = static_cast<double>(group_size(g.n_out, g.m_out, r)) *
                                     static_cast<double>(group_size(g.n_in, g.m_in, in.indices[p]));
                kw += static_cast<double>(in.K[p]) * edges;
                v += in.vK[p];
                if (adam) sq += std::sqrt(static_cast<double>(in.sK[p]));
            }
            const double new_edges = new_out * static_cast<double>(group_size(g.n_in, M_in, C));
            out.push_back({C, static_cast<float>(kw / new_edges), static_cast<float>(v), static_cast<float>(sq * sq)});
        }
    });

    // Row offsets of the covered blocks, then the budget: the `budget` of largest |K'| (ties to
    // the lower position) survive.
    std::vector<int64_t> offset(static_cast<size_t>(H_out) + 1, 0);
    for (int64_t R = 0; R < H_out; ++R) offset[R + 1] = offset[R] + static_cast<int64_t>(rows[R].size());
    const int64_t covered = offset[H_out];
    std::vector<uint8_t> keep(static_cast<size_t>(covered), 1);
    if (budget >= 0 && budget < covered) {
        std::vector<float> mag(static_cast<size_t>(covered));
        for (int64_t R = 0; R < H_out; ++R)
            for (size_t j = 0; j < rows[R].size(); ++j) mag[offset[R] + static_cast<int64_t>(j)] = std::fabs(rows[R][j].K);
        // CSR order is position order, so the flat index q breaks ties by position
        std::vector<int64_t> order(static_cast<size_t>(covered));
        std::iota(order.begin(), order.end(), int64_t{0});
        const auto larger = [&](int64_t a, int64_t b) { return mag[a] > mag[b] || (mag[a] == mag[b] && a < b); };
        std::nth_element(order.begin(), order.begin() + budget, order.end(), larger);
        std::fill(keep.begin(), keep.end(), 0);
        for (int64_t i = 0; i < budget; ++i) keep[static_cast<size_t>(order[i])] = 1;
    }

    // keep_norm: one factor for the layer, ||W||_F / ||W'||_F, both sums in CSR order
    double scale = 1.0;
    if (keep_norm) {
        double old_sq = 0.0, new_sq = 0.0;
        for (int64_t r = 0; r < G_out; ++r)
            for (int64_t p = in.indptr[r]; p < in.indptr[r + 1]; ++p)
                old_sq += static_cast<double>(in.K[p]) * in.K[p] * static_cast<double>(group_size(g.n_out, g.m_out, r)) *
                          static_cast<double>(group_size(g.n_in, g.m_in, in.indices[p]));
        for (int64_t R = 0; R < H_out; ++R)
            for (size_t j = 0; j < rows[R].size(); ++j)
                if (keep[static_cast<size_t>(offset[R]) + j])
                    new_sq += static_cast<double>(rows[R][j].K) * rows[R][j].K *
                              static_cast<double>(group_size(g.n_out, M_out, R)) *
                              static_cast<double>(group_size(g.n_in, M_in, rows[R][j].col));
        if (new_sq > 0.0 && old_sq > 0.0) scale = std::sqrt(old_sq / new_sq);
    }

    BlockArrays out;
    out.indptr.assign(static_cast<size_t>(H_out) + 1, 0);
    const int64_t kept = std::accumulate(keep.begin(), keep.end(), int64_t{0});
    out.indices.reserve(static_cast<size_t>(kept));
    out.K.reserve(static_cast<size_t>(kept));
    out.vK.reserve(static_cast<size_t>(kept));
    if (adam) out.sK.reserve(static_cast<size_t>(kept));
    for (int64_t R = 0; R < H_out; ++R) {
        for (size_t j = 0; j < rows[R].size(); ++j) {
            if (!keep[static_cast<size_t>(offset[R]) + j]) continue;
            const NewBlock& nb = rows[R][j];
            out.indices.push_back(nb.col);
            out.K.push_back(keep_norm ? static_cast<float>(static_cast<double>(nb.K) * scale) : nb.K);
            out.vK.push_back(nb.v);
            if (adam) out.sK.push_back(nb.s);
        }
        out.indptr[R + 1] = static_cast<int64_t>(out.indices.size());
    }

    if (!g.bias_per_motif) {  // one bias per neuron: the neurons do not change
        out.b = in.b;
        out.vb = in.vb;
        out.sb = in.sb;
    } else {
        out.b.assign(static_cast<size_t>(H_out), 0.f);
        out.vb.assign(static_cast<size_t>(H_out), 0.f);
        if (adam) out.sb.assign(static_cast<size_t>(H_out), 0.f);
        for (int64_t R = 0; R < H_out; ++R) {
            double bw = 0.0, v = 0.0, sq = 0.0;
            for (int64_t r = R * k_out; r < std::min(G_out, (R + 1) * k_out); ++r) {
                bw += static_cast<double>(in.b[r]) * static_cast<double>(group_size(g.n_out, g.m_out, r));
                v += in.vb[r];
                if (adam) sq += std::sqrt(static_cast<double>(in.sb[r]));
            }
            out.b[R] = static_cast<float>(bw / static_cast<double>(group_size(g.n_out, M_out, R)));
            out.vb[R] = static_cast<float>(v);
            if (adam) out.sb[R] = static_cast<float>(sq * sq);
        }
    }
    // A float sum of finite values can still overflow: refuse rather than hand the layer an inf.
    for (const auto* v : {&out.K, &out.vK, &out.sK, &out.b, &out.vb, &out.sb})
        for (float x : *v)
            MC_CHECK_AS(std::overflow_error, std::isfinite(x),
                        "regrouping overflows float32 (a summed momentum or second moment is infinite)");
    if (stats) {
        stats->covered = covered;
        stats->kept = kept;
        stats->scale = scale;
    }
    return out;
}

}  // namespace motifcore
