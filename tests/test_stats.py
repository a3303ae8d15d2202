import math

import numpy
import pytest

from benchbench import stats


def _lognormal(n, sigma=0.05, seed=1, scale=0.01):
    return scale * numpy.random.default_rng(seed).lognormal(0.0, sigma, n)


def test_summarize_matches_numpy():
    x = _lognormal(200)
    s = stats.summarize(x)
    assert s["n"] == 200
    assert s["median"] == pytest.approx(numpy.median(x))
    assert s["q1"] == pytest.approx(numpy.percentile(x, 25))
    assert s["q3"] == pytest.approx(numpy.percentile(x, 75))
    assert s["iqr"] == pytest.approx(s["q3"] - s["q1"])
    assert s["mean"] == pytest.approx(x.mean())
    assert s["std"] == pytest.approx(x.std(ddof=1))
    assert (s["min"], s["max"]) == (x.min(), x.max())
    assert set(s) == set(stats.SUMMARY_FIELDS)


def test_summarize_hand_values():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0
    assert (s["q1"], s["q3"], s["iqr"]) == (2.0, 4.0, 2.0)
    assert s["mean"] == 22.0


def test_summarize_returns_plain_python_types():
    s = stats.summarize(numpy.arange(1, 11, dtype=numpy.float32))
    assert type(s["n"]) is int and type(s["noisy"]) is bool
    assert all(type(s[k]) is float for k in stats.SUMMARY_FIELDS if k not in ("n", "noisy"))


def test_ci_covers_median_and_narrows_with_more_samples():
    small = stats.summarize(_lognormal(20))
    large = stats.summarize(_lognormal(2000))
    for s in (small, large):
        assert s["ci_low"] <= s["median"] <= s["ci_high"]
    assert (large["ci_high"] - large["ci_low"]) < (small["ci_high"] - small["ci_low"])


def test_ci_covers_true_median_mostly():
    # Coverage of the true median (1.0 for a lognormal with mu=0) over independent data sets.
    summaries = [stats.summarize(numpy.random.default_rng(s).lognormal(0, 0.2, 60), n_boot=500) for s in range(40)]
    hits = sum(s["ci_low"] <= 1.0 <= s["ci_high"] for s in summaries)
    assert hits >= 32


def test_wider_confidence_gives_wider_interval():
    x = _lognormal(100)
    a, b = stats.summarize(x, confidence=0.5), stats.summarize(x, confidence=0.99)
    assert b["ci_low"] <= a["ci_low"] and a["ci_high"] <= b["ci_high"]
    assert (b["ci_high"] - b["ci_low"]) > (a["ci_high"] - a["ci_low"])


def test_deterministic_given_seed():
    x = _lognormal(50, sigma=0.3)
    assert stats.summarize(x, seed=3) == stats.summarize(x, seed=3)
    assert stats.summarize(x, seed=3)["ci_low"] != stats.summarize(x, seed=4)["ci_low"]


@pytest.mark.parametrize("n", [301, 300])
def test_order_statistic_bootstrap_matches_index_matrix(monkeypatch, n):
    x = _lognormal(n, sigma=0.3)
    rng = numpy.random.default_rng(0)
    matrix = stats._bootstrap_medians(x, 4000, rng)
    monkeypatch.setattr(stats.samples, "_INDEX_MATRIX_LIMIT", 0)
    direct = stats._bootstrap_medians(x, 4000, rng)
    if n % 2:
        assert numpy.all(numpy.isin(direct, x))  # an odd resample's median is one of the samples
    for q in (0.025, 0.5, 0.975):
        assert numpy.quantile(direct, q) == pytest.approx(numpy.quantile(matrix, q), rel=0.01)
    s = stats.summarize(x)
    assert s["ci_low"] <= s["median"] <= s["ci_high"]


def test_large_sample_summary():
    x = _lognormal(50_000, sigma=0.02)
    s = stats.summarize(x)
    assert s["ci_low"] <= s["median"] <= s["ci_high"] and s["n"] == 50_000
    assert s == stats.summarize(x)
    assert not s["noisy"]


def test_noise_flag_rule():
    quiet = stats.summarize(numpy.full(50, 0.01) + _lognormal(50, scale=1e-5))
    assert not quiet["noisy"]
    wide = stats.summarize(numpy.tile([0.01, 0.02], 50))  # IQR/median = 0.5 / 1.5 > 0.1
    assert wide["noisy"]
    few = stats.summarize([0.01, 0.01, 0.01, 0.01])  # fewer than MIN_SAMPLES
    assert few["noisy"] and few["iqr"] == 0.0


