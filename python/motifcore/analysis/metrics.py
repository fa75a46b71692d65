"""Trade-off metrics for comparing motif sizes: scores, utilities, Pareto fronts, summaries.

Everything here is pure NumPy and works on numbers a sweep has already produced (accuracies,
wall-clock times, FLOP counts); nothing trains a model.

Source: Chen, Liu & Ziabari, "Efficient Sparse MLPs Through Motif-Level Optimization Under
Resource Constraints", AI 2025, 6(10):266 ("Chen et al., AI 2025" below).

* :func:`comprehensive_score` -- the weighted score of Sec. 4.2, used in Sec. 5.3.1/5.3.2.
* :func:`utility` and :func:`recommend_m` -- the motif-size selection rule of Sec. 5.2
  ("Choosing m").
* :func:`pareto_front` and :func:`knee_point` -- the accuracy / cost frontier and its knee, also
  from "Choosing m" in Sec. 5.2.
* :func:`normalise_to_base` and :func:`summarize` -- small helpers for sweep reports (the paper
  reports means and standard deviations over three seeds, normalised to the ``m = 1`` baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._internal.validation import (
    FloatOrArray,
    as_1d,
    as_finite,
    broadcast_named,
    check_all_nonnegative,
    check_all_positive,
    check_unit_interval,
    same_length,
    scalar_or_array,
)

__all__ = [
    "DEFAULT_SCORE_WEIGHT",
    "DEFAULT_UTILITY_LAMBDA",
    "Recommendation",
    "comprehensive_score",
    "knee_point",
    "normalise_to_base",
    "pareto_front",
    "recommend_m",
    "summarize",
    "utility",
]

#: Weight of the running-time reduction in the comprehensive score (Chen et al., AI 2025,
#: Sec. 4.2: efficiency 10 %, accuracy 90 %).
DEFAULT_SCORE_WEIGHT: float = 0.1

#: Accuracy weight ``lambda`` of the utility ``U(m)``. Sec. 5.2 of the paper leaves ``lambda``
#: free ("lambda in [0, 1]") and never states a value; motifcore uses 0.9 so that the utility
#: weighs accuracy the way the comprehensive score of Sec. 4.2 and the discussion of Sec. 5.4 do
#: (accuracy 90 %, efficiency 10 %).
DEFAULT_UTILITY_LAMBDA: float = 0.9

# --------------------------------------------------------------------------------------------
# validation helpers (shared with motifcore.estimate)
# --------------------------------------------------------------------------------------------


def _ratios(
    acc: ArrayLike, time: ArrayLike, acc_base: ArrayLike, time_base: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate the four inputs; return ``(acc / acc_base, time / time_base)``."""
    a = as_finite(acc, "acc")
    t = as_finite(time, "time")
    a0 = as_finite(acc_base, "acc_base")
    t0 = as_finite(time_base, "time_base")
    check_all_nonnegative(a, "acc")
    check_all_positive(a0, "acc_base")
    check_all_positive(t, "time")
    check_all_positive(t0, "time_base")
    a, t, a0, t0 = broadcast_named(("acc", "time", "acc_base", "time_base"), a, t, a0, t0)
    return a / a0, t / t0


# --------------------------------------------------------------------------------------------
# comprehensive score (Sec. 4.2)
# --------------------------------------------------------------------------------------------


