"""Tests for motifcore.metrics (scores, utility, Pareto front, knee, summaries)."""

import math

import numpy as np
import pytest
from motifcore.analysis.metrics import (
    DEFAULT_SCORE_WEIGHT,
    DEFAULT_UTILITY_LAMBDA,
    Recommendation,
    comprehensive_score,
    knee_point,
    normalise_to_base,
    pareto_front,
    recommend_m,
    summarize,
    utility,
)

# Chen et al., AI 2025, Sec. 5.3.1 / Table 9 (FMNIST) and Sec. 5.3.2 (Lung): m = 1, 2, 4
FMNIST_MS = [1, 2, 4]
FMNIST_TIME = [25236.2, 14307.5, 9209.3]
FMNIST_ACC = [0.761, 0.733, 0.692]
LUNG_TIME = [4953.2, 3448.7, 3417.3]
LUNG_ACC = [0.937, 0.926, 0.914]


# ------------------------------------------------------------------ comprehensive score


@pytest.mark.parametrize(
    "acc, time, expected",
    [
        (0.761, 25236.2, 0.9000),
        (0.733, 14307.5, 0.9102),  # paper prints 0.9100 (rounded intermediates)
        (0.692, 9209.3, 0.8819),  # paper prints 0.8864 (arithmetic slip)
    ],
)
def test_score_fmnist_hand_values(acc, time, expected):
    s = comprehensive_score(acc, time, 0.761, 25236.2, weight=0.1)
    assert isinstance(s, float)
    assert round(s, 4) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "acc, time, expected",
    [(0.937, 4953.2, 0.9000), (0.926, 3448.7, 0.9198), (0.914, 3417.3, 0.9089)],
)
def test_score_lung_hand_values(acc, time, expected):
    s = comprehensive_score(acc, time, 0.937, 4953.2)
    assert round(s, 4) == pytest.approx(expected, abs=1e-12)


def test_score_vectorised_matches_scalars():
    s = comprehensive_score(FMNIST_ACC, FMNIST_TIME, FMNIST_ACC[0], FMNIST_TIME[0])
    assert isinstance(s, np.ndarray) and s.shape == (3,)
    np.testing.assert_allclose(np.round(s, 4), [0.9000, 0.9102, 0.8819], atol=1e-12)
    for a, t, v in zip(FMNIST_ACC, FMNIST_TIME, s):
        assert comprehensive_score(a, t, FMNIST_ACC[0], FMNIST_TIME[0]) == pytest.approx(v)


def test_score_paper_slip_explained():
    # 0.8864 is what the text's 73.7 % / 9.7 % would give, not what Table 9 gives.
    assert 0.1 * 0.737 + 0.9 * (1 - 0.097) == pytest.approx(0.8864, abs=5e-5)
    assert comprehensive_score(0.692, 9209.3, 0.761, 25236.2) != pytest.approx(0.8864, abs=1e-3)


def test_score_broadcasts_2d_over_weights_independently():
    acc = np.array([[0.761, 0.733], [0.937, 0.926]])
    time = np.array([[25236.2, 14307.5], [4953.2, 3448.7]])
    base_acc = np.array([[0.761], [0.937]])
    base_time = np.array([[25236.2], [4953.2]])
    s = comprehensive_score(acc, time, base_acc, base_time)
    np.testing.assert_allclose(np.round(s, 4), [[0.9, 0.9102], [0.9, 0.9198]], atol=1e-12)


def test_score_weight_extremes_and_default():
    assert DEFAULT_SCORE_WEIGHT == 0.1
    # w = 1: pure time reduction; w = 0: pure relative accuracy
    assert comprehensive_score(0.5, 25.0, 1.0, 100.0, weight=1.0) == pytest.approx(0.75)
    assert comprehensive_score(0.5, 25.0, 1.0, 100.0, weight=0.0) == pytest.approx(0.5)
    # baseline always scores 1 - w
    assert comprehensive_score(0.8, 3.0, 0.8, 3.0, weight=0.3) == pytest.approx(0.7)


