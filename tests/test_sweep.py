"""Sweeps: spec expansion, deterministic run ids, and a real Dask cluster whose client is killed
halfway and resumed without redoing finished runs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import motifcore
import numpy as np
import pytest
from motifcore import cli, sweep
from motifcore.data.datasets import load as load_dataset
from motifcore.train.checkpoint import load_model

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]
# folder holding the motifcore that is imported (installed, or python/ in a development tree)
PKG_PARENT = Path(motifcore.__file__).resolve().parent.parent

# 2 motif sizes x 2 seeds, plus the narrow-SET baseline of m=2 for each seed: 6 runs
TINY_SPEC: dict[str, Any] = {
    "name": "tiny", "datasets": ["digits"], "hidden": [32, 32], "motifs": [1, 2], "seeds": [0, 1],
    "densities": [0.3], "lrs": [0.05], "epochs": 4, "warmup": 1, "baseline_narrow": True,
    "latency_repeats": 10, "latency_warmup": 2,
}
N_TINY = 6
KILL_AFTER = 2

# The client process stores runs through sweep._store; this one SIGKILLs itself right after the
# KILL_AFTER-th run is on disk, while the cluster still has runs queued or running.
_KILLED_CLIENT = textwrap.dedent("""
    import json, os, signal, sys
    from motifcore import sweep

    spec_path, out, address, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    original = sweep._store
    stored = []

    def store_then_die(out_dir, res):
        original(out_dir, res)
        stored.append(res["record"]["run_id"])
        if len(stored) >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    sweep._store = store_then_die
    sweep.run_sweep(spec_path, out, scheduler=address, progress=False)
    print("NOT KILLED")
