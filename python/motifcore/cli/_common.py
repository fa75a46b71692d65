"""Shared pieces of the command line: the one-line-error parser, argparse types, small helpers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .._internal.io import FolderLock
from .._internal.motif_spec import tokens
from .._internal.validation import in_interval, interval_text
from ..errors import UsageError

EXIT_USAGE = 2


EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line (no usage dump) and never calls sys.exit itself
    in a way that escapes :func:`main`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def int_min(minimum: int, maximum: int | None = None) -> Any:
    """argparse type: an integer >= minimum (and <= maximum when given)."""
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {s!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        if maximum is not None and v > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {v}")
        return v
    return parse


#: largest --seed / --data-seed: they also seed scikit-learn's splits, which take 32-bit seeds
MAX_CLI_SEED = 2**32 - 1


def float_in(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Any:
    """argparse type: a finite number in the interval (see motifcore._internal.validation)."""
    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {s!r}") from None
        if not in_interval(v, lo, hi, lo_open, hi_open):
            raise argparse.ArgumentTypeError(f"must be in {interval_text(lo, hi, lo_open, hi_open)}, got {s}")
        return v
    return parse


def number_list(values: Sequence[str], flag: str, kind: type = float) -> list[Any]:
    """The numbers of a list flag, written '0.1,0.2' or '0.1 0.2' (``kind`` int or float)."""
    out = []
    for t in tokens(values):
        try:
            out.append(kind(t))
        except ValueError:
            what = "integers" if kind is int else "numbers"
            raise ValueError(f"argument {flag}: expected {what}, got {t!r}") from None
    return out


def parse_hidden(values: Sequence[str]) -> list[int]:
    out = []
    for t in tokens(values):
        try:
            v = int(t)
        except ValueError:
            raise UsageError(f"argument --hidden: widths must be integers, got {t!r}") from None
        if v < 1:
            raise UsageError(f"argument --hidden: widths must be >= 1, got {v}")
        out.append(v)
    if not out:
        raise UsageError("argument --hidden: give at least one width")
    return out


def warmup_arg(s: str) -> int | float:
    """'5' -> 5 epochs; '0.05' -> 5 % of the run's steps."""
    try:
        return int(s)
    except ValueError:
        pass
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (epochs) or a fraction in [0, 1), got {s!r}") from None
    if not (0.0 <= v < 1.0):
        raise argparse.ArgumentTypeError(f"a fractional warmup must be in [0, 1), got {s}")
    return v


def run_checkpoint(run_dir: str) -> Path:
    """The checkpoint of a run folder written by ``motifcore train`` (its ``checkpoint.npz``), or the
    file itself when given one; a UsageError when there is none."""
    src = Path(run_dir)
    ckpt = src / "checkpoint.npz" if src.is_dir() else src
    if not ckpt.is_file():
        raise UsageError(f"no checkpoint at {ckpt} (pass a run folder written by `motifcore train` or a checkpoint)")
    return ckpt


#: the record files of a run folder written by ``motifcore train`` (one owner: cli/train.py reads it)
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.npz", "summary.json")


def check_output(out: Path, overwrite: bool, flag: str = "--out") -> Path:
    """The file a command is about to write, checked against the one rule of every output path: a
    run's own records are never replaced, and any other existing file only with ``--overwrite``.
    Returns ``out``; a UsageError naming the file otherwise."""
    if out.is_dir():
        raise UsageError(f"{flag} {out} is a folder; pass a file name")
    if out.name in RUN_FILES and any((out.parent / f).exists() for f in RUN_FILES if f != out.name):
        raise UsageError(f"{flag} {out} is a record of the run in {out.parent}; choose another file name")
    if out.exists() and not overwrite:
        raise UsageError(f"{flag} {out} exists; pass --overwrite to replace it")
    holder = FolderLock.holder(out.parent)
    if holder is not None:
        raise UsageError(f"{flag} {out}: {out.parent} is in use by another motifcore process"
                         f"{f' (pid {holder})' if holder else ''}; write elsewhere or wait for it to end")
    return out


def check_output_folder(out: Path, flag: str = "--out") -> Path:
    """The folder a command is about to write into: a UsageError naming it if it, or the nearest
    existing folder above it, is a file (instead of the OS error of the first file written there).
    Returns ``out``."""
    for p in (out, *out.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise UsageError(f"{flag} {out} is a file; give a folder" if p == out else
                                 f"{flag} {out}: {p} is a file, not a folder")
            break
    return out


def fmt(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def checkpoint_data(ck: Any, ckpt: Any, dataset: str | None, data_dir: str | None) -> tuple[str, Any, Any, Any, Any]:
    """``(name, X, y, X_test, y_test)`` of the dataset a checkpoint's run was trained on (or
    ``dataset``), with the run's data directory and split seed unless given, and its input clip
    (:meth:`RunConfig.clip`; a checkpoint without a stored run: not clipped)."""
    from ..data import datasets
    from ..experiments.config import RunConfig

    stored = RunConfig.from_checkpoint_extra(ck.extra)
    name = dataset or (stored.dataset if stored else None)
    if name is None:
        raise UsageError(f"{ckpt} does not record its dataset; pass --dataset")
    folder = data_dir if data_dir is not None else (stored.data_dir if stored else None)
    X, y, Xt, yt = datasets.load(name, data_dir=folder, seed=stored.data_seed if stored else 0,
                                 clip=stored.clip() if stored else None)
    if Xt.shape[1] != ck.model.n_features:
        raise UsageError(f"dataset {name} has {Xt.shape[1]} features, the checkpoint's model expects "
                         f"{ck.model.n_features}")
    return name, X, y, Xt, yt