def comprehensive_score(
    acc: ArrayLike,
    time: ArrayLike,
    acc_base: ArrayLike,
    time_base: ArrayLike,
    weight: float = DEFAULT_SCORE_WEIGHT,
) -> FloatOrArray:
    r"""Comprehensive score ``S`` of a model against a baseline (Chen et al., AI 2025, Sec. 4.2).

    .. math::

        S = w \, R_r + (1 - w)\,(1 - A_r), \qquad
        R_r = \frac{T_\text{base} - T}{T_\text{base}}, \qquad
        A_r = \frac{A_\text{base} - A}{A_\text{base}}

    ``R_r`` is the fractional reduction of running time and ``A_r`` the fractional (relative, not
    percentage-point) drop of accuracy, both against the baseline -- in the paper SET, i.e.
    ``m = 1``. The baseline itself therefore scores ``1 - w`` (0.9 with the default weight). A
    model that is slower than the baseline gets a negative ``R_r``; one that is more accurate gets
    a negative ``A_r``; neither is clipped.

    Parameters
    ----------
    acc, time : array_like
        Accuracy (any non-negative scale, e.g. a fraction or a percentage) and running time
        (> 0, any unit) of the model(s) being scored.
    acc_base, time_base : array_like
        Accuracy (> 0) and running time (> 0) of the baseline, in the same units as ``acc`` and
        ``time``. All four inputs broadcast against each other.
    weight : float, default 0.1
        ``w``, the weight of the time reduction, in ``[0, 1]``. The paper uses 0.1 (efficiency
        10 %, accuracy 90 %) and sweeps it in Figs. 8-9.

    Returns
    -------
    float or numpy.ndarray
        ``S``; a float when every input is a scalar, otherwise an array of the broadcast shape.

    Raises
    ------
    ValueError
        On NaN or infinite input, non-positive times or baseline accuracy, negative accuracy,
        a weight outside ``[0, 1]``, or shapes that do not broadcast.

    Notes
    -----
    Worked values (Sec. 5.3.1, Table 9, FMNIST, times 25236.2 / 14307.5 / 9209.3 s, accuracies
    0.761 / 0.733 / 0.692 for m = 1 / 2 / 4) are S = 0.9000 / 0.9102 / 0.8819. The paper prints
    0.9100 for m = 2 (its intermediate values were rounded to R_r = 0.433, A_r = 0.037) and
    0.8864 for m = 4, which is an arithmetic slip: it equals 0.1 * 0.737 + 0.9 * (1 - 0.097),
    i.e. the text's "73.7 % efficiency" and "9.7 % accuracy drop", whereas the table gives
    R_r = 0.6351 and A_r = 0.0907. For Lung (Sec. 5.3.2: 4953.2 / 3448.7 / 3417.3 s,
    0.937 / 0.926 / 0.914) the scores are 0.9000 / 0.9198 / 0.9089 (the paper prints 0.9199 for
    m = 2, again from rounded intermediates).

    Examples
    --------
    >>> round(comprehensive_score(0.733, 14307.5, 0.761, 25236.2), 4)
    0.9102
    """
    w = check_unit_interval(weight, "weight")
    acc_ratio, time_ratio = _ratios(acc, time, acc_base, time_base)
    time_reduction = 1.0 - time_ratio  # R_r
    acc_drop = 1.0 - acc_ratio  # A_r
    return scalar_or_array(w * time_reduction + (1.0 - w) * (1.0 - acc_drop))


# --------------------------------------------------------------------------------------------
# utility and the choice of m (Sec. 5.2)
# --------------------------------------------------------------------------------------------


def utility(
    acc: ArrayLike,
    time: ArrayLike,
    acc_base: ArrayLike,
    time_base: ArrayLike,
    lam: float = DEFAULT_UTILITY_LAMBDA,
) -> FloatOrArray:
    r"""Motif-size utility ``U(m)`` (Chen et al., AI 2025, Sec. 5.2, "Choosing m").

    .. math::

        U(m) = \lambda \, \frac{\mathrm{Acc}(m)}{\mathrm{Acc}(1)}
             + (1 - \lambda) \, \frac{\mathrm{Time}(1)}{\mathrm{Time}(m)}

    i.e. relative accuracy plus speed-up, weighted by ``lambda``. The paper also writes it as
    ``lambda * (1 - dAcc(m)) + (1 - lambda) * Speedup(m)``, with ``dAcc`` the relative accuracy
    drop; both forms are the same. The baseline scores exactly 1.

    Unlike the comprehensive score, the efficiency term is a speed-up, which is unbounded: a
    large speed-up can outweigh a large accuracy loss unless ``lambda`` is close to 1.

    Parameters
    ----------
    acc, time : array_like
        Accuracy (>= 0) and time (> 0) of the candidate(s).
    acc_base, time_base : array_like
        Accuracy (> 0) and time (> 0) of the baseline (``m = 1``). All four inputs broadcast.
    lam : float, default 0.9
        ``lambda`` in ``[0, 1]``; larger favours accuracy. The paper gives no default; 0.9
        mirrors the 90 % accuracy weight of Sec. 4.2 (see :data:`DEFAULT_UTILITY_LAMBDA`).

    Returns
    -------
    float or numpy.ndarray
        ``U``; a float when every input is a scalar.

    Raises
    ------
    ValueError
        As :func:`comprehensive_score`, with ``lam`` in place of ``weight``.
    """
    lam_v = check_unit_interval(lam, "lam")
    acc_ratio, time_ratio = _ratios(acc, time, acc_base, time_base)
    return scalar_or_array(lam_v * acc_ratio + (1.0 - lam_v) / time_ratio)


