"""Energy, memory and interference of GPU cells (run under the simulated GPUs in CI).

Under ``BENCHBENCH_SIM_GPU_POWER_W`` every simulated GPU draws a constant power P, so the
energy of the timed window must be, per sample, P x step time / batch on one GPU, and the sum
over ranks in data parallel.
"""
import pytest

from benchbench.executor.launch import launcher
from benchbench.executor.cell.run_cell import run_cell

from ..fake_suite import suite_source

SLEEP_S = 0.03
SUITE = suite_source(target=0.0, extra=f'''

    @workload(name="sleepy", **COMMON)
    class Sleepy(Tiny):
        def forward(self, model, x, t, params):
            time.sleep({SLEEP_S})
            return super().forward(model, x, t, params)
''')


@pytest.fixture
def suites(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "sleepy.py").write_text(SUITE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def gpu_desc(indices, **settings):
    s = {"warmup_steps": 1, "steps": 6, "val_batches": 1, "epochs": None, "timeout_s": 120, "min_time_s": 0}
    s.update(settings)
    n = len(indices)
    device = "gpu:" + ",".join(map(str, indices))
    return {"id": f"sleepy/{device}/r0", "workload": "sleepy", "workload_name": "sleepy", "params": {},
            "dataset": "points", "device": device, "device_kind": "gpu", "indices": list(indices), "n_ranks": n,
            "communicator": "nccl" if n > 1 else "single", "scaling": "weak", "repeat": 0, "profile": "quick",
            "settings": s, "seed": 0, "data": "synthetic", "data_dir": None, "dtype": "float32",
            "deterministic": False, "timeout_s": 120.0, "collective_timeout_s": 60.0}


def _check_energy(cell, watts, ranks):
    assert cell["status"] == "ok", cell["reason"]
    energy = cell["energy"]
    steps = cell["timing"]["step_s"]
    samples = len(steps) * cell["batch_size"]
    assert energy["window"] == "timed steps" and energy["ranks"] == ranks
    # The counter truth: every rank's GPU draws P over the window, nothing else is counted.
    assert energy["joules"] == pytest.approx(ranks * watts * energy["window_s"], rel=0.05)
    assert energy["joules_per_sample"] == pytest.approx(energy["joules"] / samples, rel=1e-9)
    # The window is the timed steps' span: at least their sum, and not the whole cell (model build,
    # warm-up, validation); the bookkeeping between steps (progress, loss checks) is all it adds,
    # a few per cent on a quiet machine, so on a loaded one J/sample is P x step / batch within 25%.
    assert sum(steps) * 0.99 <= energy["window_s"] <= sum(steps) * 1.25 + 0.05, (energy["window_s"], sum(steps))
    assert energy["window_s"] < cell["duration_s"] * 0.9


@pytest.mark.gpu
def test_energy_per_sample_on_one_gpu(suites, monkeypatch):
    monkeypatch.setenv("BENCHBENCH_SIM_GPU_POWER_W", "200")
    cell = run_cell(gpu_desc([0]))
    _check_energy(cell, 200.0, 1)
    mem = cell["memory"]
    assert mem["pool_peak_bytes"] > 0 and len(mem["pool_peak_bytes_per_rank"]) == 1
    assert mem["peak_device_bytes"] >= mem["pool_peak_bytes"] and "NVML" in mem["device_scope"]
    assert cell["interference"]["gpu"] == {"other_processes": [], "clock_events": []}


@pytest.mark.gpu
def test_other_gpu_processes_and_throttling_make_a_gpu_cell_contended(suites, monkeypatch):
    monkeypatch.setenv("BENCHBENCH_SIM_GPU_FOREIGN", "1")
    monkeypatch.setenv("BENCHBENCH_SIM_GPU_THROTTLE", "0x40")
    cell = run_cell(gpu_desc([0]))
    inter = cell["interference"]
    assert inter["verdict"] == "contended"
    assert len(inter["gpu"]["other_processes"]) == 1 and inter["gpu"]["clock_events"] == ["hw_thermal"]


@pytest.mark.mpi
@pytest.mark.multi_gpu(2)
def test_energy_is_summed_over_the_ranks_of_a_data_parallel_cell(suites, monkeypatch):
    monkeypatch.setenv("BENCHBENCH_SIM_GPU_POWER_W", "150")
    cell = launcher.run_one(gpu_desc([0, 1]))
    _check_energy(cell, 150.0, 2)
    assert len(cell["memory"]["pool_peak_bytes_per_rank"]) == 2
