"""Reports: tables (Markdown + CSV) and PNG figures from the killed-and-resumed sweep of
test_sweep.py, and the sensitivity / schedule / projection tables from a synthetic sweep folder."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from motifcore import cli, metrics, report, sweep
from motifcore.defaults import EPOCHS

pytest.importorskip("matplotlib")
pytest.importorskip("distributed")

from test_sweep import killed_and_resumed_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PM = re.compile(r"\d+\.\d+ ± \d+\.\d+")


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def swept(tmp_path_factory: Any) -> dict[str, Any]:
    return killed_and_resumed_sweep(tmp_path_factory)


def test_report_of_the_resumed_sweep(swept: dict[str, Any], tmp_path: Path) -> None:
    path = report.write_report(swept["out"], tmp_path / "rep")
    assert path == tmp_path / "rep" / "report.md"
    text = path.read_text()
    assert len(text) > 500
    # Tables 4/5: one row per m, plus the narrow-SET baseline next to m=2, all with mean ± std
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    m1 = [ln for ln in rows if ln.startswith("| SET (m=1) | 1 |")]
    m2 = [ln for ln in rows if ln.startswith("| Motif-SET m=2 | 2 |")]
    narrow = [ln for ln in rows if ln.startswith("| SET narrow (widths 16/16) vs m=2 |")]
    assert len(m1) == len(m2) == len(narrow) == 1
    for ln in (m1[0], m2[0], narrow[0]):
        assert len(PM.findall(ln)) >= 2                          # accuracy and s/epoch
        assert ln.rstrip().endswith("| 2 |")                     # two seeds each
    assert "Recommended m = " in text and "utility" in text
    assert "Knee:" in text and "Honest baseline: narrow SET for m=2" in text

    # CSV agrees with the run records: mean and sample std over seeds
    recs = sweep.load_runs(swept["out"])
    main = _csv(tmp_path / "rep" / "table_main.csv")
    assert [(r["variant"], r["motif"]) for r in main] == [("motif", "1"), ("motif", "2"), ("narrow", "1")]
    for r in main:
        accs = [x["metrics"]["test_accuracy"] for x in recs
                if x["config"]["variant"] == r["variant"] and str(x["config"]["motif"]) == r["motif"]]
        assert len(accs) == 2
        assert float(r["test_acc_mean"]) == pytest.approx(np.mean(accs))
        assert float(r["test_acc_std"]) == pytest.approx(np.std(accs, ddof=1))
        assert r["n_seeds"] == "2"
    assert float(main[1]["block_macs_per_sample"]) < float(main[0]["block_macs_per_sample"])
    runs_csv = _csv(tmp_path / "rep" / "runs.csv")
    assert len(runs_csv) == 6 and len({r["run_id"] for r in runs_csv}) == 6

    # figures: PNG files, non-empty, linked from the Markdown
    for name in ("digits_acc_vs_time.png", "digits_score_vs_w.png", "digits_pareto.png"):
        p = tmp_path / "rep" / name
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000
        assert f"]({name})" in text
    for name in ("table_main.csv", "table_scores.csv", "recommendation.csv", "table_pareto.csv",
                 "table_latency.csv"):
        assert (tmp_path / "rep" / name).stat().st_size > 50
        assert f"[{name}]({name})" in text


def test_report_cli(swept: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    rc = cli.main(["report", str(swept["out"]), "--out", str(tmp_path / "r"), "--no-figures", "--lam", "0.5"])
    assert rc == 0 and "report.md" in capsys.readouterr().out
    assert (tmp_path / "r" / "report.md").exists() and not list((tmp_path / "r").glob("*.png"))
    assert "λ=0.5" in (tmp_path / "r" / "report.md").read_text()
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    rc = cli.main(["report", str(empty)])
    err = capsys.readouterr().err
    assert rc == 2 and "no stored runs" in err
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert cli.main(["report", str(swept["out"]), "--lam", "2"]) == 2


# ------------------------------------------------------------------------------------------------
# synthetic sweep: every table
# ------------------------------------------------------------------------------------------------


def _acc(m: Any, lr: float, density: float, seed: int) -> float:
    mm = m if isinstance(m, int) else 1.5
    return 0.90 - 0.03 * math.log2(mm) + 0.02 * math.log10(lr / 0.01) - 0.1 * (0.1 - density) + 0.004 * seed


def _fake_sweep(folder: Path) -> list[dict[str, Any]]:
    spec = {"datasets": ["fake"], "hidden": [64, 64, 64], "motifs": [1, 2, 4, 8, [2, 2, 1, 1]],
            "lrs": [0.001, 0.01], "densities": [0.1, 0.2], "seeds": [0, 1, 2], "baseline_narrow": True}
    runs = sweep.expand_runs(spec)
    for cfg in runs:
        m = cfg["motif"]
        mm = m if isinstance(m, int) else 1.5
        macs = int(1000 * cfg["density"] / (mm * mm if cfg["variant"] == "motif" else (cfg["base_motif"] or 1) ** 2))
        t = 0.1 + 1.0 / mm**2 + 0.01 * cfg["seed"]
        rec = {"run_id": cfg["run_id"], "status": "ok",
               "config": {k: v for k, v in cfg.items() if k != "run_id"},
               "sizes": [10, *cfg["hidden"], 3], "n_train": 100, "n_test": 50,
               "metrics": {"test_accuracy": _acc(m, cfg["lr"], cfg["density"], cfg["seed"])
                           - 0.01 * (cfg["variant"] == "narrow"),
                           "best_test_accuracy": 0.95, "final_train_loss": 0.1, "unique_params": macs + 100,
                           "block_macs_per_sample": macs, "edges": 1000, "dense_params": 9000, "dense_blocks": 8000,
                           "mean_s_per_epoch": 1.5 * t, "median_s_per_epoch": t,
                           "latency_batch1_s": 1e-5 * (1 + 4 / mm**2), "throughput_batch1_per_s": 1e5},
               "execution": {"threads": 2}, "checkpoint": None}
        (folder / "runs").mkdir(parents=True, exist_ok=True)
        (folder / "runs" / f"{cfg['run_id']}.json").write_text(json.dumps(rec))
    (folder / "sweep.json").write_text(json.dumps({"runs": [r["run_id"] for r in runs]}))
    return runs


def test_report_keeps_to_the_current_grid_and_chooses_the_time_statistic(tmp_path: Path) -> None:
    runs = _fake_sweep(tmp_path / "s")
    # a run stored by an earlier grid (other epochs): not in sweep.json
    first = next(r for r in runs if r["motif"] == 1 and r["lr"] == 0.01 and r["density"] == 0.1)
    stale = json.loads((tmp_path / "s" / "runs" / f"{first['run_id']}.json").read_text())
    stale["config"]["epochs"] = 7
    stale["run_id"] = "fake-m1-stale"
    (tmp_path / "s" / "runs" / "fake-m1-stale.json").write_text(json.dumps(stale))
    text = report.write_report(tmp_path / "s", tmp_path / "a", figures=False).read_text()
    assert "1 stored runs outside the current grid" in text and "7 epochs" not in text
    main = _csv(tmp_path / "a" / "table_main.csv")
    # the fake sweep's spec leaves epochs at the default (motifcore.defaults.EPOCHS)
    assert len(main) == 7 and {r["epochs"] for r in main} == {str(EPOCHS)}
    # default: a run's s/epoch is its median epoch time; time_stat="mean" takes the mean (1.5x here)
    m1 = next(r for r in main if r["configuration"] == "SET (m=1)")
    assert float(m1["s_per_epoch_mean"]) == pytest.approx(np.mean([1.1 + 0.01 * s for s in range(3)]))
    report.write_report(tmp_path / "s", tmp_path / "b", figures=False, time_stat="mean", all_runs=True)
    main_b = _csv(tmp_path / "b" / "table_main.csv")
    assert len(main_b) == 7 and {r["epochs"] for r in main_b} == {str(EPOCHS)}   # one run length per table
    assert "Runs of 7 epochs are left out" in (tmp_path / "b" / "report.md").read_text()
    m1b = next(r for r in main_b if r["configuration"] == "SET (m=1)")
    assert float(m1b["s_per_epoch_mean"]) == pytest.approx(1.5 * float(m1["s_per_epoch_mean"]))
    with pytest.raises(ValueError, match="time_stat"):
        report.write_report(tmp_path / "s", tmp_path / "c", figures=False, time_stat="max")


def test_runs_of_the_old_set_are_not_grouped_with_the_new() -> None:
    # a sweep folder may hold "set" runs stored before round five (SET's own schedule, today's
    # "set-epoch"): their id is not what their config hashes to now, and they form a group of their own
    cfg = sweep.expand_runs({"datasets": ["digits"], "hidden": [8], "seeds": [0], "evolution": "set"})[0]
    new = {"run_id": cfg["run_id"], "status": "ok", "config": cfg, "metrics": {"test_accuracy": 0.9}}
    old = {**new, "run_id": "digits-m1-lr0.01-d0.1-s0-0123456789ab", "metrics": {"test_accuracy": 0.8}}
    rows = report.run_rows([new, old])
    assert [r["evolution"] for r in rows] == ["set", "set-epoch"]
    groups = report.aggregate(rows)
    assert sorted((g["evolution"], g["test_accuracy"]) for g in groups) == [("set", 0.9), ("set-epoch", 0.8)]


def test_synthetic_sweep_renders_schedule_sensitivity_projection_and_latency(tmp_path: Path) -> None:
    _fake_sweep(tmp_path / "s")
    text = report.write_report(tmp_path / "s", tmp_path / "r", figures=False).read_text()
    for heading in ("paper Tables 4/5", "paper Table 6", "m = 8 projection", "Pareto frontier",
                    "Batch-1 latency", "paper Tables 12/13"):
        assert heading in text
    assert "lr 0.01, density 0.1" in text                     # the paper's setting is the reference

    # Table 12: accuracy normalised to m=1 at the same (lr, density, seed), pooled
    t12 = {r["m"]: r for r in _csv(tmp_path / "r" / "table_sensitivity_m.csv")}
    assert sorted(t12, key=int) == ["1", "2", "4", "8"]
    for m in (2, 4, 8):
        ratios = [_acc(m, lr, d, s) / _acc(1, lr, d, s) for lr in (0.001, 0.01) for d in (0.1, 0.2) for s in range(3)]
        assert float(t12[str(m)]["acc_norm_mean"]) == pytest.approx(np.mean(ratios))
        assert float(t12[str(m)]["acc_norm_std"]) == pytest.approx(np.std(ratios, ddof=1))
        assert int(t12[str(m)]["n_pairs"]) == 12
    assert float(t12["1"]["acc_norm_mean"]) == pytest.approx(1.0)
    # Table 13: per sparsity at the reference lr
    t13 = _csv(tmp_path / "r" / "table_sensitivity_density.csv")
    assert {(r["sparsity"][:3], r["m"]) for r in t13} == {(s, m) for s in ("0.9", "0.8") for m in ("2", "4", "8")}
    assert all(r["lr"] == "0.01" for r in t13)
    assert len(_csv(tmp_path / "r" / "table_sensitivity_lr.csv")) == 6

    # Table 6 and the recommendation match metrics.recommend_m on the reference means
    sched = _csv(tmp_path / "r" / "table_schedule.csv")
    assert [r["motif"] for r in sched] == ["1", "2-2-1-1"]
    rec = _csv(tmp_path / "r" / "recommendation.csv")[0]
    ms = [1, 2, 4, 8]
    accs = [np.mean([_acc(m, 0.01, 0.1, s) for s in range(3)]) for m in ms]
    times = [np.mean([0.1 + 1.0 / m**2 + 0.01 * s for s in range(3)]) for m in ms]
    expected = metrics.recommend_m(ms, accs, times)
    assert int(rec["recommended_m"]) == expected.m and rec["reason"] == expected.reason
    # the projection of m=8 from m in {1,2,4} with t = a + b/m^2 is exact for these times
    proj = re.search(r"\| s/epoch \(fit t = a \+ b/m², paper Tables 4-5\) \| ([0-9.]+)", text)
    assert proj and float(proj.group(1)) == pytest.approx(times[3], abs=1e-3)
    lat = {r["m"]: r for r in _csv(tmp_path / "r" / "table_latency.csv")}
    assert float(lat["2"]["measured_ratio_vs_m1"]) == pytest.approx(2.0 / 5.0)
    assert float(lat["2"]["table1_estimate_kappa0"]) == pytest.approx(0.25)
    pareto = _csv(tmp_path / "r" / "table_pareto.csv")
    assert sum(r["is_knee"] == "True" for r in pareto) == 1
