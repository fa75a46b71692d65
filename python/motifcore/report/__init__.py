"""The paper's tables and figures, rebuilt from the runs of a sweep folder."""

from .sweep_report import PAPER_DENSITY, PAPER_LR, SCORE_WEIGHT, aggregate, run_rows, write_report

__all__ = ["PAPER_DENSITY", "PAPER_LR", "SCORE_WEIGHT", "aggregate", "run_rows", "write_report"]
