"""scripts/torch_parity.py (the accuracy parity of a plain PyTorch loop with MotifLinear + SET
against ``motifcore train``) on a tiny run: the record it writes, and that it resumes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import torch_parity  # noqa: E402


@pytest.fixture
def parity_env(data_dir, monkeypatch):
    """The shared data folder, and torch's thread count put back (the torch loop sets it to 1)."""
    monkeypatch.setenv("MOTIFCORE_DATA", str(data_dir))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_parity_script_records_both_sides_and_resumes(tmp_path, parity_env, capsys):
    args = ["--seeds", "3", "--epochs", "3", "--warmup", "1", "--hidden", "32", "--limit-train", "600",
            "--threads", "1", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    torch_parity.main(args)
    path = tmp_path / "out" / "seed3.json"
    rec = json.loads(path.read_text())
    cli, loop = rec["motifcore_train"], rec["torch"]
    assert rec["settings"]["epochs"] == 3 and rec["settings"]["hidden"] == [32]
    assert cli["epochs_completed"] == loop["epochs_completed"] == 3 and len(loop["accuracy_per_epoch"]) == 3
    assert loop["set_updates"] == 2                      # after every epoch but the last, as "set-epoch"
    assert cli["active_blocks"] == loop["active_blocks"]  # the same network
    assert cli["command"].startswith("python -m motifcore train --dataset fashion-mnist --recipe paper")
    assert rec["gap_points"] == pytest.approx(100 * (loop["final_accuracy"] - cli["final_accuracy"]))
    assert loop["final_accuracy"] == loop["accuracy_per_epoch"][-1]

    # resumable: a finished side is not run again; the torch loop continues from its checkpoint
    del rec["torch"]
    path.write_text(json.dumps(rec))
    capsys.readouterr()
    torch_parity.main(args)
    out = capsys.readouterr().out
    assert "resuming after epoch 3" in out and "$ " not in out
    assert json.loads(path.read_text())["torch"]["accuracy_per_epoch"] == loop["accuracy_per_epoch"]
    with pytest.raises(SystemExit, match="other settings"):
        torch_parity.main([*args[:2], "--epochs", "4", *args[4:]])


def test_parity_script_constant_schedule_keeps_its_own_work_and_lr(tmp_path, parity_env):
    args = ["--seeds", "1", "--epochs", "2", "--hidden", "16", "--limit-train", "300", "--threads", "1",
            "--lr-schedule", "constant", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    torch_parity.main(args)
    rec = json.loads((tmp_path / "out" / "seed1.json").read_text())
    assert rec["settings"]["lr_schedule"] == "constant"
    assert "--lr-schedule constant" in rec["motifcore_train"]["command"]
    # its own work folder: a finished cosine run of the same seed is never taken for it
    assert (tmp_path / "work" / "constant-seed1" / "torch.pt").exists()
    assert not (tmp_path / "work" / "seed1").exists()
    metrics = [json.loads(line) for line in
               (tmp_path / "work" / "constant-seed1" / "motifcore" / "metrics.jsonl").read_text().splitlines()]
    assert {m["lr_start"] for m in metrics} == {m["lr_end"] for m in metrics} == {torch_parity.LR}
    state = torch.load(tmp_path / "work" / "constant-seed1" / "torch.pt", weights_only=False)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(torch_parity.LR)
    # a cosine record in the same folder is another run
    with pytest.raises(SystemExit, match="other settings"):
        torch_parity.main([*(a for a in args if a not in ("--lr-schedule", "constant")), "--warmup", "1"])
