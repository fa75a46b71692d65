"""``motifcore train --evolution cht`` and ``motifcore analyze RUN_DIR``, in-process."""

from __future__ import annotations

import json

from motifcore.analysis import motif_counts
from motifcore.train.checkpoint import load_checkpoint
from motifcore.cli import main


def test_train_cht_then_analyze(tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "--dataset", "digits", "--hidden", "32", "32", "--epochs", "3", "--evolution", "cht",
               "--evolve-layers", "hidden", "--threads", "1", "--no-progress", "--out", str(run)])
    assert rc == 0
    ck = load_checkpoint(run / "checkpoint.npz")
    assert ck.trainer["evolution"]["preset"] == "cht"
    rc = main(["analyze", str(run), "--points", "3", "--repeats", "1", "--kinds", "random", "noise"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| bipar |" in out and "| random |" in out
    res = json.loads((run / "analysis" / "analysis.json").read_text())
    assert res["counts"] == motif_counts(ck.model).total
    assert set(res["robustness"]) == {"random", "noise"}
    assert res["robustness"]["random"]["fractions"] == [0.0, 0.5, 1.0]
    assert (run / "analysis" / "motif_zscores.png").stat().st_size > 0


def test_analyze_errors(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path), "--null", "config"]) == 2