def test_score_break_even_sec_5_5():
    # Sec. 5.5: with efficiency weight a bit above 0.1 the motif models beat SET (score 1 - w).
    for accs, times in ((FMNIST_ACC, FMNIST_TIME), (LUNG_ACC, LUNG_TIME)):
        s = comprehensive_score(accs, times, accs[0], times[0], weight=0.15)
        assert (s[1:] > s[0]).all()
    # ... but at w = 0.1 FMNIST m = 4 does not (0.8819 < 0.9).
    s = comprehensive_score(FMNIST_ACC, FMNIST_TIME, FMNIST_ACC[0], FMNIST_TIME[0])
    assert s[2] < s[0] < s[1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"acc": 0.7, "time": 0.0, "acc_base": 0.8, "time_base": 1.0}, "time must be > 0"),
        ({"acc": 0.7, "time": 1.0, "acc_base": 0.8, "time_base": -2.0}, "time_base must be > 0"),
        ({"acc": 0.7, "time": 1.0, "acc_base": 0.0, "time_base": 1.0}, "acc_base must be > 0"),
        ({"acc": -0.1, "time": 1.0, "acc_base": 0.8, "time_base": 1.0}, "acc must be >= 0"),
        ({"acc": float("nan"), "time": 1.0, "acc_base": 0.8, "time_base": 1.0}, "NaN"),
        ({"acc": 0.7, "time": [1.0, np.nan], "acc_base": 0.8, "time_base": 1.0}, "NaN"),
        ({"acc": 0.7, "time": np.inf, "acc_base": 0.8, "time_base": 1.0}, "finite"),
        ({"acc": [0.7, 0.6], "time": [1.0, 2.0, 3.0], "acc_base": 0.8, "time_base": 1.0}, "match"),
        ({"acc": 0.7, "time": 1.0, "acc_base": 0.8, "time_base": 1.0, "weight": 1.5}, r"\[0, 1\]"),
        ({"acc": 0.7, "time": 1.0, "acc_base": 0.8, "time_base": 1.0, "weight": -0.1}, r"\[0, 1\]"),
        ({"acc": 0.7, "time": 1.0, "acc_base": 0.8, "time_base": 1.0, "weight": np.nan}, "NaN"),
        ({"acc": "abc", "time": 1.0, "acc_base": 0.8, "time_base": 1.0}, "numeric"),
    ],
)
def test_score_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        comprehensive_score(**kwargs)


# ------------------------------------------------------------------ utility / recommend_m


def test_utility_formula_and_baseline():
    assert DEFAULT_UTILITY_LAMBDA == 0.9
    assert utility(0.8, 2.0, 0.8, 2.0) == pytest.approx(1.0)
    # lambda * Acc/Acc1 + (1 - lambda) * Time1/Time
    u = utility(0.733, 14307.5, 0.761, 25236.2, lam=0.8)
    assert u == pytest.approx(0.8 * 0.733 / 0.761 + 0.2 * 25236.2 / 14307.5)
    assert round(u, 2) == 1.12
    assert utility(0.5, 1.0, 1.0, 4.0, lam=1.0) == pytest.approx(0.5)
    assert utility(0.5, 1.0, 1.0, 4.0, lam=0.0) == pytest.approx(4.0)


def test_utility_vectorised():
    u = utility(FMNIST_ACC, FMNIST_TIME, FMNIST_ACC[0], FMNIST_TIME[0], lam=0.9)
    assert u.shape == (3,)
    expected = [0.9 * a / 0.761 + 0.1 * 25236.2 / t for a, t in zip(FMNIST_ACC, FMNIST_TIME)]
    np.testing.assert_allclose(u, expected)


@pytest.mark.parametrize("lam", [-0.01, 1.01, float("nan")])
def test_utility_rejects_bad_lambda(lam):
    with pytest.raises(ValueError):
        utility(0.7, 1.0, 0.8, 1.0, lam=lam)


def test_utility_rejects_bad_times():
    with pytest.raises(ValueError, match="time must be > 0"):
        utility([0.7, 0.7], [1.0, 0.0], 0.8, 1.0)


