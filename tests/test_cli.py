"""The ``motifcore`` command line, run in-process through ``main([...])``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import motifcore
import numpy as np
import pytest
from motifcore import load_model
from motifcore.train.checkpoint import read_metadata
from motifcore.cli import main
from motifcore.cli import train as cli_train
from motifcore.nn import erk_densities

REPO = Path(__file__).resolve().parents[1]
# folder holding the motifcore that is imported (installed, or python/ in a development tree)
PKG_PARENT = Path(motifcore.__file__).resolve().parent.parent

TINY = ["--hidden", "32,32", "--epochs", "3", "--lr", "0.003", "--warmup", "1", "--threads", "1", "--no-progress"]


def _one_error_line(capsys, rc):
    out = capsys.readouterr()
    assert rc == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith("motifcore: error: ")
    assert "Traceback" not in out.err + out.out
    return lines[0]


def test_train_happy_path_fashion_mnist(tmp_path, data_dir, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "fashion-mnist", "--data-dir", str(data_dir), "--limit-train", "2000",
               "--hidden", "128", "128", "--density", "0.3", "--motif", "2", "--evolution", "set-epoch",
               "--batch-size", "32", "--out", str(out), *TINY[2:]])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "unique params" in stdout and "dense-equivalent params" in stdout   # model.summary()
    assert "epoch 3/3" in stdout and "s/epoch" in stdout and "test_acc" in stdout
    # curves.png where matplotlib is installed; .motifcore.lock is the run folder's lock (kept: a
    # lock file deleted on release could be locked twice by two later processes)
    assert sorted(p.name for p in out.iterdir() if p.name != "curves.png") == [
        ".motifcore.lock", "checkpoint.npz", "config.json", "metrics.jsonl", "summary.json"]
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["dataset"] == "fashion-mnist" and config["run"]["n_train"] == 2000
    assert config["model"]["sizes"] == [784, 128, 128, 10]
    assert config["model"]["motif"] == [[2, 2], [2, 2], [1, 1]]
    assert config["trainer"]["epochs"] == 3 and config["trainer"]["evolution"]["preset"] == "set-epoch"
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(r["val_accuracy"] is not None for r in rows)
    assert rows[1]["zeta"] == 0.3 and rows[1]["pruned"] is not None
    summary = json.loads((out / "summary.json").read_text())
    model = load_model(out / "checkpoint.npz")
    assert summary["final_accuracy"] == rows[-1]["val_accuracy"] > 0.65  # measured 0.752
    assert summary["best_accuracy"] == max(r["val_accuracy"] for r in rows)
    assert summary["mean_seconds_per_epoch"] == pytest.approx(np.mean([r["train_time"] for r in rows]))
    assert summary["unique_params"] == model.n_params and summary["edges"] == model.n_edges
    assert summary["block_macs_per_sample"] == model.macs_per_sample
    assert summary["dense_equivalent_params"] == model.dense_params == 784 * 128 + 128 * 128 + 128 * 10 + 266
    assert summary["n_train"] == 2000 and summary["n_test"] == 10000

    # evaluate the written checkpoint: same accuracy as the last logged one
    rc = main(["evaluate", "--checkpoint", str(out / "checkpoint.npz"), "--data-dir", str(data_dir),
               "--json", "--threads", "1"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["accuracy"] == summary["final_accuracy"] and res["n_samples"] == 10000
    assert res["dataset"] == "fashion-mnist" and res["epoch"] == 3


def test_train_default_out_and_per_layer_motif(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["train", "--dataset", "digits", "--motif", "2,2,1", *TINY])
    assert rc == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("digits-m2-2-1-")
    cfg = json.loads((runs[0] / "config.json").read_text())
    assert cfg["model"]["motif"] == [[2, 2], [2, 2], [1, 1]]
    assert "wrote" in capsys.readouterr().out


def test_step_lr_flags(tmp_path):
    out = tmp_path / "step"
    rc = main(["train", "--dataset", "digits", "--hidden", "32", "--lr-schedule", "step", "--step-size", "1",
               "--gamma", "0.5", "--lr", "0.02", "--epochs", "3", "--threads", "1", "--no-progress",
               "--out", str(out)])
    assert rc == 0
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr_start"] for r in rows] == [0.02, 0.01, 0.005]
    assert [r["lr_end"] for r in rows] == [0.02, 0.01, 0.005]


def test_a_run_whose_evolution_changes_nothing_says_so(tmp_path, capsys):
    # digits, 3 epochs of 10 steps: "set" (every 100 steps) never evolves, "set-epoch" does
    base = ["train", "--dataset", "digits", "--hidden", "16", "16", "--epochs", "3", "--threads", "1", "--no-progress"]
    assert main([*base, "--evolution", "set", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "note: the evolution 'set' changes no block in this run (30 optimizer steps" in out
    assert "evolved" not in out
    assert main([*base, "--evolution", "set-epoch", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "changes no block" not in out and "(evolved zeta=0.300" in out


@pytest.mark.parametrize("stored_as_old_set", [False, True])
def test_resume_after_interrupt_is_bit_exact(tmp_path, monkeypatch, capsys, stored_as_old_set):
    args = ["train", "--dataset", "digits", "--evolution", "set-epoch", "--dropout", "0.1", *TINY[:2],
            "--epochs", "4", *TINY[4:]]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0

    real = cli_train._printer

    def interrupting_printer(total):
        p = real(total)
        inner = p.on_epoch_end

        def on_epoch_end(trainer, epoch, logs):
            inner(trainer, epoch, logs)
            if epoch == 2:
                raise KeyboardInterrupt
        p.on_epoch_end = on_epoch_end
        return p

    monkeypatch.setattr(cli_train, "_printer", interrupting_printer)
    part = tmp_path / "part"
    assert main([*args, "--out", str(part)]) == 130
    err = capsys.readouterr().err
    assert "interrupted after epoch 2" in err and "--resume" in err
    assert read_metadata(part / "checkpoint.npz")["epoch"] == 2
    monkeypatch.setattr(cli_train, "_printer", real)
    if stored_as_old_set:
        # a run of "set" stored before round five (SET's own schedule, today's "set-epoch")
        from motifcore.train.checkpoint import _META_KEY

        with np.load(part / "checkpoint.npz") as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays[_META_KEY]))
        assert meta["trainer"]["evolution"] == {"preset": "set-epoch", "zeta": 0.3}
        meta["trainer"]["evolution"] = {"preset": "set", "zeta": 0.3}
        meta["extra"]["run"]["evolution"] = "set"
        arrays[_META_KEY] = np.array(json.dumps(meta))
        with open(part / "checkpoint.npz", "wb") as f:
            np.savez(f, **arrays)

    # resumed with the default thread count (the first part ran on 1 thread): still bit-exact
    assert main(["train", "--resume", str(part / "checkpoint.npz"), "--no-progress"]) == 0
    a, b = load_model(tmp_path / "full" / "checkpoint.npz"), load_model(part / "checkpoint.npz")
    sa, sb = a.get_state(), b.get_state()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    rows = [json.loads(s) for s in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    full = json.loads((tmp_path / "full" / "summary.json").read_text())
    resumed = json.loads((part / "summary.json").read_text())
    assert resumed["final_accuracy"] == full["final_accuracy"]
    meta = read_metadata(part / "checkpoint.npz")
    assert meta["trainer"]["evolution"]["preset"] == meta["extra"]["run"]["evolution"] == "set-epoch"


def test_info(capsys, data_dir):
    assert main(["info", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "simd" in out and "default_threads" in out
    assert "fashion-mnist" in out and str(data_dir) in out
    assert main(["info", "--json", "--data-dir", str(data_dir)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["datasets"]["digits"] is not None and "simd" in info["build_info"]


def test_help_states_default_epochs(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default: 50, or more on small data so that the run takes at least 1000 steps" in text


@pytest.mark.parametrize("argv, needle", [
    (["train", "--dataset", "no-such-set", *TINY], "unknown dataset 'no-such-set'"),
    (["train", "--dataset", "skf:NOPE", *TINY], "NOPE"),
    (["train", "--dataset", "digits", "--density", "1.5", *TINY], "argument --density: must be in (0, 1]"),
    (["train", "--dataset", "digits", "--epochs", "0"], "argument --epochs: must be >= 1"),
    (["train", "--dataset", "digits", "--lr", "fast"], "argument --lr: must be a number"),
    (["train", "--dataset", "digits", "--hidden", "64,x"], "widths must be integers"),
    (["train", "--dataset", "digits", "--motif", "2,2", *TINY], "2 per-layer motif sizes for 3 layers"),
    (["train", "--dataset", "digits", "--motif", "0"], "motif sizes must be >= 1"),
    (["train", "--dataset", "digits", "--evolution", "sometimes"], "invalid choice: 'sometimes'"),
    (["train", "--dataset", "digits", "--gamma", "1.5"], "argument --gamma: must be in (0, 1]"),
    (["train", "--hidden", "8"], "train needs --dataset"),
    (["train", "--resume", "/nonexistent/checkpoint.npz"], "checkpoint not found"),
    (["train", "--resume", "x.npz", "--epochs", "5"], "drop --epochs"),
    (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["evaluate", "--checkpoint", "/nonexistent/ck.npz"], "checkpoint not found"),
    (["evaluate"], "--checkpoint"),
    (["bogus"], "invalid choice: 'bogus'"),
])
def test_user_errors_are_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _one_error_line(capsys, main(argv))
    assert needle in line
    assert not (tmp_path / "runs").exists()  # nothing written for a failed start


def test_evaluate_errors(tmp_path, capsys):
    garbage = tmp_path / "bad.npz"
    garbage.write_bytes(b"\x00" * 100)
    assert "bad.npz" in _one_error_line(capsys, main(["evaluate", "--checkpoint", str(garbage)]))
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r"), *TINY]) == 0
    capsys.readouterr()
    line = _one_error_line(capsys, main(["evaluate", "--checkpoint", str(tmp_path / "r" / "checkpoint.npz"),
                                         "--dataset", "npz:/nonexistent/data.npz"]))
    assert "data.npz" in line


def test_python_dash_m(tmp_path):
    r = subprocess.run([sys.executable, "-m", "motifcore", "train", "--dataset", "digits", "--density", "-1"],
                       check=False, capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(PKG_PARENT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["motifcore: error: argument --density: must be in (0, 1], got -1"]


def test_recipe_and_optimizer_flags_reach_the_trainer(tmp_path):
    out = tmp_path / "paper"
    assert main(["train", "--dataset", "digits", "--recipe", "paper", "--optimizer", "adam", "--lr", "0.002",
                 "--warmup", "0.1", "--regrow", "pruned", "--max-grad-norm", "5", "--evolve-layers", "hidden",
                 "--hidden", "32",
                 "--epochs", "2", "--threads", "1", "--no-progress", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())["trainer"]
    assert cfg["recipe"] == "paper" and cfg["optimizer"] == "adam" and cfg["lr"] == 0.002
    assert cfg["warmup"] == 0.1 and cfg["regrow"] == "pruned" and cfg["max_grad_norm"] == 5.0
    assert cfg["evolve_layers"] == "hidden"
    assert cfg["evolution"]["preset"] == "paper" and cfg["momentum"] == 0.9     # the rest from the recipe


def test_default_epochs_give_small_data_enough_steps(tmp_path):
    """Without --epochs a run takes at least 1000 optimizer steps: 200 samples at batch 128 are
    2 steps per epoch, so 500 epochs."""
    out = tmp_path / "small"
    assert main(["train", "--dataset", "digits", "--limit-train", "200", "--hidden", "16", "--threads", "1",
                 "--eval-every", "100", "--no-progress", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())["trainer"]
    assert cfg["epochs"] == 500 and cfg["recipe"] == "motifcore"
    assert json.loads((out / "summary.json").read_text())["epochs_completed"] == 500


def test_bad_warmup_flag(capsys):
    assert main(["train", "--dataset", "digits", "--warmup", "1.5"]) == 2
    assert "fractional warmup must be in [0, 1)" in capsys.readouterr().err


def test_data_seed_defaults_to_seed(tmp_path, capsys):
    """--seed S alone splits and subsamples as motifcore.datasets.load(name, seed=S); --data-seed
    changes only the data, and evaluate finds the run's own test split again."""
    def run(name, *flags):
        out = tmp_path / name
        assert main(["train", "--dataset", "digits", "--limit-train", "300", "--out", str(out), *flags, *TINY]) == 0
        return (json.loads((out / "config.json").read_text())["run"], json.loads((out / "summary.json").read_text()),
                out / "checkpoint.npz")

    run_a, sum_a, ck_a = run("a", "--seed", "3")
    run_b, sum_b, ck_b = run("b", "--seed", "3", "--data-seed", "5")
    assert (run_a["seed"], run_a["data_seed"]) == (3, 3) and (run_b["seed"], run_b["data_seed"]) == (3, 5)
    capsys.readouterr()
    for ck, summary, data_seed in ((ck_a, sum_a, 3), (ck_b, sum_b, 5)):
        assert main(["evaluate", "--checkpoint", str(ck), "--json", "--threads", "1"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["accuracy"] == summary["final_accuracy"]          # evaluate found the run's test split
        # the run's inputs: its split, clipped as the recipe's input_clip says
        _, _, X_test, y_test = motifcore.datasets.load("digits", seed=data_seed, clip=run_a["input_clip"])
        assert load_model(ck, num_threads=1).score(X_test, y_test) == summary["final_accuracy"]
    assert read_metadata(ck_b)["extra"]["run"]["data_seed"] == 5


@pytest.mark.parametrize("name", ["rigl", "dsr"])
def test_evolution_flag_selects_mask_updaters_and_erk(tmp_path, name):
    out = tmp_path / name
    assert main(["train", "--dataset", "digits", "--evolution", name, "--distribution", "erk", "--density", "0.2",
                 "--evolve-layers", "all", "--out", str(out), *TINY]) == 0
    meta = json.loads((out / "config.json").read_text())
    assert meta["trainer"]["evolution"]["updater"] == name
    model = load_model(out / "checkpoint.npz")
    assert model.config["density"] == pytest.approx(erk_densities([(32, 64), (32, 32), (10, 32)], 0.2))
