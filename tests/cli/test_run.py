"""The real command line in subprocesses: runs, recorded failures, interrupt and resume, user errors."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from benchbench import results

from ..plans import fast_plan
from .conftest import PLAN, assert_one_line_error, cli, only_run, run_args

def test_run_shipped_mlp_on_cpu_with_synthetic_data(tmp_path):
    plan = PLAN.replace("[tiny]", "['mlp_mnist:small']").split("\n    workloads:")[0]
    (tmp_path / "plan.yaml").write_text(plan)
    proc = cli(tmp_path, *run_args(tmp_path, "--device", "cpu"))
    assert proc.returncode == 0, proc.stderr
    run = only_run(tmp_path)
    assert run["status"] == "complete"
    [cell] = run["cells"]
    assert cell["workload"] == "mlp_mnist" and cell["params"] == {"units": 100}
    assert cell["status"] == "ok" and cell["device"] == "cpu" and cell["communicator"] == "single"
    assert cell["data"]["source"] == "synthetic"
    assert len(cell["timing"]["step_s"]) == 3
    assert set(cell["timing"]["phases_s"]) == {"data", "forward", "backward", "update"}
    assert all(len(v) == 3 for v in cell["timing"]["phases_s"].values())
    assert cell["stats"]["samples_per_s"]["median"] > 0 and cell["stats"]["gflops"] > 0
    assert 0.0 <= cell["quality"]["value"] <= 1.0
    assert len(cell["hashes"]["weights"]) == 64 and cell["memory"]["peak_host_bytes"] > 0
    assert "mlp_mnist" in proc.stdout and "synthetic" in proc.stdout and "results:" in proc.stdout


def test_failing_cells_are_recorded_and_the_run_completes(project):
    proc = cli(project, *run_args(project, "--workload", "tiny", "--workload", "crash", "--workload", "abort",
                                  "--workload", "hang", "--workload", "nan"))
    assert proc.returncode == 1, proc.stderr
    run = only_run(project)
    assert run["status"] == "complete"
    by = {c["workload"]: c for c in run["cells"]}
    assert by["tiny"]["status"] == "ok"
    assert by["crash"]["status"] == "failed" and "boom in forward" in by["crash"]["reason"]
    assert by["abort"]["status"] == "failed"
    assert "SIGABRT" in by["abort"]["reason"] and "about to abort" in by["abort"]["reason"]
    assert by["hang"]["status"] == "timeout" and "3 s" in by["hang"]["reason"]
    assert by["nan"]["status"] == "diverged" and "nan" in by["nan"]["reason"]
    assert "timeout" in proc.stdout and "diverged" in proc.stdout


def test_step_time_of_a_known_sleep(finished_run):
    _, proc, run = finished_run
    assert proc.returncode == 0, proc.stderr
    [cell] = [c for c in run["cells"] if c["workload"] == "sleepy"]
    step = cell["stats"]["step_s"]["median"]
    forward = sorted(cell["timing"]["phases_s"]["forward"])[1]
    assert 0.020 <= forward <= step
    assert step < 0.020 + 0.5


def test_interrupted_run_keeps_finished_cells_and_resumes(project):
    (project / "slow.flag").write_text("")
    args = run_args(project, "--workload", "tiny", "--workload", "sleepy:ms=2000")
    proc = subprocess.Popen([sys.executable, "-m", "benchbench", *args], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    run = None
    while time.monotonic() < deadline:
        files = results.find_runs(project / "results")
        if files:
            run = json.loads(files[0].read_text())
            if run["cells"]:
                break
        time.sleep(0.1)
    assert run is not None and len(run["cells"]) == 1, "the first cell did not finish in time"
    time.sleep(0.5)  # the slow cell is running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    run = only_run(project)
    assert run["status"] == "interrupted"
    assert [c["workload"] for c in run["cells"]] == ["tiny"]
    assert "--resume" in err
    (project / "slow.flag").unlink()
    resumed = cli(project, "run", "--resume", run["run_id"], "--output", str(project / "results"))
    assert resumed.returncode == 0, resumed.stderr
    run = only_run(project)
    assert run["status"] == "complete"
    assert [c["workload"] for c in run["cells"]] == ["tiny", "sleepy"]
    assert all(c["status"] == "ok" for c in run["cells"])


def test_unknown_key_in_plan_names_line_and_suggestion(project, main):
    (project / "plan.yaml").write_text("devices: cpu\nworklods:\n  - tiny\n")
    proc = main(project, *run_args(project))
    assert_one_line_error(proc, "plan.yaml:2: unknown key 'worklods'; did you mean 'workloads'?")
    assert not (project / "results").exists()


def test_bad_value_in_plan(project, main):
    (project / "plan.yaml").write_text(PLAN.replace("repeat: 1", "repeat: zero"))
    proc = main(project, *run_args(project))
    assert_one_line_error(proc, "plan.yaml:4:", "'repeat' must be an integer from 1 to 1,000, got 'zero'")


def test_unknown_device(project):
    """The usage errors run in-process (``main``); this one runs the real command, as a smoke test of
    "one line, exit status 2, no traceback" from a fresh interpreter."""
    assert_one_line_error(cli(project, *run_args(project, "--device", "gpu:7")), "gpu:7", "this machine has")
    assert_one_line_error(cli(project, *run_args(project, "--device", "tpu")), "'tpu'", "valid forms")
    assert not (project / "results").exists()


def test_unknown_workload_lists_known_ones(project, main):
    proc = main(project, *run_args(project, "--workload", "tiyn"))
    assert_one_line_error(proc, "unknown workload 'tiyn'", "tiny", "crash", "sleepy")


def test_real_data_that_is_not_there_stops_before_running(tmp_path, main):
    (tmp_path / "plan.yaml").write_text("workloads: [mlp_mnist]\ndevices: cpu\n")
    proc = main(tmp_path, *run_args(tmp_path, "--data", "real"), env={"BENCHBENCH_DATA": str(tmp_path / "empty")})
    assert_one_line_error(proc, "benchbench data fetch mnist")
    assert not (tmp_path / "results").exists()


def test_half_precision_needs_a_gpu(project, main):
    from benchbench.core import backend

    if backend.gpu_count():
        pytest.skip("this machine has a GPU")
    assert_one_line_error(main(project, *run_args(project, "--dtype", "float16")), "float16", "GPU")


def test_device_all_without_gpu_says_so(project):
    from benchbench.core import backend

    if backend.gpu_count():
        pytest.skip("this machine has a GPU")
    proc = cli(project, *run_args(project, "--device", "all"))
    assert proc.returncode == 0, proc.stderr
    assert "no GPU found" in proc.stderr
    assert [c["device"] for c in only_run(project)["cells"]] == ["cpu"]


@pytest.mark.mpi
def test_cpu_data_parallel_cell(project):
    proc = cli(project, *run_args(project, "--device", "cpu:dp2"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    [cell] = only_run(project)["cells"]
    assert cell["status"] == "ok", cell["reason"]
    assert cell["n_devices"] == 2 and cell["communicator"] == "mpi" and cell["scaling"] == "strong"
    assert cell["per_device_batch"] == 4 and cell["batch_size"] == 8
    assert len(cell["timing"]["phases_s"]["allreduce"]) == 3


@pytest.mark.mpi
def test_a_rank_that_raises_fails_the_cell_with_its_rank_and_reason(project):
    start = time.monotonic()
    proc = cli(project, *run_args(project, "--device", "cpu:dp2", "--workload", "rankcrash", "--timeout", "240"),
               timeout=280)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    [cell] = only_run(project)["cells"]
    assert cell["status"] == "failed" and cell["device"] == "cpu:dp2"  # not "timeout"
    assert "rank 1" in cell["reason"] and "rank one gives up" in cell["reason"], cell["reason"]
    assert time.monotonic() - start < 200  # ended by the failing rank, not by the cell's time-out (240 s)


def test_info_list_version_and_report(project):
    assert cli(project, "--version").stdout.startswith("benchbench ")
    info = cli(project, "info")
    assert info.returncode == 0 and "cpu" in info.stdout
    listed = cli(project, "list")
    assert listed.returncode == 0 and "sleepy" in listed.stdout and "hang" in listed.stdout
    missing = cli(project, "report", str(project / "nothing.json"))
    assert_one_line_error(missing, "nothing.json")


def test_profile_prints_table_and_writes_chart(tmp_path):
    proc = cli(tmp_path, "profile", "mlp_mnist:small", "--steps", "2", "--warmup", "0",
               "--json", "p.json", "--chart", "p.png")
    assert proc.returncode == 0, proc.stderr
    assert "LinearFunction" in proc.stdout and "optimizer update" in proc.stdout
    assert (tmp_path / "p.png").stat().st_size > 0 and (tmp_path / "p.json").exists()


def test_profile_on_a_missing_gpu_is_a_usage_error(tmp_path, main):
    proc = main(tmp_path, "profile", "mlp_mnist", "--device", "gpu:3")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "gpu:3 not found" in proc.stderr


def test_deterministic_repeats_are_bit_identical_and_the_report_says_so(tmp_path):
    # A real shipped workload with dropout-free Adam training: repeats in both modes must agree bit for bit.
    out = tmp_path / "results"
    (tmp_path / "plan.yaml").write_text(fast_plan("['mlp_mnist:small']"))
    for extra in (["--deterministic"], []):
        proc = cli(tmp_path, "run", "--config", "plan.yaml", "--repeat", "3", "--output", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
    runs = results.find_runs(out)
    assert len(runs) == 2
    for path in runs:
        cells = results.load(path)["cells"]
        assert len({c["hashes"]["weights"] for c in cells}) == 1
        assert len({c["hashes"]["loss_curve"] for c in cells}) == 1
    report = cli(tmp_path, "report", *map(str, runs))
    assert report.returncode == 0, report.stderr
    assert ("mlp_mnist on cpu (deterministic): bit-identical over 3 repeats; the mode ran no different computation "
            "here") in report.stdout and "so it has no cost to show" in report.stdout
    assert "step time x" not in report.stdout
    assert "mlp_mnist on cpu (default): bit-identical over 3 repeats" in report.stdout


def test_a_corrupt_dataset_file_stops_the_run_before_anything_runs(tmp_path, main):
    import gzip

    bad = tmp_path / "data" / "mnist"
    bad.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (bad / f"{name}.gz").write_bytes(gzip.compress(b"not an IDX file"))
    proc = main(tmp_path, "run", "--device", "cpu", "--workload", "mlp_mnist", "--data-dir", str(tmp_path / "data"),
               "--output", str(tmp_path / "results"))
    assert_one_line_error(proc, "train-images-idx3-ubyte")
    assert not (tmp_path / "results").exists()


@pytest.mark.mpi
def test_a_chosen_mpiexec_runs_data_parallel_and_is_recorded(project):
    from benchbench.executor.launch import launcher

    pip_mpiexec = launcher.mpiexec_path()
    if pip_mpiexec is None:
        pytest.skip("no mpiexec")
    wrapper = project / "bin" / "my-mpiexec"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\ntouch "{project / "wrapper-ran"}"\nexec "{pip_mpiexec}" "$@"\n')
    wrapper.chmod(0o755)
    proc = cli(project, *run_args(project, "--device", "cpu", "cpu:dp2"), env={launcher.MPIEXEC_ENV: str(wrapper)})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    single, dp = only_run(project)["cells"]
    assert dp["device"] == "cpu:dp2" and dp["status"] == "ok", dp["reason"]
    assert (project / "wrapper-ran").exists()
    assert dp["mpi"]["mpiexec"] == str(wrapper)
    assert dp["mpi"]["library"] and "MPI" in dp["mpi"]["library"].upper()
    assert "mpi" not in single  # one process: no MPI


def test_a_missing_chosen_mpiexec_is_a_usage_error(project, main):
    missing = project / "no" / "mpiexec"
    proc = main(project, *run_args(project, "--device", "cpu:dp2"), env={"BENCHBENCH_MPIEXEC": str(missing)})
    assert_one_line_error(proc, "BENCHBENCH_MPIEXEC", str(missing))
    assert not (project / "results").exists() or not list((project / "results").rglob("*.json"))
