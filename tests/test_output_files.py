"""The one rule of every output path of the CLI: a run's own records are never replaced, and any
other existing file only with ``--overwrite`` (reliability round two: ``export --out`` and
``plot --out`` used to overwrite the run's checkpoint, its metrics and a user's own files)."""

from __future__ import annotations

import json

import pytest
from motifcore import MotifMLP
from motifcore.cli import main
from motifcore.train.checkpoint import load_model, save_checkpoint

ROWS = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0 / e, "val_accuracy": 0.5, "zeta": 0.0, "pruned": None}
        for e in (1, 2, 3)]


@pytest.fixture
def run(tmp_path):
    d = tmp_path / "run"
    save_checkpoint(d / "checkpoint.npz", MotifMLP([6, 5, 3], density=0.5, seed=0))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return d


@pytest.mark.parametrize("record", ["checkpoint.npz", "metrics.jsonl", "config.json", "summary.json"])
def test_export_never_replaces_a_record_of_the_run(run, record, capsys):
    target = run / record
    before = target.read_bytes() if target.exists() else None
    for extra in ([], ["--overwrite"]):
        assert main(["export", str(run), "--format", "npz", "--out", str(target), *extra]) == 2
        err = capsys.readouterr().err
        assert "record of the run" in err and str(target) in err
    assert (target.read_bytes() if target.exists() else None) == before
    load_model(run / "checkpoint.npz")           # still a checkpoint