@dataclass(frozen=True)
class Recommendation:
    """Outcome of :func:`recommend_m`.

    Attributes
    ----------
    m : int or float
        The chosen motif size (an ``int`` when all candidate sizes are whole numbers).
    utility : float
        ``U(m)`` of the chosen size.
    ms : numpy.ndarray
        The candidate sizes, in the order they were given.
    utilities : numpy.ndarray
        ``U`` of every candidate, aligned with ``ms``.
    feasible : numpy.ndarray of bool
        Whether each candidate passed the ``max_acc_drop`` constraint (all ``True`` without one).
    base_m : int or float
        The baseline size all ratios refer to (the smallest candidate, normally 1).
    lam : float
        The ``lambda`` used.
    reason : str
        One human-readable sentence explaining the choice.
    """

    m: int | float
    utility: float
    ms: NDArray[np.float64]
    utilities: NDArray[np.float64]
    feasible: NDArray[np.bool_]
    base_m: int | float
    lam: float
    reason: str


def _fmt_m(m: float) -> str:
    return f"{m:g}"


def recommend_m(
    ms: ArrayLike,
    accs: ArrayLike,
    times: ArrayLike,
    lam: float = DEFAULT_UTILITY_LAMBDA,
    max_acc_drop: float | None = None,
) -> Recommendation:
    """Choose the motif size with the highest utility (Chen et al., AI 2025, Sec. 5.2).

    Every candidate is scored with :func:`utility` against the smallest candidate size (the
    ``m = 1`` baseline in the paper's sweeps); the best feasible one is returned.

    Parameters
    ----------
    ms : array_like
        Candidate motif sizes (> 0, distinct), e.g. ``[1, 2, 4, 8]``.
    accs, times : array_like
        Accuracy (>= 0; the baseline's must be > 0) and time (> 0) per candidate, aligned
        with ``ms``; typically means over seeds, time per epoch.
    lam : float, default 0.9
        Accuracy weight of the utility, in ``[0, 1]``.
    max_acc_drop : float, optional
        If given, a budget in ``[0, 1]`` on the *relative* accuracy drop
        ``1 - Acc(m) / Acc(base)`` (0.02 means "keep at least 98 % of the baseline's accuracy").
        Candidates above it are not eligible; the baseline always is.

    Returns
    -------
    Recommendation
        The chosen ``m``, its utility, all utilities and a ``reason`` string. Ties go to the
        smaller ``m``.

    Raises
    ------
    ValueError
        On empty or mismatched inputs, duplicate or non-positive ``ms``, NaN, non-positive
        times, a non-positive baseline accuracy, or ``lam`` / ``max_acc_drop`` outside ``[0, 1]``.

    Examples
    --------
    >>> rec = recommend_m([1, 2, 4], [0.937, 0.926, 0.914], [4953.2, 3448.7, 3417.3])
    >>> rec.m
    2
    """
    m_arr = as_1d(ms, "ms")
    a_arr = as_1d(accs, "accs")
    t_arr = as_1d(times, "times")
    same_length(ms=m_arr, accs=a_arr, times=t_arr)
    check_all_positive(m_arr, "ms")
    if len(np.unique(m_arr)) != len(m_arr):
        raise ValueError(f"ms must be distinct, got {m_arr.tolist()!r}")
    lam_v = check_unit_interval(lam, "lam")
    budget = None if max_acc_drop is None else check_unit_interval(max_acc_drop, "max_acc_drop")

    ibase = int(np.argmin(m_arr))
    u = np.asarray(utility(a_arr, t_arr, a_arr[ibase], t_arr[ibase], lam=lam_v), dtype=float)
    acc_ratio = a_arr / a_arr[ibase]
    time_ratio = t_arr / t_arr[ibase]
    drop = 1.0 - acc_ratio
    if budget is None:
        feasible = np.ones(len(m_arr), dtype=bool)
    else:
        feasible = drop <= budget + 1e-12
        feasible[ibase] = True

    u_masked = np.where(feasible, u, -np.inf)
    best = u_masked.max()
    tied = np.flatnonzero(u_masked >= best - 1e-12)
    ichosen = int(tied[np.argmin(m_arr[tied])])

    integral = bool(np.all(m_arr == np.round(m_arr)))

    def as_m(v: float) -> int | float:
        return int(np.rint(v)) if integral else float(v)

    m_chosen = as_m(m_arr[ichosen])
    base_m = as_m(m_arr[ibase])

    head = f"m={_fmt_m(m_chosen)}: utility {u[ichosen]:.3f} is the highest (lambda={lam_v:g})"
    if ichosen == ibase:
        detail = "; it is the baseline"
    else:
        detail = (
            f"; accuracy {100.0 * acc_ratio[ichosen]:.1f}% of m={_fmt_m(base_m)}"
            f" at {time_ratio[ichosen]:.2f}x the time"
        )
    excluded = np.flatnonzero(~feasible)
    tail = ""
    if budget is not None and excluded.size:
        items = ", ".join(
            f"m={_fmt_m(as_m(m_arr[i]))} (drop {100.0 * drop[i]:.1f}%)"
            for i in excluded[np.argsort(m_arr[excluded])]
        )
        tail = f"; excluded by max_acc_drop={100.0 * budget:.1f}%: {items}"

    return Recommendation(
        m=m_chosen,
        utility=float(u[ichosen]),
        ms=m_arr,
        utilities=u,
        feasible=feasible,
        base_m=base_m,
        lam=lam_v,
        reason=head + detail + tail,
    )


