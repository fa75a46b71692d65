"""The baselines experiment driver (`motifcore baselines`): spec checks, tables from stored records,
and (slow) a tiny end-to-end run that resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from motifcore.cli import main
from motifcore.defaults import LR_FAN_IN, RECIPES
from motifcore.experiments.baselines import ROWS, BaselineSpec, _Ctx, available_rows, run_baselines
from motifcore.report.tables78 import write_tables


def test_spec_checks():
    with pytest.raises(ValueError, match="unknown rows"):
        BaselineSpec(rows=("dense", "nope")).checked()
    with pytest.raises(ValueError, match="epochs"):
        BaselineSpec(epochs=0).checked()
    with pytest.raises(ValueError, match="rewind_epoch"):
        BaselineSpec(epochs_pre=2, rewind_epoch=2).checked()
    s = BaselineSpec(hidden=(8, 8), seeds=(3,), rows=("dense", "set1"))
    assert BaselineSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_rows_needing_missing_methods_say_so():
    avail = available_rows(BaselineSpec())
    assert set(avail) == set(ROWS)
    for row, why in avail.items():
        if ROWS[row].needs is None:
            assert why is None
        elif why is not None:
            assert "not in this build" in why


def test_tables_from_records(tmp_path):
    (tmp_path / "runs").mkdir()
    base = {"table": 7, "status": "ok", "unique_params": 100, "paper_params": 400, "paper_convention": "grid",
            "csr_fp32_bytes": 800, "savez_bytes": 900, "latency_batch1_s": 1e-4, "latency_batch1_p90_s": 2e-4}
    for seed, acc, t in ((0, 0.80, 10.0), (1, 0.84, 12.0), (2, 0.82, 20.0)):
        rec = {**base, "row": "motif2", "seed": seed, "test_accuracy": acc, "median_s_per_epoch": t / 10,
               "total_train_s": t}
        (tmp_path / "runs" / f"motif2__s{seed}.json").write_text(json.dumps(rec))
    spec = BaselineSpec(rows=("motif2", "rigl1"))
    rows = write_tables(tmp_path, spec, {"rigl1": "unavailable: not in this build"}, command="motifcore baselines")
    m2 = rows[0]
    assert m2["seeds"] == 3
    assert m2["acc_mean"] == pytest.approx(82.0)
    assert m2["acc_std"] == pytest.approx(2.0)                # sample std of 80, 84, 82
    assert m2["total_train_s"] == 12.0 and m2["s_per_epoch"] == pytest.approx(1.2)
    assert m2["latency_ms"] == pytest.approx(0.1) and m2["paper_acc"] == 73.30
    assert rows[1]["status"].startswith("unavailable")
    report = (tmp_path / "report.md").read_text()
    assert "82.00 ± 2.00" in report and "motifcore baselines" in report and "unavailable" in report
    t7 = (tmp_path / "table7.csv").read_text().splitlines()
    assert t7[0].startswith("row,label,seeds,acc_mean") and t7[1].startswith("motif2,")
    assert "rigl1" in (tmp_path / "table8.csv").read_text()


def test_cli_lists_rows(capsys):
    assert main(["baselines", "--out", "unused", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(r in out for r in ROWS)


@pytest.mark.slow
def test_tiny_end_to_end_run_resumes(tmp_path, data_dir):
    # a wide first layer: with a narrow one (fan-in 784 against, say, 128) the hidden weights are much
    # larger and global pruning at ~2.5 % would leave the input layer empty
    spec = BaselineSpec(hidden=(1024, 64), limit_train=1500, seeds=(0,), epochs=2, epochs_pre=2, epochs_ft=1,
                        rounds=2, epochs_round=1, epochs_q=1, latency_repeats=3, latency_warmup=1, threads=1,
                        data_dir=str(data_dir))
    out = tmp_path / "exp"
    rows = write_tables(out, spec, run_baselines(spec, out, log=lambda s: None))
    avail = available_rows(spec)
    for r in rows:
        if avail[r["row"]] is None:
            assert r["status"] == "ok", r
            assert 0 < r["acc_mean"] <= 100
        else:
            assert r["status"].startswith("unavailable")
    by = {r["row"]: r for r in rows}
    # matched rows keep Motif-SET m = 2's unique parameter count (pruning) or come within a width step (KD)
    assert by["prune-ft"]["unique_params"] == by["motif2"]["unique_params"]
    assert by["prune-iter"]["unique_params"] == by["motif2"]["unique_params"]
    assert abs(by["prune-layer-ft"]["unique_params"] - by["motif2"]["unique_params"]) <= 2
    assert by["prune-layer-ft"]["acc_mean"] > by["prune-ft"]["acc_mean"]   # global ranking starves a layer here
    assert abs(by["kd-matched"]["unique_params"] / by["motif2"]["unique_params"] - 1) < 0.05
    assert by["dense"]["paper_params"] == 784 * 1024 + 1024 * 64 + 64 * 10
    assert by["dc-motif2"]["dc_bytes_huffman"] < by["motif2"]["csr_fp32_bytes"]
    assert (out / "checkpoints" / ".gitignore").read_text() == "*\n"
    # resume: a removed record is measured again from its checkpoint, a removed checkpoint retrained,
    # both to the same accuracy
    before = json.loads((out / "runs" / "prune-wr__s0.json").read_text())
    (out / "runs" / "prune-wr__s0.json").unlink()
    (out / "runs" / "kd-matched__s0.json").unlink()
    (out / "checkpoints" / "kd-matched__s0.npz").unlink()
    kd_before = by["kd-matched"]["acc_mean"]
    again = {r["row"]: r for r in write_tables(out, spec, run_baselines(spec, out, log=lambda s: None))}
    after = json.loads((out / "runs" / "prune-wr__s0.json").read_text())
    assert after["test_accuracy"] == before["test_accuracy"]
    assert again["kd-matched"]["acc_mean"] == kd_before
    with pytest.raises(ValueError, match="other settings"):
        run_baselines(BaselineSpec(**{**spec.__dict__, "epochs": 3}), out, log=lambda s: None)
    assert np.isfinite(again["dense"]["latency_ms"])
    # the training settings are recorded; rows of another recipe (an older default) are not mixed in
    training = json.loads((out / "training.json").read_text())
    r = RECIPES["motifcore"]
    assert training["optimizer"] == r["optimizer"]
    # the recipe's shrink per step at the rate of this network (hidden fan-in 102.4 > LR_FAN_IN)
    assert training["lr"] * training["weight_decay"] == pytest.approx(r["lr"] * r["weight_decay"])
    (out / "training.json").write_text(json.dumps({**training, "optimizer": "adam", "weight_decay": 5e-4}))
    with pytest.raises(ValueError, match="other settings"):
        run_baselines(spec, out, log=lambda s: None)
    (out / "training.json").unlink()
    with pytest.raises(ValueError, match="before their training settings were recorded"):
        run_baselines(spec, out, log=lambda s: None)


def test_every_row_trains_at_the_learning_rate_of_the_sparse_network(tmp_path):
    """The recipe's rate is resolved once, for the sparse network (hidden fan-in 400 x 0.5 = 200 >
    LR_FAN_IN), and every row (the dense source, a fine-tuned or distilled model) gets it."""
    spec = BaselineSpec(hidden=(400, 400), density=0.5, seeds=(0,)).checked()
    X = np.zeros((4, 20), np.float32)
    y = np.zeros(4, np.int64)
    ctx = _Ctx(spec, tmp_path, X, y, X, y, [20, 400, 400, 3], False)
    expected = RECIPES["motifcore"]["lr"] * LR_FAN_IN / 200
    assert ctx.training["lr"] == pytest.approx(expected)
    # and the decoupled decay that keeps the recipe's shrink per step at that rate
    assert ctx.training["weight_decay"] == pytest.approx(RECIPES["motifcore"]["weight_decay"] * 200 / LR_FAN_IN)
    assert ctx.kwargs(0)["lr"] == ctx.kwargs(0, evolution="none")["lr"] == pytest.approx(expected)
    assert ctx.kwargs(0, lr=0.5)["lr"] == 0.5
    # every row trains with what training.json records (the rate is given, so the decay must be too)
    from motifcore import MotifMLP, Trainer
    m = MotifMLP([20, 400, 400, 3], density=0.5, seed=0, num_threads=1)
    cfg = Trainer(m, progress=False, **ctx.kwargs(0)).config
    assert {k: cfg[k] for k in ("lr", "weight_decay", "label_smoothing")} == \
        {k: ctx.training[k] for k in ("lr", "weight_decay", "label_smoothing")}
    narrow = _Ctx(spec, tmp_path, X, y, X, y, [20, 64, 64, 3], False)
    assert narrow.training["lr"] == RECIPES["motifcore"]["lr"]
    assert narrow.training["weight_decay"] == RECIPES["motifcore"]["weight_decay"]
