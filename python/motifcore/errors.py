"""The exceptions of motifcore: one family under :class:`MotifcoreError`.

Every exception class the package defines derives from :class:`MotifcoreError`, so
``except motifcore.MotifcoreError`` catches whatever motifcore itself refuses or fails at. Each class
also keeps the builtin type it had before this base existed (``ValueError`` for a refused
argument or a bad file, ``FloatingPointError`` for a diverged model, ...), so code that catches the
builtin types keeps working.

The native engine (``motifcore._core``, C++) raises the ``Engine*`` classes: the bindings
(``bindings/module.cpp``) translate each C++ exception into the class whose builtin base is the
one pybind11 would have chosen for it::

    C++ (engine or argument check in the bindings)          Python
    std::invalid_argument, domain_error, length_error,      EngineValueError   (ValueError)
      range_error; a binding's ValueError
    std::out_of_range; a binding's IndexError               EngineIndexError   (IndexError, ValueError)
    std::overflow_error (the divergence check)              EngineOverflowError (OverflowError)
    std::bad_alloc                                          EngineMemoryError  (MemoryError)
    std::runtime_error and any other std::exception         EngineRuntimeError (RuntimeError)

The model classes turn an :class:`EngineOverflowError` into a :class:`DivergedError` that says how to
recover. Python-side argument checks raise the builtin ``ValueError``/``TypeError`` directly.

This module imports nothing from motifcore, so every part of the package may import it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DatasetError",
    "DatasetNotFoundError",
    "DivergedError",
    "EngineError",
    "EngineIndexError",
    "EngineMemoryError",
    "EngineOverflowError",
    "EngineRuntimeError",
    "EngineValueError",
    "FolderLockedError",
    "MotifcoreError",
    "TrainingDivergedError",
    "UsageError",
]


class MotifcoreError(Exception):
    """Base class of every exception that motifcore defines (and of every engine failure)."""


# --- the native engine ----------------------------------------------------------------------------


class EngineError(MotifcoreError):
    """A failure reported by the C++ engine (``motifcore._core``); the concrete classes below also
    derive from the builtin exception that the failure was raised as before."""


class EngineValueError(EngineError, ValueError):
    """The engine or its bindings refused an argument (C++ ``std::invalid_argument`` and the other
    ``std::logic_error`` kinds, or an argument check in the bindings)."""


class EngineIndexError(EngineError, IndexError, ValueError):
    """An index or count outside its valid range (C++ ``std::out_of_range``). Also a ``ValueError``,
    as they were raised before this class existed."""


class EngineOverflowError(EngineError, OverflowError):
    """The engine's divergence check fired (C++ ``std::overflow_error``): weights, loss or logits
    became NaN or infinite. :class:`~motifcore.MotifMLP` and :class:`~motifcore.MotifLayer` raise it
    as a :class:`DivergedError`."""


class EngineMemoryError(EngineError, MemoryError):
    """The engine could not allocate memory (C++ ``std::bad_alloc``)."""


class EngineRuntimeError(EngineError, RuntimeError):
    """Any other failure inside the engine (C++ ``std::runtime_error`` or another ``std::exception``)."""


# --- models and training -----------------------------------------------------------------------------


class DivergedError(MotifcoreError, FloatingPointError, ValueError):
    """A training step made the model's weights or loss NaN or infinite (learning rate too high?),
    or the logits overflow float32; a diverged model refuses to compute until its state is restored
    (``set_state`` or a checkpoint). Also a ValueError, like every other refusal of the API."""


class TrainingDivergedError(DivergedError):
    """The training loss became NaN or infinite (usually: the learning rate is too high)."""


class CheckpointError(MotifcoreError, ValueError):
    """A checkpoint file that cannot be read: not a motifcore checkpoint, corrupt or truncated, an
    unsupported format version, or a model configuration that does not match its arrays."""


# --- data and command line ---------------------------------------------------------------------------


class DatasetError(MotifcoreError, ValueError):
    """A dataset file is missing, malformed, corrupt or fails its checksum."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The files of a dataset were not found in any searched location."""


class UsageError(MotifcoreError):
    """A command-line mistake, reported by ``motifcore`` as one ``motifcore: error:`` line."""


class FolderLockedError(MotifcoreError, RuntimeError):
    """Another process holds a run folder (a run being trained or resumed there)."""
