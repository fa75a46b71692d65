"""Time motif counts, exact ER z-scores and ranks on the paper network (784-3000-3000-3000-10,
density 0.1) and motif counts and (estimated) ranks on a 300k-wide SET network (epsilon 20), with
peak RSS. Parts already in --out are kept unless re-run.

    MOTIFCORE_NUM_THREADS=1 python scripts/structure_timing.py [--parts paper,wide,wide_ranks]
        [--wide 300000] [--out docs/experiments/structure/timing.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import motifcore
from motifcore.analysis import effective_rank, motif_counts, motif_zscores, spectrum_summary, stable_rank


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--parts", default="paper,wide,wide_ranks")
    p.add_argument("--wide", type=int, default=300_000)
    p.add_argument("--out", default="docs/experiments/structure/timing.json")
    a = p.parse_args()
    parts = a.parts.split(",")
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    if "paper" in parts:
        net, t_build = timed(lambda: motifcore.MotifMLP([784, 3000, 3000, 3000, 10], density=0.1, seed=0))
        c, t = timed(lambda: motif_counts(net))
        res["paper_net"] = {"build_s": t_build, "counts_s": t, "edges": c.total["edges"],
                            "bipar": c.total["bipar"], "bifan": c.total["bifan"], "chain3": c.total["chain3"]}
        _, t = timed(lambda: motif_zscores(net))
        res["paper_net"]["er_zscores_s"] = t
        _, t = timed(lambda: spectrum_summary(net))
        res["paper_net"]["ranks_exact_s"] = t
        res["paper_net"]["peak_rss_mb"] = rss_mb()
        print(json.dumps(res["paper_net"], indent=1), flush=True)
    w = a.wide
    if "wide" in parts or "wide_ranks" in parts:
        net, t_build = timed(lambda: motifcore.MotifMLP([w, w, w, 10], epsilon=20, seed=0))
    if "wide" in parts:
        c, t = timed(lambda: motif_counts(net))
        res["wide_set"] = {"width": w, "blocks": [l.n_blocks for l in net.layers], "build_s": t_build,
                           "counts_s": t, "edges": c.total["edges"], "bifan": c.total["bifan"],
                           "bipar": c.total["bipar"], "peak_rss_mb": rss_mb()}
        print(json.dumps(res["wide_set"], indent=1), flush=True)
    if "wide_ranks" in parts:
        layer = net.layers[1]                                  # 300k x 300k, 12 M links
        e, t_e = timed(lambda: effective_rank(layer, n_probes=16, steps=40, seed=0))
        s, t_s = timed(lambda: stable_rank(layer))
        res["wide_ranks"] = {"width": w, "blocks": layer.n_blocks, "erank": e.value, "erank_se": e.se,
                             "erank_method": e.method, "erank_probes": 16, "erank_steps": 40, "erank_s": t_e,
                             "srank": s.value, "srank_method": s.method, "srank_s": t_s,
                             "peak_rss_mb": rss_mb()}
        print(json.dumps(res["wide_ranks"], indent=1), flush=True)
    out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
