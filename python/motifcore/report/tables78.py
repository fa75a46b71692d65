"""Tables 7 and 8 of the Motif-SET paper from the records of a baselines experiment
(:func:`motifcore.experiments.baselines.run_baselines`): a summary per row over its seeds
(accuracy mean and std, sizes, times, latency, the paper's numbers beside them), written as
``table7.csv``, ``table8.csv`` and ``report.md``."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._internal.io import PathLike, atomic_write
from ..experiments.baselines import PAPER, ROWS, BaselineSpec

__all__ = ["write_tables"]


_COLS = ("row", "label", "seeds", "acc_mean", "acc_std", "unique_params", "paper_params", "paper_convention",
         "csr_fp32_bytes", "savez_bytes", "dc_bytes_fixed", "dc_bytes_huffman", "s_per_epoch", "total_train_s",
         "latency_ms", "latency_p90_ms", "latency_1thread_ms", "paper_params_m", "paper_acc", "paper_s_epoch", "status")


def _summary(row: str, recs: list[dict[str, Any]], note: str | None) -> dict[str, Any]:
    paper = PAPER.get(row, {})
    out: dict[str, Any] = {c: None for c in _COLS}
    out.update(row=row, label=ROWS[row].label, paper_params_m=paper.get("params_m"), paper_acc=paper.get("acc"),
               paper_s_epoch=paper.get("s_epoch"))
    ok = [r for r in recs if r.get("status") == "ok"]
    if not ok:
        out.update(status=note or "not run", seeds=0)
        return out
    acc = np.array([r["test_accuracy"] for r in ok]) * 100

    def med(key: str) -> Any:
        vals = [r[key] for r in ok if r.get(key) is not None]
        return float(np.median(vals)) if vals else None

    out.update(status="ok", seeds=len(ok), acc_mean=float(acc.mean()), acc_std=float(acc.std(ddof=1)) if len(ok) > 1
               else 0.0, unique_params=ok[0]["unique_params"], paper_params=ok[0]["paper_params"],
               paper_convention=ok[0]["paper_convention"], csr_fp32_bytes=ok[0]["csr_fp32_bytes"],
               savez_bytes=ok[0]["savez_bytes"], dc_bytes_fixed=ok[0].get("dc_bytes_fixed"),
               dc_bytes_huffman=ok[0].get("dc_bytes_huffman"), s_per_epoch=med("median_s_per_epoch"),
               total_train_s=med("total_train_s"), latency_ms=1e3 * med("latency_batch1_s"),
               latency_p90_ms=1e3 * med("latency_batch1_p90_s"),
               latency_1thread_ms=1e3 * med("latency_batch1_1thread_s") if med("latency_batch1_1thread_s") else None)
    return out


def write_tables(out_dir: PathLike, spec: BaselineSpec, notes: Mapping[str, str | None] | None = None,
                 command: str | None = None) -> list[dict[str, Any]]:
    """``table7.csv``, ``table8.csv`` and ``report.md`` from the stored records; ``notes`` says
    why a row without records has none (unavailable method, failure). Returns the rows."""
    out = Path(out_dir)
    notes = dict(notes or {})
    recs: dict[str, list[dict[str, Any]]] = {}
    for p in sorted((out / "runs").glob("*.json")):
        r = json.loads(p.read_text())
        recs.setdefault(r["row"], []).append(r)
    rows = [_summary(r, recs.get(r, []), notes.get(r)) for r in spec.rows]
    for table in (7, 8):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(_COLS))
        w.writeheader()
        for r in rows:
            if ROWS[r["row"]].table == table:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        atomic_write(out / f"table{table}.csv", buf.getvalue().encode())
    atomic_write(out / "report.md", _report(rows, spec, command).encode())
    return rows


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _report(rows: list[dict[str, Any]], spec: BaselineSpec, command: str | None) -> str:
    net = "-".join(str(s) for s in ["in", *spec.hidden, "out"])
    lines = [f"# Baselines of the paper's Tables 7 and 8 on motifcore ({spec.dataset}, {net})", "",
             "Recipe: the default `motifcore` recipe and network for every row, with the evolution the row names "
             "(SET and Motif-SET rows: SET on its own schedule, `evolution=\"set-epoch\"`, every layer, fresh "
             "He-uniform regrowth); "
             f"{len(spec.seeds)} seed(s) {list(spec.seeds)}; "
             f"sparse rows {spec.epochs} epochs at density {spec.density}; dense source {spec.epochs_pre} epochs; "
             f"training subsample: {spec.limit_train or 'all'}. Accuracy is the test accuracy after the last "
             "epoch, mean ± std over seeds (for rows derived from the dense model the std covers the retraining "
             "seeds only: the dense source is trained once). Times are wall clock on a shared, noisy machine.", "",
             "`unique` = active blocks + biases (what is stored and trained); `paper conv.` = the paper's count "
             "(dense weights for dense models, nonzeros for pruned ones, the block grid Σ G_out·G_in for "
             "sparse-from-scratch ones). Paper columns: Chen, Liu & Ziabari (2025), Tables 7-8, FMNIST, "
             "where a row has a counterpart; their params mix conventions and several of their numbers were not "
             "measured (docs/baselines.md).", ""]
    default = BaselineSpec()
    changed = [f.name for f in dataclasses.fields(BaselineSpec)
               if f.name not in ("rows", "latency_repeats", "latency_warmup", "threads", "data_dir")
               and getattr(spec, f.name) != getattr(default, f.name)]
    if changed:
        lines += [f"**Reduced run**: differs from the full experiment in {', '.join(changed)}. Its numbers show that "
                  "the pipeline works; they are not comparable with the paper's.", ""]
    if command:
        lines += ["Regenerate:", "", "```", command, "```", ""]
    for table in (7, 8):
        lines += [f"## Table {table}", "",
                  "| row | acc % | unique params | paper conv. | CSR fp32 B | savez B | DC B (fixed / Huffman) | "
                  "s/epoch | total s | batch-1 ms (p90) | batch-1 ms, 1 thread | "
                  "paper: params M / acc / s/epoch | status |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if ROWS[r["row"]].table != table:
                continue
            acc = f"{r['acc_mean']:.2f} ± {r['acc_std']:.2f}" if r["acc_mean"] is not None else "–"
            dc = (f"{_fmt(r['dc_bytes_fixed'])} / {_fmt(r['dc_bytes_huffman'])}"
                  if r["dc_bytes_fixed"] is not None else "–")
            lat = (f"{r['latency_ms']:.3f} ({r['latency_p90_ms']:.3f})" if r["latency_ms"] is not None else "–")
            paper = (f"{r['paper_params_m']} / {r['paper_acc']} / {r['paper_s_epoch']}"
                     if r["paper_params_m"] is not None else "–")
            lines.append(f"| {r['row']}: {r['label']} | {acc} | {_fmt(r['unique_params'])} | "
                         f"{_fmt(r['paper_params'])} ({r['paper_convention'] or '–'}) | {_fmt(r['csr_fp32_bytes'])} | "
                         f"{_fmt(r['savez_bytes'])} | {dc} | {_fmt(r['s_per_epoch'])} | "
                         f"{_fmt(r['total_train_s'], 1)} | {lat} | {_fmt(r['latency_1thread_ms'], 3)} | {paper} | "
                         f"{r['status']} |")
        lines.append("")
    return "\n".join(lines) + "\n"
