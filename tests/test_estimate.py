"""Tests for motifcore.estimate (Sec. 3.5 latency/energy model and the latency probe)."""

import numpy as np
import pytest
from motifcore.analysis.estimate import (
    NORMALISATIONS,
    EnergyModel,
    LatencyMeasurement,
    LatencyModel,
    implied_kappa,
    measure_latency,
    relative_energy,
    relative_latency,
)

TABLE1_MS = [1, 2, 4, 8]
# Table 1 (Chen et al., AI 2025): "1.00, 0.25 + k/2, 0.06 + k/4, 0.02 + k/8"
TABLE1_CONST = [1.00, 0.25, 0.06, 0.02]
TABLE1_KAPPA_COEF = [None, 1 / 2, 1 / 4, 1 / 8]


# ------------------------------------------------------------------ Table 1


@pytest.mark.parametrize("fn", [relative_latency, relative_energy])
def test_table1_rows_compute_normalisation(fn):
    const = fn(np.array(TABLE1_MS), 0.0)
    np.testing.assert_array_equal(np.round(const, 2), TABLE1_CONST)
    for m, c0, coef in zip(TABLE1_MS[1:], TABLE1_CONST[1:], TABLE1_KAPPA_COEF[1:]):
        for kappa in (0.1, 1.0, 7.5):
            val = fn(m, kappa)  # default normalisation is Table 1's printed form
            assert val == pytest.approx(1 / m**2 + coef * kappa)
            assert round(val - coef * kappa, 2) == c0
    # in this normalisation m = 1 costs 1 + kappa (Table 1's "1.00" holds only at kappa = 0)
    assert fn(1, 0.5) == pytest.approx(1.5)


@pytest.mark.parametrize("fn", [relative_latency, relative_energy])
def test_table1_m1_normalisation(fn):
    kappas = np.array([0.0, 0.1, 1.0, 10.0])
    # normalised to the total of m = 1: exactly 1.00 there for every kappa
    np.testing.assert_allclose(fn(1, kappas, normalisation="m1"), 1.0)
    for m in TABLE1_MS:
        np.testing.assert_allclose(
            fn(m, kappas, normalisation="m1"), (1 / m**2 + kappas / m) / (1 + kappas)
        )
    # compute-bound limit matches Table 1; bandwidth-bound tends to 1/m
    assert fn(2, 0.0, normalisation="m1") == pytest.approx(0.25)
    assert fn(4, 1e9, normalisation="m1") == pytest.approx(0.25, rel=1e-6)


def test_relative_latency_vectorised_broadcast():
    out = relative_latency(np.array([[1], [2], [4]]), np.array([0.0, 1.0]))
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out[:, 1], [2.0, 0.75, 0.3125])
    assert isinstance(relative_latency(2, 1.0), float)


@pytest.mark.parametrize(
    "m, kappa, norm, match",
    [
        (0, 1.0, "compute", "m must be > 0"),
        (-2, 1.0, "compute", "m must be > 0"),
        (2, -0.1, "compute", "kappa must be >= 0"),
        (np.nan, 1.0, "compute", "NaN"),
        (2, np.nan, "m1", "NaN"),
        (2, 1.0, "dense", "normalisation"),
        ([1, 2, 4], [0.0, 1.0], "m1", "match"),
    ],
)
def test_relative_latency_rejects(m, kappa, norm, match):
    with pytest.raises(ValueError, match=match):
        relative_latency(m, kappa, normalisation=norm)


def test_normalisations_constant():
    assert NORMALISATIONS == ("compute", "m1")


# ------------------------------------------------------------------ implied kappa


def test_implied_kappa_roundtrip():
    for m in (2, 4, 8):
        for kappa in (0.0, 0.3, 2.0):
            for norm in NORMALISATIONS:
                r = relative_latency(m, kappa, normalisation=norm)
                assert implied_kappa(r, m, normalisation=norm) == pytest.approx(kappa, abs=1e-12)


def test_implied_kappa_table7_measured_ratios_are_outside_the_model():
    # Table 7: measured m=2/m=1 time ratios 0.57 (FMNIST) and 0.70 (Lung) exceed 1/m = 0.5,
    # which (1/m^2 + k/m)/(1 + k) can never reach for k >= 0.
    for ratio in (47.69 / 84.12, 11.50 / 16.51):
        with pytest.raises(ValueError, match="does not shrink with m"):
            implied_kappa(ratio, 2, normalisation="m1")
    # read in Table 1's compute normalisation they do map to a kappa
    assert implied_kappa(0.57, 2, normalisation="compute") == pytest.approx(0.64)


