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


def test_holder_names_the_live_holder_only(tmp_path):
    assert FolderLock.holder(tmp_path) is None                      # no lock file: nobody
    p = _holder(tmp_path)
    try:
        assert FolderLock.holder(tmp_path) == p.pid
    finally:
        p.kill()
        p.wait()
    assert FolderLock.holder(tmp_path) is None                      # the file stays, the lock is gone


def test_export_and_plot_do_not_write_into_a_folder_another_process_holds(tmp_path, capsys):
    from motifcore import MotifMLP
    from motifcore.cli import main
    from motifcore.train.checkpoint import save_checkpoint

    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.npz", MotifMLP([6, 5, 3], density=0.5, seed=0))
    p = _holder(run)
    try:
        assert main(["export", str(run), "--format", "npz"]) == 2
        err = capsys.readouterr().err
        assert "in use by another motifcore process" in err and f"pid {p.pid}" in err
        assert not (run / "model.npz").exists()
    finally:
        p.kill()
        p.wait()
    assert main(["export", str(run), "--format", "npz"]) == 0
