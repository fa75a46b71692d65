"""The bookkeeping of the round-two tools on hand-made inputs (perf samples to
kernels in scripts/kernel_profile.py, the target verdicts of scripts/contention.py and of
scripts/bench_report.py's SparseProp table)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_report as report  # noqa: E402
import contention  # noqa: E402
import kernel_profile as kp  # noqa: E402

ENGINE = "/x/build/profile/_core.cpython-311-x86_64-linux-gnu.so"


def _sample(tid: int, period: int, frames: list) -> str:
    return f"{tid}    {period} \n" + "".join(f"\t    {i:x} {f}\n" for i, f in enumerate(frames)) + "\n"


def test_profile_assigns_samples_to_kernels() -> None:
    main, worker = 100, 101
    text = "".join([
        # forward SpMM on the calling thread (kernel frame inlined, caller Layer::forward)
        _sample(main, 10, ["void motifcore::isa_avx512::spmm_tile<1, 4, false>(int const*) (inlined)",
                           f"motifcore::isa_avx512::spmm (long) ({ENGINE})",
                           f"motifcore::Layer::forward (float const*) ({ENGINE})"]),
        # transposed SpMM: same kernel, caller Layer::backward
        _sample(main, 30, [f"motifcore::isa_avx512::spmm (long) ({ENGINE})",
                           f"motifcore::Layer::backward (float const*) ({ENGINE})"]),
        # a worker's SpMM: no caller on its stack -> split 10 : 30 later
        _sample(worker, 40, [f"void motifcore::isa_avx512::spmm_tiled<1, 4, false>(long) [clone ._omp_fn.0] ({ENGINE})",
                             "gomp_thread_start (/usr/lib/libgomp.so.1)"]),
        _sample(main, 5, [f"motifcore::isa_avx512::sddmm(long) [clone ._omp_fn.0] ({ENGINE})"]),
        _sample(worker, 7, ["do_spin (/usr/lib/libgomp.so.1)", f"x ({ENGINE})"]),
        # the caller waiting in the engine's pool inside an SpMM call: threading overhead, not SpMM
        _sample(main, 6, [f"bool motifcore::(anonymous namespace)::spin_until<F>(F&&) ({ENGINE})",
                          f"motifcore::(anonymous namespace)::Pool::try_run(long, int) ({ENGINE})",
                          f"void motifcore::parallel_for<motifcore::isa_avx512::spmm_tiled<1, 4, false>(long)"
                          f"::{{lambda(long)#1}}>(long) ({ENGINE})"]),
        # numpy's own "_core" directory is not the engine
        _sample(main, 3, ["FLOAT_isfinite (/venv/numpy/_core/_multiarray_umath.so)", "do_call_core (inlined)"]),
        _sample(main, 2, [f"motifcore::Layer::optimizer_step(motifcore::OptimConfig const&, int) ({ENGINE})"]),
        _sample(worker, 4, ["finish_task_switch.isra.0 ([kernel.kallsyms])", "__schedule ([kernel.kallsyms])"]),
        # a chunk body the thread pool calls: perf lists it inlined, with no file, above the pool's
        # frame; it is the SDDMM (a worker's stack has no caller beyond the pool)
        _sample(worker, 8, ["sddmm_segment (inlined)", "operator() (inlined)", "_FUN (inlined)",
                            f"motifcore::parallel_run ({ENGINE})",
                            f"motifcore::isa_avx512::sddmm ({ENGINE})"]),
        _sample(worker, 9, ["spmm_tail (inlined)", "_FUN (inlined)",
                            f"motifcore::(anonymous namespace)::Pool::worker_loop ({ENGINE})"]),
    ])
    cpu, n = kp.parse_samples(text, main, ENGINE)
    assert n == 11
    assert cpu["SpMM"] == 49 and cpu[kp.SPMM_FWD] == 10 and cpu[kp.SPMM_T] == 30
    cpu = kp.apportion_spmm(cpu)
    assert "SpMM" not in cpu
    assert cpu[kp.SPMM_FWD] == 10 + 12 and cpu[kp.SPMM_T] == 30 + 37   # 49 split 1 : 3
    assert cpu["SDDMM (grad weights)"] == 5 + 8
    assert cpu[kp.OMP] == 7 + 6
    assert cpu[kp.OUTSIDE] == 3
    assert cpu["optimizer (SGD/Adam update)"] == 2
    assert cpu[kp.OS_KERNEL] == 4
    assert sum(cpu.values()) == 107 + 8 + 9


def test_contention_verdicts() -> None:
    r = {("motifcore", "quiet", 1): {"median": 0.040, "min": 0.039, "load1": 0.5},
         ("motifcore", "quiet", 2): {"median": 0.020, "min": 0.019, "load1": 0.5},     # 2.0x: met
         ("motifcore", "busy-1", 1): {"median": 0.050, "min": 0.049, "load1": 1.5},
         ("motifcore", "busy-1", 2): {"median": 0.060, "min": 0.050, "load1": 1.5}}    # 1.2x slower: not met
    lines = contention.table(r, ["motifcore"], ["quiet", "busy-1"]).splitlines()
    assert "| motifcore | quiet |" in lines[2] and "speedup 2.00x" in lines[2] and "| met |" in lines[2]
    assert "| motifcore | busy-1 |" in lines[3] and "1.20" in lines[3] and "NOT met" in lines[3]


def test_contention_rounds_summary() -> None:
    r = {("motifcore", "quiet", 1): {"median": 0.040, "min": 0.039, "load1": 0.5},
         ("motifcore", "quiet", 2): {"median": 0.020, "min": 0.019, "load1": 0.5, "rounds": [2.0, 1.6, 1.9]}}
    out = contention.table(r, ["motifcore"], ["quiet"])
    row = [ln for ln in out.splitlines() if ln.startswith("| motifcore | quiet |")][0]
    assert "median speedup 1.90x" in row and "| met |" in row        # the median's verdict, not round 1's
    r[("motifcore", "quiet", 2)]["rounds"] = [2.0, 1.6, 1.7]
    assert "NOT met" in contention.table(r, ["motifcore"], ["quiet"]).splitlines()[2]
    r[("motifcore", "quiet", 2)]["rounds"] = [2.0, 1.6, 1.9]
    summary = [ln for ln in out.splitlines() if "rounds of 1 then 2 threads" in ln]
    assert summary == ["motifcore, quiet, 3 rounds of 1 then 2 threads: speedups 2.00, 1.60, 1.90; "
                       "median 1.90x, 2 of 3 rounds >= 1.85"]


@pytest.mark.parametrize("sp_ms, mc_ms, group, verdict", [
    (30.0, 10.0, "sparseprop: train step x t=1", "3x met"),
    (29.0, 10.0, "sparseprop: train step x t=1", "3x not met"),
    (20.0, 10.0, "sparseprop: layer x t=2", "2x met"),
    (19.0, 10.0, "sparseprop: layer x t=2", "2x not met"),
])
def test_report_sparseprop_targets(sp_ms: float, mc_ms: float, group: str, verdict: str) -> None:
    rows = [{"group": group, "impl": "sparseprop", "median": sp_ms / 1e3},
            {"group": group, "impl": "motifcore", "median": mc_ms / 1e3},
            {"group": "layer other", "impl": "motifcore", "median": 1.0}]
    out = report.sparseprop_targets(rows)
    body = [ln for ln in out if ln.startswith(f"| {group} |")]
    assert len(body) == 1 and body[0].rstrip(" |").endswith(verdict)
    assert not any("layer other" in ln for ln in out)


def test_report_round_two_targets() -> None:
    sgemm = 40e9                                   # MAC/s
    rows = [
        # forward: 2e9 MAC in 0.1 s = 20 GMAC/s = 50 % -> met
        {"group": "layer 3000x3000 B=128 forward d=0.1", "impl": "motifcore", "m": 1, "macs": 2e9, "min": 0.1},
        # forward+backward: 1.5e9 MAC in 0.1 s = 37.5 % -> not met (40 %)
        {"group": "layer 3000x3000 B=128 forward+backward d=0.1", "impl": "motifcore", "m": 1, "macs": 1.5e9,
         "min": 0.1},
        {"group": "layer 3000x3000 B=128 forward d=0.1", "impl": "motifcore", "m": 2, "macs": 1e9, "min": 0.1},
        {"group": "train step x", "impl": "motifcore", "m": 1, "median": 0.040},
        {"group": "train step x", "impl": "motifcore", "m": 2, "median": 0.012},   # 0.30 -> met
        {"group": "train step x", "impl": "motifcore", "m": 4, "median": 0.0042},  # 0.105 -> not met
    ]
    out = report.round_two_targets(rows, sgemm)
    text = "\n".join(out)
    assert "forward d=0.1, m=1: 50.0 % of SGEMM (round-two target >= 50 %: met)" in text
    assert "forward+backward d=0.1, m=1: 37.5 % of SGEMM (round-two target >= 40 %: not met)" in text
    assert "m=2 / m=1 median: 0.300 (target <= 0.30: met)" in text
    assert "m=4 / m=1 median: 0.105 (target <= 0.10: not met)" in text
    assert sum("% of SGEMM" in ln for ln in out) == 2       # the m = 2 layer row is not a round-two target


def _curriculum_run(folder: Path, motif, schedule, seed: int, epochs: list, final: float) -> None:
    import json

    folder.mkdir(parents=True)
    run = {"dataset": "fashion-mnist", "hidden": [8], "epochs": len(epochs), "recipe": "motifcore",
           "limit_train": None, "seed": seed, "motif": motif, "motif_schedule": schedule}
    (folder / "config.json").write_text(json.dumps({"command": "train", "run": run}))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
    (folder / "summary.json").write_text(json.dumps({"final_accuracy": final}))


def test_curriculum_table_counts_stage_medians(tmp_path: Path) -> None:
    """scripts/motif_curriculum.py: a burst of load in one epoch moves the plain sum, not the
    stage-median time, and the verdict compares stage-median times."""
    import motif_curriculum as mc

    def ep(m, t, acc, switch=None):
        return {"motif": m, "train_time": t, "evolution_time": 0.5, "val_accuracy": acc, "switch_time": switch}

    # fixed m = 1: 4 epochs of 10 s (+0.5 s evolution); one epoch hit by a burst (40 s)
    _curriculum_run(tmp_path / "a", 1, None, 0, [ep(1, 10, .8), ep(1, 40, .85), ep(1, 10, .86), ep(1, 10, .87)], .87)
    _curriculum_run(tmp_path / "b", 2, None, 0, [ep(2, 4, .8), ep(2, 4, .82), ep(2, 4, .84), ep(2, 4, .86)], .86)
    _curriculum_run(tmp_path / "c", None, [[0, 1], [0.5, 2]], 0,
                    [ep(1, 10, .8), ep(1, 10, .84), ep(2, 4, .85, switch=1.0), ep(2, 4, .87)], .87)
    runs = {r["kind"]: r for r in mc.scan([tmp_path])}
    assert runs["fixed-m1"]["seconds"] == pytest.approx(72.0)
    assert runs["fixed-m1"]["robust_seconds"] == pytest.approx(42.0)        # 4 x median(10.5, 40.5, ...)
    assert runs["curriculum-1@0-2@0.5"]["robust_seconds"] == pytest.approx(2 * 10.5 + 2 * 4.5 + 1.0)
    identity = ("fashion-mnist", (8,), 4, "motifcore", None)
    stats = mc.aggregate(list(runs.values()), identity, ["fixed-m1", "fixed-m2", "curriculum-1@0-2@0.5"])
    text = mc.table(stats)
    row = next(line for line in text.splitlines() if line.startswith("| curriculum"))
    assert "accuracy yes" in row and "time no (1.72 x m = 2 stage-median" in row   # 31 s against 4 x 4.5 = 18 s


def test_curriculum_table_quiet_derived_time(tmp_path: Path) -> None:
    """With quiet seconds per epoch by motif size, the time verdict counts every epoch at its
    motif's quiet cost plus the run's own switch seconds, whatever the load of the run."""
    import motif_curriculum as mc

    def ep(m, t, switch=None):
        return {"motif": m, "train_time": t, "evolution_time": 0.0, "val_accuracy": .9, "switch_time": switch}

    _curriculum_run(tmp_path / "a", 1, None, 0, [ep(1, 50)] * 4, .9)
    _curriculum_run(tmp_path / "b", 2, None, 0, [ep(2, 40)] * 4, .9)        # a busy run: 40 s epochs
    _curriculum_run(tmp_path / "c", None, [[0, 1], [0.5, 2]], 0, [ep(1, 9), ep(1, 9), ep(2, 3, 0.5), ep(2, 3)], .9)
    runs = mc.scan([tmp_path])
    identity = ("fashion-mnist", (8,), 4, "motifcore", None)
    stats = mc.aggregate(runs, identity, ["fixed-m1", "fixed-m2", "curriculum-1@0-2@0.5"], {1: 9.0, 2: 3.0})
    assert stats["curriculum-1@0-2@0.5"]["derived_seconds"] == [pytest.approx(24.5)]
    assert stats["fixed-m2"]["derived_seconds"] == [pytest.approx(12.0)]
    row = next(line for line in mc.table(stats).splitlines() if line.startswith("| curriculum"))
    assert "time no (2.04 x m = 2 quiet-derived)" in row                   # the busy m = 2 run (160 s) does not decide
    # without a quiet time for every motif size of a run, nothing is derived for its kind
    assert mc.aggregate(runs, identity, ["curriculum-1@0-2@0.5"], {1: 9.0})["curriculum-1@0-2@0.5"]["dsec_mean"] is None


def test_curriculum_table_reads_per_layer_motifs(tmp_path: Path) -> None:
    """A run whose epochs record per-layer motifs (lists) is read, not a crash of the whole table."""
    import motif_curriculum as mc

    epochs = [{"motif": [[2, 2], [1, 1]], "train_time": 3.0, "evolution_time": 0.0, "val_accuracy": .9}] * 2
    _curriculum_run(tmp_path / "a", [[2, 2], [1, 1]], None, 0, epochs, .9)
    (run,) = mc.scan([tmp_path])
    assert run["robust_seconds"] == pytest.approx(6.0)
    assert mc.derived_seconds(run, {2: 1.0}) is None