def test_recommend_m_lung_default_picks_2():
    rec = recommend_m(FMNIST_MS, LUNG_ACC, LUNG_TIME)
    assert isinstance(rec, Recommendation)
    assert rec.m == 2 and isinstance(rec.m, int)
    assert rec.base_m == 1
    assert rec.lam == 0.9
    np.testing.assert_allclose(
        rec.utilities, utility(LUNG_ACC, LUNG_TIME, LUNG_ACC[0], LUNG_TIME[0], lam=0.9)
    )
    assert rec.utility == pytest.approx(rec.utilities[1])
    assert rec.feasible.all()
    assert rec.reason.startswith("m=2: utility 1.033 is the highest")
    assert "accuracy 98.8% of m=1 at 0.70x the time" in rec.reason


def test_recommend_m_fmnist_depends_on_lambda():
    # With lambda = 0.9 the unbounded speed-up term makes m = 4 win on FMNIST ...
    assert recommend_m(FMNIST_MS, FMNIST_ACC, FMNIST_TIME, lam=0.9).m == 4
    # ... m = 2 wins only in a narrow band of lambda around 0.95 ...
    rec = recommend_m(FMNIST_MS, FMNIST_ACC, FMNIST_TIME, lam=0.95)
    assert rec.m == 2
    assert "accuracy 96.3% of m=1 at 0.57x the time" in rec.reason
    # ... and accuracy-only picks the baseline.
    rec1 = recommend_m(FMNIST_MS, FMNIST_ACC, FMNIST_TIME, lam=1.0)
    assert rec1.m == 1 and "baseline" in rec1.reason


def test_recommend_m_accuracy_budget_excludes():
    rec = recommend_m(FMNIST_MS, FMNIST_ACC, FMNIST_TIME, lam=0.9, max_acc_drop=0.05)
    assert rec.m == 2
    assert rec.feasible.tolist() == [True, True, False]
    assert "excluded by max_acc_drop=5.0%: m=4 (drop 9.1%)" in rec.reason
    # a zero budget leaves only the baseline (and anything at least as accurate)
    assert recommend_m(FMNIST_MS, FMNIST_ACC, FMNIST_TIME, max_acc_drop=0.0).m == 1


def test_recommend_m_unsorted_input_and_ties():
    # order of candidates does not matter; utilities stay aligned with the input order
    rec = recommend_m(
        [4, 1, 2],
        [LUNG_ACC[2], LUNG_ACC[0], LUNG_ACC[1]],
        [LUNG_TIME[2], LUNG_TIME[0], LUNG_TIME[1]],
    )
    assert rec.m == 2 and rec.base_m == 1
    assert rec.ms.tolist() == [4, 1, 2]
    assert rec.utilities[1] == pytest.approx(1.0)
    # exact tie: the smaller m wins
    tie = recommend_m([1, 2, 4], [1.0, 0.5, 0.5], [1.0, 1.0, 1.0], lam=1.0)
    assert tie.m == 1
    tie2 = recommend_m([1, 4, 2], [1.0, 1.0, 1.0], [2.0, 1.0, 1.0], lam=0.5)
    assert tie2.m == 2


def test_recommend_m_non_integer_sizes():
    rec = recommend_m([1.0, 1.5], [1.0, 0.99], [1.0, 0.5], lam=0.5)
    assert rec.m == 1.5 and isinstance(rec.m, float)
    assert rec.reason.startswith("m=1.5:")


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([1, 2], [0.9], [1.0, 2.0]), {}, "lengths"),
        (([1, 1], [0.9, 0.8], [1.0, 2.0]), {}, "distinct"),
        (([0, 2], [0.9, 0.8], [1.0, 2.0]), {}, "ms must be > 0"),
        (([1, 2], [0.9, 0.8], [1.0, 0.0]), {}, "time must be > 0"),
        (([1, 2], [0.9, np.nan], [1.0, 2.0]), {}, "NaN"),
        (([], [], []), {}, "empty"),
        (([1, 2], [0.9, 0.8], [1.0, 2.0]), {"lam": 2.0}, "lam"),
        (([1, 2], [0.9, 0.8], [1.0, 2.0]), {"max_acc_drop": -0.1}, "max_acc_drop"),
        (([1, 2], [0.0, 0.8], [1.0, 2.0]), {}, "acc_base must be > 0"),
    ],
)
def test_recommend_m_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        recommend_m(*args, **kwargs)


