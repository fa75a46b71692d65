"""Shared configuration of the motifcore benchmarks (pytest-benchmark).

Three size modes, chosen once per session:

* ``smoke`` -- ``--benchmark-disable`` without ``MOTIFCORE_BENCH_FULL``: every benchmarked call
  runs once with reduced widths, so CI checks that each benchmark still runs and is right (< 3 min
  on 2 cores).
* ``timing`` -- a normal timed run: the paper's sizes (3000-wide layers, ``784-3000-3000-3000-10``),
  scaling only up to ``H = 10000``.
* ``full`` -- ``MOTIFCORE_BENCH_FULL=1``: as ``timing`` plus the scaling sweep up to
  ``H = 300000`` (minutes, and a few GiB of memory).

Every benchmark records ``extra_info`` with the same keys (``impl``, ``op``, ``m``, ``density``,
``threads``, ``batch``, ``macs``, ``baseline``) so ``scripts/bench_report.py`` can turn the JSON into tables
of medians and ratios. ``macs`` is the number of *unique* multiply-adds one call performs (block-level
for motifcore, nonzeros for the CSR baselines, n_out*n_in*B for dense).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import pytest

# bench/ has no __init__.py; make `import references` work whatever pytest's import mode is.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def _import_motifcore() -> Any:
    """Import motifcore, retrying a few times: the compiled module is a symlink into a build tree
    that may be rebuilt while the benchmarks start."""
    import importlib
    import time

    last: Optional[BaseException] = None
    for _ in range(5):
        try:
            return importlib.import_module("motifcore")
        except ImportError as exc:  # pragma: no cover - only while a rebuild is in flight
            last = exc
            time.sleep(2.0)
    raise last  # type: ignore[misc]


motifcore = _import_motifcore()


@dataclass(frozen=True)
class BenchSizes:
    """Problem sizes of one mode."""

    mode: str
    layer_n: int = 3000                  # one layer: layer_n x layer_n
    batch: int = 128
    net: Tuple[int, ...] = (784, 3000, 3000, 3000, 10)
    scaling_h: Tuple[int, ...] = (1000, 10000)
    scaling_features: int = 3312
    scaling_classes: int = 5
    scaling_samples: int = 136
    scaling_batch: int = 32
    scaling_epsilon: float = 20.0
    rounds: Dict[str, int] = field(default_factory=dict)


def _sizes_for(mode: str) -> BenchSizes:
    if mode == "smoke":
        return BenchSizes(mode, layer_n=1000, net=(784, 1000, 1000, 1000, 10), scaling_h=(1000, 10000))
    if mode == "full":
        return BenchSizes(mode, scaling_h=(1000, 10000, 100000, 300000))
    return BenchSizes(mode)


def bench_mode(config: pytest.Config) -> str:
    if os.environ.get("MOTIFCORE_BENCH_FULL", "") not in ("", "0"):
        return "full"
    if config.getoption("benchmark_disable", default=False):
        return "smoke"
    return "timing"


@pytest.fixture(scope="session")
def sizes(request: pytest.FixtureRequest) -> BenchSizes:
    return _sizes_for(bench_mode(request.config))


@pytest.fixture(scope="session")
def threads() -> int:
    """Threads of every implementation (motifcore's default: one per core, or
    ``$MOTIFCORE_NUM_THREADS``)."""
    env = os.environ.get("MOTIFCORE_NUM_THREADS")
    return int(env) if env else int(motifcore.build_info()["default_threads"])


@pytest.fixture(scope="session")
def torch_threads(threads: int) -> int:
    """Pins PyTorch to the same thread count as motifcore (only when torch is installed)."""
    try:
        import torch
    except ImportError:
        return threads
    torch.set_num_threads(threads)
    return threads


@pytest.fixture
def omp_threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Runs the test with torch (and SparseProp's OpenMP team) on ``t = request.param`` threads,
    restored afterwards (torch-based benchmarks only)."""
    import references as bl
    import torch

    t = request.param
    if t > (os.cpu_count() or 1):
        pytest.skip(f"{t} threads on a machine with fewer cores")
    old, old_omp = torch.get_num_threads(), bl.openmp_max_threads()
    torch.set_num_threads(t)
    bl.set_openmp_threads(t)
    try:
        got = bl.openmp_max_threads()
        assert got in (None, t), f"SparseProp would run {got} OpenMP threads, not {t}"
        yield t
    finally:
        torch.set_num_threads(old)
        if old_omp is not None:
            bl.set_openmp_threads(old_omp)


@pytest.fixture(scope="session")
def rng_seed() -> int:
    return 12345


def _info(benchmark: Any, impl: str, op: str, *, m: Optional[int] = None,
         density: Optional[float] = None, threads: Optional[int] = None,
         batch: Optional[int] = None, macs: Optional[float] = None,
         baseline: bool = False, **extra: Any) -> None:
    """Fill ``benchmark.extra_info`` with the systematic keys ``scripts/bench_report.py`` reads."""
    ei = benchmark.extra_info
    ei["impl"] = impl
    ei["op"] = op
    ei["m"] = m
    ei["density"] = density
    ei["threads"] = threads
    ei["batch"] = batch
    ei["macs"] = None if macs is None else float(macs)
    ei["baseline"] = bool(baseline)
    ei["load1"] = round(os.getloadavg()[0], 2)
    ei.update(extra)


@pytest.fixture(scope="session")
def info() -> Any:
    """``info(benchmark, impl, op, m=..., density=..., threads=..., batch=..., macs=...,
    baseline=...)`` fills ``benchmark.extra_info`` with the keys ``scripts/bench_report.py`` reads."""
    return _info


def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: Dict[str, Any]) -> None:
    machine_info["cpu_model"] = _lscpu_model()
    machine_info["ncpu"] = os.cpu_count()
    machine_info["motifcore_build"] = motifcore.build_info()
    machine_info["motifcore_simd_level"] = str(motifcore._core.simd_level())
    machine_info["bench_mode"] = bench_mode(config)
    machine_info["loadavg"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    machine_info["numpy"] = np.__version__
    try:
        import scipy
        machine_info["scipy"] = scipy.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch
        machine_info["torch"] = torch.__version__
        machine_info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        machine_info["torch"] = None


def pytest_report_header(config: pytest.Config) -> str:
    bi = motifcore.build_info()
    return (f"motifcore bench mode: {bench_mode(config)}; simd {bi.get('simd')}; "
            f"default threads {bi.get('default_threads')}")
