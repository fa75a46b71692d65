"""Time motif counts, exact ER z-scores and ranks on the paper network (784-3000-3000-3000-10,
density 0.1) and on a 300k-wide SET network (epsilon 20), with peak RSS.

    MOTIFCORE_NUM_THREADS=1 python scripts/structure_timing.py [--wide 300000]
        [--out docs/experiments/structure/timing.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import motifcore
from motifcore.analysis import motif_counts, motif_zscores, spectrum_summary


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--wide", type=int, default=300_000)
    p.add_argument("--out", default="docs/experiments/structure/timing.json")
    a = p.parse_args()
    res = {}
    net, t_build = timed(lambda: motifcore.MotifMLP([784, 3000, 3000, 3000, 10], density=0.1, seed=0))
    c, t = timed(lambda: motif_counts(net))
    res["paper_net"] = {"build_s": t_build, "counts_s": t, "edges": c.total["edges"], "bipar": c.total["bipar"],
                        "bifan": c.total["bifan"], "chain3": c.total["chain3"]}
    _, t = timed(lambda: motif_zscores(net))
    res["paper_net"]["er_zscores_s"] = t
    _, t = timed(lambda: spectrum_summary(net))
    res["paper_net"]["ranks_exact_s"] = t
    res["paper_net"]["peak_rss_mb"] = rss_mb()
    print(json.dumps(res, indent=1), flush=True)
    w = a.wide
    net, t_build = timed(lambda: motifcore.MotifMLP([w, w, w, 10], epsilon=20, seed=0))
    c, t = timed(lambda: motif_counts(net))
    res["wide_set"] = {"width": w, "blocks": [l.n_blocks for l in net.layers], "build_s": t_build, "counts_s": t,
                       "edges": c.total["edges"], "bifan": c.total["bifan"], "bipar": c.total["bipar"],
                       "peak_rss_mb": rss_mb()}
    print(json.dumps(res, indent=1), flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