# ------------------------------------------------------------------ Pareto front and knee


def _l_shaped():
    """A frontier rising steeply up to cost 4, then flat (knee at cost 4), plus noise points."""
    cost = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    acc = [0.10, 0.50, 0.90, 0.91, 0.92, 0.93, 0.94]
    # dominated points: cheaper-but-worse never beats the frontier
    dominated_cost = [8.0, 3.0, 64.0, 5.0, 4.0]
    dominated_acc = [0.50, 0.20, 0.60, 0.90, 0.90]  # the last is an exact duplicate of (4, 0.9)
    cost_all = np.array(cost + dominated_cost)
    acc_all = np.array(acc + dominated_acc)
    perm = np.random.default_rng(0).permutation(len(cost_all))
    return acc_all[perm], cost_all[perm], perm


def test_pareto_front_excludes_dominated_and_sorts_by_cost():
    acc, cost, _perm = _l_shaped()
    front = pareto_front(acc, cost)
    assert front.dtype.kind == "i"
    np.testing.assert_array_equal(cost[front], [1, 2, 4, 8, 16, 32, 64])
    np.testing.assert_array_equal(acc[front], [0.10, 0.50, 0.90, 0.91, 0.92, 0.93, 0.94])
    # of the two identical (4, 0.9) points, only the first by index is kept
    dup = np.flatnonzero((cost == 4.0) & (acc == 0.9))
    assert len(dup) == 2 and dup[0] in front and dup[1] not in front


def test_pareto_front_brute_force():
    rng = np.random.default_rng(1)
    acc = rng.random(60)
    cost = rng.random(60)
    front = set(pareto_front(acc, cost).tolist())
    for i in range(60):
        dominated = any(
            acc[j] >= acc[i] and cost[j] <= cost[i] and (acc[j] > acc[i] or cost[j] < cost[i])
            for j in range(60)
        )
        assert (i in front) == (not dominated)


def test_pareto_front_ties_in_cost_and_accuracy():
    # same cost: the more accurate wins; same accuracy: the cheaper wins
    front = pareto_front([0.5, 0.7, 0.7, 0.9], [1.0, 1.0, 3.0, 5.0])
    assert front.tolist() == [1, 3]


@pytest.mark.parametrize("method", ["curvature", "chord"])
def test_knee_l_shape(method):
    acc, cost, _perm = _l_shaped()
    k = knee_point(acc, cost, log_cost=True, method=method)
    assert (cost[k], acc[k]) == (4.0, 0.90)
    # the knee is on the frontier, and it is the first copy of the duplicated point
    assert k in pareto_front(acc, cost)


def test_knee_default_is_curvature_on_log_cost():
    acc, cost, _ = _l_shaped()
    assert knee_point(acc, cost) == knee_point(acc, cost, log_cost=True, method="curvature")


def test_knee_log_cost_matters():
    # equally spaced in log cost: accuracy bends at cost 10 on a log axis, but on a linear axis
    # the points 1, 10, 100 are squeezed against the left edge and the bend moves to cost 100.
    cost = [1.0, 10.0, 100.0, 1000.0, 10000.0]
    acc = [0.2, 0.8, 0.85, 0.9, 0.95]
    assert cost[knee_point(acc, cost, log_cost=True)] == 10.0
    assert cost[knee_point(acc, cost, log_cost=False)] == 100.0


def test_knee_curvature_vs_chord_can_differ():
    # A sharp local bend near the cheap end (curvature) vs. the point furthest above the chord.
    cost = [1.0, 2.0, 2.2, 8.0, 16.0]
    acc = [0.0, 0.60, 0.62, 0.95, 1.0]
    kc = knee_point(acc, cost, log_cost=False, method="curvature")
    kd = knee_point(acc, cost, log_cost=False, method="chord")
    # normalised: (0, 0), (.067, .6), (.08, .62), (.47, .95), (1, 1). The tight turn at index 1
    # has the smallest circumradius; index 2 lies furthest above the chord (y - x = .54).
    assert (kc, kd) == (1, 2)


