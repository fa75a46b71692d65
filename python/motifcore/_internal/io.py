"""File output shared by the package: atomic writes, JSON, file-name slugs, UTC time stamps."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Union

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write(path: PathLike, data: bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically: a
    temporary file in the same folder, flushed and fsync'ed, given the umask's permissions, then
    renamed over ``path``. On any error the old file is untouched and the temporary file removed.
    The folder is created if needed. Returns the path."""
    path = Path(path)
    folder = path.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_json(path: PathLike, obj: Any, indent: int = 2) -> Path:
    """``obj`` as JSON (NaN allowed, one trailing newline), written with :func:`atomic_write`."""
    return atomic_write(path, (json.dumps(obj, indent=indent, allow_nan=True) + "\n").encode())


def slug(text: str) -> str:
    """File-name-safe form of ``text``: runs of other characters become '-' (``skf:PCMAC`` ->
    ``skf-PCMAC``); never empty. Part of sweep run ids: do not change."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text.replace(":", "-")).strip("-") or "x"


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
