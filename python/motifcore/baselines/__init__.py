"""Baselines of the Motif-SET paper's Tables 7 and 8 on the motifcore engine: global magnitude
pruning with fine-tuning and rewinding (:mod:`.prune`), knowledge distillation (:mod:`.distill`)
and Deep Compression's storage stages (:mod:`.compress`). See docs/baselines.md."""

from . import compress, distill, prune
from .compress import compress_model
from .distill import KD, teacher_logits
from .prune import global_magnitude_prune, iterative_densities, iterative_prune, retrainer, rewind

__all__ = ["KD", "compress", "compress_model", "distill", "global_magnitude_prune", "iterative_densities",
           "iterative_prune", "prune", "retrainer", "rewind", "teacher_logits"]