def test_knee_fallbacks():
    assert knee_point([0.7], [3.0]) == 0
    # two frontier points: the more accurate one
    assert knee_point([0.7, 0.9], [1.0, 5.0]) == 1
    # a single frontier point among dominated ones
    assert knee_point([0.5, 0.9, 0.4], [2.0, 1.0, 3.0]) == 1
    # straight frontier: no diminishing-returns bend -> the most accurate point
    assert knee_point([0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0], log_cost=False) == 3
    # accelerating (convex) frontier: likewise
    assert knee_point([0.1, 0.11, 0.13, 0.9], [1.0, 2.0, 3.0, 4.0], log_cost=False) == 3


def test_knee_three_points_picks_the_middle_when_concave():
    for method in ("curvature", "chord"):
        assert knee_point([0.1, 0.9, 0.95], [1.0, 2.0, 4.0], method=method) == 1


@pytest.mark.parametrize(
    "acc, cost, kwargs, match",
    [
        ([0.5, 0.6], [1.0, 0.0], {}, "cost"),
        ([0.5, 0.6], [1.0, -1.0], {"log_cost": True}, "cost"),
        ([0.5, 0.6], [1.0], {}, "lengths"),
        ([0.5, np.nan], [1.0, 2.0], {}, "NaN"),
        ([], [], {}, "empty"),
        ([0.5, 0.6], [1.0, 2.0], {"method": "elbow"}, "method"),
        ([[0.5, 0.6]], [[1.0, 2.0]], {}, "one-dimensional"),
    ],
)
def test_knee_rejects_bad_input(acc, cost, kwargs, match):
    with pytest.raises(ValueError, match=match):
        knee_point(acc, cost, **kwargs)


def test_pareto_front_allows_nonpositive_cost_and_rejects_nan():
    assert pareto_front([0.5, 0.6], [-1.0, 0.0]).tolist() == [0, 1]
    with pytest.raises(ValueError, match="NaN"):
        pareto_front([0.5, 0.6], [np.nan, 1.0])


# ------------------------------------------------------------------ sweep helpers


def test_normalise_to_base():
    # Table 4 FLOPs normalised to m = 1
    out = normalise_to_base([20.38, 5.10, 1.30], 20.38)
    np.testing.assert_allclose(out, [1.0, 5.10 / 20.38, 1.30 / 20.38])
    assert normalise_to_base(3.0, 2.0) == 1.5 and isinstance(normalise_to_base(3.0, 2.0), float)
    # per-row baselines broadcast
    np.testing.assert_allclose(
        normalise_to_base([[2.0, 1.0], [9.0, 3.0]], [[2.0], [3.0]]), [[1.0, 0.5], [3.0, 1.0]]
    )


@pytest.mark.parametrize(
    "values, base, match",
    [
        ([1.0, 2.0], 0.0, "non-zero"),
        ([1.0, np.nan], 1.0, "NaN"),
        ([1.0], np.nan, "NaN"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "match"),
    ],
)
def test_normalise_to_base_rejects(values, base, match):
    with pytest.raises(ValueError, match=match):
        normalise_to_base(values, base)


def test_summarize_sample_std():
    mean, std = summarize([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert std == pytest.approx(math.sqrt(5.0 / 3.0))  # ddof = 1
    assert isinstance(mean, float) and isinstance(std, float)
    assert summarize([0.761]) == (0.761, 0.0)
    assert summarize(np.array([[1.0, 3.0]])) == (2.0, pytest.approx(math.sqrt(2.0)))


def test_summarize_axis():
    vals = np.array([[1.0, 2.0], [3.0, 6.0]])
    mean, std = summarize(vals, axis=0)
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(std, [math.sqrt(2.0), math.sqrt(8.0)])
    _mean1, std1 = summarize(vals[:1], axis=0)  # one value per column -> std 0
    np.testing.assert_allclose(std1, [0.0, 0.0])


@pytest.mark.parametrize("values", [[], [1.0, np.nan], [np.inf]])
def test_summarize_rejects(values):
    with pytest.raises(ValueError):
        summarize(values)


def test_summarize_rejects_bad_axis():
    with pytest.raises(ValueError, match="axis"):
        summarize([1.0, 2.0], axis=3)
