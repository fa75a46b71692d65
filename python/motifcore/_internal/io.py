"""File output shared by the package: atomic writes, JSON, file-name slugs, UTC time stamps."""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Union

from ..errors import FolderLockedError

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write(path: PathLike, data: bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically: a
    temporary file ``.<name>.<pid>.<random>.tmp`` in the same folder, flushed and fsync'ed, given
    the umask's permissions, renamed over ``path``, then the folder fsync'ed so the rename itself
    survives a power cut. On any error the old file is untouched and the temporary file removed;
    temporary files of the same target left by a killed process (its pid no longer running) are
    removed by the next write. The folder is created if needed. Returns the path."""
    path = Path(path)
    if path.is_dir():        # refused before a temporary file exists, so the error names the folder
        raise IsADirectoryError(errno.EISDIR, "is a folder; give the path of a file to write", str(path))
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


class FolderLock:
    """An exclusive, OS-level lock on a folder for the life of a run: ``flock`` on
    ``<folder>/.motifcore.lock``. The kernel drops it when the process ends, however it ends, so a
    killed run never leaves a stale lock behind; the file itself may stay (it holds the pid of the
    last holder, for the error message). Non-blocking: a second holder gets
    :class:`FolderLockedError` at once. Where ``fcntl`` does not exist (Windows), no lock is taken.

        with FolderLock(run_dir):
            ...   # train, write checkpoint.npz, metrics.jsonl
    """

    NAME = ".motifcore.lock"

    def __init__(self, folder: PathLike) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        try:
            import fcntl
        except ImportError:        # pragma: no cover - no flock on this platform
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / self.NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            raise FolderLockedError(f"{self.folder} is in use by another motifcore process"
                                    f"{f' (pid {holder})' if holder.isdigit() else ''}; wait for it to end or "
                                    "choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    @classmethod
    def holder(cls, folder: PathLike) -> int | None:
        """The pid of the process that holds ``folder`` now (0 if it cannot be read), or None if
        nobody does. Probes without waiting and creates nothing."""
        try:
            import fcntl
        except ImportError:        # pragma: no cover - no flock on this platform
            return None
        try:
            fd = os.open(Path(folder) / cls.NAME, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0
        finally:
            os.close(fd)           # also drops the probe's shared lock
        return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)      # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
