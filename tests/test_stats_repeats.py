"""Intervals over repeats: hierarchical bootstrap, within-run labels, repeats needed to decide."""
import numpy as np
import pytest

from benchbench import stats


def _runs(medians, n=60, spread=0.005, seed=0):
    rng = np.random.default_rng(seed)
    return [m * (1 + spread * rng.standard_normal(n)) for m in medians]


def test_hierarchical_interval_covers_the_run_to_run_spread():
    # Three runs whose medians differ by 10%: steps alone give a narrow interval that no run
    # reproduces; the hierarchical interval is as wide as the runs are apart.
    groups = _runs([1.0, 1.1, 0.9])
    pooled = stats.summarize(np.concatenate(groups))
    h = stats.repeats_summary(groups)
    assert h["interval"] == "t-log-medians" and h["repeats"] == 3
    assert pooled["ci_high"] - pooled["ci_low"] < 0.03
    assert h["ci_low"] < 0.95 and h["ci_high"] > 1.05
    assert h["median"] == pytest.approx(pooled["median"])
    assert h["repeat_medians"] == pytest.approx([1.0, 1.1, 0.9], rel=0.01)
    many = stats.repeats_summary(_runs([1.0, 1.1, 0.9] * 4), n_boot=200)
    assert many["interval"] == "hierarchical" and many["ci_low"] < 0.98 and many["ci_high"] > 1.02


def test_one_repeat_is_labelled_within_run():
    [g] = _runs([1.0])
    s = stats.repeats_summary([g])
    assert s["interval"] == "within-run" and s["repeats"] == 1
    assert (s["ci_low"], s["ci_high"]) == (stats.summarize(g)["ci_low"], stats.summarize(g)["ci_high"])


def test_within_run_is_never_significant_and_says_how_many_repeats():
    a, b = _runs([2.0]), _runs([1.0], seed=1)
    r = stats.repeats_ratio(a, b)
    assert r["interval"] == "within-run" and r["significant"] is False
    assert r["ci_low"] > 1.5  # the within-run interval alone would have called it
    # A 2x difference at the assumed 5% run-to-run variation: 2 * (1.96 * 0.05 / ln 2)^2 < 1 -> 2 repeats.
    assert r["cv_source"] == "assumed" and r["repeats_needed"] == 2
    small = stats.repeats_ratio(_runs([1.02]), _runs([1.0], seed=1))
    assert small["repeats_needed"] == pytest.approx(np.ceil(2 * (1.96 * 0.05 / np.log(1.02)) ** 2), abs=4)


def test_repeats_decide():
    fast = stats.repeats_ratio(_runs([2.0, 2.1, 1.9]), _runs([1.0, 1.05, 0.95], seed=1))
    assert fast["interval"] == "welch-log-medians" and fast["significant"] is True and fast["repeats_needed"] is None
    same = stats.repeats_ratio(_runs([1.0, 1.1, 0.9]), _runs([1.01, 0.92, 1.08], seed=1))
    assert same["significant"] is False and same["cv_source"] == "measured"
    assert same["run_to_run_cv"] == pytest.approx(0.08, abs=0.03)


def test_validation():
    with pytest.raises(ValueError, match="groups"):
        stats.repeats_summary([])
    with pytest.raises(ValueError, match="finite"):
        stats.repeats_summary([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="median 0"):
        stats.repeats_ratio([[1.0]], [[0.0]])
