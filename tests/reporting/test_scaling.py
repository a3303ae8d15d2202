import numpy as np
import pytest

from benchbench.reporting.scaling import ScalingModel, ScalingPoint, fit, predict, predicted_throughput


def _exact(mode, n, t=0.01, comm=0.002, lat=1e-5):
    compute = t / n if mode == "strong" else t
    return compute + 2 * (n - 1) / n * comm + 2 * (n - 1) * lat


@pytest.mark.parametrize("mode", ["strong", "weak"])
def test_fit_recovers_the_model_from_allreduce_phases(mode):
    points = [ScalingPoint(1, _exact(mode, 1))]
    points += [ScalingPoint(n, _exact(mode, n), 2 * (n - 1) / n * 0.002 + 2 * (n - 1) * 1e-5) for n in (2, 4, 8)]
    model = fit(points, mode=mode)
    assert model.t_compute == pytest.approx(0.01)
    assert model.comm_s == pytest.approx(0.002) and model.latency == pytest.approx(1e-5)
    assert predict(model, 16) == pytest.approx(_exact(mode, 16))


def test_fit_from_step_times_only_and_without_single_point():
    model = fit([(1, _exact("strong", 1)), (2, _exact("strong", 2)), (4, _exact("strong", 4))])
    assert predict(model, 8) == pytest.approx(_exact("strong", 8))
    no_single = fit([{"n": 2, "step_s": _exact("strong", 2), "allreduce_s": 0.002 + 2e-5},
                     {"n": 4, "step_s": _exact("strong", 4), "allreduce_s": 0.003 + 6e-5},
                     {"n": 8, "step_s": _exact("strong", 8), "allreduce_s": 0.0035 + 14e-5}])
    assert no_single.t_compute == pytest.approx(0.01)


def test_fit_never_gives_negative_terms():
    model = fit([(1, 0.010), (2, 0.004), (4, 0.002)])  # super-linear: nothing left for communication
    assert model.comm_s == 0.0 and model.latency == 0.0


def test_predict_with_bandwidth():
    model = fit([(1, 0.01), (2, 0.0065, 0.0015), (4, 0.0045, 0.0022)], bytes=3e6)
    assert model.bandwidth == pytest.approx(3e6 / model.comm_s)
    faster = predict(model, 2, bandwidth=2 * model.bandwidth)
    assert faster == pytest.approx(0.005 + 0.5 * model.comm_s + 2 * model.latency)
    arr = predict(model, np.array([1, 2, 4]))
    assert arr.shape == (3,) and arr[0] == pytest.approx(0.01)
    assert predicted_throughput(model, 1, 100) == pytest.approx(100 / 0.01)


def test_bad_input():
    with pytest.raises(ValueError, match="fit: points is empty"):
        fit([])
    with pytest.raises(ValueError, match="fit: mode"):
        fit([(1, 0.01)], mode="diagonal")
    with pytest.raises(ValueError, match="step_s"):
        fit([(1, -1.0)])
    with pytest.raises(TypeError, match="fit: each point"):
        fit(["x"])
    model = ScalingModel("strong", 0.01, 0.001, 0.0)
    with pytest.raises(ValueError, match="predict: n"):
        predict(model, 0)
    with pytest.raises(ValueError, match="bytes="):
        predict(model, 2, bandwidth=1e9)
    with pytest.raises(TypeError, match="predict: model"):
        predict({"t_compute": 1}, 2)


def test_fewer_than_three_device_counts_need_a_measured_link():
    from benchbench.reporting.scaling import InsufficientData

    with pytest.raises(InsufficientData, match="3 or more distinct device counts"):
        fit([(1, 0.01), (2, 0.0065, 0.0015)])
    with pytest.raises(InsufficientData):
        fit([(1, 0.01), (2, 0.0065, 0.0015)], bytes=3e6)  # a size without a measured link is not enough
    link = {"latency_s": 1e-5, "bandwidth_bytes_per_s": 3e9}
    model = fit([(1, 0.01), (2, 0.0065, 0.0015)], bytes=3e6, link=link)
    assert model.source == "measured interconnect" and model.max_measured_n == 2
    assert model.comm_s == pytest.approx(1e-3) and model.latency == pytest.approx(1e-5)
    # The prediction follows the measured terms exactly: compute/n + 2(n-1)/n x bytes/bw + 2(n-1) x latency.
    assert predict(model, 8) == pytest.approx(0.01 / 8 + 2 * 7 / 8 * 1e-3 + 14 * 1e-5)
