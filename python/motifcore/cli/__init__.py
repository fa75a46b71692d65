"""Command line: ``motifcore train | evaluate | info | sweep | report | export | plot | baselines |
analyze | select`` (also ``python -m motifcore``).

The only place in the package that uses argparse: one module per subcommand, each with
``add_parser(subparsers)`` and ``run(args) -> exit status``; they call the library API.

User mistakes (unknown dataset, bad flag values, missing files) print ONE line on stderr starting
with ``motifcore: error:`` and exit with status 2; set ``MOTIFCORE_DEBUG=1`` to get the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..errors import MotifcoreError
from . import analyze, baselines, evaluate, export, info, plot, report, select, sweep, train
from ._common import EXIT_INTERRUPTED, EXIT_USAGE, Parser, UsageError

__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="motifcore", description="Sparse (SET / Motif-SET) MLP training on CPUs.")
    p.add_argument("--version", action="version", version=f"motifcore {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser)
    for command in (train, evaluate, info, sweep, report, export, plot, baselines, analyze, select):
        command.add_parser(sub)
    return p


class _ConsoleHandler(logging.StreamHandler):
    """Messages of the library's ``motifcore`` logger on whatever ``sys.stderr`` is at the time."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _console_logging() -> None:
    """The CLI owns the console: the library logs to the ``motifcore`` logger, shown here at
    INFO level (unless the embedding program configured that logger itself)."""
    log = logging.getLogger("motifcore")
    if not log.handlers:
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``motifcore`` command; returns the exit status."""
    _console_logging()
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help / --version
            return int(exc.code or 0)
        args.argv = None if argv is None else list(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return args.func(args)
    except KeyboardInterrupt:
        print("motifcore: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (MotifcoreError, ValueError, TypeError, OSError, FloatingPointError, MemoryError) as exc:
        if os.environ.get("MOTIFCORE_DEBUG"):
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, MemoryError):
            msg = f"out of memory ({msg}): the model or data is too large for this machine; reduce --hidden, " \
                  "--density or --batch-size"
        if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        print(f"motifcore: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
