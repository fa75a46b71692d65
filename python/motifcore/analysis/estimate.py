"""Closed-form latency / energy estimates versus motif size, and a wall-clock latency probe.

Source: Chen, Liu & Ziabari, AI 2025, 6(10):266 ("Chen et al., AI 2025" below), Sec. 3.5 and
Table 1; the device figures of Sec. 5.6 / Table 10; motifcore's docs/design.md §4.5.

The paper's model splits the cost of a layer (or network) at motif size ``m`` into a compute term
that shrinks with the ``m**2`` fewer unique multiplies and a memory term that shrinks with the
``m``-fold fewer distinct blocks to load::

    Lat(m)    = alpha * F1 / m**2 * C_mm + beta * M1 / m * C_ld
    Energy(m) = alpha * F1 / m**2 * E_mm + beta * M1 / m * E_ld

where ``F1`` is the MAC count and ``M1`` the memory operations at ``m = 1``, ``C_mm``/``C_ld``
the time per MAC / per load, ``E_mm``/``E_ld`` the energy per MAC / per load and ``alpha``,
``beta`` in ``[0, 1]`` kernel overheads. With ``kappa = (beta M1 C_ld) / (alpha F1 C_mm)`` the
memory-to-compute ratio, the relative cost is ``1/m**2 + kappa/m`` -- see
:func:`relative_latency` for the two ways the paper normalises it.

Energy has the same shape but its own ratio ``kappa_E = (beta M1 E_ld) / (alpha F1 E_mm)``, which
equals the latency ``kappa`` only when energy per MAC and per load are in the same proportion as
their times (e.g. a constant power draw). Table 1 prints one row for both, i.e. it assumes that;
Table 10 computes energy as power x latency. Both are available here
(:func:`relative_energy`, :class:`EnergyModel`, :meth:`EnergyModel.from_latency`).

Measured latency on the real machine beats any estimate (docs/design.md §4.5):
:func:`measure_latency` times any prediction callable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # annotations only; typing.Self needs Python 3.11
    from typing_extensions import Self

from .._internal import validation

__all__ = [
    "NORMALISATIONS",
    "EnergyModel",
    "LatencyMeasurement",
    "LatencyModel",
    "implied_kappa",
    "measure_latency",
    "relative_energy",
    "relative_latency",
]

#: Accepted values of the ``normalisation`` argument:
#: ``"compute"`` divides by the compute term of ``m = 1`` (Table 1's printed form),
#: ``"m1"`` divides by the whole cost of ``m = 1`` (the text of Sec. 3.5).
NORMALISATIONS: tuple[str, str] = ("compute", "m1")


def _check_normalisation(normalisation: str) -> None:
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")


def _relative_two_term(m: ArrayLike, kappa: ArrayLike, normalisation: str) -> validation.FloatOrArray:
    _check_normalisation(normalisation)
    m_arr = validation.as_finite(m, "m")
    k_arr = validation.as_finite(kappa, "kappa")
    validation.check_all_positive(m_arr, "m")
    validation.check_all_nonnegative(k_arr, "kappa")
    m_arr, k_arr = validation.broadcast_named(("m", "kappa"), m_arr, k_arr)
    rel = 1.0 / m_arr**2 + k_arr / m_arr
    if normalisation == "m1":
        rel = rel / (1.0 + k_arr)
    return validation.scalar_or_array(rel)


def relative_latency(
    m: ArrayLike, kappa: ArrayLike, normalisation: str = "compute"
) -> validation.FloatOrArray:
    r"""Normalised latency of motif size ``m`` (Chen et al., AI 2025, Sec. 3.5, Table 1).

    ``normalisation="compute"`` (default) returns

    .. math:: \widehat{\mathrm{Lat}}(m) = \frac{1}{m^2} + \frac{\kappa}{m},

    the latency in units of the *compute term* of ``m = 1`` -- the form Table 1 prints
    (``0.25 + kappa/2`` at ``m = 2``, ...). In this normalisation ``m = 1`` costs ``1 + kappa``,
    not the 1.00 of Table 1's first column, which is exact only for ``kappa = 0``.

    ``normalisation="m1"`` returns

    .. math:: \widehat{\mathrm{Lat}}(m) = \frac{1/m^2 + \kappa/m}{1 + \kappa}
              = \frac{\mathrm{Lat}(m)}{\mathrm{Lat}(1)},

    the ratio the text of Sec. 3.5 defines ("normalized to the dense motif case m = 1"); it is 1
    at ``m = 1`` for every ``kappa`` and, for ``m = 2``, always lies in ``[0.25, 0.5)``.

    Parameters
    ----------
    m : array_like
        Motif size(s), > 0 (non-integers are accepted for smooth curves).
    kappa : array_like
        Memory-to-compute ratio ``kappa = (beta M1 C_ld) / (alpha F1 C_mm) >= 0``; ``kappa << 1``
        is compute-bound, ``kappa >> 1`` bandwidth-bound. Broadcasts against ``m``.
    normalisation : {"compute", "m1"}, default "compute"
        See above.

    Returns
    -------
    float or numpy.ndarray
        Relative latency; a float when ``m`` and ``kappa`` are scalars.

    Raises
    ------
    ValueError
        On NaN / infinite input, ``m <= 0``, ``kappa < 0``, non-broadcastable shapes or an
        unknown ``normalisation``.

    Examples
    --------
    >>> relative_latency(2, 0.5)
    0.5
    >>> round(relative_latency(2, 0.5, normalisation="m1"), 4)
    0.3333
    """
    return _relative_two_term(m, kappa, normalisation)


def relative_energy(
    m: ArrayLike, kappa_energy: ArrayLike, normalisation: str = "compute"
) -> validation.FloatOrArray:
    r"""Normalised energy of motif size ``m`` (Chen et al., AI 2025, Sec. 3.5, Table 1).

    The energy model of Sec. 3.5, ``Energy(m) = alpha F1/m^2 E_mm + beta M1/m E_ld``, has the
    same form as the latency model, so this is :func:`relative_latency` with the energy ratio

    .. math:: \kappa_E = \frac{\beta M_1 E_\mathrm{ld}}{\alpha F_1 E_\mathrm{mm}}

    in place of the latency ``kappa``. Table 1 prints the same row for latency and energy, which
    holds when ``kappa_E == kappa`` (e.g. energy = constant power x latency, as Table 10 does).

    Parameters
    ----------
    m : array_like
        Motif size(s), > 0.
    kappa_energy : array_like
        ``kappa_E >= 0``, broadcasting against ``m``.
    normalisation : {"compute", "m1"}, default "compute"
        As in :func:`relative_latency`.

    Returns
    -------
    float or numpy.ndarray
        Relative energy.

    Raises
    ------
    ValueError
        As :func:`relative_latency`.
    """
    return _relative_two_term(m, kappa_energy, normalisation)


def implied_kappa(ratio: float, m: float = 2, normalisation: str = "m1") -> float:
    """Memory-to-compute ratio ``kappa`` that makes the model reproduce an observed ratio.

    Inverts :func:`relative_latency` for ``kappa`` at one motif size: the paper suggests
    calibrating ``kappa`` from a single device measurement (Chen et al., AI 2025, end of
    Sec. 3.5). Useful as a sanity check: under ``"m1"`` the model can only produce ratios in
    ``[1/m**2, 1/m)``, so e.g. the measured m=2 / m=1 epoch-time ratios of Table 7 (0.57 on
    FMNIST, 0.70 on Lung) are *outside* what any ``kappa >= 0`` explains -- those timings contain
    work that does not shrink with ``m`` at all (see :class:`LatencyModel`'s ``overhead``).

    Parameters
    ----------
    ratio : float
        Observed relative latency (or energy) at motif size ``m``, normalised as
        ``normalisation`` says.
    m : float, default 2
        The motif size the ratio was observed at; > 0, and > 1 for ``"m1"`` (at ``m = 1`` that
        normalisation is 1 whatever ``kappa`` is).
    normalisation : {"compute", "m1"}, default "m1"
        How ``ratio`` is normalised (see :func:`relative_latency`).

    Returns
    -------
    float
        ``kappa >= 0``.

    Raises
    ------
    ValueError
        If the inputs are invalid or no ``kappa >= 0`` reproduces ``ratio``.
    """
    _check_normalisation(normalisation)
    r = float(validation.as_finite(ratio, "ratio"))
    mv = float(validation.as_finite(m, "m"))
    if mv <= 0:
        raise ValueError(f"m must be > 0, got {m!r}")
    lo = 1.0 / mv**2
    if normalisation == "compute":
        if r < lo:
            raise ValueError(
                f"ratio {r:g} at m={mv:g} is below 1/m**2 = {lo:g}, the compute-bound minimum; "
                "no kappa >= 0 reproduces it"
            )
        return mv * (r - lo)
    if mv <= 1:
        raise ValueError(f"normalisation 'm1' needs m > 1 (it is 1 at m = 1), got m={mv:g}")
    hi = 1.0 / mv
    if not lo <= r < hi:
        raise ValueError(
            f"ratio {r:g} at m={mv:g} is outside [{lo:g}, {hi:g}), the range the model "
            "(1/m**2 + kappa/m) / (1 + kappa) covers for kappa >= 0; a ratio at or above 1/m "
            "means part of the cost does not shrink with m"
        )
    return (r - lo) / (hi - r)


# --------------------------------------------------------------------------------------------
# calibratable two-term models
# --------------------------------------------------------------------------------------------

_TERMS: tuple[str, str, str] = ("compute", "memory", "overhead")


@dataclass(frozen=True)
class _MotifCostModel:
    """Shared logic of :class:`LatencyModel` and :class:`EnergyModel` (see those)."""

    compute: float
    memory: float = 0.0
    overhead: float = 0.0

    unit: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name in _TERMS:
            value = float(validation.as_finite(getattr(self, name), name))
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
            object.__setattr__(self, name, value)
        if self.compute + self.memory + self.overhead <= 0:
            raise ValueError("at least one of compute, memory, overhead must be > 0")

    @property
    def kappa(self) -> float:
        """Memory-to-compute ratio ``memory / compute`` (``inf`` if ``compute`` is 0)."""
        if self.compute == 0:
            return float("inf") if self.memory > 0 else 0.0
        return self.memory / self.compute

    @classmethod
    def _from_counts(cls, macs: float, per_mac: float, loads: float, per_load: float, alpha: float,
                     beta: float) -> Self:
        """``from_counts`` of both models: ``compute = alpha*macs*per_mac``, ``memory = beta*loads*per_load``."""
        compute, memory = _counts_to_terms(macs, per_mac, loads, per_load, alpha, beta)
        return cls(compute=compute, memory=memory)

    def predict(self, m: ArrayLike) -> validation.FloatOrArray:
        """Cost at motif size(s) ``m`` (> 0): ``compute/m**2 + memory/m + overhead``."""
        m_arr = validation.as_finite(m, "m")
        validation.check_all_positive(m_arr, "m")
        return validation.scalar_or_array(self.compute / m_arr**2 + self.memory / m_arr + self.overhead)

    def relative(self, m: ArrayLike, normalisation: str = "m1") -> validation.FloatOrArray:
        """Cost at ``m`` divided by the total cost at ``m = 1`` (``"m1"``) or by its compute term
        (``"compute"``, Table 1's form; needs ``compute > 0``)."""
        _check_normalisation(normalisation)
        ref = self.compute + self.memory + self.overhead if normalisation == "m1" else self.compute
        if ref <= 0:
            raise ValueError("normalisation 'compute' needs a model with compute > 0")
        pred = self.predict(m)
        return pred / ref

    @classmethod
    def calibrate(cls, measured_m1: float, kappa: float = 0.0, overhead: float = 0.0) -> Self:
        """Model whose ``predict(1)`` equals one measurement at ``m = 1``.

        The measurement minus ``overhead`` is split between the compute and memory terms in the
        ratio ``1 : kappa`` (Chen et al., AI 2025, Sec. 3.5: "if a single device measurement is
        available, (alpha, beta, kappa) can be calibrated once").

        Parameters
        ----------
        measured_m1 : float
            Measured cost at ``m = 1`` (> 0).
        kappa : float, default 0.0
            Memory-to-compute ratio (>= 0); 0 is compute-bound.
        overhead : float, default 0.0
            Part of the measurement that does not depend on ``m``, in ``[0, measured_m1)``.

        Raises
        ------
        ValueError
            On non-positive ``measured_m1``, negative ``kappa`` or an out-of-range ``overhead``.
        """
        total = float(validation.as_finite(measured_m1, "measured_m1"))
        k = float(validation.as_finite(kappa, "kappa"))
        ov = float(validation.as_finite(overhead, "overhead"))
        if total <= 0:
            raise ValueError(f"measured_m1 must be > 0, got {measured_m1!r}")
        if k < 0:
            raise ValueError(f"kappa must be >= 0, got {kappa!r}")
        if not 0 <= ov < total:
            raise ValueError(f"overhead must lie in [0, measured_m1={total:g}), got {overhead!r}")
        rest = total - ov
        return cls(compute=rest / (1.0 + k), memory=k * rest / (1.0 + k), overhead=ov)

    @classmethod
    def fit(
        cls,
        ms: ArrayLike,
        measured: ArrayLike,
        terms: Sequence[str] = ("compute", "memory"),
    ) -> Self:
        """Non-negative least-squares fit of the chosen terms to measurements at several ``m``.

        Minimises ``sum_i (predict(m_i) - measured_i)**2`` over the coefficients named in
        ``terms`` with every coefficient ``>= 0`` (the others stay 0). The problem has at most
        three unknowns, so it is solved exactly by trying every subset of the terms.

        ``terms=("compute", "overhead")`` is the saturating fit ``t(m) = a + b / m**2`` the paper
        uses to project ``m = 8`` in Tables 4-5 (Chen et al., AI 2025).

        Parameters
        ----------
        ms : array_like, shape (n,)
            Motif sizes (> 0) of the measurements; repeats are allowed.
        measured : array_like, shape (n,)
            Measured costs (> 0).
        terms : sequence of {"compute", "memory", "overhead"}, default ("compute", "memory")
            Which coefficients to fit; needs at least ``len(terms)`` distinct ``ms``.

        Raises
        ------
        ValueError
            On mismatched lengths, NaN, non-positive values, unknown or repeated terms, or too
            few distinct motif sizes.
        """
        m_arr = validation.as_1d(ms, "ms")
        y = validation.as_1d(measured, "measured")
        validation.same_length(ms=m_arr, measured=y)
        validation.check_all_positive(m_arr, "ms")
        validation.check_all_positive(y, "measured")
        terms = tuple(terms)
        if not terms or len(set(terms)) != len(terms) or not set(terms) <= set(_TERMS):
            raise ValueError(f"terms must be distinct names from {_TERMS}, got {terms!r}")
        if len(np.unique(m_arr)) < len(terms):
            raise ValueError(
                f"fitting {len(terms)} terms needs at least {len(terms)} distinct motif sizes, "
                f"got {np.unique(m_arr).tolist()!r}"
            )
        basis = {"compute": 1.0 / m_arr**2, "memory": 1.0 / m_arr, "overhead": np.ones_like(m_arr)}
        design = np.column_stack([basis[t] for t in terms])

        best_coef = np.zeros(len(terms))
        best_ssr = float(y @ y)
        for size in range(1, len(terms) + 1):
            for cols in combinations(range(len(terms)), size):
                sub = design[:, cols]
                coef, *_ = np.linalg.lstsq(sub, y, rcond=None)
                if (coef < -1e-12 * max(1.0, float(np.abs(coef).max()))).any():
                    continue
                coef = np.clip(coef, 0.0, None)
                resid = sub @ coef - y
                ssr = float(resid @ resid)
                if ssr < best_ssr - 1e-12 * best_ssr:
                    best_ssr = ssr
                    best_coef = np.zeros(len(terms))
                    best_coef[list(cols)] = coef
        values = dict(zip(terms, best_coef.tolist()))
        return cls(**values)


@dataclass(frozen=True)
class LatencyModel(_MotifCostModel):
    """Latency versus motif size, in seconds (Chen et al., AI 2025, Sec. 3.5).

    ``predict(m) = compute / m**2 + memory / m + overhead``.

    Attributes
    ----------
    compute : float
        Seconds of the compute term at ``m = 1``, ``alpha * F1 * C_mm`` (>= 0). Shrinks as
        ``1/m**2`` because block execution needs ``m**2`` fewer unique multiplies.
    memory : float, default 0.0
        Seconds of the memory/load term at ``m = 1``, ``beta * M1 * C_ld`` (>= 0). Shrinks as
        ``1/m`` (fewer distinct blocks, better reuse).
    overhead : float, default 0.0
        Seconds that do not depend on ``m`` (>= 0): data movement, activations, Python, ...
        Not part of the paper's Sec. 3.5 model (keep it 0 to get exactly that model); it is the
        ``alpha`` of the paper's own saturating fit ``t(m) = alpha + beta / m**2`` (Tables 4-5),
        and it is what lets a measured m=2 / m=1 ratio above 0.5 be represented at all.

    Examples
    --------
    Table 10 (laptop CPU, 15 GFLOP/s, compute-bound, 24.17 M MACs at m = 1):

    >>> lat = LatencyModel.from_counts(macs=24.17e6, seconds_per_mac=1 / 15e9)
    >>> round(lat.predict(1) * 1e3, 2), round(lat.predict(2) * 1e3, 2)
    (1.61, 0.4)
    """

    unit: ClassVar[str] = "s"

    @classmethod
    def from_counts(cls, macs: float, seconds_per_mac: float, loads: float = 0.0, seconds_per_load: float = 0.0,
                    alpha: float = 1.0, beta: float = 1.0) -> LatencyModel:
        """Build from operation counts at ``m = 1``: ``compute = alpha*macs*seconds_per_mac``,
        ``memory = beta*loads*seconds_per_load`` (Sec. 3.5; ``loads`` may be taken proportional
        to the parameter count). ``alpha``, ``beta`` are overhead factors, [0, 1] in the paper;
        any value >= 0 is accepted here."""
        return cls._from_counts(macs, seconds_per_mac, loads, seconds_per_load, alpha, beta)


@dataclass(frozen=True)
class EnergyModel(_MotifCostModel):
    """Energy versus motif size, in joules (Chen et al., AI 2025, Sec. 3.5): the model of
    :class:`LatencyModel` with joules for seconds, ``predict(m) = compute / m**2 + memory / m + overhead``.

    ``compute`` (>= 0) is the compute term at ``m = 1``, ``alpha * F1 * E_mm``; ``memory`` (>= 0,
    default 0.0) the memory/load term at ``m = 1``, ``beta * M1 * E_ld``; ``overhead`` (>= 0,
    default 0.0) the joules independent of ``m``, not in the paper's model (see :class:`LatencyModel`).
    """

    unit: ClassVar[str] = "J"

    @classmethod
    def from_counts(cls, macs: float, joules_per_mac: float, loads: float = 0.0, joules_per_load: float = 0.0,
                    alpha: float = 1.0, beta: float = 1.0) -> EnergyModel:
        """Build from operation counts at ``m = 1`` with per-MAC and per-load energies
        (``E_mm``, ``E_ld`` of Sec. 3.5)."""
        return cls._from_counts(macs, joules_per_mac, loads, joules_per_load, alpha, beta)

    @classmethod
    def from_latency(cls, latency: LatencyModel, power_watts: float) -> EnergyModel:
        """Energy = constant power x latency, term by term (the "energy proxy" of Table 10:
        15 / 3 / 5 W for laptop / Raspberry Pi 4 / Android). Its ``kappa`` equals the latency
        model's, which is the assumption behind Table 1's identical rows."""
        if not isinstance(latency, LatencyModel):
            raise TypeError(f"latency must be a LatencyModel, got {type(latency).__name__}")
        p = float(validation.as_finite(power_watts, "power_watts"))
        if p <= 0:
            raise ValueError(f"power_watts must be > 0, got {power_watts!r}")
        return cls(
            compute=p * latency.compute, memory=p * latency.memory, overhead=p * latency.overhead
        )


def _counts_to_terms(
    macs: float, per_mac: float, loads: float, per_load: float, alpha: float, beta: float
) -> tuple[float, float]:
    vals = {}
    for name, v in (
        ("macs", macs),
        ("per-MAC cost", per_mac),
        ("loads", loads),
        ("per-load cost", per_load),
        ("alpha", alpha),
        ("beta", beta),
    ):
        f = float(validation.as_finite(v, name))
        if f < 0:
            raise ValueError(f"{name} must be >= 0, got {v!r}")
        vals[name] = f
    compute = vals["alpha"] * vals["macs"] * vals["per-MAC cost"]
    memory = vals["beta"] * vals["loads"] * vals["per-load cost"]
    if compute + memory <= 0:
        raise ValueError("the counts and unit costs give a zero model; both terms are 0")
    return compute, memory


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyMeasurement:
    """Result of :func:`measure_latency`.

    Attributes
    ----------
    seconds_per_sample : float
        Median over the timed calls of (call wall time / ``batch_size``).
    throughput : float
        Samples per second at that median, ``1 / seconds_per_sample`` (``inf`` if the clock
        could not resolve the call).
    seconds_per_batch : float
        Median wall time of one call.
    batch_size : int
        Rows passed per call.
    repeats : int
        Number of timed calls.
    warmup : int
        Number of untimed calls made first.
    batch_times : numpy.ndarray
        Wall time of every timed call, seconds, in call order.
    """

    seconds_per_sample: float
    throughput: float
    seconds_per_batch: float
    batch_size: int
    repeats: int
    warmup: int
    batch_times: NDArray[np.float64]


def measure_latency(
    predict_fn: Callable[[Any], Any],
    x: ArrayLike,
    batch_size: int = 1,
    repeats: int = 50,
    warmup: int = 5,
) -> LatencyMeasurement:
    """Median wall-clock latency per sample and throughput of any prediction callable.

    Calls ``predict_fn(batch)`` on consecutive slices of ``batch_size`` rows of ``x`` (wrapping
    round when ``x`` runs out), first ``warmup`` times untimed, then ``repeats`` times each timed
    with :func:`time.perf_counter`. Batch-1 latency is the setting of the paper's device table
    (Chen et al., AI 2025, Sec. 5.6, Table 10), which there is only *estimated*; this measures
    it. The median resists the odd slow call (scheduler, page faults). The callable's result is
    ignored, so it must do its work eagerly (as NumPy and motifcore do).

    Parameters
    ----------
    predict_fn : callable
        Called as ``predict_fn(batch)`` with ``batch = x[i:i + batch_size]``, e.g. a model's
        ``predict_proba``.
    x : array_like, shape (n, ...)
        Input rows; ``n >= batch_size``. Passed through ``numpy.asarray`` (no copy for an
        ndarray, so its dtype is kept).
    batch_size : int, default 1
        Rows per call (>= 1).
    repeats : int, default 50
        Timed calls (>= 1).
    warmup : int, default 5
        Untimed calls before timing (>= 0).

    Returns
    -------
    LatencyMeasurement

    Raises
    ------
    TypeError
        If ``predict_fn`` is not callable or a count is not an integer.
    ValueError
        If ``x`` is a scalar or has fewer than ``batch_size`` rows, or a count is too small.
    """
    if not callable(predict_fn):
        raise TypeError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
    bs = validation.check_int(batch_size, "batch_size", 1)
    reps = validation.check_int(repeats, "repeats", 1)
    warm = validation.check_int(warmup, "warmup", 0)
    x_arr = np.asarray(x)
    if x_arr.ndim == 0:
        raise ValueError("x must have at least one dimension (rows of samples)")
    n = x_arr.shape[0]
    if n < bs:
        raise ValueError(f"x has {n} rows, fewer than batch_size={bs}")

    span = n - bs + 1
    batches = [x_arr[s : s + bs] for s in ((i * bs) % span for i in range(warm + reps))]
    for batch in batches[:warm]:
        predict_fn(batch)
    times = np.empty(reps, dtype=np.float64)
    clock = time.perf_counter
    for i, batch in enumerate(batches[warm:]):
        t0 = clock()
        predict_fn(batch)
        times[i] = clock() - t0

    per_batch = float(np.median(times))
    per_sample = per_batch / bs
    throughput = float("inf") if per_sample <= 0 else 1.0 / per_sample
    return LatencyMeasurement(
        seconds_per_sample=per_sample,
        throughput=throughput,
        seconds_per_batch=per_batch,
        batch_size=bs,
        repeats=reps,
        warmup=warm,
        batch_times=times,
    )
