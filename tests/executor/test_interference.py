"""Interference: other processes' CPU time over a timed window, the verdict, the pre-flight check."""
import subprocess
import sys
import time

import pytest

from benchbench.executor import interference
from benchbench.executor.cell.run_cell import run_cell

from .test_runner import desc, suites  # noqa: F401  (fixture)

# Every test here judges how busy the machine is: none runs beside another test (python -m tests).
pytestmark = pytest.mark.serial

SPIN = "import time\nend = time.time() + 60\nwhile time.time() < end:\n    pass\n"


def _spinners(n):
    """``n`` busy-loop processes (one per core), stopped by the caller."""
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]


def _stop(procs):
    for p in procs:
        p.kill()
    for p in procs:
        p.wait(timeout=30)


def _window(seconds):
    """A window in which this process mostly sleeps (little own CPU time)."""
    w = interference.CpuWindow()
    w.start()
    time.sleep(seconds)
    return interference.summarize([w.stop()])


def test_busy_loop_processes_make_a_window_contended():
    cores = interference.psutil.cpu_count() or 1
    without = _window(1.0)
    procs = _spinners(cores)
    try:
        time.sleep(0.3)
        with_spin = _window(1.5)
    finally:
        _stop(procs)
    # The same machine, measured in the same test: the spinners' share shows, whatever else runs.
    assert with_spin["other_share"] > without["other_share"] + 0.3 or with_spin["other_share"] > 0.8
    assert with_spin["other_share"] <= 1.0 + with_spin["share_uncertainty"]
    assert with_spin["verdict"] == "contended"
    assert any("other processes used" in r for r in with_spin["reasons"])


def test_summarize_from_known_figures():
    # 2 s on 4 CPUs: 8 CPU-seconds of capacity; 5 busy, of which the run's two ranks used 3.
    w = [{"wall_s": 2.0, "busy_s": 5.0, "own_s": 1.5, "cores": 4}, {"wall_s": 1.9, "busy_s": 4.9, "own_s": 1.5, "cores": 4}]
    r = interference.summarize(w, threads_per_rank=2)
    assert r["other_share"] == pytest.approx(2.0 / 8.0)
    assert r["other_cores"] == pytest.approx(1.0) and r["free_cores"] == pytest.approx(3.0)
    assert r["blas_threads"] == 4 and r["oversubscribed"] is True
    assert r["verdict"] == "contended"
    quiet = interference.summarize([{"wall_s": 2.0, "busy_s": 3.1, "own_s": 3.0, "cores": 4}], threads_per_rank=2)
    assert quiet["verdict"] == "quiet" and quiet["reasons"] == [] and quiet["oversubscribed"] is False


def test_probes_and_gpu_events_make_a_cell_contended():
    w = [{"wall_s": 2.0, "busy_s": 2.0, "own_s": 2.0, "cores": 2}]
    assert interference.summarize(w, probes={"moved": True, "reason": "probe moved"})["verdict"] == "contended"
    r = interference.summarize(w, gpu={"other_processes": [123], "clock_events": ["hw_thermal"]})
    assert r["verdict"] == "contended" and len(r["reasons"]) == 2


def test_summarize_validates():
    with pytest.raises(ValueError, match="at least one window"):
        interference.summarize([])
    with pytest.raises(ValueError, match="threshold"):
        interference.summarize([{"wall_s": 1.0, "busy_s": 1.0, "own_s": 1.0, "cores": 1}], threshold=1.5)


def test_preflight_warns_when_the_machine_is_busy():
    procs = _spinners(interference.psutil.cpu_count() or 1)
    try:
        time.sleep(0.3)
        check = interference.preflight(1.0)
    finally:
        _stop(procs)
    assert check["busy"] is True and check["other_share"] > 0.5
    assert any(t["name"].startswith("python") for t in check["top"])
    line = interference.preflight_warning(check)
    assert line.startswith("benchbench: warning: the machine is busy") and "\n" not in line
    assert interference.preflight_warning({"busy": False}) is None


def test_a_cell_beside_a_busy_loop_is_contended(suites):  # noqa: F811
    procs = _spinners(interference.psutil.cpu_count() or 1)
    try:
        time.sleep(0.3)
        cell = run_cell(desc(steps=3, min_time_s=1.5))
    finally:
        _stop(procs)
    assert cell["status"] == "ok", cell["reason"]
    inter = cell["interference"]
    assert inter["window_s"] >= 1.5 and sum(cell["timing"]["step_s"]) >= 1.5
    assert inter["verdict"] == "contended" and inter["other_share"] > 0.2


