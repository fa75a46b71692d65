"""The run-folder lock: one process at a time, released by the kernel when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from motifcore._internal.io import FolderLock, FolderLockedError

pytest.importorskip("fcntl")

HOLD = "import sys, time\nfrom motifcore._internal.io import FolderLock\nFolderLock(sys.argv[1]).acquire()\n" \
       "print('held', flush=True)\ntime.sleep(60)\n"


def _holder(folder) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_holder_is_refused_naming_the_folder_and_pid(tmp_path):
    p = _holder(tmp_path)
    try:
        with pytest.raises(FolderLockedError, match=rf"{tmp_path}.*pid {p.pid}"):
            FolderLock(tmp_path).acquire()
    finally:
        p.kill()
        p.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    p = _holder(tmp_path)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    with FolderLock(tmp_path):              # taken at once
        with pytest.raises(FolderLockedError):
            FolderLock(tmp_path).acquire()  # and exclusive inside one process too
    lock = FolderLock(tmp_path).acquire()   # released on exit
    lock.release()


def test_the_lock_is_exclusive_between_two_processes_started_together(tmp_path):
    code = ("import sys, time\nfrom motifcore._internal.io import FolderLock, FolderLockedError\n"
            "try:\n    FolderLock(sys.argv[1]).acquire()\nexcept FolderLockedError:\n    sys.exit(3)\n"
            "time.sleep(8)\n")     # long enough that all four overlap, even on a busy machine
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)]) for _ in range(4)]
    codes = sorted(p.wait(timeout=60) for p in procs)
    assert codes == [0, 3, 3, 3]            # one winner, three clear refusals
