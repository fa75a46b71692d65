"""Turn a pytest-benchmark JSON file into Markdown tables of medians and ratios.

Usage::

    python scripts/bench_report.py .benchmarks/run.json [more.json ...] > tables.md

One table per benchmark group. Rows come from each benchmark's ``extra_info`` (see
``bench/conftest.py``): ``impl``, ``m``, ``threads``, ``macs`` (unique multiply-adds per call),
``baseline`` (the group's reference row) and group-specific keys. Columns:

* median, minimum and IQR of the wall time, rounds (ratios use medians; on a shared, noisy
  machine the minimum is the better estimate of what the code can do);
* ``<baseline> / this``: the baseline's median over this row's median (> 1x: this row is faster);
* ``best other / this`` for motifcore rows: the fastest non-motifcore row's median over this row's;
* ``unique GMAC/s`` = macs / minimum time, and ``% SGEMM`` = that over the best SGEMM rate (also from
  minimum times) in the same file: the ``sgemm`` group and the PyTorch dense layer forward, which is
  the same n x n x B product (see ``is_sgemm``); ``edge-equiv. GMAC/s`` counts every edge of the
  effective matrix;
* ``samples/s`` where ``samples`` is given; scaling columns (H, blocks, peak memory, ...).

A closing section checks the issue's targets against the numbers found.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

Row = Dict[str, Any]

# Targets of the performance issue.
TARGET_SGEMM_FRACTION = 0.30
TARGET_EPOCH_S = 30.0
TARGET_PEAK_MIB = 4096.0
TARGET_H = 300000
# Round two: m = 1 layer unique rate over same-thread SGEMM (forward, forward+backward); m = 2 and
# m = 4 training step over the m = 1 step (medians).
TARGET2_SGEMM_FORWARD = 0.50
TARGET2_SGEMM_FWD_BWD = 0.40
TARGET2_STEP_RATIO = {2: 0.30, 4: 0.10}
# motifcore m = 1 over SparseProp at the same thread count (medians): every layer row, the step.
TARGET_SPARSEPROP_LAYER = 2.0
TARGET_SPARSEPROP_STEP = 3.0


def load(paths: Sequence[str]) -> Tuple[List[Row], Dict[str, Any]]:
    rows: List[Row] = []
    machine: Dict[str, Any] = {}
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        machine = machine or dict(data.get("machine_info", {}))
        machine.setdefault("datetime", data.get("datetime"))
        machine.setdefault("commit", (data.get("commit_info") or {}).get("id"))
        machine.setdefault("dirty", (data.get("commit_info") or {}).get("dirty"))
        for b in data.get("benchmarks", []):
            ei = dict(b.get("extra_info") or {})
            st = b["stats"]
            rows.append({
                "group": b.get("group") or "(no group)",
                "name": b["name"],
                "median": st["median"],
                "iqr": st.get("iqr", float("nan")),
                "min": st["min"],
                "rounds": st.get("rounds"),
                **ei,
            })
    return rows, machine


def is_sgemm(r: Row) -> bool:
    """Rows that time a plain dense float32 GEMM of the layer's shape: the ``sgemm`` group and the
    PyTorch dense layer forward (``x @ W.T``, the same n x n x B product). On a shared machine they
    run at different moments, so the best of them is the fairest estimate of the machine's rate."""
    if r.get("sgemm"):
        return True
    return r.get("impl") == "torch-dense" and r.get("op") == "forward" and str(r["group"]).startswith("layer ")


def sgemm_rate(rows: List[Row]) -> Optional[float]:
    rates = [r["macs"] / r["min"] for r in rows if is_sgemm(r) and r.get("macs")]
    return max(rates) if rates else None


def _fmt_time(sec: float, unit: str) -> str:
    v = sec * (1e3 if unit == "ms" else 1.0)
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _fmt_ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def _fmt_num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, bool):
        return "yes" if x else ""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def label(r: Row) -> str:
    s = str(r.get("impl") or r["name"])
    if r.get("m") is not None:
        s += f" m={r['m']}"
    return s


def _order(r: Row) -> Tuple[Any, ...]:
    impl = str(r.get("impl") or "")
    kind = 0 if r.get("baseline") else (2 if impl == "motifcore" else 1)
    return (r.get("H") or 0, kind, impl, r.get("m") or 0, r.get("threads") or 0, r["name"])