# --------------------------------------------------------------------------------------------
# Pareto frontier and knee (Sec. 5.2, "Choosing m")
# --------------------------------------------------------------------------------------------


def pareto_front(acc: ArrayLike, cost: ArrayLike) -> NDArray[np.intp]:
    """Indices of the Pareto-optimal points for accuracy (higher is better) vs cost (lower is better).

    A point is on the frontier when no other point is at least as accurate *and* at most as
    costly with one of the two strictly better. Of several identical points only the first (by
    index) is kept, so the frontier has strictly increasing cost and strictly increasing accuracy.

    Parameters
    ----------
    acc : array_like, shape (n,)
        Accuracy of each point.
    cost : array_like, shape (n,)
        Cost of each point (FLOPs, time, parameters, ...). Any finite value.

    Returns
    -------
    numpy.ndarray of int
        Indices into the inputs, sorted by increasing cost (hence increasing accuracy).

    Raises
    ------
    ValueError
        On empty, non-1-D, mismatched or non-finite input.
    """
    a = as_1d(acc, "acc")
    c = as_1d(cost, "cost")
    same_length(acc=a, cost=c)
    # cheapest first; among equal cost the most accurate first; lexsort is stable, so exact
    # duplicates stay in index order and only the first survives the strict ">" below.
    order = np.lexsort((-a, c))
    keep = []
    best = -np.inf
    for i in order:
        if a[i] > best:
            keep.append(i)
            best = a[i]
    return np.asarray(keep, dtype=np.intp)


_KNEE_TOL = 1e-12


