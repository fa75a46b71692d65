"""Analysis of trained networks: trade-off metrics (paper Sec. 4-5) and the latency/energy model."""

from . import estimate, metrics

__all__ = ["estimate", "metrics"]