def test_export_refuses_an_existing_file_without_overwrite(run, tmp_path, capsys):
    mine = tmp_path / "model.npz"
    mine.write_bytes(b"the user's own file")
    assert main(["export", str(run), "--format", "npz", "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and str(mine) in err
    assert mine.read_bytes() == b"the user's own file"
    assert main(["export", str(run), "--format", "npz", "--out", str(mine), "--overwrite"]) == 0
    assert mine.read_bytes()[:2] == b"PK"                     # an npz now
    # the default output too: a second export into the run folder needs --overwrite
    assert main(["export", str(run), "--format", "npz"]) == 0
    assert main(["export", str(run), "--format", "npz"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "npz", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_plot_never_replaces_the_metrics_it_reads(run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    metrics = (run / "metrics.jsonl").read_bytes()
    for extra in ([], ["--overwrite"]):
        assert main(["plot", str(run), "--out", str(run / "metrics.jsonl"), *extra]) == 2
        assert "record of the run" in capsys.readouterr().err
    assert (run / "metrics.jsonl").read_bytes() == metrics
    png = tmp_path / "curves.png"
    png.write_bytes(b"keep")
    assert main(["plot", str(run), "--out", str(png)]) == 2
    assert png.read_bytes() == b"keep"
    assert main(["plot", str(run), "--out", str(png), "--overwrite"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


# ---- checkpoints: every entry bounded before it is inflated; what saves, loads --------------------

def _with_entry(src, dst, name, array):
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != name:
                zout.writestr(info, zin.read(info))
        zout.writestr(name, buf.getvalue())
    return dst


@pytest.mark.parametrize("name, shape", [("layer0.pad.npy", (4 << 20,)), ("extra.npy", (8,)),
                                         ("step.npy", (1 << 20,)), ("layer1.codes.npy", (7,))])
def test_checkpoint_refuses_an_unknown_or_oversized_entry_before_reading_it(run, tmp_path, name, shape):
    import numpy as np

    bad = _with_entry(run / "checkpoint.npz", tmp_path / "bad.npz", name, np.zeros(shape, np.uint64))
    with pytest.raises(ValueError, match=name.split(".npy")[0].replace(".", r"\.")) as err:
        load_model(bad)
    assert str(bad) in str(err.value)


def test_a_model_with_an_empty_layer_saves_and_loads(tmp_path):
    import numpy as np

    model = MotifMLP([6, 5, 3], density=0.5, seed=0)
    model.layers[0].keep_where(np.zeros(model.layers[0].n_blocks, bool))
    assert model.layers[0].n_blocks == 0
    save_checkpoint(tmp_path / "c.npz", model)
    back = load_model(tmp_path / "c.npz")
    assert back.layers[0].n_blocks == 0
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.decision_function(x), model.decision_function(x))


@pytest.mark.parametrize("fmt", ["npz", "torch"])
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(run, tmp_path, fmt):
    import resource
    import subprocess
    import sys

    if fmt == "torch":
        pytest.importorskip("torch")
    out = tmp_path / f"model.{fmt}"

    def limit() -> None:        # the child may write files of at most 200 bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))

    r = subprocess.run([sys.executable, "-m", "motifcore", "export", str(run), "--format", fmt, "--out", str(out)],
                       preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and f"could not write {out}" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]    # no partial file, no temp file


# ---- messages that name the real problem --------------------------------------------------------

def test_an_infinite_value_is_refused_as_not_finite(capsys):
    assert main(["baselines", "--dataset", "digits", "--temperature", "inf"]) == 2
    err = capsys.readouterr().err
    assert "(0, inf)" in err and "(0, inf]" not in err


@pytest.mark.parametrize("bad, error", [(3.7, TypeError), (0, ValueError), (True, TypeError)])
def test_ch3_l3_scores_refuses_a_thread_count_that_is_not_a_positive_integer(bad, error):
    from motifcore.analysis import ch3_l3_scores

    layer = MotifMLP([6, 5, 3], density=0.5, seed=0).layers[0]
    with pytest.raises(error, match="num_threads"):
        ch3_l3_scores(layer, num_threads=bad)
    assert ch3_l3_scores(layer, num_threads=2).shape == (5, 6)


# ---- reads and multi-call updates are atomic against other threads ------------------------------

def _digest(layers) -> bytes:
    import hashlib

    h = hashlib.sha256()
    for a in layers:
        for arr in (a.indptr, a.indices, a.weights, a.bias):
            h.update(arr.tobytes())
    return h.digest()


def test_an_export_taken_while_another_thread_evolves_is_one_of_its_states():
    import threading

    from motifcore.export.arrays import model_layers

    model = MotifMLP([40, 60, 50, 4], density=0.3, seed=0, num_threads=1)
    states = {_digest(model_layers(model))}
    seen = []
    done = threading.Event()

    def evolve() -> None:
        s = 0
        while (s < 150 or len(seen) < 200) and s < 20000:     # until both sides did enough
            model.evolve(0.3, seed=s, regrow="he")
            states.add(_digest(model_layers(model)))
            s += 1
        done.set()

    def export() -> None:
        while not done.is_set():
            seen.append(_digest(model_layers(model)))

    threads = [threading.Thread(target=evolve), threading.Thread(target=export)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) >= 200
    assert all(d in states for d in seen), f"{sum(d not in states for d in seen)} of {len(seen)} exports mixed states"


def test_rigl_update_is_one_step_against_another_threads_evolve():
    import threading

    import numpy as np
    from motifcore.train.updaters import RigL

    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 30)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    model = MotifMLP([30, 40, 3], density=0.3, seed=0, num_threads=1)
    rigl = RigL(interval=1)
    errors = []
    done = threading.Event()

    def evolve() -> None:
        s = 0
        while not done.is_set():
            model.evolve(0.2, seed=s, regrow="zero")
            s += 1

    t = threading.Thread(target=evolve)
    t.start()
    try:
        for step in range(60):
            rows = rng.integers(0, 256, 32)
            try:
                rigl.update(model, step, rows, X, y, layers={0, 1}, total_steps=1000, seed=1, dropout=0.0)
            except Exception as exc:       # "position ... is already active" before the fix
                errors.append(repr(exc))
    finally:
        done.set()
        t.join()
    assert not errors, errors[:3]
    for layer in model.layers:        # block counts kept: every drop was matched by a growth
        assert layer.n_blocks == round(layer.density * layer.groups[0] * layer.groups[1])


@pytest.mark.parametrize("rows, message", [
    ([{"epoch": 1, "train_loss": "0.5"}], "'train_loss' must be a number"),
    ([{"epoch": "10", "train_loss": 0.5}], "'epoch' must be a positive integer"),
    ([{"epoch": 1, "train_loss": 0.5}, {"epoch": 1, "train_loss": 0.4}], "epoch 1 after epoch 1"),
    ([{"epoch": 2, "train_loss": 0.5}, {"epoch": 1, "train_loss": 0.4}], "epochs must increase"),
    ([{"epoch": 1, "train_loss": 0.5, "val_accuracy": [1]}], "'val_accuracy' must be a number or null"),
    ([7], "not an epoch row"),
])
def test_plot_refuses_rows_it_cannot_draw_naming_file_and_line(tmp_path, capsys, rows, message):
    d = tmp_path / "run"
    d.mkdir()
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["plot", str(d), "--out", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and f"{d / 'metrics.jsonl'}:" in err
    assert not (tmp_path / "c.png").exists()


def test_matched_pruning_on_a_network_too_small_says_why(tmp_path, capsys):
    rc = main(["baselines", "--dataset", "digits", "--hidden", "16", "16", "--epochs", "1", "--seeds", "0",
               "--rows", "prune-ft", "--out", str(tmp_path / "b")])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "density -" not in text
    # the row fails with the reason: the budget is below the dense output layer, or it empties a layer
    assert ("keep the output layer dense" in text) or ("without blocks" in text and "prune less" in text)
    assert rc in (0, 1)


# ---- run folders: one process at a time; resume keeps the rows the checkpoint knows --------------

def test_train_refuses_a_run_folder_another_process_holds(tmp_path, capsys):
    import subprocess
    import sys

    from motifcore._internal.io import FolderLock

    out = tmp_path / "r2"
    hold = ("import sys, time\nfrom motifcore._internal.io import FolderLock\nFolderLock(sys.argv[1]).acquire()\n"
            "print('held', flush=True)\ntime.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", hold, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--no-progress",
                     "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "in use by another motifcore process" in err and str(out) in err
        assert sorted(q.name for q in out.iterdir()) == [FolderLock.NAME]      # nothing written
    finally:
        p.kill()
        p.wait()
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--no-progress",
                 "--out", str(out)]) == 0                                    # the dead holder's lock is gone


def test_resume_restores_metrics_rows_the_checkpoint_knows(tmp_path, caplog):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "3", "--no-progress",
                 "--out", str(out)]) == 0
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]
    out5 = tmp_path / "run5"
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "5", "--no-progress",
                 "--out", str(out5)]) == 0
    full = [json.loads(r) for r in (out5 / "metrics.jsonl").read_text().splitlines()]
    from motifcore.train.checkpoint import load_checkpoint

    ck = load_checkpoint(out5 / "checkpoint.npz")
    assert ck.epoch == 5
    damaged = (out5 / "metrics.jsonl").read_text().splitlines()
    damaged[1] = "{not json"                          # epoch 2's row unreadable
    del damaged[3]                                     # epoch 4's row gone
    (out5 / "metrics.jsonl").write_text("\n".join(damaged) + "\n")
    with caplog.at_level("WARNING", logger="motifcore"):
        assert main(["train", "--resume", str(out5 / "checkpoint.npz"), "--no-progress"]) == 0
    back = [json.loads(r) for r in (out5 / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in back] == [1, 2, 3, 4, 5]
    assert back[1]["train_loss"] == full[1]["train_loss"] and back[3]["val_accuracy"] == full[3]["val_accuracy"]
    assert "epochs 2, 4" in caplog.text


def test_a_large_layer_pruned_to_no_blocks_saves_and_loads(tmp_path):
    import numpy as np

    model = MotifMLP([50, 3000, 3000, 4], density=0.1, seed=0, num_threads=1)
    model.layers[1].keep_where(np.zeros(model.layers[1].n_blocks, bool))
    save_checkpoint(tmp_path / "c.npz", model)
    back = load_model(tmp_path / "c.npz")
    assert back.layers[1].n_blocks == 0 and back.config == model.config
    x = np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32)
    np.testing.assert_array_equal(back.decision_function(x), model.decision_function(x))
    assert back.get_state().keys() == model.get_state().keys()
    for k, v in model.get_state().items():
        np.testing.assert_array_equal(back.get_state()[k], v, err_msg=k)