# (key, header, formatter) of optional per-row columns, shown when any row of the group has the key.
EXTRA_COLUMNS: List[Tuple[str, str, Callable[[Any], str]]] = [
    ("H", "H", lambda v: f"{int(v):,}"),
    ("blocks", "active blocks (dense: weights)", lambda v: f"{int(v):,}"),
    ("init_s", "init s", lambda v: f"{v:.2f}"),
    ("peak_mib", "peak MiB", lambda v: f"{v:,.0f}"),
    ("ns_per_block_sample", "ns / (block x sample)", lambda v: f"{v:.3g}"),
    ("first_loss", "first loss", lambda v: f"{v:.3g}"),
]


def group_table(group: str, rows: List[Row], sgemm: Optional[float]) -> List[str]:
    rows = sorted(rows, key=_order)
    base = next((r for r in rows if r.get("baseline")), None)
    if base is None:
        base = next((r for r in rows if r.get("impl") == "torch-dense"), None)
    others = [r for r in rows if r.get("impl") != "motifcore"]
    best_other = min(others, key=lambda r: r["median"]) if others else None
    # Groups swept over a size (scaling): compare each row with the baseline of the same size only.
    per_size = any(r.get("H") is not None for r in rows)

    def base_of(r: Row) -> Optional[Row]:
        if not per_size:
            return base
        return next((b for b in rows if b.get("H") == r.get("H") and b.get("impl") == (base or {}).get("impl")),
                    None)
    unit = "s" if max(r["median"] for r in rows) >= 10.0 else "ms"
    show_threads = len({r.get("threads") for r in rows}) > 1
    has_macs = any(r.get("macs") for r in rows)
    has_edges = any(r.get("edge_macs") for r in rows)
    has_samples = any(r.get("samples") for r in rows)
    extras = [c for c in EXTRA_COLUMNS if any(r.get(c[0]) is not None for r in rows)]

    head = ["implementation"]
    if show_threads:
        head.append("threads")
    head += [f"median {unit}", f"min {unit}", f"IQR {unit}", "rounds"]
    if base is not None:
        head.append(f"{label(base)}{' t=' + str(base['threads']) if show_threads else ''}"
                    f"{' (same H)' if per_size else ''} / this")
    if (best_other is not None and any(r.get("impl") == "motifcore" for r in rows) and len(others) > 1
            and not per_size):
        head.append("best other / this")
    if has_macs:
        head.append("unique GMAC/s")
        if sgemm:
            head.append("% SGEMM")
    if has_edges:
        head.append("edge-equiv. GMAC/s")
    if has_samples:
        head.append("samples/s")
    head += [c[1] for c in extras]

    out = [f"### {group}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        rb = base_of(r)
        cells = [label(r) + (" (baseline)" if r is rb else "")]
        if show_threads:
            cells.append(_fmt_num(r.get("threads")))
        cells += [_fmt_time(r["median"], unit), _fmt_time(r["min"], unit), _fmt_time(r["iqr"], unit),
                  _fmt_num(r.get("rounds"))]
        if base is not None:
            cells.append(_fmt_ratio(rb["median"] / r["median"]) if rb is not None else "")
        if "best other / this" in head:
            cells.append(_fmt_ratio(best_other["median"] / r["median"])  # type: ignore[index]
                         if r.get("impl") == "motifcore" else "")
        if has_macs:
            rate = r["macs"] / r["min"] if r.get("macs") else None
            cells.append(f"{rate / 1e9:.3g}" if rate else "")
            if sgemm:
                cells.append(f"{100 * rate / sgemm:.1f} %" if rate else "")
        if has_edges:
            cells.append(f"{r['edge_macs'] / r['min'] / 1e9:.3g}" if r.get("edge_macs") else "")
        if has_samples:
            cells.append(f"{r['samples'] / r['median']:,.0f}" if r.get("samples") else "")
        for key, _, fmt in extras:
            v = r.get(key)
            cells.append(fmt(v) if v is not None else "")
        out.append("| " + " | ".join(cells) + " |")
    notes = sorted({str(r["note"]) for r in rows if r.get("note")})
    loads = [r["load1"] for r in rows if r.get("load1") is not None]
    out.append("")
    for n in notes:
        out.append(f"- {n}")
    if loads:
        out.append(f"- 1-min load average when these benchmarks started: {min(loads):.2f} - {max(loads):.2f} "
                   "(a value above the number of cores means other processes competed for them)")
    out.append("")
    return out


def targets(rows: List[Row], sgemm: Optional[float]) -> List[str]:
    out = ["### Targets", ""]
    layer = [r for r in rows if r.get("impl") == "motifcore" and r.get("macs")
             and str(r["group"]).startswith("layer ")]
    if layer and sgemm:
        out.append(f"Unique multiply-add throughput of one motifcore layer / SGEMM, both from the "
                   f"minimum time ({sgemm / 1e9:.3g} GMAC/s measured in this run), target >= "
                   f"{100 * TARGET_SGEMM_FRACTION:.0f} %:")
        out.append("")
        out.append("| group | m=1 | m=2 | m=4 | m=8 |")
        out.append("|---|---|---|---|---|")
        groups: Dict[str, Dict[int, float]] = {}
        for r in layer:
            groups.setdefault(r["group"], {})[int(r["m"])] = r["macs"] / r["min"] / sgemm
        for g, by_m in groups.items():
            cells = []
            for m in (1, 2, 4, 8):
                f = by_m.get(m)
                cells.append("" if f is None else
                             f"{100 * f:.1f} % {'met' if f >= TARGET_SGEMM_FRACTION else 'not met'}")
            out.append(f"| {g} | " + " | ".join(cells) + " |")
        out.append("")
    sc = [r for r in rows if r.get("impl") == "motifcore" and r.get("H") == TARGET_H and r.get("m") == 1]
    if sc:
        r = sc[0]
        e, p = r["median"], r.get("peak_mib", float("nan"))
        out.append(f"- H={TARGET_H:,}, m=1, one epoch: {e:.1f} s (target <= {TARGET_EPOCH_S:.0f} s: "
                   f"{'met' if e <= TARGET_EPOCH_S else 'not met'}); peak memory {p:,.0f} MiB "
                   f"(target <= {TARGET_PEAK_MIB:,.0f} MiB: {'met' if p <= TARGET_PEAK_MIB else 'not met'})")
    else:
        out.append(f"- H={TARGET_H:,} scaling target: not run (needs MOTIFCORE_BENCH_FULL=1)")
    out.append("")
    out += round_two_targets(rows, sgemm)
    out += sparseprop_targets(rows)
    return out


def round_two_targets(rows: List[Row], sgemm: Optional[float]) -> List[str]:
    """The issue-12 targets on the layer and step groups: m = 1 unique rate / SGEMM (run with
    ``MOTIFCORE_NUM_THREADS=1`` for the same-thread comparison) and the m = 2, 4 step over m = 1."""
    out: List[str] = []
    if sgemm:
        for r in sorted(rows, key=lambda r: str(r["group"])):
            g = str(r["group"])
            if not (g.startswith("layer ") and r.get("impl") == "motifcore" and r.get("m") == 1 and r.get("macs")):
                continue
            target = (TARGET2_SGEMM_FORWARD if " forward d=" in g else
                      TARGET2_SGEMM_FWD_BWD if " forward+backward d=" in g else None)
            if target is None:
                continue
            f = r["macs"] / r["min"] / sgemm
            out.append(f"- {g}, m=1: {100 * f:.1f} % of SGEMM (round-two target >= {100 * target:.0f} %: "
                       f"{'met' if f >= target else 'not met'})")
    steps = {r.get("m"): r for r in rows if str(r["group"]).startswith("train step ") and r.get("impl") == "motifcore"}
    if 1 in steps:
        for m, target in TARGET2_STEP_RATIO.items():
            if m in steps:
                q = steps[m]["median"] / steps[1]["median"]
                out.append(f"- training step, m={m} / m=1 median: {q:.3f} (target <= {target:.2f}: "
                           f"{'met' if q <= target else 'not met'})")
    return out + [""] if out else []


def sparseprop_targets(rows: List[Row]) -> List[str]:
    """SparseProp median / motifcore m = 1 median of each ``sparseprop:`` group (bench/test_sparseprop.py)."""
    groups: Dict[str, Dict[str, Row]] = {}
    for r in rows:
        if str(r["group"]).startswith("sparseprop:") and r.get("impl") in ("sparseprop", "motifcore"):
            groups.setdefault(r["group"], {})[r["impl"]] = r
    pairs = {g: v for g, v in groups.items() if len(v) == 2}
    if not pairs:
        return []
    out = [f"SparseProp median / motifcore m=1 median, same thread count (targets: >= "
           f"{TARGET_SPARSEPROP_LAYER:g}x every layer row, >= {TARGET_SPARSEPROP_STEP:g}x the step):", "",
           "| group | SparseProp ms | motifcore ms | speedup | target |", "|---|---|---|---|---|"]
    for g in sorted(pairs):
        sp_row, mc_row = pairs[g]["sparseprop"], pairs[g]["motifcore"]
        target = TARGET_SPARSEPROP_STEP if "train step" in g else TARGET_SPARSEPROP_LAYER
        ratio = sp_row["median"] / mc_row["median"]
        out.append(f"| {g} | {_fmt_time(sp_row['median'], 'ms')} | {_fmt_time(mc_row['median'], 'ms')} | "
                   f"{_fmt_ratio(ratio)} | {target:g}x {'met' if ratio >= target else 'not met'} |")
    out.append("")
    return out


def render(rows: List[Row], machine: Dict[str, Any]) -> str:
    sgemm = sgemm_rate(rows)
    out = ["## Benchmark results", ""]
    bi = machine.get("motifcore_build") or {}
    out.append(f"- machine: {machine.get('cpu_model', '?')}, {machine.get('ncpu', '?')} CPUs; "
               f"run {machine.get('datetime', '?')}; mode `{machine.get('bench_mode', '?')}`")
    out.append(f"- motifcore: {bi.get('compiler', '?')}, flags `{(bi.get('cxx_flags') or '').strip()}`, "
               f"SIMD {machine.get('motifcore_simd_level', bi.get('simd', '?'))}, "
               f"threading {bi.get('threading') or 'OpenMP ' + str(bi.get('openmp', '?'))}; "
               f"commit {str(machine.get('commit') or '?')[:10]}{' (dirty tree)' if machine.get('dirty') else ''}")
    out.append(f"- numpy {machine.get('numpy', '?')}, scipy {machine.get('scipy', '?')}, "
               f"torch {machine.get('torch') or 'not installed'} "
               f"({machine.get('torch_threads', '?')} threads)")
    if machine.get("loadavg"):
        out.append(f"- load average (1, 5, 15 min) at the end of the run: {machine['loadavg']}")
    if sgemm:
        out.append(f"- SGEMM rate (best minimum time of the sgemm group and of the PyTorch dense layer forward, "
                   f"the same product): {sgemm / 1e9:.3g} GMAC/s = "
                   f"{2 * sgemm / 1e9:.3g} GFLOP/s")
    out.append("- ratios compare medians; throughputs (GMAC/s, % SGEMM) use the minimum time, the better "
               "estimate of what the code can do on a shared machine")
    out.append("")
    groups: Dict[str, List[Row]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    for g in sorted(groups, key=_group_order):
        out += group_table(g, groups[g], sgemm)
    out += targets(rows, sgemm)
    return "\n".join(out)


def _group_order(g: str) -> Tuple[int, str]:
    prefixes = ("sgemm", "layer", "train step", "threads", "SET evolution", "latency", "scaling")
    for i, p in enumerate(prefixes):
        if g.startswith(p):
            return i, g
    return len(prefixes), g


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+", help="pytest-benchmark JSON file(s) (--benchmark-json=...)")
    ap.add_argument("-o", "--output", help="write the Markdown here instead of stdout")
    a = ap.parse_args(argv)
    try:
        rows, machine = load(a.json)
    except (OSError, ValueError, KeyError) as exc:
        print(f"report.py: cannot read {a.json}: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print("report.py: no benchmarks in the input (was it run with --benchmark-disable?)", file=sys.stderr)
        return 1
    text = render(rows, machine)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
