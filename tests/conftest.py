"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import motifcore
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Folder of the real datasets: $MOTIFCORE_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("MOTIFCORE_DATA")
    return Path(env).resolve() if env else (REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if not (d / "fashion-mnist").is_dir():
        pytest.skip(f"real datasets not found in {d} (set MOTIFCORE_DATA)")
    return d


@pytest.fixture
def simd_levels():
    """The SIMD levels this CPU supports (others raise ValueError); restores 'auto' afterwards."""
    levels = []
    try:
        for level in ("generic", "avx2", "avx512"):
            try:
                motifcore._core.set_simd_level(level)
            except ValueError:
                continue
            assert motifcore._core.simd_level() == level
            levels.append(level)
        yield levels
    finally:
        motifcore._core.set_simd_level("auto")
