"""`motifcore info`."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    i = sub.add_parser("info", help="build information, threads and datasets found")
    i.add_argument("--data-dir", help="folder searched first for datasets")
    i.add_argument("--json", action="store_true", help="print as JSON")
    i.set_defaults(func=run)
    return i


def run(args: argparse.Namespace) -> int:
    from .._version import __version__
    from ..data import datasets
    from ..nn import build_info

    info = build_info()
    found = {k: (str(v) if v is not None else None) for k, v in datasets.available(args.data_dir).items()}
    env_threads = os.environ.get("MOTIFCORE_NUM_THREADS")
    if args.json:
        print(json.dumps({"version": __version__, "build_info": info, "cpu_count": os.cpu_count(),
                          "MOTIFCORE_NUM_THREADS": env_threads, "datasets": found}, indent=2))
        return 0
    print(f"motifcore {__version__}")
    for key, value in info.items():
        print(f"  {key}: {value}")
    print(f"  cpu_count: {os.cpu_count()}")
    print(f"  MOTIFCORE_NUM_THREADS: {env_threads or '(unset)'}")
    print("datasets:")
    for k, v in found.items():
        print(f"  {k:<16} {v or 'not found'}")
    return 0
