"""`motifcore plot`."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path
from typing import Any

from ..report.curves import plot_runs
from ._common import UsageError, check_output

#: errors of writing the PNG (disk full, file size limit, read-only or forbidden folder)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("plot", help="PNG of the learning curves of one or more runs",
                       description="Plot train/test loss and test accuracy per epoch (evolution epochs marked) "
                                   "and the blocks replaced per evolution step, from each run's metrics.jsonl.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by 'motifcore train'")
    p.add_argument("--out", help="PNG to write (default: RUN_DIR/curves.png for one run, ./curves.png for several)")
    p.add_argument("--overwrite", action="store_true", help="replace the PNG at --out if it exists")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    out = check_output(Path(args.out) if args.out
                       else (Path(args.runs[0]) if len(args.runs) == 1 else Path.cwd()) / "curves.png", args.overwrite)
    try:
        path = plot_runs(args.runs, out)
    except ImportError:
        raise UsageError("plot needs matplotlib (pip install 'motifcore[report]')") from None
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:    # e.g. a run without metrics.jsonl: reported as it is
            raise
        raise UsageError(f"could not write {out}: {exc.strerror or exc}") from None
    print(f"wrote {path}")
    return 0
