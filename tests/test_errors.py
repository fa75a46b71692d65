"""The exception family: every class motifcore defines is a MotifcoreError and keeps its builtin
base; failures of the C++ engine arrive as motifcore.errors classes that are also the builtin
exceptions they were raised as before."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import motifcore
from motifcore import MotifLayer, MotifMLP, _core, errors

BUILTIN_BASES = {
    "DivergedError": (FloatingPointError, ValueError),
    "TrainingDivergedError": (FloatingPointError, ValueError),
    "DatasetError": (ValueError,),
    "DatasetNotFoundError": (ValueError, FileNotFoundError),
    "CheckpointError": (ValueError,),
    "UsageError": (),
    "EngineError": (),
    "EngineValueError": (ValueError,),
    "EngineIndexError": (IndexError, ValueError),
    "EngineOverflowError": (OverflowError,),
    "EngineMemoryError": (MemoryError,),
    "EngineRuntimeError": (RuntimeError,),
    "FolderLockedError": (RuntimeError,),
}


def _package_exception_classes() -> set[type]:
    """Every exception class defined in a module of motifcore that a test run has imported."""
    import sys

    found = set()
    for name, mod in list(sys.modules.items()):
        if name == "motifcore" or name.startswith("motifcore."):
            for _, obj in inspect.getmembers(mod, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__.startswith("motifcore"):
                    found.add(obj)
    return found


def test_base_is_exported():
    assert motifcore.MotifcoreError is errors.MotifcoreError
    assert "MotifcoreError" in motifcore.__all__
    assert issubclass(errors.MotifcoreError, Exception)


@pytest.mark.parametrize("name", sorted(BUILTIN_BASES))
def test_each_error_keeps_its_builtin_base(name):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.MotifcoreError)
    for base in BUILTIN_BASES[name]:
        assert issubclass(cls, base), (name, base)


def test_every_public_error_class_is_a_motifcore_error():
    # import every part of the package, then look at every exception class it defines
    import motifcore.analysis  # noqa: F401
    import motifcore.baselines  # noqa: F401
    import motifcore.cli  # noqa: F401
    import motifcore.data  # noqa: F401
    import motifcore.experiments  # noqa: F401
    import motifcore.export  # noqa: F401
    import motifcore.report  # noqa: F401
    import motifcore.train  # noqa: F401

    classes = _package_exception_classes()
    assert set(BUILTIN_BASES) <= {c.__name__ for c in classes}
    stray = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, errors.MotifcoreError))
    assert not stray, stray
    assert set(errors.__all__) == set(BUILTIN_BASES) | {"MotifcoreError"}


def test_old_locations_name_the_same_classes():
    from motifcore.cli import UsageError
    from motifcore.data import DatasetError, DatasetNotFoundError
    from motifcore.nn import DivergedError
    from motifcore.train import TrainingDivergedError

    assert DivergedError is errors.DivergedError and TrainingDivergedError is errors.TrainingDivergedError
    assert DatasetError is errors.DatasetError and DatasetNotFoundError is errors.DatasetNotFoundError
    assert UsageError is errors.UsageError


def test_engine_argument_check_raises_a_motifcore_value_error():
    # motif sizes are checked by the bindings, density by the engine (std::invalid_argument)
    with pytest.raises(errors.EngineValueError, match="density") as info:
        _core.Layer(10, 10, 1, 1, 1.5, 0.0, "neuron", "linear", 0)
    assert isinstance(info.value, motifcore.MotifcoreError) and isinstance(info.value, ValueError)
    with pytest.raises(motifcore.MotifcoreError, match="motif sizes"):
        _core.Layer(10, 10, 0, 1, 0.5, 0.0, "neuron", "linear", 0)


def test_engine_array_check_raises_a_motifcore_value_error():
    layer = MotifLayer(12, 8, motif=2, density=0.5)
    with pytest.raises(ValueError) as info:       # what existing callers catch
        layer._core.forward(np.zeros((3, 5), np.float32), 1)
    assert isinstance(info.value, errors.EngineValueError)


def test_engine_index_error_is_also_a_value_error():
    # a label outside [0, classes) reaches the engine's gather (std::out_of_range)
    net = MotifMLP([6, 5, 3], density=0.5, seed=0, num_threads=1)
    with pytest.raises(errors.EngineIndexError, match="label 7") as info:
        net._net.evaluate(np.zeros((4, 6), np.float32), np.array([0, 1, 2, 7]), 256)
    assert isinstance(info.value, IndexError) and isinstance(info.value, ValueError)


def test_simd_level_error_is_a_motifcore_error():
    with pytest.raises(errors.EngineValueError, match="SIMD level"):
        _core.set_simd_level("sse9")
