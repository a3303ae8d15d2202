"""``benchbench run --batch-size`` end to end: sweeps, the largest batch on the CPU under a small
memory budget and on simulated GPUs with a small device memory, reports, plots, comparisons and
the usage errors."""
import os
import subprocess
import sys

import pytest

from benchbench import results
from benchbench.executor.planning.batch import DEFAULT_SEARCH_CAP

from ..fake_suite import suite_source
from ..plans import fast_plan
from .conftest import cli

# ``wide``: memory grows with the batch (a 2048-wide hidden layer, about 40 KB per sample a step).
SUITE = suite_source(extra='''
    from benchbench.core import functions as F


    @workload(name="wide", **COMMON)
    class Wide(Tiny):
        def build_model(self, params):
            return L.Sequential(L.Linear(4, 2048), F.relu, L.Linear(2048, 2))
''')

PLAN = fast_plan(quick="{warmup_steps: 1, steps: 3, val_batches: 1, min_time_s: 0, timeout_s: 300}")


@pytest.fixture
def project(tmp_path):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "batch.py").write_text(SUITE)
    (tmp_path / "plan.yaml").write_text(PLAN)
    return tmp_path


def run(cwd, *extra, out="results", env=None):
    proc = cli(cwd, "run", "--config", str(cwd / "plan.yaml"), "--output", str(cwd / out), *extra, env=env)
    return proc


def runs(cwd, out="results"):
    return [results.load(p) for p in results.find_runs(cwd / out)]


def assert_usage_error(proc, needle):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("benchbench: error: "), proc.stderr
    assert needle in lines[0], lines[0]


def test_a_cell_per_batch_size_recorded_and_reported(project):
    proc = run(project, "--batch-size", "8,16")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (data,) = runs(project)
    cells = {c["id"]: c for c in data["cells"]}
    assert set(cells) == {"tiny@b8/cpu/r0", "tiny@b16/cpu/r0"}
    own, other = cells["tiny@b8/cpu/r0"], cells["tiny@b16/cpu/r0"]
    assert (own["batch_size"], other["batch_size"]) == (8, 16)
    assert own["batch"]["requested"] == 8 and own["batch"]["value"] == 8 and own["batch"]["search"] is None
    assert own["quality"] is not None                       # the workload's own batch: its quality too
    assert other["quality"] is None and other["batch"]["quality"] == "throughput only"
    assert data["plan"]["batch_size"] == [8, 16]
    report = cli(project, "report", "--results-dir", str(project / "results"))
    assert report.returncode == 0, report.stderr
    assert "throughput against batch" in report.stdout and "tiny@b16" in report.stdout
    plot = cli(project, "plot", "--kind", "batch", "--results-dir", str(project / "results"),
               "--outdir", str(project / "plots"))
    assert plot.returncode == 0, plot.stderr
    assert sorted(p.suffix for p in (project / "plots").glob("*batch_tiny*")) == [".png", ".svg"]