def test_single_sample():
    s = stats.summarize([0.5])
    assert s["n"] == 1
    assert s["median"] == s["ci_low"] == s["ci_high"] == 0.5
    assert s["std"] == 0.0 and s["noisy"]


def test_two_samples():
    s = stats.summarize([1.0, 3.0])
    assert s["median"] == 2.0 and s["ci_low"] <= 2.0 <= s["ci_high"]
    assert s["noisy"]


def test_zero_median_does_not_divide_by_zero():
    assert not stats.summarize(numpy.zeros(10))["noisy"]
    assert stats.summarize([0.0] * 6 + [1.0] * 4)["noisy"]


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], [math.inf, 1.0], numpy.empty(0)])
def test_summarize_rejects_empty_and_non_finite(bad):
    with pytest.raises(ValueError, match="summarize: samples"):
        stats.summarize(bad)


@pytest.mark.parametrize("bad", ["1,2,3", {"a": 1}, [1.0, "x"], [[1.0, 2.0]]])
def test_summarize_rejects_non_sequences(bad):
    with pytest.raises((TypeError, ValueError), match="summarize: samples"):
        stats.summarize(bad)


@pytest.mark.parametrize("kw", [{"confidence": 1.0}, {"confidence": 0}, {"n_boot": 0}, {"n_boot": 2.5},
                                {"seed": -1}, {"seed": True}])
def test_summarize_rejects_bad_options(kw):
    with pytest.raises(ValueError, match="summarize: "):
        stats.summarize([1.0, 2.0, 3.0], **kw)


def test_throughput_from_per_step_samples():
    step = numpy.array([0.1, 0.2, 0.4, 0.1, 0.1])
    s = stats.throughput_summary(step, 100)
    assert s["median"] == pytest.approx(numpy.median(100 / step))
    assert s["max"] == pytest.approx(1000.0) and s["min"] == pytest.approx(250.0)
    assert s["ci_low"] <= s["median"] <= s["ci_high"]


@pytest.mark.parametrize("step, batch", [([0.1, 0.0], 10), ([0.1, -1.0], 10), ([0.1], 0), ([0.1], True), ([], 10)])
def test_throughput_rejects_bad_input(step, batch):
    with pytest.raises(ValueError, match="throughput_summary"):
        stats.throughput_summary(step, batch)


def test_ratio_ci_detects_a_real_difference():
    a, b = _lognormal(100, seed=1), _lognormal(100, seed=2) * 0.5
    r = stats.ratio_ci(a, b)
    assert r["ratio"] == pytest.approx(numpy.median(a) / numpy.median(b))
    assert r["ci_low"] <= r["ratio"] <= r["ci_high"]
    assert r["significant"] and r["ci_low"] > 1.0
    assert (r["n_a"], r["n_b"]) == (100, 100)


def test_ratio_ci_same_distribution_not_significant():
    r = stats.ratio_ci(_lognormal(100, seed=1), _lognormal(100, seed=2))
    assert r["ci_low"] <= 1.0 <= r["ci_high"] and not r["significant"]


def test_ratio_ci_deterministic_and_single_samples():
    a, b = _lognormal(30, seed=5), _lognormal(30, seed=6)
    assert stats.ratio_ci(a, b, seed=1) == stats.ratio_ci(a, b, seed=1)
    r = stats.ratio_ci([2.0], [1.0])
    assert r["ratio"] == r["ci_low"] == r["ci_high"] == 2.0 and r["significant"]


def test_ratio_ci_rejects_zero_denominator_and_bad_samples():
    with pytest.raises(ValueError, match="median 0"):
        stats.ratio_ci([1.0], [0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="ratio_ci: b_samples"):
        stats.ratio_ci([1.0], [])


def test_speedup_efficiency():
    base = 1000.0 / _lognormal(80, seed=1, scale=1.0)
    scaled = 1800.0 / _lognormal(80, seed=2, scale=1.0)
    r = stats.speedup_efficiency(base, scaled, 2)
    expected = numpy.median(scaled) / numpy.median(base)
    assert r["speedup"] == pytest.approx(expected)
    assert r["efficiency"] == pytest.approx(expected / 2)
    assert r["efficiency_ci_low"] <= r["efficiency"] <= r["efficiency_ci_high"]
    assert r["speedup_ci_low"] == pytest.approx(2 * r["efficiency_ci_low"])
    assert r["significant"] and r["n_devices"] == 2


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_speedup_efficiency_rejects_bad_n_devices(n):
    with pytest.raises(ValueError, match="speedup_efficiency: n_devices"):
        stats.speedup_efficiency([1.0], [2.0], n)
