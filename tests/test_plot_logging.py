"""Run plots (`motifcore plot`, the curves `motifcore train` writes) and the console rules: the
library logs through the ``motifcore`` logger, and progress bars stay off non-terminals."""

from __future__ import annotations

import io
import json
import logging
import sys

import numpy as np
import pytest
from motifcore import MotifMLP, Trainer
from motifcore.cli import main
from motifcore.data import fetch
from motifcore.report.curves import curve_data, plot_runs, read_metrics

ROWS = [
    {"epoch": 1, "train_loss": 2.0, "val_loss": 1.9, "val_accuracy": 0.3, "zeta": 0.0, "pruned": None},
    {"epoch": 2, "train_loss": 1.5, "val_loss": None, "val_accuracy": None, "zeta": 0.2, "pruned": [4, 0, 1]},
    {"epoch": 3, "train_loss": 1.2, "val_loss": 1.1, "val_accuracy": 0.6, "zeta": 0.0, "pruned": None},
    {"epoch": 4, "train_loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.7, "zeta": 0.1, "pruned": [2, 0, 0]},
]


def _run(tmp_path, name="run", rows=ROWS):
    d = tmp_path / name
    d.mkdir()
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_curve_data_reads_the_series_and_the_evolution_epochs(tmp_path):
    d = curve_data(read_metrics(_run(tmp_path)))
    assert d["epoch"] == [1, 2, 3, 4] and d["train_loss"] == [2.0, 1.5, 1.2, 1.0]
    assert d["test_accuracy"] == [0.3, None, 0.6, 0.7]
    assert d["evolved"] == [2, 4] and d["replaced"] == [5, 2]


def test_read_metrics_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_metrics(tmp_path)
    bad = _run(tmp_path, "bad", [{"loss": 1}])
    with pytest.raises(ValueError, match=r"metrics.jsonl:1: not an epoch row"):
        read_metrics(bad)
    (bad / "metrics.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=":1: not a JSON line"):
        read_metrics(bad)


def test_plot_writes_a_png_for_one_and_for_several_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b", [{**r, "zeta": 0.0} for r in ROWS])
    assert main(["plot", str(a)]) == 0
    assert (a / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "both.png"
    assert main(["plot", str(a), str(b), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # three panels (with the evolution panel) are wider than two
    from matplotlib.image import imread

    assert imread(out).shape[1] > imread(plot_runs([b], tmp_path / "b.png")).shape[1]
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err


def test_train_writes_curves_and_no_bar_fragments_off_a_terminal(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--hidden", "16", "--epochs", "3", "--out", str(out)]) == 0
    assert (out / "curves.png").is_file()
    cap = capsys.readouterr()
    assert "\r" not in cap.err and "\r" not in cap.out        # pytest's capture is not a terminal
    assert [line for line in cap.out.splitlines() if line.startswith("epoch")][-1].startswith("epoch 3/3")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [False, True])
def test_trainer_bar_only_on_a_terminal(monkeypatch, tty):
    err = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    X = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    Trainer(MotifMLP([5, 8, 2], density=0.5, num_threads=1), epochs=2, progress=True).fit(X, np.arange(64) % 2)
    assert ("train" in err.getvalue()) == tty


def test_downloads_are_logged_to_the_motifcore_logger(caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with caplog.at_level(logging.INFO, logger="motifcore"):
        bar = fetch.progress(10, "downloading x.gz")
        bar.update(10)
        bar.close()
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("motifcore.data.fetch", "downloading x.gz ...")]
    # no bar off a terminal (the log line itself shows if the command line's handler is installed)
    assert sys.stderr.getvalue() in ("", "downloading x.gz ...\n")
