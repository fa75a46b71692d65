"""Parameter sweeps: a grid of full training runs executed in parallel through Dask distributed.

A *sweep spec* (a dict, or a ``.json`` / ``.toml`` file holding one; its keys and defaults are in
:mod:`motifcore.experiments.sweep_spec`, whose names this module re-exports) names a grid::

    datasets x motif sizes (or per-layer schedules) x densities (sparsities) x learning rates x seeds

and the recipe every run shares (epochs, hidden widths, batch size, schedules, ...). Every point
of the grid is one *run*: a complete :class:`~motifcore.Trainer` fit of a fresh
:class:`~motifcore.MotifMLP`. Runs go to a Dask cluster -- a :class:`distributed.LocalCluster`
sized to the machine by default, or any running scheduler (``scheduler="tcp://host:8786"``) to
spread a sweep over many machines. Workers load the datasets themselves (only names travel), so
every worker machine needs motifcore installed and the data files at ``data_dir`` (or under
``$MOTIFCORE_DATA``); results travel back to the client, which alone writes the sweep folder, so
the workers need no shared file system. Start remote workers with ``dask worker tcp://host:8786
--nthreads 2 --resources motifcore_run=1`` to run one run per worker with all its threads.

Every finished run is stored at once by the client, under the sweep folder::

    <out>/sweep.json                 the spec and the list of run configurations (latest call)
    <out>/runs/<run_id>.json         one record per finished run (written atomically, last)
    <out>/checkpoints/<run_id>.npz   the trained model (motifcore.train.checkpoint format)
    <out>/errors/<run_id>.json       runs that raised (not counted as done; retried on resume)

``run_id`` is derived from the run's configuration alone (a readable prefix plus a SHA-256 of the
canonical JSON of everything that changes the result), so calling :func:`run_sweep` again on the
same folder skips every run already stored: an interrupted sweep resumes where it stopped, and
widening a grid only runs the new points.

Each stored record holds the configuration, the final and best test accuracy, the full
:class:`~motifcore.History`, unique parameters, active blocks (= block MACs per sample), edges,
dense-equivalent parameters, mean seconds per epoch (training iterations only), the measured
batch-1 latency and throughput, the checkpoint path, and where and when it ran.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._internal.io import PathLike, atomic_write, atomic_write_json, utc_now
from .._internal.validation import check_int
from .._version import __version__
from ..train.checkpoint import checkpoint_bytes
from .config import RunConfig
from .run import execute
from .sweep_spec import (
    DEFAULTS,
    EXECUTION_KEYS,
    SWEEP_RECIPE,
    expand_runs,
    load_spec,
    motif_label,
    normalize_spec,
    run_id,
)

_log = logging.getLogger(__name__)     # a child of the "motifcore" logger

__all__ = [
    "DEFAULTS",
    "RESOURCE",
    "SWEEP_RECIPE",
    "SweepResult",
    "done_ids",
    "execute_run",
    "expand_runs",
    "load_runs",
    "load_spec",
    "motif_label",
    "normalize_spec",
    "run_id",
    "run_sweep",
]


#: Dask worker resource that makes a worker run one run at a time (with all its threads).
#: Local clusters declare it; for your own workers: ``dask worker ADDR --nthreads 4 --resources
#: motifcore_run=1``. Without it, a worker runs ``nthreads`` runs at once, one thread each.
RESOURCE = "motifcore_run"


# ------------------------------------------------------------------------------------------------
# worker side
# ------------------------------------------------------------------------------------------------


def _worker_threads(exclusive: bool) -> int:
    """Engine threads for a run on the current Dask worker (1 outside a worker or when the
    worker may run several runs at once)."""
    if not exclusive:
        return 1
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return 1
    state = getattr(w, "state", None)
    n = getattr(state, "nthreads", None) or getattr(w, "nthreads", None) or 1
    return max(1, int(n))


def execute_run(config: Mapping[str, Any], exclusive: bool = True) -> dict[str, Any]:
    """Train one run of a sweep and measure it; what a Dask worker executes.

    Returns ``{"record": <JSON-serialisable dict>, "checkpoint": <bytes of the .npz or None>}``.
    A run whose loss diverges is a finished run with ``status = "diverged"``; any other error
    propagates (the client records it under ``errors/`` and retries it on the next resume).
    """
    started, t_wall = utc_now(), time.perf_counter()
    threads = config.get("threads_per_run") or _worker_threads(exclusive)
    rc = RunConfig.from_sweep(config, threads=threads)
    run = execute(rc, cache_data=True, catch_divergence=True,
                  latency=(int(config.get("latency_repeats", 200)), int(config.get("latency_warmup", 20))))
    model, trainer = run.model, run.trainer
    ck_bytes = None
    if config.get("checkpoint", True) and run.status == "ok":
        ck_bytes = checkpoint_bytes(model, epoch=trainer.epoch, trainer=trainer.config,
                                    history=trainer.history.to_dict(),
                                    extra={"run": rc.to_dict(), "sweep_run": dict(config)})
    metrics = {k: v for k, v in run.metrics.items() if k not in ("epochs", "stopped_early")}
    record = {
        "format": "motifcore-sweep-run", "version": 1,
        "run_id": config["run_id"], "status": run.status, "error": run.error,
        "config": {k: config[k] for k in config if k not in EXECUTION_KEYS and k != "run_id"},
        "layers": [{"n_in": l.n_in, "n_out": l.n_out, "motif": list(l.motif), "groups": list(l.groups),
                    "blocks": l.n_blocks, "edges": l.n_edges, "params": l.n_params} for l in model.layers],
        "sizes": model.sizes, "n_train": int(run.X.shape[0]), "n_test": int(run.X_test.shape[0]),
        "n_classes": model.n_classes,
        "metrics": metrics,
        "history": trainer.history.to_dict(),
        "execution": {"host": socket.gethostname(), "pid": os.getpid(), "threads": int(threads),
                      "started": started, "finished": utc_now(), "wall_s": time.perf_counter() - t_wall,
                      "motifcore_version": __version__},
    }
    return {"record": record, "checkpoint": ck_bytes}


# ------------------------------------------------------------------------------------------------
# client side
# ------------------------------------------------------------------------------------------------


def load_runs(sweep_dir: PathLike, status: str | None = None, verify_checkpoints: bool = False
              ) -> list[dict[str, Any]]:
    """The stored run records of a sweep folder, sorted by run_id; ``status="ok"`` keeps only the
    successful ones. Unreadable records and records that parse but do not hold a valid run (wrong
    types, non-numeric metrics) are skipped with a warning naming the file, so a resumed sweep runs
    them again. ``verify_checkpoints`` also skips a record whose stored checkpoint is missing or
    whose SHA-256 differs from the one recorded when it was stored."""
    out = []
    for p in sorted((Path(sweep_dir) / "runs").glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        problem = _record_problem(rec, p.stem)
        if problem is None and verify_checkpoints:
            problem = _checkpoint_problem(Path(sweep_dir), rec)
        if problem is not None:
            warnings.warn(f"{p}: skipped ({problem}); a resumed sweep runs it again", RuntimeWarning, stacklevel=2)
            continue
        if status is None or rec.get("status") == status:
            out.append(rec)
    return out


def _is_metric(v: Any) -> bool:
    if isinstance(v, list):
        return all(_is_metric(x) for x in v)
    return v is None or isinstance(v, (bool, int, float))


def _record_problem(rec: Any, stem: str) -> str | None:
    """Why a parsed run record is not a valid stored run, or None."""
    if not isinstance(rec, dict) or rec.get("run_id") != stem:
        return "not a run record of this file name"
    if rec.get("format", "motifcore-sweep-run") != "motifcore-sweep-run":
        return f"format {rec.get('format')!r}"
    if rec.get("status") not in ("ok", "diverged"):
        return f"status {rec.get('status')!r}"
    for key in ("config", "metrics"):
        if not isinstance(rec.get(key), dict):
            return f"{key!r} is not an object"
    if not isinstance(rec.get("history", {}), dict):
        return "'history' is not an object"
    bad = sorted(k for k, v in rec["metrics"].items() if not _is_metric(v))
    if bad:
        return f"non-numeric metric(s) {bad}"
    ck = rec.get("checkpoint")
    if ck is not None and not isinstance(ck, str):
        return "'checkpoint' is not a path"
    return None


def _checkpoint_problem(out: Path, rec: Mapping[str, Any]) -> str | None:
    if rec.get("checkpoint") is None:
        return None
    path = out / rec["checkpoint"]
    if not path.is_file():
        return f"its checkpoint {path} is missing"
    want = rec.get("checkpoint_sha256")
    if want is not None and hashlib.sha256(path.read_bytes()).hexdigest() != want:
        return f"its checkpoint {path} does not match the SHA-256 recorded when it was stored (corrupted)"
    return None


def done_ids(out: Path) -> set:
    return {r["run_id"] for r in load_runs(out, verify_checkpoints=True)}


@dataclass
class SweepResult:
    """What :func:`run_sweep` did."""

    out_dir: Path
    total: int                       #: runs in the spec
    skipped: list[str] = field(default_factory=list)    #: already stored before this call
    completed: list[str] = field(default_factory=list)  #: trained and stored by this call
    failed: dict[str, str] = field(default_factory=dict)  #: run_id -> error (stored under errors/)
    interrupted: bool = False        #: stopped by max_runs before the grid was done

    @property
    def done(self) -> int:
        return len(self.skipped) + len(self.completed)

    def __repr__(self) -> str:
        return (f"SweepResult({self.out_dir}: {self.done}/{self.total} stored, {len(self.completed)} run now, "
                f"{len(self.skipped)} skipped, {len(self.failed)} failed)")


def _make_client(scheduler: Any, n_workers: int | None, threads_per_worker: int | None) -> tuple[Any, Any, bool]:
    """(client, cluster-or-None, owns_client)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("motifcore sweeps need Dask distributed: pip install 'dask[distributed]'") from None
    if scheduler is not None:
        if isinstance(scheduler, Client):
            return scheduler, None, False
        if hasattr(scheduler, "scheduler_address"):        # a cluster object
            return Client(scheduler), None, True
        return Client(str(scheduler), timeout="30s"), None, True
    cores = os.cpu_count() or 1
    tpw = int(threads_per_worker) if threads_per_worker else 1
    nw = int(n_workers) if n_workers else max(1, cores // tpw)
    cluster = LocalCluster(n_workers=nw, threads_per_worker=tpw, processes=True, resources={RESOURCE: 1},
                           dashboard_address=":0", silence_logs=40)
    return Client(cluster), cluster, True


def _exclusive(client: Any) -> bool:
    workers = client.scheduler_info().get("workers", {})
    return bool(workers) and all(RESOURCE in (w.get("resources") or {}) for w in workers.values())


def run_sweep(spec: Mapping[str, Any] | PathLike, out_dir: PathLike, scheduler: Any = None,
              n_workers: int | None = None, threads_per_worker: int | None = None, resume: bool = True,
              progress: bool = True, max_runs: int | None = None) -> SweepResult:
    """Run every run of ``spec`` not yet stored in ``out_dir``, in parallel on Dask.

    Parameters
    ----------
    spec : dict or path
        A sweep spec (see the module docstring) or a ``.json``/``.toml`` file holding one.
    out_dir : path
        The sweep folder (created if needed).
    scheduler : str, distributed.Client or cluster, optional
        A running Dask scheduler (``"tcp://host:8786"``), client or cluster. Default: a local
        cluster of ``n_workers`` processes x ``threads_per_worker`` threads, each worker running
        one run at a time with all its threads, closed at the end.
    n_workers, threads_per_worker : int, optional
        Local cluster shape; defaults ``threads_per_worker = 1`` and
        ``n_workers = max(1, cores // threads_per_worker)``.
    resume : bool, default True
        Skip runs already stored in ``out_dir``; ``False`` runs (and overwrites) all of them.
    progress : bool, default True
        A tqdm bar over finished runs on stderr.
    max_runs : int, optional
        Stop after this many runs were stored by this call (the rest are cancelled; resume later).

    Returns
    -------
    SweepResult
    """
    if not isinstance(spec, Mapping):
        spec = load_spec(spec)
    norm = normalize_spec(spec)
    runs = expand_runs(norm)
    out = Path(out_dir)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sweep.json", {"format": "motifcore-sweep", "version": 1, "written": utc_now(),
                                     "spec": dict(spec), "normalized": norm,
                                     "runs": [r["run_id"] for r in runs]}, indent=1)
    done = done_ids(out) if resume else set()
    result = SweepResult(out_dir=out, total=len(runs))
    result.skipped = [r["run_id"] for r in runs if r["run_id"] in done]
    todo = [r for r in runs if r["run_id"] not in done]
    if max_runs is not None:
        max_runs = check_int(max_runs, "max_runs", 1, integral_float=True)
    if not todo:
        return result

    client, cluster, owns = _make_client(scheduler, n_workers, threads_per_worker)
    bar = None
    futures: list[Any] = []
    try:
        from distributed import as_completed

        exclusive = _exclusive(client)
        extra = {"resources": {RESOURCE: 1}} if exclusive else {}
        by_key = {}
        for i, cfg in enumerate(todo):
            # explicit priorities: workers otherwise pick among their queued runs in no fixed order
            fut = client.submit(execute_run, cfg, exclusive, key=f"motifcore-run-{cfg['run_id']}", pure=False,
                                priority=len(todo) - i, **extra)
            by_key[fut.key] = cfg
            futures.append(fut)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(runs), initial=len(result.skipped), unit="run", desc=f"sweep {norm['name']}",
                       dynamic_ncols=True, disable=None)       # no bar when stderr is not a terminal
        for fut in as_completed(futures):
            cfg = by_key[fut.key]
            rid = cfg["run_id"]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - any error of a run is recorded, the sweep goes on
                msg = f"{type(exc).__name__}: {exc}"
                result.failed[rid] = msg
                atomic_write_json(out / "errors" / f"{rid}.json", {"run_id": rid, "error": msg, "time": utc_now(),
                                                             "config": {k: v for k, v in cfg.items()}}, indent=1)
                _log.warning("run %s failed: %s", rid, msg)
            else:
                _store(out, res)
                result.completed.append(rid)
                err = out / "errors" / f"{rid}.json"
                if err.exists():
                    err.unlink()
                if bar is not None:
                    m = res["record"]["metrics"]
                    acc = m.get("test_accuracy")
                    bar.set_postfix({"last": rid.rsplit("-", 1)[0][-32:],
                                     "acc": "-" if acc is None else f"{acc:.4f}",
                                     "s/ep": "-" if m.get("mean_s_per_epoch") is None
                                     else f"{m['mean_s_per_epoch']:.2f}"}, refresh=False)
            if bar is not None:
                bar.update(1)
            if max_runs is not None and len(result.completed) >= max_runs:
                result.interrupted = len(result.completed) + len(result.failed) < len(todo)
                break
    finally:
        if bar is not None:
            bar.close()
        for f in futures:
            if not f.done():
                f.cancel()
        if owns:
            client.close()
        if cluster is not None:
            cluster.close()
    return result


def _store(out: Path, res: Mapping[str, Any]) -> None:
    """Checkpoint first, then the run record (its presence is what marks the run as done)."""
    rec = dict(res["record"])
    rid = rec["run_id"]
    if res.get("checkpoint") is not None:
        rel = Path("checkpoints") / f"{rid}.npz"
        atomic_write(out / rel, res["checkpoint"])
        rec["checkpoint"] = str(rel)
        rec["checkpoint_sha256"] = hashlib.sha256(res["checkpoint"]).hexdigest()
    else:
        rec["checkpoint"] = None
    rec["stored"] = utc_now()
    atomic_write_json(out / "runs" / f"{rid}.json", rec, indent=1)
