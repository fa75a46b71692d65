"""The million-neuron network of issue 12: ``3312-H-H-H-5`` at SET's epsilon = 20 on random data of
the Lung data set's shape (136 training samples, 3312 features, 5 classes), batch 32, for
H = 300,000 and 1,000,000.

Each configuration runs in its own subprocess (``bench/scaling_worker.py``), one after the other,
so its peak memory (VmHWM) is its own. In order: construction, one training epoch, one SET
evolution step (zeta 0.3), an evaluation of 1,000 random samples (``batch_size="auto"``), then
``release_workspace()``. The table lists the time of each, the peak resident memory of the whole
run (evaluation included) and the resident memory before and after the release. Targets for
H = 1,000,000: epoch + evolution <= 30 s, peak <= 8 GiB (issue 12); <= 15 s on a quiet machine,
peak <= 3.5 GiB (issue 21).

    nice -n 5 python scripts/million.py                      # H = 300000 and 1000000, m = 1
    nice -n 5 python scripts/million.py --hidden 300000 --motif 1 2

A 1M configuration needs about 3.0 GiB (3.2 GiB with the panels' padding to 48, 5.2 GiB before
2026-12-06): never run two at once on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))   # the benchmarks' worker
from scaling_worker import Worker  # noqa: E402

GIB = 1024.0


def run_one(h: int, m: int, args: argparse.Namespace) -> Dict[str, Any]:
    w = Worker(["--impl", "motifcore", "--hidden", str(h), "--motif", str(m), "--threads", str(args.threads),
                "--lr", str(args.lr), "--zeta", str(args.zeta), "--eval-samples", str(args.eval_samples),
                "--eval-memory", str(args.eval_memory)])
    try:
        row: Dict[str, Any] = {"H": h, "m": m, **w.ready}
        row.update(w.ask("epoch"))
        row.update(w.ask("evolve"))
        row.update(w.ask("evaluate"))
        row.update(w.ask("stats"))
        row.update(w.ask("release"))
    finally:
        w.close()
    return row


def table(rows: List[Dict[str, Any]]) -> str:
    head = ("| H | m | blocks | construction s | epoch s | evolution s | epoch + evolution s | "
            "eval 1000 s (chunk) | peak RSS GiB | RSS before / after release GiB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['H']:,} | {r['m']} | {r['blocks'] / 1e6:.1f} M | {r['init_s']:.1f} | {r['epoch_s']:.1f} | "
            f"{r['evolve_s']:.1f} | {r['epoch_s'] + r['evolve_s']:.1f} | {r['eval_s']:.1f} ({r['chunk']}) | "
            f"{r['hwm_mib'] / GIB:.2f} | {r['rss_before_mib'] / GIB:.2f} / {r['rss_after_mib'] / GIB:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[300000, 1000000])
    ap.add_argument("--motif", type=int, nargs="+", default=[1])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--zeta", type=float, default=0.3)
    ap.add_argument("--eval-samples", type=int, default=1000)
    ap.add_argument("--eval-memory", type=int, default=0, help="bytes of inference panels (0: the default, 256 MiB)")
    args = ap.parse_args()
    rows = []
    for h in args.hidden:
        for m in args.motif:
            rows.append(run_one(h, m, args))
            print(f"done H={h} m={m}", file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
