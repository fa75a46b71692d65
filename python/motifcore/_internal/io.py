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
    temporary file ``.<name>.<pid>.<random>.tmp`` in the same folder, flushed and fsync'ed, given
    the umask's permissions, renamed over ``path``, then the folder fsync'ed so the rename itself
    survives a power cut. On any error the old file is untouched and the temporary file removed;
    temporary files of the same target left by a killed process (its pid no longer running) are
    removed by the next write. The folder is created if needed. Returns the path."""
    path = Path(path)
    folder = path.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    _remove_orphans(folder, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
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
    fsync_dir(folder)
    return path


def fsync_dir(folder: PathLike) -> None:
    """fsync a folder (makes a rename or a new file in it durable); a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_orphans(folder: Path, name: str) -> None:
    """Remove ``.<name>.<pid>.*.tmp`` files whose writing process is gone (killed mid-write)."""
    prefix = f".{name}."
    try:
        entries = [e for e in os.listdir(folder) if e.startswith(prefix) and e.endswith(".tmp")]
    except OSError:
        return
    for entry in entries:
        pid_text = entry[len(prefix):].split(".", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        try:
            os.unlink(folder / entry)
        except OSError:
            pass


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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
