"""Calibration probes: fixed work timed around cells; a cell whose probes moved is contended."""
import pytest

from benchbench.executor import probes


def test_measure_gives_positive_figures():
    p = probes.measure("cpu", budget_s=0.005, reps=2)
    assert p["sgemm_gflops"] > 0 and p["membw_gbs"] > 0 and "gpu_gemm_gflops" not in p


def test_measure_validates():
    with pytest.raises(ValueError, match="budget_s"):
        probes.measure("cpu", budget_s=0)
    with pytest.raises(ValueError, match="reps"):
        probes.measure("cpu", reps=0)


def test_best_rate_follows_a_known_sleep():
    import time

    # 2 units of work per 10 ms call: 200 units/s at best, never faster.
    rate = probes._best_rate(lambda: time.sleep(0.01), 2.0, 0.03, 2)
    assert 50 < rate <= 200


def test_judge_marks_moved_probes():
    before = {"sgemm_gflops": 100.0, "membw_gbs": 10.0}
    steady = probes.judge(before, {"sgemm_gflops": 95.0, "membw_gbs": 10.5}, before)
    assert steady["moved"] is False and steady["reason"] is None
    assert steady["changes"]["sgemm_gflops after/before"] == pytest.approx(0.95)
    slow = probes.judge(before, {"sgemm_gflops": 50.0, "membw_gbs": 10.0})
    assert slow["moved"] is True and "sgemm_gflops after/before = 0.50" in slow["reason"]
    # A neighbour for the whole cell: both readings low against the run's reference.
    ref = {"sgemm_gflops": 200.0, "membw_gbs": 10.0}
    assert probes.judge(before, before, ref)["moved"] is True
    # Faster than the reference is no interference.
    assert probes.judge(ref, ref, before)["moved"] is False
    # Nor is a faster "after": an idle GPU's clocks ramp up (345 MHz -> boost) while the cell runs.
    ramped = probes.judge({"gpu_gemm_gflops": 100.0}, {"gpu_gemm_gflops": 500.0})
    assert ramped["moved"] is False and ramped["changes"]["gpu_gemm_gflops after/before"] == pytest.approx(5.0)


def test_the_gpu_probe_waits_for_the_clocks():
    now = [0.0]
    calls = []

    def ramping():  # a GEMM at idle clocks, ramping to steady after five calls
        calls.append(None)
        now[0] += max(0.001, 0.006 - 0.001 * len(calls))

    assert probes._warm_clocks(ramping, clock=lambda: now[0]) == 7  # three steady calls in a row
    now[0], calls[:] = 0.0, []

    def erratic():  # never steady: the warm-up ends at its time limit
        calls.append(None)
        now[0] += 0.1 if len(calls) % 2 else 0.2

    assert probes._warm_clocks(erratic, max_s=0.3, clock=lambda: now[0]) == 2


def test_run_calibration_marks_the_cell(monkeypatch):
    readings = iter([{"sgemm_gflops": 100.0, "membw_gbs": 10.0}, {"sgemm_gflops": 40.0, "membw_gbs": 10.0},
                     {"sgemm_gflops": 100.0, "membw_gbs": 10.0}])
    monkeypatch.setattr(probes, "measure", lambda *a, **k: dict(next(readings)))
    cal = probes.RunCalibration()
    cal.run_start()
    cell = {"interference": {"verdict": "quiet", "reasons": [],
                             "gpu_probes": {"before": [{"gpu_gemm_gflops": 1000.0}], "after": [{"gpu_gemm_gflops": 990.0}]}}}
    cal.before_cell(0, {})
    cal.after_cell(0, cell)
    inter = cell["interference"]
    assert inter["verdict"] == "contended" and "sgemm_gflops" in inter["reasons"][0]
    assert inter["probes"]["before"]["gpu_gemm_gflops"] == 1000.0
    assert inter["probes"]["changes"]["gpu_gemm_gflops after/before"] == pytest.approx(0.99)
    cal.run_end()
    assert cal.as_dict()["end"] == {"sgemm_gflops": 100.0, "membw_gbs": 10.0}