def knee_point(
    acc: ArrayLike,
    cost: ArrayLike,
    log_cost: bool = True,
    method: str = "curvature",
) -> int:
    r"""Index of the knee of the accuracy / cost Pareto frontier (Chen et al., AI 2025, Sec. 5.2).

    The paper's recipe: build the Pareto frontier over ``(Acc, log FLOPs)`` and take the knee
    "by maximum curvature". Here:

    1. the frontier is :func:`pareto_front` (dominated points never matter);
    2. on the frontier, cost (its logarithm when ``log_cost``) and accuracy are each rescaled to
       ``[0, 1]``, so that the units of either axis do not decide the knee;
    3. ``method="curvature"`` (default): at every interior vertex ``q`` of the resulting polyline,
       with neighbours ``p`` and ``r``, the discrete (Menger) curvature
       ``2 * cross(q - p, r - q) / (|q - p| |r - q| |r - p|)`` -- the reciprocal radius of the
       circle through the three points -- is computed, signed so that a bend towards diminishing
       returns (accuracy flattening as cost grows) is positive; the vertex with the largest value
       is the knee.
       ``method="chord"``: the interior vertex lying furthest above the chord from the cheapest
       to the most accurate frontier point (the "Kneedle" criterion); it is more robust to
       unevenly spaced points.

    Fallbacks, when no knee exists: a single frontier point is returned as is; with two frontier
    points (no interior vertex) or a frontier with no diminishing-returns bend (straight or
    accelerating), the most accurate frontier point is returned -- the conservative choice when
    accuracy matters most (Sec. 5.4).

    Parameters
    ----------
    acc : array_like, shape (n,)
        Accuracy of each point (higher is better).
    cost : array_like, shape (n,)
        Cost of each point (lower is better); must be > 0 when ``log_cost`` is true.
    log_cost : bool, default True
        Use ``log(cost)`` for the cost axis, as the paper does for FLOPs.
    method : {"curvature", "chord"}, default "curvature"
        Knee criterion, see above.

    Returns
    -------
    int
        Index into the inputs of the knee point.

    Raises
    ------
    ValueError
        On bad input (see :func:`pareto_front`), non-positive cost with ``log_cost``, or an
        unknown ``method``.
    """
    if method not in ("curvature", "chord"):
        raise ValueError(f"method must be 'curvature' or 'chord', got {method!r}")
    a = as_1d(acc, "acc")
    c = as_1d(cost, "cost")
    same_length(acc=a, cost=c)
    if log_cost:
        check_all_positive(c, "cost (log_cost=True)")
    front = pareto_front(a, c)
    if len(front) <= 2:
        return int(front[-1])

    x = np.log(c[front]) if log_cost else c[front]
    y = a[front]
    x = (x - x[0]) / (x[-1] - x[0])
    y = (y - y[0]) / (y[-1] - y[0])

    if method == "chord":
        # chord runs from (0, 0) to (1, 1); signed distance above it
        score = (y[1:-1] - x[1:-1]) / np.sqrt(2.0)
    else:
        d1x, d1y = x[1:-1] - x[:-2], y[1:-1] - y[:-2]  # q - p
        d2x, d2y = x[2:] - x[1:-1], y[2:] - y[1:-1]  # r - q
        d3x, d3y = x[2:] - x[:-2], y[2:] - y[:-2]  # r - p
        cross = d1x * d2y - d1y * d2x  # < 0 for a clockwise (diminishing-returns) turn
        denom = np.hypot(d1x, d1y) * np.hypot(d2x, d2y) * np.hypot(d3x, d3y)
        score = -2.0 * cross / denom
    k = int(np.argmax(score))
    if score[k] <= _KNEE_TOL:
        return int(front[-1])
    return int(front[k + 1])


# --------------------------------------------------------------------------------------------
# sweep helpers
# --------------------------------------------------------------------------------------------


def normalise_to_base(values: ArrayLike, base: ArrayLike) -> FloatOrArray:
    """Divide ``values`` by a baseline value, e.g. accuracy or FLOPs relative to ``m = 1``.

    This is the normalisation of the paper's Tables 12-13 (Chen et al., AI 2025, Sec. 5.6),
    where the SET baseline is 1.00.

    Parameters
    ----------
    values : array_like
        Values to normalise.
    base : array_like
        Baseline value(s), non-zero, broadcastable against ``values``.

    Returns
    -------
    float or numpy.ndarray
        ``values / base``; a float when both inputs are scalars.

    Raises
    ------
    ValueError
        On NaN or infinite input, a zero baseline, or shapes that do not broadcast.
    """
    v = as_finite(values, "values")
    b = as_finite(base, "base")
    if b.size and (b == 0).any():
        raise ValueError(f"base must be non-zero, got {base!r}")
    v, b = broadcast_named(("values", "base"), v, b)
    return scalar_or_array(v / b)


def summarize(values: ArrayLike, axis: int | None = None) -> tuple[FloatOrArray, FloatOrArray]:
    """Mean and sample standard deviation, as the paper reports over seeds (Table 3: 3 seeds).

    Parameters
    ----------
    values : array_like
        Repeated measurements (e.g. one accuracy per seed).
    axis : int, optional
        Axis to reduce; by default all values are pooled.

    Returns
    -------
    (mean, std)
        Floats when ``axis`` is None, otherwise arrays. ``std`` uses ``ddof=1`` (the unbiased
        sample variance) and is 0 when only one value is reduced.

    Raises
    ------
    ValueError
        On empty input or NaN / infinite values.
    """
    v = as_finite(values, "values")
    if v.size == 0:
        raise ValueError("values must not be empty")
    if axis is None:
        v = v.ravel()
        ax = 0
    else:
        ax = axis
    try:
        n = v.shape[ax]
    except IndexError as exc:
        raise ValueError(f"axis {axis} is out of range for shape {v.shape}") from exc
    if n == 0:
        raise ValueError(f"values have no elements along axis {axis}")
    mean = v.mean(axis=ax)
    std = v.std(axis=ax, ddof=1) if n > 1 else np.zeros_like(mean)
    if axis is None:
        return float(mean), float(std)
    return mean, std
