"""Where dataset files are looked for, and how the two downloadable sets are fetched: the search
roots (``data_dir``, ``$MOTIFCORE_DATA``, the user cache, system folders), atomic downloads
checked against SHA-256 sums, and the messages that name what was searched."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._internal.io import atomic_write
from ..errors import DatasetError

_log = logging.getLogger(__name__)     # a child of the "motifcore" logger

__all__ = ["ENV_VAR", "SYSTEM_DIRS", "cache_root", "download", "env_root", "has_all", "not_found_message",
           "sha256_hex", "urlopen"]

ENV_VAR = "MOTIFCORE_DATA"

#: System-wide folders searched for the IDX sets (a list so that tests can replace it).
SYSTEM_DIRS: list[Path] = [Path("/usr/share/datasets")]

#: Opens a URL and returns a readable, closable response. Replace it (e.g. with pytest's
#: ``monkeypatch``) to serve downloads from memory.
urlopen: Callable[..., Any] = urllib.request.urlopen

DOWNLOAD_TIMEOUT = 60.0
CHUNK = 1 << 16


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def has_all(directory: Path, names: Iterable[str]) -> bool:
    return all((directory / n).is_file() for n in names)


def cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "motifcore"


def env_root() -> Path | None:
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser() if value else None


def not_found_message(name: str, searched: Iterable[Path]) -> str:
    return f"dataset {name!r} not found; searched: " + ", ".join(str(p) for p in searched)


def progress(total: int | None, desc: str) -> Any:
    """A byte-counting bar on stderr when it is a terminal (None means: off otherwise); the
    download is also logged, for logs that are not terminals."""
    _log.info("%s ...", desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr, leave=True,
                disable=None)


def download(url: str, dest: Path, sha256: str) -> None:
    """Fetch ``url`` into ``dest`` atomically, checking its SHA-256: the data streams into a
    temporary file that replaces ``dest`` only when complete and verified (``atomic_write``)."""

    def fetch(out: Any) -> None:
        digest = hashlib.sha256()
        with urlopen(url, timeout=DOWNLOAD_TIMEOUT) as resp:
            headers = getattr(resp, "headers", None)
            length = headers.get("Content-Length") if headers is not None else None
            bar = progress(int(length) if length else None, f"downloading {dest.name}")
            try:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        actual = digest.hexdigest()
        if actual != sha256:
            raise DatasetError(
                f"{dest}: SHA-256 mismatch for download from {url}: expected {sha256}, got {actual}"
            )

    atomic_write(dest, fetch)