def test_a_cell_records_interference_over_its_timed_steps(suites):  # noqa: F811
    cell = run_cell(desc(steps=3, min_time_s=0.5))
    inter = cell["interference"]
    # The window covers the timed steps (and little else).
    assert sum(cell["timing"]["step_s"]) <= inter["window_s"] <= sum(cell["timing"]["step_s"]) + 0.5
    assert cell["timing"]["min_time_s"] == 0.5 and len(cell["timing"]["step_s"]) >= 3


def test_a_quiet_cell_reads_quiet(suites):  # noqa: F811
    """Measured, not mocked. The machine may be shared: each try first measures its background over a
    sleeping window; where that is quiet, the cell beside it must read quiet too."""
    from threadpoolctl import threadpool_limits

    tries = []
    for _ in range(3):
        background = _window(0.2)
        with threadpool_limits(limits=1, user_api="blas"):
            cell = run_cell(desc(steps=3, min_time_s=0.3))
        after = _window(0.2)
        tries.append((background["other_share"], cell["interference"]["other_share"], after["other_share"]))
        if background["verdict"] == after["verdict"] == "quiet":
            assert cell["interference"]["verdict"] == "quiet", (cell["interference"]["reasons"], tries)
            return
        time.sleep(0.5)
    pytest.skip(f"the machine was never quiet around the cell (other shares {tries})")


def test_one_spinner_on_one_core_beside_a_one_thread_cell(suites, monkeypatch):  # noqa: F811
    from threadpoolctl import threadpool_limits

    cores = sorted(interference.usable_cpus() or [0])
    spinner = subprocess.Popen([sys.executable, "-c", "import os\n" + (
        f"os.sched_setaffinity(0, {{{cores[-1]}}})\n" if hasattr(__import__("os"), "sched_setaffinity") else "")
        + SPIN])
    try:
        time.sleep(0.3)
        with threadpool_limits(limits=1, user_api="blas"):
            cell = run_cell(desc(steps=3, min_time_s=1.0))
    finally:
        _stop([spinner])
    inter = cell["interference"]
    # One core of the machine's ``cores`` kept busy by another process: its share is about 1/cores.
    assert inter["other_cores"] > 0.6 and inter["verdict"] == "contended", inter


def test_the_launchers_process_tree_is_the_runs_own(monkeypatch):
    """A process the launcher started (mpiexec, a proxy) is the run's, not "other"."""
    from benchbench.executor.launch import lifeline

    child = subprocess.Popen([sys.executable, "-c", SPIN])  # a child of this process, the "launcher"
    try:
        time.sleep(0.2)
        proc = interference.psutil.Process(child.pid)
        monkeypatch.setenv(lifeline.RUN_PID_ENV, lifeline.run_pid_value())
        w = interference.CpuWindow()
        c0 = interference._process_cpu_s(proc)
        w.start()
        time.sleep(0.6)
        r = w.stop()
        c1 = interference._process_cpu_s(proc)
    finally:
        _stop([child])
    # The window's own time holds the child's CPU time (to the accounting's ticks), besides this process's.
    assert r["tree_s"] == pytest.approx(r["own_s"] + (c1 - c0), abs=4 * interference.TICK_S)
    assert c1 - c0 > 4 * interference.TICK_S  # the child did run
    one = interference.summarize([r])
    assert one["own_cores"] == pytest.approx(r["tree_s"] / r["wall_s"])
    monkeypatch.delenv(lifeline.RUN_PID_ENV)
    w = interference.CpuWindow()
    w.start()
    assert "tree_s" not in w.stop()


def test_affinity_and_the_cgroup_quota(tmp_path):
    w = [{"wall_s": 2.0, "busy_s": 2.0, "own_s": 2.0, "cores": 4, "cpu_quota": 1.5}]
    assert interference.summarize(w)["free_cores"] == pytest.approx(1.5)  # the quota, not the 4 CPUs
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert interference.cgroup_cpu_quota(str(tmp_path)) == pytest.approx(1.5)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert interference.cgroup_cpu_quota(str(tmp_path)) is None
    cpus = interference.usable_cpus()
    if cpus is not None:  # the window counts the CPUs this process may use
        window = interference.CpuWindow()
        window.start()
        assert window.stop()["cores"] == len(cpus)