def test_compare_sets_two_runs_curves_side_by_side_and_never_invents_a_batch(project):
    assert run(project, "--batch-size", "8,16", out="a").returncode == 0
    assert run(project, "--batch-size", "8,32", out="b").returncode == 0
    a, b = (results.find_runs(project / d)[0] for d in ("a", "b"))
    proc = cli(project, "compare", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    section = proc.stdout[proc.stdout.index("samples/s against batch"):]
    rows = {tuple(line.split()[:3]): line for line in section.splitlines() if line.startswith("tiny")}
    assert "not measured" in rows[("tiny", "cpu", "32")]    # run a never ran batch 32
    assert "not measured" in rows[("tiny", "cpu", "16")]    # nor run b batch 16
    assert "not measured" not in rows[("tiny", "cpu", "8")]
    plot = cli(project, "plot", str(a), str(b), "--kind", "batch", "--outdir", str(project / "plots"))
    assert plot.returncode == 0, plot.stderr
    assert (project / "plots" / "compare_batch_tiny.png").is_file()


def _search(cell):
    s = cell["batch"]["search"]
    assert [p["batch"] for p in s["probes"]][:3] == [1, 2, 4]
    return s


def test_largest_batch_on_the_cpu_under_a_small_budget(project):
    proc = run(project, "--workload", "wide", "--batch-size", "max", "--memory-limit", "24MiB")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (cell,) = runs(project)[0]["cells"]
    assert cell["id"] == "wide@bmax/cpu/r0" and cell["status"] == "ok"
    s = _search(cell)
    best = s["max_batch"]
    assert s["stopped_by"] == "oom" and s["limit"] == "host memory budget"
    assert 16 <= best < 4096, best
    ok = {p["batch"] for p in s["probes"] if p["ok"]}
    bad = {p["batch"] for p in s["probes"] if not p["ok"]}
    assert best in ok and best + 1 in bad and max(ok) == best and min(bad) == best + 1
    assert all(p["bytes"] > 0 for p in s["probes"] if p["ok"])
    assert cell["batch_size"] == best and cell["batch"]["memory_limit_bytes"] == 24 << 20
    assert cell["stats"]["samples_per_s"]["median"] > 0          # then timed at that batch
    report = cli(project, "report", "--results-dir", str(project / "results"))
    assert "largest batch per device" in report.stdout and f"{best:,}" in report.stdout


def test_the_search_cap_is_said_when_it_not_memory_stopped_it(project):
    proc = run(project, "--batch-size", "max", "--memory-limit", "512MiB")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (cell,) = runs(project)[0]["cells"]
    s = _search(cell)
    assert s["stopped_by"] == "cap" and s["max_batch"] == s["cap"] == DEFAULT_SEARCH_CAP
    assert all(p["ok"] for p in s["probes"]) and "not by memory" in s["text"]
    report = cli(project, "report", "--results-dir", str(project / "results"))
    assert "stopped by the search cap" in report.stdout


@pytest.mark.parametrize("args, needle", [
    (["--batch-size", "0"], "positive integer"),
    (["--batch-size", "abc"], "positive integer"),
    (["--batch-size", "8,8"], "given twice"),
    (["--batch-size", "max", "--memory-limit", "4"], "below one sample"),
    (["--batch-size", "8", "--memory-limit", "1GiB"], "add --batch-size max"),
    (["--batch-size", "max", "--memory-limit", "lots"], "memory limit"),
    (["--batch-size", "7", "--device", "cpu:dp2"], "does not split"),
    (["--batch-size", "max", "--device", "cpu:dp2"], "searches on the CPU as one process"),
])
def test_bad_batch_input_is_a_usage_error(project, main, args, needle):
    proc = main(project, "run", "--config", project / "plan.yaml", "--output", project / "results", *args)
    assert_usage_error(proc, needle)
    assert not (project / "results").exists() or not results.find_runs(project / "results")


SIM = {"BENCHBENCH_SIM_GPU_MEMORY": "8MiB", "BENCHBENCH_SIM_GPUS": "2"}


def _simulated():
    import cupy

    if not getattr(cupy, "_benchbench_simulated", False):
        pytest.skip("sized for the simulated GPUs (BENCHBENCH_SIM_GPU_MEMORY)")


@pytest.mark.gpu
def test_largest_batch_on_each_simulated_gpu_and_the_cpu(project):
    _simulated()
    proc = run(project, "--device", "cpu", "--device", "gpu:0", "--device", "gpu:1", "--workload", "wide",
               "--batch-size", "max", "--memory-limit", "24MiB", env=SIM)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    cells = {c["device"]: c for c in runs(project)[0]["cells"]}
    assert set(cells) == {"cpu", "gpu:0", "gpu:1"}
    assert cells["cpu"]["batch"]["search"]["limit"] == "host memory budget"
    for device in ("gpu:0", "gpu:1"):
        s = _search(cells[device])
        assert s["stopped_by"] == "oom" and s["limit"] == "device memory"
        assert cells[device]["batch"]["memory_limit_bytes"] is None
        assert all(0 < p["bytes"] <= 8 << 20 for p in s["probes"] if p["ok"])
        assert max(p["batch"] for p in s["probes"] if p["ok"]) + 1 == min(p["batch"] for p in s["probes"] if not p["ok"])
        assert cells[device]["batch_size"] == s["max_batch"] and cells[device]["status"] == "ok"
    report = cli(project, "report", "--results-dir", str(project / "results"), env=SIM)
    assert report.returncode == 0, report.stderr
    table = report.stdout[report.stdout.index("largest batch per device"):]
    for device in cells:
        assert f"{cells[device]['batch']['search']['max_batch']:,}" in table


@pytest.mark.gpu
@pytest.mark.multi_gpu(2)
def test_largest_batch_of_a_data_parallel_cell_is_the_smallest_over_its_gpus(project):
    _simulated()
    proc = run(project, "--device", "gpu:0,1", "--workload", "wide", "--batch-size", "max", env=SIM)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (dp,) = runs(project)[0]["cells"]
    s = dp["batch"]["search"]
    assert len(s["per_rank_max"]) == 2 and s["max_batch"] == min(s["per_rank_max"])
    assert dp["per_device_batch"] == s["max_batch"] and dp["batch_size"] == 2 * s["max_batch"]


def test_full_profile_at_another_batch_scales_the_learning_rate_and_says_so(project):
    proc = run(project, "--profile", "full", "--batch-size", "8,16")
    assert proc.returncode in (0, 1), proc.stderr + proc.stdout
    cells = {c["batch"]["requested"]: c for c in runs(project)[0]["cells"]}
    assert cells[8]["batch"]["lr_scaling"] is None and cells[8]["status"] == "ok"
    rule = cells[16]["batch"]["lr_scaling"]
    assert cells[16]["status"] == "ok" and cells[16]["batch"]["quality"] == "learning rate scaled"
    assert rule["rule"] == "linear scaling with warm-up" and rule["factor"] == 2.0 and rule["warmup_steps"] >= 1
    assert cells[16]["quality"] is not None and cells[16]["epoch_log"]