""")

_STATE: dict[str, Any] = {}


def killed_and_resumed_sweep(tmp_path_factory: Any) -> dict[str, Any]:
    """Run TINY_SPEC on a real 2-process LocalCluster from a client process that is killed after
    KILL_AFTER stored runs, then resume it in this process. Computed once per session (shared with
    test_report.py)."""
    if "state" in _STATE:
        return _STATE["state"]
    root = tmp_path_factory.mktemp("sweep")
    out = root / "sweep"
    spec_path = root / "spec.json"
    spec_path.write_text(json.dumps(TINY_SPEC))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PKG_PARENT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster:
        proc = subprocess.run([sys.executable, "-c", _KILLED_CLIENT, str(spec_path), str(out),
                               cluster.scheduler_address, str(KILL_AFTER)],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        before = {p.stem: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "runs").glob("*.json")}
        resumed = sweep.run_sweep(spec_path, out, scheduler=cluster.scheduler_address, progress=False)
    again = sweep.run_sweep(spec_path, out, progress=False)     # nothing left: no cluster is even started
    _STATE["state"] = {"out": out, "proc": proc, "before": before, "resumed": resumed, "again": again,
                       "spec_path": spec_path}
    return _STATE["state"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: Any) -> dict[str, Any]:
    return killed_and_resumed_sweep(tmp_path_factory)


# ------------------------------------------------------------------------------------------------
# spec and run ids (no cluster)
# ------------------------------------------------------------------------------------------------


def test_expand_runs_grid_narrow_baseline_and_dedup() -> None:
    spec = {"datasets": ["digits", {"name": "skf:PCMAC", "hidden": [100, 100], "epochs": 3}],
            "hidden": [64, 64], "motifs": [1, 2, 4, [2, 2, 1], [2, 1, 1]], "seeds": [0, 1],
            "sparsities": [0.9, 0.8], "baseline_narrow": True}
    runs = sweep.expand_runs(spec)
    ids = [r["run_id"] for r in runs]
    assert len(ids) == len(set(ids))
    # per dataset: motifs {1, 2, 4, [2,1,1]} ([2,2,1] is uniform m=2) + narrow for 2 and 4 = 6 configs
    assert len(runs) == 2 * 6 * 2 * 2
    digits = [r for r in runs if r["dataset"] == "digits"]
    assert sorted({json.dumps(r["motif"]) for r in digits}) == ["1", "2", "4", "[2, 1, 1]"]
    narrow = [r for r in digits if r["variant"] == "narrow"]
    assert {(r["base_motif"], tuple(r["hidden"]), r["motif"]) for r in narrow} == {(2, (32, 32), 1), (4, (16, 16), 1)}
    pcmac = [r for r in runs if r["dataset"] == "skf:PCMAC"]
    # epochs not given: the package's one default (motifcore.defaults.EPOCHS)
    assert all(r["epochs"] == 3 for r in pcmac) and all(r["epochs"] == motifcore.defaults.EPOCHS for r in digits)
    assert {r["hidden"][0] for r in pcmac if r["variant"] == "narrow"} == {50, 25}
    assert sorted({r["density"] for r in runs}) == [0.1, 0.2]
    # seed-major order: every seed-0 run of the grid comes before any seed-1 run
    seeds = [r["seed"] for r in runs]
    assert seeds == sorted(seeds)


def test_run_id_is_deterministic_and_ignores_execution_settings() -> None:
    base = sweep.expand_runs({"datasets": ["digits"], "hidden": [8], "motifs": [2], "seeds": [3]})[0]
    again = sweep.expand_runs({"datasets": ["digits"], "hidden": [8], "motifs": [2], "seeds": [3],
                               "data_dir": "/elsewhere", "latency_repeats": 7, "threads_per_run": 2})[0]
    assert base["run_id"] == again["run_id"]
    assert base["run_id"].startswith("digits-m2-lr0.01-d0.1-s3-")
    other_lr = sweep.expand_runs({"datasets": ["digits"], "hidden": [8], "motifs": [2], "seeds": [3],
                                  "lrs": [0.02]})[0]
    other_epochs = sweep.expand_runs({"datasets": ["digits"], "hidden": [8], "motifs": [2], "seeds": [3],
                                      "epochs": 5})[0]
    assert len({base["run_id"], other_lr["run_id"], other_epochs["run_id"]}) == 3
    # "set" changed its schedule in round five: its runs are not the old "set" runs (their ids hashed
    # the identity keys alone under the sweeps' default paper recipe), nor "set-epoch" ones
    from motifcore.experiments.sweep_spec import IDENTITY_KEYS, run_id

    runs = {e: sweep.expand_runs({"datasets": ["digits"], "hidden": [8], "seeds": [3], "evolution": e})[0]
            for e in ("set", "set-epoch")}
    old_set = hashlib.sha256(json.dumps({k: runs["set"].get(k) for k in IDENTITY_KEYS}, sort_keys=True,
                                        separators=(",", ":"), default=str).encode()).hexdigest()[:12]
    assert run_id(runs["set"]) == runs["set"]["run_id"] and not runs["set"]["run_id"].endswith(old_set)
    assert runs["set"]["run_id"] != runs["set-epoch"]["run_id"]


@pytest.mark.parametrize("spec, message", [
    ({"hidden": [8]}, "'datasets' is required"),
    ({"datasets": ["digits"], "colour": 1}, "unknown key"),
    ({"datasets": ["digits"], "densities": [0.1], "sparsities": [0.9]}, "not both"),
    ({"datasets": ["digits"], "motifs": [0]}, "motif size"),
    ({"datasets": ["digits"], "hidden": [8, 8], "motifs": [[2, 1]]}, "3 weight layers"),
    ({"datasets": ["digits"], "densities": [1.5]}, "density"),
    ({"datasets": ["digits"], "evolution": "sometimes"}, "evolution"),
    ({"datasets": ["digits"], "evolution_params": {"every": 0}}, "every"),
    ({"datasets": ["digits", "digits"]}, "twice"),
])
def test_bad_specs_are_rejected_with_the_reason(spec: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        sweep.normalize_spec(spec)


def test_toml_spec_and_cli_dry_run(tmp_path: Path, capsys: Any) -> None:
    toml = tmp_path / "spec.toml"
    toml.write_text('name = "t"\nhidden = [16]\nmotifs = [1, 2]\nseeds = [0, 1, 2]\n\n'
                    '[[datasets]]\nname = "digits"\nepochs = 2\n')
    spec = sweep.load_spec(toml)
    assert [r["epochs"] for r in sweep.expand_runs(spec)] == [2] * 6
    # flags override the file: 3 seeds x motifs {1, 4} -> 6 runs, listed, nothing trained
    rc = cli.main(["sweep", "--spec", str(toml), "--out", str(tmp_path / "s"), "--motif", "1", "4", "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "6 runs, 0 stored" in out and "digits-m4-" in out and "digits-m2-" not in out
    assert not (tmp_path / "s").exists()
    rc = cli.main(["sweep", "--out", str(tmp_path / "s"), "--dataset", "digits", "--density", "0.1",
                   "--sparsity", "0.9"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("motifcore: error:") and err.count("\n") == 1


# ------------------------------------------------------------------------------------------------
# the real cluster: kill halfway, resume
# ------------------------------------------------------------------------------------------------


def test_killed_sweep_resumes_without_redoing_finished_runs(swept: dict[str, Any]) -> None:
    out, proc, before, resumed = swept["out"], swept["proc"], swept["before"], swept["resumed"]
    assert proc.returncode == -9, proc.stderr[-2000:]          # died by SIGKILL, not by finishing
    assert "NOT KILLED" not in proc.stdout
    assert KILL_AFTER <= len(before) < N_TINY                   # killed halfway, some runs on disk

    files = sorted((out / "runs").glob("*.json"))
    records = [json.loads(p.read_text()) for p in files]
    ids = [r["run_id"] for r in records]
    expected = [r["run_id"] for r in sweep.expand_runs(TINY_SPEC)]
    assert len(files) == N_TINY and len(set(ids)) == N_TINY and sorted(ids) == sorted(expected)
    assert [p.stem for p in files] == sorted(ids)
    assert not list((out / "runs").glob(".*"))                 # no temporary files left behind
    # the resumed call skipped exactly what was stored before and ran only the rest
    assert sorted(resumed.skipped) == sorted(before)
    assert sorted(resumed.completed) == sorted(set(expected) - set(before))
    assert not resumed.failed and resumed.done == N_TINY
    # ... and did not touch the stored runs (same bytes, same modification time)
    for rid, (mtime, data) in before.items():
        p = out / "runs" / f"{rid}.json"
        assert p.stat().st_mtime_ns == mtime and p.read_bytes() == data
    # a third call finds everything done
    assert swept["again"].completed == [] and len(swept["again"].skipped) == N_TINY


def test_stored_runs_hold_metrics_history_and_a_loadable_checkpoint(swept: dict[str, Any]) -> None:
    out = swept["out"]
    records = sweep.load_runs(out)
    _, _, Xt, yt = load_dataset("digits")
    for rec in records:
        m = rec["metrics"]
        cfg = rec["config"]
        assert rec["status"] == "ok"
        assert len(rec["history"]["rows"]) == cfg["epochs"] == m["epochs_completed"]
        assert 0.0 <= m["test_accuracy"] <= 1.0
        assert m["block_macs_per_sample"] == m["active_blocks"] == sum(layer["blocks"] for layer in rec["layers"])
        assert m["unique_params"] < m["dense_params"]
        assert m["edges"] >= m["active_blocks"]
        assert m["mean_s_per_epoch"] > 0 and m["latency_batch1_s"] > 0
        assert m["throughput_batch1_per_s"] == pytest.approx(1.0 / m["latency_batch1_s"])
        assert rec["execution"]["threads"] == 1                # no exclusive resource on this cluster
        if cfg["variant"] == "narrow":
            assert cfg["motif"] == 1 and cfg["hidden"] == [16, 16] and cfg["base_motif"] == 2
        model = load_model(out / rec["checkpoint"], num_threads=1)
        assert model.evaluate(Xt, yt)[1] == pytest.approx(m["test_accuracy"])
    # motif sharing: m=2 has fewer unique multiplies than m=1 at the same widths
    by = {(r["config"]["variant"], r["config"]["motif"], r["config"]["seed"]): r["metrics"] for r in records}
    for seed in (0, 1):
        assert by[("motif", 2, seed)]["block_macs_per_sample"] < by[("motif", 1, seed)]["block_macs_per_sample"]


def test_local_cluster_exclusive_threads_max_runs_and_failures(tmp_path: Path) -> None:
    spec = {"datasets": ["digits", "npz:does-not-exist.npz"], "hidden": [16], "motifs": [1, 2],
            "epochs": 2, "densities": [0.5], "latency_repeats": 5, "latency_warmup": 1}
    res = sweep.run_sweep(spec, tmp_path, n_workers=1, threads_per_worker=2, progress=False)
    bad = [r["run_id"] for r in sweep.expand_runs(spec) if r["dataset"].startswith("npz:")]
    assert sorted(res.failed) == sorted(bad) and all("does-not-exist" in e for e in res.failed.values())
    assert sorted(p.stem for p in (tmp_path / "errors").glob("*.json")) == sorted(bad)
    recs = sweep.load_runs(tmp_path)
    assert len(recs) == 2 and {r["config"]["dataset"] for r in recs} == {"digits"}
    # the local cluster's workers run one run at a time, with all their threads
    assert all(r["execution"]["threads"] == 2 for r in recs)
    # failed runs are not "done": a resume retries them (and they fail again), stored ones are skipped
    res2 = sweep.run_sweep(spec, tmp_path, n_workers=1, threads_per_worker=1, progress=False, max_runs=1)
    assert len(res2.skipped) == 2 and res2.completed == [] and sorted(res2.failed) == sorted(bad)


def test_max_runs_stops_early(tmp_path: Path) -> None:
    spec = {"datasets": ["digits"], "hidden": [16], "motifs": [1, 2, 4], "epochs": 1, "densities": [0.5],
            "latency_repeats": 3, "latency_warmup": 0}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=40) as cluster:
        res = sweep.run_sweep(spec, tmp_path, scheduler=cluster.scheduler_address, progress=False, max_runs=1)
        assert len(res.completed) == 1 and res.interrupted
        assert len(list((tmp_path / "runs").glob("*.json"))) == 1
        res = sweep.run_sweep(spec, tmp_path, scheduler=cluster.scheduler_address, progress=False)
    assert len(res.skipped) == 1 and len(res.completed) == 2
    accs = [r["metrics"]["test_accuracy"] for r in sweep.load_runs(tmp_path)]
    assert len(accs) == 3 and np.all(np.isfinite(accs))


def test_sweep_runs_take_the_recipes_input_clip() -> None:
    """A sweep point carries its recipe's input clip, so a motifcore-recipe sweep trains on the
    same clipped inputs as ``motifcore train``; paper-recipe points stay unclipped and keep their
    stored run ids."""
    from motifcore.defaults import recipe
    from motifcore.experiments.config import RunConfig
    from motifcore.experiments.sweep_spec import expand_runs, run_id

    base = {"datasets": ["digits"], "motifs": [1], "densities": [0.5], "seeds": [0], "epochs": 1}
    paper = expand_runs({**base, "recipe": "paper"})[0]
    ours = expand_runs({**base, "recipe": "motifcore"})[0]
    assert "input_clip" not in paper and RunConfig.from_sweep(paper).clip() == 0.0
    assert RunConfig.from_sweep(ours).clip() == recipe("motifcore")["input_clip"] > 0
    unclipped = {k: v for k, v in ours.items() if k != "input_clip"}
    assert run_id(ours) != run_id(unclipped)       # the clip is part of the run's identity
