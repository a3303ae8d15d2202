"""Coverage of the intervals over few repeats, in simulated trials (seeded, so the test is exact).

Each trial draws ``r`` repeats whose medians scatter 5% run to run around a true median of 1, with
1% step noise inside each run. The nominal 95% interval must hold the true median in at least 90%
of the trials, and two identical machines must be called significantly different in at most 7%.
(A percentile bootstrap of the repeat medians covered 48% / 75% / 92% at r = 2 / 3 / 5 and called
identical machines different in 32% / 14% / 4% of trials.)
"""
import numpy as np
import pytest

from benchbench import stats

TRIALS, STEPS, RUN_SD, STEP_SD = 200, 12, 0.05, 0.01


def _repeats(rng, r):
    levels = np.exp(RUN_SD * rng.standard_normal(r))
    return [lvl * (1.0 + STEP_SD * rng.standard_normal(STEPS)) for lvl in levels]


@pytest.mark.parametrize("r", [2, 3, 5])
def test_nominal_95_covers_and_does_not_call_identical_machines_different(r):
    rng = np.random.default_rng(1000 + r)
    covered = significant = 0
    for _ in range(TRIALS):
        s = stats.repeats_summary(_repeats(rng, r), n_boot=50)
        covered += s["ci_low"] <= 1.0 <= s["ci_high"]
        significant += stats.repeats_ratio(_repeats(rng, r), _repeats(rng, r), n_boot=50)["significant"]
    assert s["interval"] == "t-log-medians"
    assert covered / TRIALS >= 0.90, f"coverage {covered / TRIALS:.0%} at r={r}"
    assert significant / TRIALS <= 0.07, f"false significance {significant / TRIALS:.0%} at r={r}"


def test_a_real_difference_is_still_found():
    rng = np.random.default_rng(7)
    found = sum(stats.repeats_ratio([g * 1.3 for g in _repeats(rng, 5)], _repeats(rng, 5), n_boot=50)["significant"]
                for _ in range(50))
    assert found >= 45


def test_t_quantile_against_tables():
    assert stats.t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert stats.t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert stats.t_quantile(0.975, 9) == pytest.approx(2.262, abs=1e-3)
    assert stats.t_quantile(0.95, 30) == pytest.approx(1.697, abs=1e-3)
    assert stats.t_quantile(0.025, 4) == pytest.approx(-2.776, abs=1e-3)
    with pytest.raises(ValueError):
        stats.t_quantile(1.0, 3)
