"""Checkpoints: exact round trip, bit-exact resume across evolution, atomic writes, clear errors."""

from __future__ import annotations

import json
import os
import zipfile

import motifcore.train.checkpoint as ckpt
import numpy as np
import pytest
from motifcore import MotifMLP, Trainer, load_model
from motifcore.train.callbacks import Checkpoint
from motifcore.train.checkpoint import FORMAT_VERSION, load_checkpoint, read_metadata, save_checkpoint

TIMING = ("train_time", "eval_time", "evolution_time")


def blobs(n=500, d=24, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


def model(seed=3, motif=(2, 2, 1)):
    return MotifMLP([24, 40, 40, 4], motif=list(motif), density=0.25, seed=seed, num_threads=1)


def assert_same_state(a, b):
    sa, sb = a.get_state(), b.get_state()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert np.array_equal(sa[k], sb[k]), k


def strip_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_model_roundtrip(tmp_path):
    X, y = blobs()
    m = model()
    m.train_epoch(X, y, batch_size=50, lr=0.05)  # non-zero momentum and step counter
    m.evolve(0.2, seed=1)
    path = save_checkpoint(tmp_path / "m.npz", m)
    back = load_model(path)
    assert_same_state(m, back)
    assert back.config == m.config and back.sizes == m.sizes and back.steps == m.steps == 10
    assert np.array_equal(back.decision_function(X), m.decision_function(X))
    # documented format: plain npz without pickles, JSON metadata entry
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["__motifcore__"][()]))
        assert np.array_equal(z["layer0.indices"], m.layers[0].indices)
    assert meta["format"] == "motifcore-checkpoint" and meta["version"] == FORMAT_VERSION
    assert meta["model_config"]["motif"] == [[2, 2], [2, 2], [1, 1]]
    assert meta["epoch"] is None and meta["trainer"] is None


@pytest.mark.parametrize("stop_at, evolution", [
    (3, "set-epoch"),                 # evolution after every epoch, incl. across the cut
    (4, {2: 0.2, 4: 0.3, 5: 0.1}),    # cut exactly at an epoch whose evolution is pending
    (3, "cht"),                       # CH3-L3 regrowth with chain removal, across the cut
])
def test_resume_is_bit_exact(tmp_path, stop_at, evolution):
    X, y = blobs()
    Xv, yv = blobs(200, seed=1)
    kw = {"epochs": 7, "batch_size": 64, "lr": 0.05, "warmup": 2, "evolution": evolution, "dropout": 0.2,
          "eval_every": 2,
              "seed": 11, "progress": False}
    full = Trainer(model(), **kw)
    full.fit(X, y, Xv, yv)

    path = tmp_path / "run" / "ck.npz"
    part = Trainer(model(), callbacks=[Checkpoint(path), lambda t, e, logs: e == stop_at], **kw)
    part.fit(X, y, Xv, yv)
    assert part.epoch == stop_at and part.stopped_early
    assert read_metadata(path)["epoch"] == stop_at
    # the checkpoint holds the trained, not yet evolved network
    assert_same_state(part.model, load_model(path))

    resumed = Trainer.resume(path, X, y, Xv, yv, progress=False, num_threads=1)
    assert resumed.epoch == 7
    assert_same_state(full.model, resumed.model)
    assert strip_timing(resumed.history.rows) == strip_timing(full.history.rows)
    # evolution really happened on both sides of the cut
    zetas = resumed.history["zeta"]
    assert any(z > 0 for z in zetas[:stop_at]) and any(z > 0 for z in zetas[stop_at:])


def test_from_checkpoint_restores_trainer(tmp_path):
    X, y = blobs()
    tr = Trainer(model(), epochs=4, lr=0.03, lr_schedule="step", step_size=2, gamma=0.5, seed=5,
                 evolution="paper", evolution_params={"every": 1, "warmup": 1}, progress=False)
    tr.fit(X, y)
    tr.save_checkpoint(tmp_path / "t.npz", extra={"note": "hi"})
    back = Trainer.from_checkpoint(tmp_path / "t.npz", progress=False)
    assert back.config == tr.config
    assert back.epoch == 4 and back.evolved_through == tr.evolved_through and back.n_train == 500
    assert back.history == tr.history
    assert back.checkpoint_extra == {"note": "hi"}
    assert back.evolution_schedule.zetas() == tr.evolution_schedule.zetas()
    # fitting a finished run trains nothing
    back.fit(X, y)
    assert back.epoch == 4 and len(back.history) == 4
    assert_same_state(back.model, tr.model)


def test_resume_guards(tmp_path):
    X, y = blobs()
    tr = Trainer(model(), epochs=3, evolution=lambda e: 0.1, progress=False,
                 callbacks=[lambda t, e, logs: e == 1])
    tr.fit(X, y)
    tr.save_checkpoint(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="callable evolution"):
        Trainer.from_checkpoint(tmp_path / "c.npz")
    again = Trainer.from_checkpoint(tmp_path / "c.npz", evolution=lambda e: 0.1, progress=False)
    with pytest.raises(ValueError, match="trained on 500 samples"):
        again.fit(X[:400], y[:400])
    save_checkpoint(tmp_path / "model_only.npz", model())
    with pytest.raises(ValueError, match="model only"):
        Trainer.from_checkpoint(tmp_path / "model_only.npz")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    m = model()
    path = save_checkpoint(tmp_path / "a.npz", m)
    before = path.read_bytes()
    m.train_epoch(*blobs(), batch_size=100, lr=0.1)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, m)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]  # no temporary file left behind
    save_checkpoint(path, m)                          # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]
    assert_same_state(load_model(path), m)


def _rewrite(src, dst, change):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def test_corrupt_and_foreign_files(tmp_path):
    good = save_checkpoint(tmp_path / "good.npz", model())
    data = good.read_bytes()

    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.npz.*corrupt or truncated"):
        load_model(trunc)

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_model(garbage)

    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(4))
    with pytest.raises(ValueError, match="array.npy.*not an .npz archive"):
        load_model(npy)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.arange(3))
    with pytest.raises(ValueError, match="foreign.npz: not a motifcore checkpoint"):
        load_model(foreign)

    def bump_version(a):
        meta = json.loads(str(a["__motifcore__"][()]))
        meta["version"] = FORMAT_VERSION + 1
        a["__motifcore__"] = np.array(json.dumps(meta))

    newer = tmp_path / "newer.npz"
    _rewrite(good, newer, bump_version)
    with pytest.raises(ValueError, match=r"newer.npz: checkpoint format version 2 is not supported"):
        load_model(newer)

    def bad_weights(a):
        a["layer1.weights"] = a["layer1.weights"][:-3]

    broken = tmp_path / "broken.npz"
    _rewrite(good, broken, bad_weights)
    with pytest.raises(ValueError, match="broken.npz"):
        load_model(broken)

    def bad_json(a):
        a["__motifcore__"] = np.array("{not json")

    badmeta = tmp_path / "badmeta.npz"
    _rewrite(good, badmeta, bad_json)
    with pytest.raises(ValueError, match="badmeta.npz: the checkpoint's metadata is not valid JSON"):
        load_model(badmeta)

    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_checkpoint(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="is a folder"):
        load_model(tmp_path)
    assert zipfile.is_zipfile(good)  # the good one is untouched by all of this
    assert_same_state(load_model(good), model())
