"""Energy over the timed window, the memory pool's high-water mark, what deterministic mode changes."""
import os
import time

import pytest

from benchbench.executor.cell import measurements as cell_figures, device_memory
from benchbench.executor.cell.run_cell import run_cell
from benchbench.executor.timing import StepTimer
from benchbench.executor.cell.window import TimedWindow, combine

from .test_runner import desc, suites  # noqa: F401  (fixture)


class ConstantPower:
    """An NVML stand-in whose energy counter (mJ) grows at ``watts`` with wall time."""

    def __init__(self, watts, others=()):
        self.watts, self.t0, self.others = watts, time.perf_counter(), list(others)

    def energy_mj(self):
        return int(self.watts * 1000 * (time.perf_counter() - self.t0))

    def process_ids(self):
        return [os.getpid(), *self.others]

    def clock_events(self):
        return []


def _timed(window, timer, steps, step_s):
    for _ in range(steps):
        with timer.step():
            time.sleep(step_s)


@pytest.mark.parametrize("ranks", [1, 2])
def test_energy_covers_the_timed_steps_only(ranks):
    watts, batch, step_s = 250.0, 100, 0.05
    timer = StepTimer("cpu")
    windows = [TimedWindow(ConstantPower(watts)) for _ in range(ranks)]
    for w in windows:
        w.start()
    _timed(windows, timer, 4, step_s)
    for w in windows:
        w.pause()
    time.sleep(0.3)  # validation: outside the window
    for w in windows:
        w.resume()
    _timed(windows, timer, 4, step_s)
    for w in windows:
        w.stop()
    n = len(timer.step_s)
    _, energy = combine([w.as_dict() for w in windows], threads_per_rank=None, probes=None, steps=n,
                        samples=n * batch, steps_per_epoch=10)
    # The truth: every rank's counter grows at `watts` over the window, and nothing else is counted.
    assert energy["joules"] == pytest.approx(ranks * watts * energy["window_s"], rel=0.05)
    assert energy["joules_per_sample"] == pytest.approx(energy["joules"] / (n * batch), rel=1e-9)
    assert energy["samples_per_joule"] == pytest.approx(1 / energy["joules_per_sample"])
    # The window is the timed steps: at least their sum, and without the 0.3 s of validation between
    # them (on a quiet machine J/sample is then ranks x P x step / batch within a few per cent).
    assert sum(timer.step_s) * 0.99 <= energy["window_s"] < sum(timer.step_s) + 0.25, \
        (energy["window_s"], sum(timer.step_s))
    assert energy["joules_per_epoch"] == pytest.approx(energy["joules"] / n * 10)
    assert energy["window"] == "timed steps" and energy["ranks"] == ranks and energy["source"] == "nvml"


def test_other_processes_on_the_gpu_make_the_cell_contended():
    w = TimedWindow(ConstantPower(100.0, others=[4242]))
    w.start()
    time.sleep(0.05)
    w.stop()
    record, _ = combine([w.as_dict()], threads_per_rank=None, probes=None, steps=1, samples=1)
    assert record["gpu"]["other_processes"] == [4242] and record["verdict"] == "contended"


def test_no_counter_means_no_energy_figure():
    class NoCounter(ConstantPower):
        def energy_mj(self):
            return None

    w = TimedWindow(NoCounter(1.0))
    w.start()
    w.stop()
    _, energy = combine([w.as_dict()], threads_per_rank=None, probes=None, steps=1, samples=1)
    assert energy["joules"] is None and energy["samples_per_joule"] is None


class FakePool:
    def __init__(self, limit):
        self.used, self.limit = 0, limit

    def malloc(self, size):
        if self.used + size > self.limit:
            raise MemoryError(f"Out of memory allocating {size:,} bytes (allocated so far: {self.used:,} bytes).")
        self.used += size
        return size

    def free(self, size):
        self.used -= size

    def used_bytes(self):
        return self.used


