"""Regression tests of the red-team report (reviews/2026-11-29-red-team.md): one test (or a few)
per defect D1-D13, each the reproducer of the report asserting the fixed behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import motifcore as mc
import numpy as np
import pytest
from motifcore import _core
from motifcore._internal.io import atomic_write
from motifcore.train.checkpoint import load_model, save_checkpoint
from motifcore.cli import main
from motifcore.data.datasets import DatasetError
from motifcore.experiments.sweep import load_runs
from motifcore.errors import DivergedError
from motifcore.train.callbacks import JSONLLogger

PKG_PARENT = Path(mc.__file__).resolve().parent.parent


def _one_error_line(capsys, rc):
    out = capsys.readouterr()
    assert rc == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith("motifcore: error: ")
    assert "Traceback" not in out.err + out.out
    return lines[0]


def _small_data(n=8, d=12, k=3):
    X = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    return X, np.arange(n) % k


# ---- D1: one model shared by threads ------------------------------------------------------------

def test_d1_predict_during_evolve_neither_crashes_nor_mixes_states():
    """evolve in one thread, predict_proba in another: every answer is the prediction of one of
    the states the model passes through (computed serially first), and the process survives."""
    M = mc.MotifMLP([64, 96, 10], motif=2, density=0.3, seed=0, num_threads=1)
    X = np.random.default_rng(1).standard_normal((40, 64), dtype=np.float32)
    serial = mc.MotifMLP([64, 96, 10], motif=2, density=0.3, seed=0, num_threads=1)
    expected = [serial.predict_proba(X)]
    for i in range(25):
        serial.evolve(0.3, seed=i)
        expected.append(serial.predict_proba(X))
    seen = []
    t = threading.Thread(target=lambda: [M.evolve(0.3, seed=i) for i in range(25)])
    t.start()
    while t.is_alive():
        seen.append(M.predict_proba(X))
    t.join()
    seen.append(M.predict_proba(X))
    for p in seen:
        assert any(np.array_equal(p, e) for e in expected)
    assert np.array_equal(seen[-1], expected[-1])


def test_d1_concurrent_predictions_are_exact():
    M = mc.MotifMLP([64, 128, 10], motif=2, density=0.2, seed=0, num_threads=1)
    r = np.random.default_rng(0)
    XA, XB = r.standard_normal((16, 64), dtype=np.float32), r.standard_normal((70, 64), dtype=np.float32)
    ra, rb = M.predict_proba(XA), M.predict_proba(XB)
    bad = []

    def loop(X, ref):
        for _ in range(150):
            bad.append(not np.array_equal(M.predict_proba(X), ref))

    ts = [threading.Thread(target=loop, args=a) for a in ((XA, ra), (XB, rb))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(bad) == 300 and not any(bad)


def test_d1_layer_forward_from_two_threads():
    L = mc.MotifLayer(48, 32, motif=2, density=0.4, seed=3, num_threads=1)
    r = np.random.default_rng(2)
    xs = [r.standard_normal((b, 48), dtype=np.float32) for b in (3, 50)]
    refs = [L.forward(x) for x in xs]
    bad = []

    def loop(x, ref):
        for _ in range(150):
            bad.append(not np.array_equal(L.forward(x), ref))

    ts = [threading.Thread(target=loop, args=(x, ref)) for x, ref in zip(xs, refs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not any(bad)


# ---- D2: --out onto an existing run ------------------------------------------------------------

TINY = ["--dataset", "digits", "--hidden", "16", "--epochs", "1", "--threads", "1", "--no-progress"]


def test_d2_out_onto_existing_run_is_refused(tmp_path, capsys):
    out = tmp_path / "runA"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc = main(["train", *TINY, "--seed", "5", "--out", str(out)])
    line = _one_error_line(capsys, rc)
    assert "already holds a run" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before   # nothing of run A touched
    # --overwrite replaces it: the new run's seed is in its config
    assert main(["train", *TINY, "--seed", "5", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["run"]["seed"] == 5
    # --resume into its own folder is allowed (nothing left to train: 1 of 1 epochs done)
    assert main(["train", "--resume", str(out / "checkpoint.npz"), "--no-progress"]) == 0


# ---- D3: thread counts --------------------------------------------------------------------------

def test_d3_thread_counts_are_bounded():
    cap = _core.max_num_threads()
    assert cap >= 8
    L = mc.MotifLayer(64, 64, density=0.5)
    for bad in (-5, 0, cap + 1, 10**12):
        with pytest.raises(ValueError, match="num_threads"):
            L.num_threads = bad
        with pytest.raises(ValueError, match="num_threads"):
            mc.MotifMLP([12, 8, 3], num_threads=bad)
    with pytest.raises(TypeError):
        L.num_threads = 2.0
    # the engine refuses them too, for callers of the native module
    with pytest.raises(ValueError, match="num_threads"):
        L._core.forward(np.ones((4, 64), np.float32), -5)
    net = mc.MotifMLP([12, 8, 3])._net
    with pytest.raises(ValueError, match="num_threads"):
        net.num_threads = cap + 1


def test_d3_thread_count_from_environment_is_checked():
    code = "import motifcore as mc; mc.MotifMLP([12, 8, 3])"
    env = {**os.environ, "MOTIFCORE_NUM_THREADS": "5000", "PYTHONPATH": str(PKG_PARENT)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "ValueError: MOTIFCORE_NUM_THREADS must be an integer in [1," in r.stderr


# ---- D4: divergence outside the Trainer ----------------------------------------------------------

def test_d4_divergence_raises_and_the_model_refuses_to_answer():
    M = mc.MotifMLP([12, 16, 3], motif=2, density=0.5, seed=0)
    X, y = _small_data()
    with pytest.raises(DivergedError):
        for _ in range(3):
            M.train_step(X, y, lr=1e38)
    for call in (lambda: M.predict(X), lambda: M.predict_proba(X), lambda: M.score(X, y),
                 lambda: M.train_step(X, y, lr=0.01)):
        with pytest.raises(DivergedError):
            call()
    # restoring a valid state makes it usable again
    M.set_state(mc.MotifMLP([12, 16, 3], motif=2, density=0.5, seed=0).get_state())
    assert M.predict(X).shape == (8,)


def test_d4_layer_updates_validate_their_arguments():
    L = mc.MotifLayer(20, 10)
    L.forward(np.ones((2, 20)))
    L.backward(np.ones((2, 10)))
    w = L.weights
    for kw in ({"lr": float("nan")}, {"lr": -1.0}, {"lr": 0.1, "momentum": 5.0}):
        with pytest.raises(ValueError):
            L.sgd_step(**kw)
    assert np.array_equal(L.weights, w)


# ---- D5: checkpoint values -----------------------------------------------------------------------

def _rewrite(src, dst, edit):
    z = dict(np.load(src))
    edit(z)
    np.savez(dst, **z)
    return dst


@pytest.fixture
def ckpt(tmp_path):
    return save_checkpoint(tmp_path / "c.npz", mc.MotifMLP([12, 16, 3], seed=0))


@pytest.mark.parametrize(("name", "edit", "match"), [
    ("nan_weights", lambda z: z.__setitem__("layer0.weights", np.full_like(z["layer0.weights"], np.nan)),
     "NaN or infinite"),
    ("inf_momentum", lambda z: z.__setitem__("layer1.weight_velocity", np.full_like(z["layer1.weight_velocity"],
                                                                                  np.inf)), "NaN or infinite"),
    ("f64_beyond_f32", lambda z: z.__setitem__("layer0.bias", np.full(z["layer0.bias"].shape, 1e39)),
     "float32 range"),
    ("float_indices", lambda z: z.__setitem__("layer1.indices", z["layer1.indices"].astype(np.float64)),
     "must hold integers"),
    ("wrapped_indices", lambda z: z.__setitem__("layer1.indices", z["layer1.indices"].astype(np.int64) + 2**32),
     "outside the int32 range"),
    ("int_weights", lambda z: z.__setitem__("layer0.weights", z["layer0.weights"].astype(np.int32)),
     "floating-point"),
])
def test_d5_checkpoint_values_are_checked(ckpt, tmp_path, name, edit, match):
    bad = _rewrite(ckpt, tmp_path / f"{name}.npz", edit)
    with pytest.raises(ValueError, match=f"{name}.npz.*{match}"):
        load_model(bad)


def test_d5_cli_evaluate_rejects_a_nan_checkpoint(ckpt, tmp_path, capsys):
    bad = _rewrite(ckpt, tmp_path / "nan.npz",
                   lambda z: z.__setitem__("layer0.weights", np.full_like(z["layer0.weights"], np.nan)))
    X, y = _small_data(30)
    np.savez(tmp_path / "d12.npz", X=X, y=y)
    rc = main(["evaluate", "--checkpoint", str(bad), "--dataset", f"npz:{tmp_path / 'd12.npz'}"])
    assert "NaN or infinite" in _one_error_line(capsys, rc)


# ---- D6: resource exhaustion from a small checkpoint --------------------------------------------

def test_d6_model_config_is_checked_against_the_arrays(ckpt, tmp_path):
    def grow(z):
        meta = json.loads(str(z["__motifcore__"]))
        meta["model_config"].update(sizes=[100000, 100000, 3], density=[1.0, 1.0])
        z["__motifcore__"] = np.array(json.dumps(meta))
    bad = _rewrite(ckpt, tmp_path / "big.npz", grow)
    assert bad.stat().st_size < 64 << 10
    with pytest.raises(ValueError, match="big.npz.*model_config needs"):
        load_model(bad)


def test_d6_deflate_bomb_is_refused_before_inflating(ckpt, tmp_path):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(ckpt) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        # 512 MiB of zeros compress to ~0.5 MB; written in pieces so the test itself stays small
        with dst.open("padding.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                     "shape": (128 << 20,)})
            zeros = bytes(1 << 24)
            for _ in range(32):
                f.write(zeros)
    assert bomb.stat().st_size < 4 << 20
    with pytest.raises(ValueError, match="bomb.npz.*padding.npy. is not part of a motifcore checkpoint"):
        load_model(bomb)


def test_d6_lying_array_header_is_refused(ckpt, tmp_path):
    liar = tmp_path / "liar.npz"
    with zipfile.ZipFile(ckpt) as src, zipfile.ZipFile(liar, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "layer0.weights.npy":
                arr = np.load(src.open(info))
                head = np.lib.format.header_data_from_array_1_0(arr)
                head["shape"] = (2**34,)
                import io
                buf = io.BytesIO()
                np.lib.format.write_array_header_1_0(buf, head)
                data = buf.getvalue() + arr.tobytes()
            dst.writestr(info.filename, data)
    with pytest.raises(ValueError, match="liar.npz.*header declares"):
        load_model(liar)


@pytest.mark.parametrize(("field", "value"), [(10, 99), (8, 1)])   # compression method 99; "encrypted" flag
def test_d6_crafted_zip_directory_flags_give_value_error(ckpt, tmp_path, field, value):
    """zipfile answers these with NotImplementedError / RuntimeError (found by test_properties)."""
    blob = bytearray(ckpt.read_bytes())
    name = b"layer1.bias.npy"
    at = blob.index(b"PK\x01\x02")          # central directory records: name at offset 46
    while blob[at + 46:at + 46 + len(name)] != name:
        at = blob.index(b"PK\x01\x02", at + 4)
    blob[at + field:at + field + 2] = value.to_bytes(2, "little")
    bad = tmp_path / "flags.npz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="flags.npz"):
        load_model(bad)


def test_d6_cli_resume_of_crafted_checkpoint_is_one_line(ckpt, tmp_path, capsys):
    bad = _rewrite(ckpt, tmp_path / "x.npz", lambda z: z.__setitem__(
        "layer0.indptr", np.zeros(5, np.int64)))
    rc = main(["train", "--resume", str(bad), "--no-progress"])
    assert "x.npz" in _one_error_line(capsys, rc)


# ---- D7: train_epoch all or nothing ----------------------------------------------------------------

def test_d7_bad_order_is_rejected_before_any_update():
    M = mc.MotifMLP([12, 16, 3], seed=0)
    X, y = _small_data()
    w0 = M.layers[0].weights
    with pytest.raises(ValueError, match="index 100 outside"):
        M.train_epoch(X, y, batch_size=2, order=np.array([0, 1, 2, 3, 100]))
    with pytest.raises(TypeError, match="integer sample indices"):
        M.train_epoch(X, y, batch_size=4, order=np.array([0.7, 1.9]))
    with pytest.raises(ValueError, match="outside"):
        M.train_epoch(X, y, batch_size=4, order=np.array([0, -1]))
    assert M.steps == 0 and np.array_equal(w0, M.layers[0].weights)


# ---- D8: CSV first row ------------------------------------------------------------------------------

def test_d8_csv_first_row_with_a_typo_is_an_error(tmp_path):
    rows = [f"{i * 0.1:.1f},{i * 0.2:.1f},{i % 3}" for i in range(60)]
    good = tmp_path / "good.csv"
    good.write_text("x0,x1,label\n" + "\n".join(rows))
    Xtr, _, Xte, _ = mc.datasets.load(f"csv:{good}")
    assert len(Xtr) + len(Xte) == 60                       # a real header is still skipped
    rows[0] = "x0.0,0.0,0"
    bad = tmp_path / "typo.csv"
    bad.write_text("\n".join(rows))
    with pytest.raises(DatasetError, match="typo.csv: the first row mixes numbers and text"):
        mc.datasets.load(f"csv:{bad}")


# ---- D9: CLI tracebacks ------------------------------------------------------------------------------

def test_d9_memory_error_is_one_line(capsys, monkeypatch):
    def no_memory(*a, **k):
        raise MemoryError("std::bad_alloc")
    monkeypatch.setattr("motifcore.cli.train.execute", no_memory)
    rc = main(["train", *TINY, "--out", "unused-never-written"])
    assert "out of memory" in _one_error_line(capsys, rc)
    assert not Path("unused-never-written").exists()


def test_d9_huge_threads_and_partial_metadata_are_one_line(ckpt, tmp_path, capsys):
    rc = main(["train", *TINY[:-3], "--threads", "1000000000000", "--no-progress", "--out", str(tmp_path / "o")])
    line = _one_error_line(capsys, rc)
    assert "num_threads" in line and "incompatible" not in line
    meta_only = save_checkpoint(tmp_path / "partial.npz", mc.MotifMLP([64, 16, 10], seed=0), epoch=1,
                                trainer={"epochs": 2}, extra={"cli": {"dataset": "digits"}})
    rc = main(["train", "--resume", str(meta_only), "--no-progress"])
    assert "partial.npz: the checkpoint's trainer configuration is incomplete" in _one_error_line(capsys, rc)
    with pytest.raises(ValueError, match="no 'evolution'"):
        mc.Trainer.from_checkpoint(meta_only)


# ---- D10: float32 overflow in loaders -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_d10_values_beyond_float32_are_refused(tmp_path, kind):
    X = np.random.default_rng(0).standard_normal((60, 4))
    X[0, 0] = 1e39
    y = np.arange(60) % 3
    if kind == "npz":
        path = tmp_path / "big.npz"
        np.savez(path, X=X, y=y)
    else:
        path = tmp_path / "big.csv"
        np.savetxt(path, np.column_stack([X, y]), delimiter=",")
    with pytest.raises(DatasetError, match="big.*beyond the float32 range"):
        mc.datasets.load(f"{kind}:{path}")


# ---- D11: atomic writes ------------------------------------------------------------------------------

def test_d11_temp_file_of_a_killed_writer_is_removed(tmp_path):
    target = tmp_path / "checkpoint.npz"
    code = ("import os, sys; sys.path.insert(0, sys.argv[2]); from motifcore._internal.io import atomic_write\n"
            "def w(f):\n    f.write(b'x' * 4096); f.flush(); os.kill(os.getpid(), 9)\n"
            "atomic_write(sys.argv[1], w)")
    r = subprocess.run([sys.executable, "-c", code, str(target), str(PKG_PARENT)], timeout=60)
    assert r.returncode == -9
    litter = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(litter) == 1 and not target.exists()           # what kill -9 leaves behind ...
    atomic_write(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]   # ... is cleaned by the next write
    assert target.read_bytes() == b"new"


def test_d11_metrics_rewrite_is_atomic(tmp_path, monkeypatch):
    """An interrupt while the resume rewrites metrics.jsonl leaves the old file, never an empty one."""
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"epoch": e}) for e in (1, 2, 3)]
    path.write_text("\n".join(lines) + "\n")

    class T:
        epoch = 2

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        JSONLLogger(path).on_train_begin(T())
    assert path.read_text().splitlines() == lines
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
    monkeypatch.undo()
    JSONLLogger(path).on_train_begin(T())
    assert path.read_text().splitlines() == lines[:2]


# ---- D12: sweep records ------------------------------------------------------------------------------

def _record(run_id, acc=0.5, checkpoint=None, sha=None):
    rec = {"format": "motifcore-sweep-run", "version": 1, "run_id": run_id, "status": "ok",
           "config": {"dataset": "digits"}, "metrics": {"test_accuracy": acc}, "history": {},
           "checkpoint": checkpoint}
    if sha is not None:
        rec["checkpoint_sha256"] = sha
    return rec


def test_d12_garbage_record_and_corrupt_checkpoint_are_not_done(tmp_path):
    import hashlib
    runs = tmp_path / "runs"
    runs.mkdir()
    (tmp_path / "checkpoints").mkdir()
    data = b"checkpoint bytes"
    (tmp_path / "checkpoints" / "b.npz").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    (runs / "a.json").write_text(json.dumps(_record("a", acc="garbage")))
    (runs / "b.json").write_text(json.dumps(_record("b", checkpoint="checkpoints/b.npz", sha=sha)))
    (runs / "c.json").write_text(json.dumps(_record("c")))
    with pytest.warns(RuntimeWarning, match="a.json: skipped"):
        assert [r["run_id"] for r in load_runs(tmp_path)] == ["b", "c"]
    (tmp_path / "checkpoints" / "b.npz").write_bytes(b"checkpoint bytez")   # bit rot
    with pytest.warns(RuntimeWarning, match="b.json: skipped.*does not match the SHA-256"), \
            pytest.warns(RuntimeWarning, match="a.json: skipped"):
        assert [r["run_id"] for r in load_runs(tmp_path, verify_checkpoints=True)] == ["c"]


# ---- D13: seeds, warmup, non-zip resume ------------------------------------------------------------------

def test_d13_seed_ranges(capsys, tmp_path):
    with pytest.raises(ValueError, match="< 2\\*\\*64"):
        mc.MotifMLP([12, 8, 3], seed=2**64)
    with pytest.raises(ValueError, match="< 2\\*\\*64"):
        mc.MotifLayer(8, 8, seed=2**200)
    assert mc.MotifMLP([12, 8, 3], seed=2**64 - 1).n_blocks > 0
    with pytest.raises(TypeError, match="sizes"):
        mc.MotifMLP({12: 1, 3: 2})
    rc = main(["train", *TINY, "--seed", str(2**32), "--out", str(tmp_path / "o")])
    assert "--seed: must be <=" in _one_error_line(capsys, rc)


def test_d13_warmup_longer_than_the_run(capsys, tmp_path):
    rc = main(["train", *TINY, "--warmup", "5", "--out", str(tmp_path / "o")])
    assert "--warmup" in _one_error_line(capsys, rc)


def test_d13_non_zip_resume_message(tmp_path, capsys):
    j = tmp_path / "j.json"
    j.write_text("{}")
    rc = main(["train", "--resume", str(j)])
    line = _one_error_line(capsys, rc)
    assert "not an .npz archive" in line and "pickled" not in line
