"""Analysis of trained networks: trade-off metrics (paper Sec. 4-5), the latency/energy model, and
the structure of sparse networks -- motif counts (:mod:`.motifs`) and their z-scores (:mod:`.nulls`), CH3-L3 link
prediction (:mod:`.dst`), robustness to weight perturbations (:mod:`.robustness`) and effective and
stable rank (:mod:`.rank`), and feature rankings by input-neuron strength (:mod:`.features`)."""

from . import dst, estimate, features, metrics, motifs, nulls, rank, robustness
from .features import feature_ranking, input_strength, path_strength, top_features
from .dst import ch3_l3_scores, cn_l3_scores
from .motifs import MOTIFS, MotifCounts, chain_removal, live_hidden_fraction, motif_counts
from .nulls import MotifZ, motif_zscores, null_moments, sample_null, significance_profile
from .rank import effective_rank, spectrum_summary, stable_rank
from .robustness import Curve, perturbation_curve, robustness_table

__all__ = ["estimate", "metrics", "motifs", "nulls", "dst", "rank", "robustness", "MOTIFS", "MotifCounts", "MotifZ",
           "motif_counts", "motif_zscores", "null_moments", "sample_null", "significance_profile", "chain_removal",
           "ch3_l3_scores", "cn_l3_scores", "effective_rank", "stable_rank", "spectrum_summary", "Curve",
           "perturbation_curve", "robustness_table", "live_hidden_fraction", "features", "input_strength",
           "feature_ranking", "top_features", "path_strength"]
