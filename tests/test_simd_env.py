"""MOTIFCORE_SIMD is read once, when the engine is imported: a bad value fails the import with a
message naming the variable (it used to surface inside the first forward); a good one selects the
level, and changing the variable afterwards changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import motifcore as mc

PYTHON_DIR = Path(mc.__file__).resolve().parent.parent


def _run(code: str, simd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MOTIFCORE_SIMD=simd, PYTHONPATH=str(PYTHON_DIR))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


def test_bad_value_fails_the_import_naming_the_variable():
    proc = _run("from motifcore import _core", "avx9")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and "MOTIFCORE_SIMD='avx9'" in last, proc.stderr


def test_value_is_read_once_at_import():
    code = ("import os\nfrom motifcore import _core, MotifLayer\nimport numpy as np\n"
            "os.environ['MOTIFCORE_SIMD'] = 'avx9'\n"
            "MotifLayer(5, 3, density=1.0).forward(np.ones((2, 5), np.float32))\n"
            "print(_core.simd_level())")
    proc = _run(code, "generic")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "generic"
