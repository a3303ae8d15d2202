"""The bound verdict: a GPU cell records whether its GPU waited for the host, tested with known truths
(the plain simulated GPUs do their work as it is issued: host-bound; with a set device time per
launch, BENCHBENCH_SIM_LAUNCH_DELAY_US, the host waits for them: device-bound)."""
import pytest

from benchbench.core import backend
from benchbench.executor.cell.run_cell import run_cell
from benchbench.executor.bound import HOST_WAIT_SHARE, bound_record
from benchbench.executor.timing import StepTimer

from ..fake_suite import suite_source
from .test_gpu_figures import gpu_desc


def test_the_verdict_from_issue_and_wait_times():
    r = bound_record([0.010, 0.011, 0.012], [0.0001, 0.0002, 0.0001])
    assert r["verdict"] == "host" and r["host_issue_s"] == 0.011 and r["sync_wait_s"] == 0.0001
    assert r["host_share"] + r["wait_share"] == pytest.approx(1.0) and r["threshold"] == HOST_WAIT_SHARE
    assert bound_record([0.002] * 3, [0.030] * 3)["verdict"] == "device"
    assert bound_record([], []) is None


def _timed_steps(steps=5, launches=20):
    cupy = backend.cupy
    timer = StepTimer("gpu:0")
    with backend.Device("gpu:0").scope():
        a = cupy.ones(64, dtype=cupy.float32)
        for _ in range(steps):
            with timer.step():
                for _ in range(launches):
                    a = a * 1.0001
    return bound_record(timer.issue_s, timer.wait_s), timer


@pytest.mark.simgpu
def test_the_plain_simulator_reads_host_and_a_slow_device_reads_device(monkeypatch):
    record, timer = _timed_steps()
    assert record["verdict"] == "host" and len(timer.issue_s) == len(timer.step_s) == 5
    monkeypatch.setenv("BENCHBENCH_SIM_LAUNCH_DELAY_US", "2000")  # 20 launches: 40 ms of device work a step
    record, timer = _timed_steps()
    assert record["verdict"] == "device" and record["sync_wait_s"] > 0.02
    assert min(timer.step_s) >= 0.04  # the events time the device, not the host


@pytest.fixture
def suites(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "tiny.py").write_text(suite_source(target=0.0, extra=""))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.simgpu
@pytest.mark.parametrize("delay_us, verdict", [(None, "host"), ("3000", "device")])
def test_a_gpu_cell_records_its_bound(suites, monkeypatch, delay_us, verdict):
    if delay_us:
        monkeypatch.setenv("BENCHBENCH_SIM_LAUNCH_DELAY_US", delay_us)
    desc = gpu_desc([0], steps=3)
    desc.update(id="tiny/gpu:0/r0", workload="tiny", workload_name="tiny")
    cell = run_cell(desc)
    assert cell["status"] == "ok", cell["reason"]
    bound = cell["bound"]
    assert bound["verdict"] == verdict and bound["steps"] == 3
    assert len(cell["timing"]["issue_s"]) == len(cell["timing"]["sync_wait_s"]) == 3