@pytest.mark.parametrize(
    "ratio, m, norm",
    [(0.2, 2, "compute"), (0.2, 2, "m1"), (1.0, 1, "m1"), (0.5, 0, "m1"), (np.nan, 2, "m1")],
)
def test_implied_kappa_rejects(ratio, m, norm):
    with pytest.raises(ValueError):
        implied_kappa(ratio, m, normalisation=norm)


# ------------------------------------------------------------------ LatencyModel


def test_calibrate_matches_measurement_and_kappa():
    lat = LatencyModel.calibrate(0.012, kappa=0.5)
    assert lat.predict(1) == pytest.approx(0.012)
    assert lat.kappa == pytest.approx(0.5)
    assert (lat.compute, lat.memory, lat.overhead) == pytest.approx((0.008, 0.004, 0.0))
    ms = np.array([1, 2, 4, 8])
    np.testing.assert_allclose(lat.predict(ms), 0.012 * relative_latency(ms, 0.5, "m1"))
    np.testing.assert_allclose(lat.relative(ms), relative_latency(ms, 0.5, "m1"))
    np.testing.assert_allclose(lat.relative(ms, "compute"), relative_latency(ms, 0.5))
    assert isinstance(lat.predict(2), float)


def test_calibrate_compute_bound_default_and_overhead():
    lat = LatencyModel.calibrate(2.0)
    assert lat.kappa == 0.0 and lat.predict(2) == pytest.approx(0.5)
    lat2 = LatencyModel.calibrate(2.0, kappa=1.0, overhead=0.5)
    assert lat2.predict(1) == pytest.approx(2.0)
    assert lat2.predict(1e6) == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((0.0,), {}),
        ((-1.0,), {}),
        ((1.0,), {"kappa": -0.5}),
        ((np.nan,), {}),
        ((1.0,), {"overhead": 1.0}),
        ((1.0,), {"overhead": -0.1}),
    ],
)
def test_calibrate_rejects(args, kwargs):
    with pytest.raises(ValueError):
        LatencyModel.calibrate(*args, **kwargs)


