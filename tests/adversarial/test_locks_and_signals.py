"""Classes 1 and 2: one writer per results file; SIGTERM/SIGHUP as Ctrl-C; workers die with the run."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from benchbench import results, runlock
from benchbench.executor.launch import lifeline

from .conftest import assert_user_error, cli, only_run, popen, results_doc, run_args

pytestmark = pytest.mark.timeout(120)


def _write_run(path, doc=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc or results_doc()))
    return path


def _this_machine():
    from benchbench import system

    return system.fingerprint()


def _resumable(project):
    """A real interrupted run (first cell done) written by benchbench itself, and its path."""
    proc = cli(project, *run_args(project, "--workload", "tiny"))
    assert proc.returncode == 0, proc.stderr
    [path] = results.find_runs(project / "results")
    doc = json.loads(path.read_text())
    doc["status"] = "interrupted"
    doc["plan"]["workloads"] = ["tiny", "sleepy"]
    path.write_text(json.dumps(doc))
    return path


def test_resume_of_a_run_held_by_a_live_process_is_refused(project):
    path = _write_run(project / "results" / "m-1" / "20261123T105100Z-3f9c2a.json")
    before = path.read_bytes()
    with runlock.RunLock(path):
        proc = cli(project, "run", "--resume", path)
    assert_user_error(proc, "--resume:", f"process {os.getpid()}", "being written")
    assert path.read_bytes() == before


def test_stale_lock_of_a_dead_process_is_taken_over(project):
    path = _resumable(project)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    runlock.lock_path(path).write_text(json.dumps({"pid": int(dead.stdout), "host": "h", "started": "x"}))
    proc = cli(project, "run", "--resume", path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(path.read_text())["status"] == "complete"
    assert not runlock.lock_path(path).exists()


def test_lock_of_a_killed_holder_is_released_by_the_kernel(tmp_path):
    target = tmp_path / "r.json"
    with subprocess.Popen([sys.executable, "-c", "import sys, time; from benchbench.runlock import RunLock; "
                           f"RunLock({str(target)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(runlock.LockHeld, match=f"process {holder.pid}"):
                runlock.RunLock(target).acquire()
        finally:
            holder.kill()
    with runlock.RunLock(target) as lock:
        assert lock.held


def test_two_locks_on_one_file_in_one_process_exclude_each_other(tmp_path):
    first = runlock.RunLock(tmp_path / "r.json").acquire()
    with pytest.raises(runlock.LockHeld):
        runlock.RunLock(tmp_path / "r.json").acquire()
    first.release()
    assert not runlock.lock_path(tmp_path / "r.json").exists()
    with runlock.RunLock(tmp_path / "r.json"):
        pass


def test_resume_file_updates_exactly_that_file(project):
    original = _resumable(project)
    elsewhere = project / "copies" / "mine.json"
    elsewhere.parent.mkdir()
    shutil.copy(original, elsewhere)
    before = original.read_bytes()
    proc = cli(project, "run", "--resume", elsewhere, "--output", project / "results")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(elsewhere.read_text())["status"] == "complete"
    assert [c["workload"] for c in json.loads(elsewhere.read_text())["cells"]] == ["tiny", "sleepy"]
    assert original.read_bytes() == before  # the run's usual path is not touched
    assert sorted(p.name for p in (project / "results").rglob("*") if p.is_file()) == [original.name]
    assert sorted(p.name for p in elsewhere.parent.iterdir()) == ["mine.json"]


def _wait_for_cells(project, n, proc, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        files = results.find_runs(project / "results")
        if files:
            try:
                if len(json.loads(files[0].read_text())["cells"]) >= n:
                    return
            except ValueError:
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError(f"{n} cell(s) did not finish within {deadline_s} s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signal_is_handled_like_ctrl_c(project, sig):
    (project / "slow.flag").write_text("")
    proc = popen(project, *run_args(project, "--workload", "tiny", "sleepy"))
    _wait_for_cells(project, 1, proc)
    time.sleep(1.0)  # the slow cell's worker is running
    workers = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run = only_run(project)
    assert run["status"] == "interrupted" and [c["workload"] for c in run["cells"]] == ["tiny"]
    assert "--resume" in err
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in workers)
    assert not list((project / "tmp").glob("benchbench-cell-*")), "temporary cell folders were left behind"
    assert not list((project / "results").rglob("*.lock"))
    (project / "slow.flag").unlink()
    [path] = results.find_runs(project / "results")
    resumed = cli(project, "run", "--resume", path)
    assert resumed.returncode == 0, resumed.stderr
    assert [c["workload"] for c in only_run(project)["cells"]] == ["tiny", "sleepy"]


def test_worker_does_not_outlive_a_sigkilled_run(project):
    proc = popen(project, *run_args(project, "--workload", "hang"))
    deadline = time.monotonic() + 60
    workers = []
    while time.monotonic() < deadline and not workers:
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)]
        time.sleep(0.1)
    assert workers, "no worker started"
    proc.kill()
    proc.communicate(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=30)
    for p in alive:  # leave nothing behind, even when the test fails
        p.kill()
    assert not alive, f"workers outlived the run: {alive}"


def test_parent_death_signal_is_set_on_linux():
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    code = "from benchbench.executor.launch import lifeline; print(lifeline.set_parent_death_signal())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr


def test_watchdog_ends_the_worker_when_the_run_is_gone():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    code = (f"from benchbench.executor.launch import lifeline; import time; lifeline.start_watchdog({int(dead.stdout)}, 0.05); "
            "time.sleep(60)")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         start_new_session=True)
    assert out.returncode in (-signal.SIGKILL, 137), out
    assert time.monotonic() - t0 < 50


def test_watchdog_watches_only_a_run_on_this_host(monkeypatch):
    monkeypatch.setenv(lifeline.RUN_PID_ENV, "1234@some-other-node")
    assert lifeline._watched_pid() is None
    monkeypatch.setenv(lifeline.RUN_PID_ENV, lifeline.run_pid_value(4321))
    assert lifeline._watched_pid() == 4321
    monkeypatch.setenv(lifeline.RUN_PID_ENV, "garbage")
    assert lifeline.start_watchdog() is None


@pytest.mark.mpi
def test_sigterm_ends_every_rank_of_a_data_parallel_cell(project):
    proc = popen(project, *run_args(project, "--workload", "hang", "--device", "cpu:dp2"))
    deadline, ranks = time.monotonic() + 90, []
    while time.monotonic() < deadline and len(ranks) < 2:
        ranks = [p for p in psutil.Process(proc.pid).children(recursive=True)
                 if "benchbench.executor.cell" in " ".join(p.cmdline()) and "mpiexec" not in p.cmdline()[0]]
        time.sleep(0.2)
    assert len(ranks) >= 2, "the ranks did not start"
    everything = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    gone, alive = psutil.wait_procs(everything, timeout=30)
    for p in alive:
        p.kill()
    assert not alive, f"left running after SIGTERM: {alive}"
    assert only_run(project)["status"] == "interrupted"

