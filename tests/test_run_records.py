"""copy_run_records: the records of a run folder reach their destination whole, with a PARTIAL
marker while the run is unfinished."""

from __future__ import annotations

from pathlib import Path

from motifcore.experiments.run import RUN_RECORDS, copy_run_records


def _run(folder: Path, rows: int, summary: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"epochs": 3}')
    (folder / "metrics.jsonl").write_text("".join(f'{{"epoch": {e}}}\n' for e in range(1, rows + 1)))
    (folder / "checkpoint.npz").write_bytes(b"not a record")
    if summary:
        (folder / "summary.json").write_text('{"final": 0.9}')


def test_unfinished_then_finished(tmp_path: Path) -> None:
    work, dest = tmp_path / "work", tmp_path / "records" / "m1" / "seed0"
    _run(work, 2, summary=False)
    copy_run_records(work, dest, finished=False)
    assert (dest / "PARTIAL").read_text().startswith("unfinished: 2 metric rows")
    assert sorted(p.name for p in dest.iterdir()) == ["PARTIAL", "config.json", "metrics.jsonl"]
    _run(work, 3, summary=True)
    copy_run_records(work, dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(RUN_RECORDS)     # marker gone, no checkpoint
    assert (dest / "metrics.jsonl").read_text() == (work / "metrics.jsonl").read_text()
    assert not list(dest.glob("*.tmp"))
