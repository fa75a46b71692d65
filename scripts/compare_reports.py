"""Put two ``motifcore report`` folders side by side (e.g. the same sweep run on two engine builds).

    python scripts/compare_reports.py docs/experiments docs/experiments/v2 --names "engine A" "engine B"

Prints Markdown: per dataset and configuration, test accuracy and s/epoch of both reports (from
their ``table_main.csv``) and the difference. Rows present in only one report are shown with "–".
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def _read(folder: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(folder / "table_main.csv", newline="") as f:
        return {(r["dataset"], r["configuration"]): r for r in csv.DictReader(f)}


def _acc(r: dict[str, str] | None) -> str:
    if r is None:
        return "–"
    return f"{100 * float(r['test_acc_mean']):.2f} ± {100 * float(r['test_acc_std'] or 0):.2f}"


def _time(r: dict[str, str] | None) -> str:
    if r is None:
        return "–"
    return f"{float(r['s_per_epoch_mean']):.3g}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--names", nargs=2, default=["A", "B"])
    args = p.parse_args(argv)
    a, b = _read(Path(args.a)), _read(Path(args.b))
    na, nb = args.names
    keys = list(dict.fromkeys([*a, *b]))
    out = [f"| dataset | configuration | acc. {na} (%) | acc. {nb} (%) | Δacc (pts) | s/epoch {na} "
           f"| s/epoch {nb} |", "|---|---|---|---|---|---|---|"]
    for k in keys:
        ra, rb = a.get(k), b.get(k)
        diff = (f"{100 * (float(rb['test_acc_mean']) - float(ra['test_acc_mean'])):+.2f}"
                if ra is not None and rb is not None else "–")
        out.append(f"| {k[0]} | {k[1]} | {_acc(ra)} | {_acc(rb)} | {diff} | {_time(ra)} | {_time(rb)} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
