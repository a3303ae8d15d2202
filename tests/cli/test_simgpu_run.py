"""``benchbench run --device all`` end to end on two simulated GPUs: every cell runs, a GPU trains as the
CPU does, data parallel over two GPUs trains as one GPU with the same global batch, and everything made
there says it was simulated.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does); skipped where the GPUs are real or absent.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy
import pytest

from benchbench import results

from .conftest import cli as cli_subprocess

pytestmark = [pytest.mark.simgpu, pytest.mark.multi_gpu(2), pytest.mark.mpi]

PLAN = textwrap.dedent('''
    workloads: ['mlp_mnist:small', lstm_sine]
    devices: all
    repeat: 1
    seed: 0
    data: synthetic
    timeout_s: 300
    profiles:
      quick:
        warmup_steps: 2  # a GPU cell replaying a CUDA graph warms up 2 steps: the curves stay as long as the CPU's
        steps: 4
        val_batches: 1
        min_time_s: 0
''')


def cli(cwd, *args, timeout=600, env=None):
    return cli_subprocess(cwd, *args, timeout=timeout, env={"BENCHBENCH_SIM_GPU_POWER_W": "200", **(env or {})})


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("simrun")
    (cwd / "plan.yaml").write_text(PLAN)
    proc = cli(cwd, "run", "--config", "plan.yaml", "--output", "results")
    files = results.find_runs(cwd / "results")
    assert len(files) == 1, proc.stderr
    return cwd, proc, results.load(files[0])


def _cells(run, workload):
    return {c["device"]: c for c in run["cells"] if c["workload"] == workload}


def test_every_device_of_the_plan_gives_an_ok_cell(sim_run):
    _, proc, run = sim_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for wl in ("mlp_mnist", "lstm_sine"):
        cells = _cells(run, wl)
        assert set(cells) == {"cpu", "gpu:0", "gpu:1", "gpu:0,1"}
        assert all(c["status"] == "ok" for c in cells.values()), {d: c["reason"] for d, c in cells.items()}
        assert cells["gpu:0,1"]["communicator"] == "nccl" and cells["gpu:0,1"]["n_devices"] == 2


def test_a_gpu_trains_as_the_cpu_does(sim_run):
    _, _, run = sim_run
    for wl in ("mlp_mnist", "lstm_sine"):
        cells = _cells(run, wl)
        cpu = numpy.array(cells["cpu"]["loss_curve"], dtype=float)
        for dev in ("gpu:0", "gpu:1"):
            gpu = numpy.array(cells[dev]["loss_curve"], dtype=float)
            assert len(gpu) == len(cpu) > 0
            numpy.testing.assert_allclose(gpu, cpu, rtol=1e-3, err_msg=f"{wl} on {dev}")


def test_data_parallel_over_two_gpus_trains_as_one_gpu_with_the_same_global_batch(sim_run):
    _, _, run = sim_run
    cells = _cells(run, "mlp_mnist")
    one = numpy.array(cells["gpu:0"]["loss_curve"], dtype=float)
    two = numpy.array(cells["gpu:0,1"]["loss_curve"], dtype=float)
    assert cells["gpu:0,1"]["batch_size"] == cells["gpu:0"]["batch_size"]
    numpy.testing.assert_allclose(two, one, rtol=1e-4)


def test_gpu_cells_record_energy_and_device_memory(sim_run):
    _, _, run = sim_run
    for dev in ("gpu:0", "gpu:0,1"):
        cell = _cells(run, "mlp_mnist")[dev]
        assert cell["energy"] and cell["energy"]["joules"] > 0, cell.get("energy")
        mem = cell["memory"]
        # The pool's high-water mark of live arrays is within NVML's figure (context and cache included).
        assert 0 < mem["pool_peak_bytes"] <= mem["peak_device_bytes"], mem


def test_the_run_and_its_reports_say_the_gpus_were_simulated(sim_run, tmp_path):
    cwd, proc, run = sim_run
    assert run["machine"]["simulated_gpus"] is True
    assert "SIMULATED GPUs" in proc.stderr
    report = cli(cwd, "report", "results")
    assert report.returncode == 0, report.stderr
    assert report.stdout.lstrip().splitlines()[0].startswith("WARNING: this run used SIMULATED GPUs") or \
        "SIMULATED GPUs" in report.stdout.split("\n\n")[0], report.stdout[:500]
    # a copy that claims to be a real machine: compare refuses to set one against the other
    real = json.loads(json.dumps(run))
    real["machine"]["simulated_gpus"] = False
    real["machine"]["id"] = "real-machine-00000000"
    path = tmp_path / "real-machine-00000000" / f"{real['run_id']}.json"
    path.parent.mkdir()
    path.write_text(json.dumps(real))
    sim_file = results.find_runs(cwd / "results")[0]
    proc = cli(cwd, "compare", str(path), str(sim_file))
    assert proc.returncode == 2 and "simulated GPUs" in proc.stderr, proc.stderr


def test_profile_on_the_second_gpu(tmp_path):
    proc = cli(tmp_path, "profile", "mlp_mnist:small", "--device", "gpu:1", "--steps", "2", "--data", "synthetic")
    assert proc.returncode == 0, proc.stderr
    assert "linear" in proc.stdout.lower()


def test_mixed_precision_on_a_simulated_gpu(tmp_path):
    (tmp_path / "plan.yaml").write_text(PLAN.replace("devices: all", "devices: gpu:0")
                                        .replace("['mlp_mnist:small', lstm_sine]", "['mlp_mnist:small']"))
    proc = cli(tmp_path, "run", "--config", "plan.yaml", "--output", "results", "--dtype", "float16")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [cell] = results.load(results.find_runs(tmp_path / "results")[0])["cells"]
    assert cell["status"] == "ok" and cell["dtype"] == "float16"
    assert all(numpy.isfinite(v) for v in cell["loss_curve"] if v is not None)