class FakeCupy:
    def __init__(self, limit=1 << 20):
        self.pool = FakePool(limit)
        self.allocator = None
        self.cuda = self

    def get_default_memory_pool(self):
        return self.pool

    def set_allocator(self, fn):
        self.allocator = fn


def test_pool_peak_is_the_high_water_mark_of_allocated_bytes():
    cp = FakeCupy()
    with device_memory.PoolPeak(cp) as tracker:
        assert cp.allocator == tracker.malloc
        a = cp.allocator(1000)
        b = cp.allocator(3000)
        cp.pool.free(a)
        cp.pool.free(b)
        cp.allocator(500)
        with pytest.raises(MemoryError):
            cp.allocator(2 << 20)
    assert tracker.peak_bytes == 4000 and tracker.failed_bytes == 2 << 20
    assert cp.allocator == cp.pool.malloc  # given back


def test_failed_size_reads_the_error():
    assert device_memory.failed_size(MemoryError("Out of memory allocating 1,073,741,824 bytes (allocated so far: 0 bytes).")) == 1 << 30

    class WithSize(Exception):
        size = 512

    assert device_memory.failed_size(WithSize("x")) == 512
    assert device_memory.failed_size(RuntimeError("something else")) is None


def test_deterministic_environment_only_for_gpu_cells():
    env = {"CUPY_TF32": "1"}
    changes = cell_figures.deterministic_environment({"deterministic": True, "device_kind": "gpu"}, env)
    assert env == {"CUPY_TF32": "0", "NVIDIA_TF32_OVERRIDE": "0", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    # (with cupy imported already, as under the simulated GPUs, a warning line follows)
    assert changes[0] == "TF32 off (CUPY_TF32=0), was CUPY_TF32=1" and all(c.startswith("warning:") for c in changes[1:])
    record = cell_figures.deterministic_record({"deterministic": True, "device_kind": "gpu"})
    assert record["differs"] is True  # the environment had TF32 on
    # CuPy's defaults are deterministic already: setting them again changes nothing.
    assert [c for c in cell_figures.deterministic_environment({"deterministic": True, "device_kind": "gpu"}, {})
            if not c.startswith("warning:")] == []
    cell_figures._ENV_CHANGES[:] = [c for c in cell_figures._ENV_CHANGES if not c.startswith("warning:")]
    record = cell_figures.deterministic_record({"deterministic": True, "device_kind": "gpu"}, {})
    assert record["differs"] is False and record["changes"] == [] and "changed nothing" in record["note"]
    ran = cell_figures.deterministic_record({"deterministic": True, "device_kind": "gpu"}, {"get_item backward": 3})
    assert ran["differs"] is True and ran["paths"] == {"get_item backward": 3}
    cpu_env = {}
    assert cell_figures.deterministic_environment({"deterministic": True, "device_kind": "cpu"}, cpu_env) == []
    assert cpu_env == {}
    assert cell_figures.deterministic_record({"deterministic": False}) is None


def test_a_deterministic_cpu_cell_says_it_changed_nothing(suites):  # noqa: F811
    d = desc()
    d["deterministic"] = True
    cell = run_cell(d)
    assert cell["status"] == "ok" and cell["deterministic_mode"]["differs"] is False
    assert cell["deterministic_mode"]["changes"] == []


@pytest.mark.mpi
def test_a_minimum_time_in_data_parallel_keeps_the_ranks_in_step(suites):  # noqa: F811
    from benchbench.executor.launch import launcher

    d = desc(min_time_s=0.5, steps=2)
    d.update(id="tiny/cpu:dp2/r0", device="cpu:dp2", n_ranks=2, communicator="mpi", timeout_s=120.0,
             collective_timeout_s=60.0, batch_size=8)
    cell = launcher.run_one(d)
    assert cell["status"] == "ok", cell["reason"]
    assert sum(cell["timing"]["step_s"]) >= 0.5 and len(cell["timing"]["step_s"]) > 2
    inter = cell["interference"]
    assert (inter["verdict"] == "quiet") == (inter["reasons"] == []) and cell["interconnect"]["ranks"] == 2