def test_model_fields_validated():
    with pytest.raises(ValueError, match="memory must be >= 0"):
        LatencyModel(compute=1.0, memory=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        LatencyModel(compute=np.nan)
    with pytest.raises(ValueError, match="at least one"):
        LatencyModel(compute=0.0)
    with pytest.raises(ValueError, match="m must be > 0"):
        LatencyModel(compute=1.0).predict([1, 0])
    with pytest.raises(ValueError, match="compute > 0"):
        LatencyModel(compute=0.0, memory=1.0).relative(2, "compute")
    assert LatencyModel(compute=0.0, memory=1.0).kappa == float("inf")


def test_fit_recovers_coefficients():
    truth = LatencyModel(compute=3.0, memory=0.7)
    ms = np.array([1, 2, 4, 8, 16])
    fitted = LatencyModel.fit(ms, truth.predict(ms))
    assert (fitted.compute, fitted.memory, fitted.overhead) == pytest.approx((3.0, 0.7, 0.0))
    # two points are enough for two terms
    two = LatencyModel.fit([1, 4], truth.predict(np.array([1, 4])))
    assert (two.compute, two.memory) == pytest.approx((3.0, 0.7))
    three = LatencyModel(compute=2.0, memory=1.0, overhead=0.25)
    fit3 = LatencyModel.fit(ms, three.predict(ms), terms=("compute", "memory", "overhead"))
    assert (fit3.compute, fit3.memory, fit3.overhead) == pytest.approx((2.0, 1.0, 0.25))


def test_fit_is_nonnegative_least_squares():
    # Table 4 FMNIST epoch times: the unconstrained 2-term fit has a negative compute term;
    # the constrained fit keeps every coefficient >= 0 and is the best such fit.
    ms, t = np.array([1.0, 2.0, 4.0]), np.array([84.12, 47.69, 30.70])
    unconstrained, *_ = np.linalg.lstsq(np.c_[1 / ms**2, 1 / ms], t, rcond=None)
    assert unconstrained[0] < 0
    fit = LatencyModel.fit(ms, t)
    assert fit.compute >= 0 and fit.memory >= 0
    ssr = np.sum((fit.predict(ms) - t) ** 2)
    rng = np.random.default_rng(0)
    for c, mem in rng.uniform(0, 120, size=(2000, 2)):
        assert ssr <= np.sum((c / ms**2 + mem / ms - t) ** 2) + 1e-9


@pytest.mark.parametrize(
    "ms, t, table_value",
    [
        ([1, 2, 4], [84.12, 47.69, 30.70], 31.14),  # Table 4, FMNIST, m = 8 "(proj.)"
        ([1, 2, 4], [16.51, 11.50, 11.39], 10.68),  # Table 5, Lung, m = 8 "(proj.)"
    ],
)
def test_fit_reproduces_tables_4_5_projection(ms, t, table_value):
    # the paper's saturating fit t(m) = a + b/m^2 is the (compute, overhead) model
    fit = LatencyModel.fit(ms, t, terms=("compute", "overhead"))
    assert fit.memory == 0.0
    assert round(fit.predict(8), 2) == table_value


@pytest.mark.parametrize(
    "ms, t, terms, match",
    [
        ([1, 2], [1.0], ("compute", "memory"), "lengths"),
        ([1, 1, 1], [1.0, 1.1, 0.9], ("compute", "memory"), "distinct"),
        ([1, 2], [1.0, 0.5], ("compute", "memory", "overhead"), "distinct"),
        ([1, 2], [1.0, 0.0], ("compute", "memory"), "measured must be > 0"),
        ([0, 2], [1.0, 0.5], ("compute", "memory"), "ms must be > 0"),
        ([1, 2], [1.0, np.nan], ("compute", "memory"), "NaN"),
        ([1, 2], [1.0, 0.5], ("compute", "cache"), "terms"),
        ([1, 2], [1.0, 0.5], ("compute", "compute"), "terms"),
        ([1, 2], [1.0, 0.5], (), "terms"),
    ],
)
def test_fit_rejects(ms, t, terms, match):
    with pytest.raises(ValueError, match=match):
        LatencyModel.fit(ms, t, terms=terms)


# ------------------------------------------------------------------ Table 10 / Table 14


# Sec. 5.6: throughput 15 / 2 / 5 GFLOP/s and power 15 / 3 / 5 W; FLOPs 24.17 M (m=1), 6.05 M (m=2)
DEVICES = {"Laptop CPU": (15e9, 15.0), "RPi4": (2e9, 3.0), "Android": (5e9, 5.0)}
TABLE10 = {  # (latency ms, energy J) for m = 2 and m = 1
    ("Laptop CPU", 2): (0.40, 0.006),
    ("Laptop CPU", 1): (1.61, 0.024),
    ("RPi4", 2): (3.03, 0.009),
    ("RPi4", 1): (12.08, 0.036),
    ("Android", 2): (1.21, 0.006),
    ("Android", 1): (4.83, 0.024),
}
MACS = {1: 24.17e6, 2: 6.05e6}


@pytest.mark.parametrize("device, m", sorted(TABLE10))
def test_table10_rows(device, m):
    flops_per_s, watts = DEVICES[device]
    lat = LatencyModel.from_counts(macs=MACS[m], seconds_per_mac=1.0 / flops_per_s)
    energy = EnergyModel.from_latency(lat, power_watts=watts)
    want_ms, want_j = TABLE10[(device, m)]
    assert lat.predict(1) * 1e3 == pytest.approx(want_ms, abs=0.0051)
    assert energy.predict(1) == pytest.approx(want_j, abs=0.00051)
    # the m = 2 row is (to rounding) the compute-bound model of the m = 1 counts
    if m == 2:
        lat1 = LatencyModel.from_counts(macs=MACS[1], seconds_per_mac=1.0 / flops_per_s)
        assert lat1.predict(2) * 1e3 == pytest.approx(want_ms, abs=0.011)


def test_table14_magnitude_pruned_latency():
    # unstructured sparse at 40 % of the 15 GFLOP/s dense throughput, 6.05 M MACs -> 1.01 ms
    lat = LatencyModel.from_counts(macs=6.05e6, seconds_per_mac=1.0 / (0.4 * 15e9))
    assert round(lat.predict(1) * 1e3, 2) == 1.01


def test_table7_compute_bound_proxy():
    # Table 7's dense-lite proxy Lat = Params / Params_dense = 5.10/20.38 ~ 0.25 = 1/m^2 at m = 2
    assert relative_latency(2, 0.0) == pytest.approx(0.25)
    assert round(5.10 / 20.38, 2) == round(relative_latency(2, 0.0), 2)


def test_from_counts_with_memory_term_and_overheads():
    lat = LatencyModel.from_counts(
        macs=1e6, seconds_per_mac=1e-9, loads=2e5, seconds_per_load=5e-9, alpha=0.5, beta=0.8
    )
    assert lat.compute == pytest.approx(0.5 * 1e6 * 1e-9)
    assert lat.memory == pytest.approx(0.8 * 2e5 * 5e-9)
    assert lat.kappa == pytest.approx((0.8 * 2e5 * 5e-9) / (0.5 * 1e6 * 1e-9))
    with pytest.raises(ValueError, match="alpha"):
        LatencyModel.from_counts(macs=1e6, seconds_per_mac=1e-9, alpha=-1.0)
    with pytest.raises(ValueError, match="zero model"):
        LatencyModel.from_counts(macs=0.0, seconds_per_mac=1e-9)


# ------------------------------------------------------------------ EnergyModel


def test_energy_from_latency_is_power_times_latency():
    lat = LatencyModel(compute=2e-3, memory=1e-3, overhead=1e-4)
    en = EnergyModel.from_latency(lat, power_watts=5.0)
    ms = np.array([1, 2, 4, 8])
    np.testing.assert_allclose(en.predict(ms), 5.0 * lat.predict(ms))
    assert en.kappa == pytest.approx(lat.kappa)  # Table 1's identical rows
    np.testing.assert_allclose(en.relative(ms), lat.relative(ms))
    with pytest.raises(ValueError, match="power_watts"):
        EnergyModel.from_latency(lat, power_watts=0.0)
    with pytest.raises(TypeError):
        EnergyModel.from_latency(en, power_watts=1.0)  # type: ignore[arg-type]


def test_energy_has_its_own_kappa():
    # per-load energy relatively dearer than per-load time -> kappa_E != kappa
    lat = LatencyModel.from_counts(macs=1e6, seconds_per_mac=1e-9, loads=1e6, seconds_per_load=1e-9)
    en = EnergyModel.from_counts(macs=1e6, joules_per_mac=1e-12, loads=1e6, joules_per_load=1e-11)
    assert lat.kappa == pytest.approx(1.0) and en.kappa == pytest.approx(10.0)
    np.testing.assert_allclose(
        en.relative([1, 2, 4], "compute"), relative_energy(np.array([1, 2, 4]), 10.0)
    )
    en2 = EnergyModel.calibrate(0.03, kappa=10.0)
    assert en2.predict(1) == pytest.approx(0.03) and isinstance(en2, EnergyModel)
    assert isinstance(EnergyModel.fit([1, 2], [1.0, 0.4]), EnergyModel)
    assert LatencyModel.unit == "s" and EnergyModel.unit == "J"


# ------------------------------------------------------------------ measure_latency


class _Recorder:
    def __init__(self):
        self.shapes = []
        self.firsts = []
        self.dtypes = []

    def __call__(self, batch):
        self.shapes.append(batch.shape)
        self.firsts.append(float(batch[0, 0]))
        self.dtypes.append(batch.dtype)
        return batch @ np.ones((batch.shape[1], 3), dtype=batch.dtype)


def test_measure_latency_structure():
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    rec = _Recorder()
    res = measure_latency(rec, x, batch_size=3, repeats=7, warmup=2)
    assert isinstance(res, LatencyMeasurement)
    assert len(rec.shapes) == 2 + 7
    assert all(s == (3, 4) for s in rec.shapes)
    assert all(d == np.float32 for d in rec.dtypes)  # no hidden cast or copy to float64
    assert res.batch_size == 3 and res.repeats == 7 and res.warmup == 2
    assert res.batch_times.shape == (7,) and (res.batch_times >= 0).all()
    assert res.seconds_per_batch == pytest.approx(float(np.median(res.batch_times)))
    assert res.seconds_per_sample == pytest.approx(res.seconds_per_batch / 3)
    assert res.seconds_per_sample > 0
    assert res.throughput == pytest.approx(1.0 / res.seconds_per_sample)
    # consecutive batches, wrapping round: starts 0, 3, 6, 1, 4, 7, 2, 5, 0 (rows 0..7 start)
    assert [int(f) // 4 for f in rec.firsts] == [0, 3, 6, 1, 4, 7, 2, 5, 0]


def test_measure_latency_defaults_batch1_and_plain_function():
    calls = []
    res = measure_latency(lambda b: calls.append(b.shape), np.zeros((5, 2)))
    assert res.batch_size == 1 and res.warmup >= 0 and res.repeats >= 1
    assert len(calls) == res.warmup + res.repeats
    assert set(calls) == {(1, 2)}
    assert res.throughput == pytest.approx(1.0 / res.seconds_per_sample)


def test_measure_latency_accepts_lists_and_1d_rows():
    res = measure_latency(lambda b: np.sum(b), [1.0, 2.0, 3.0], batch_size=3, repeats=2, warmup=0)
    assert res.batch_times.shape == (2,)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"batch_size": 11}, ValueError, "fewer than batch_size"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 1.5}, TypeError, "integer"),
        ({"batch_size": True}, TypeError, "integer"),
        ({"repeats": 0}, ValueError, "repeats"),
        ({"warmup": -1}, ValueError, "warmup"),
    ],
)
def test_measure_latency_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        measure_latency(lambda b: b, np.zeros((10, 2)), **kwargs)


def test_measure_latency_rejects_non_callable_and_scalar_x():
    with pytest.raises(TypeError, match="callable"):
        measure_latency("predict", np.zeros((3, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dimension"):
        measure_latency(lambda b: b, 3.0)
