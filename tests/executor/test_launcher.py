"""Worker processes: commands, results, time-outs, crashes, Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchbench import results
from benchbench.executor.launch import launcher
from benchbench.executor.protocol import CellDesc
from benchbench.executor.run import describe_cell
from benchbench.executor.planning.devices import DeviceSpec
from benchbench.executor.planning.plan import load_plan

from ..fake_suite import suite_source

SUITE = suite_source(target=2.0, epochs=2, extra='''

    @workload(name="abort", **COMMON)
    class Abort(Tiny):
        def forward(self, model, x, t, params):
            print("line one", file=sys.stderr)
            print("last words", file=sys.stderr, flush=True)
            os.abort()


    @workload(name="hang", **COMMON)
    class Hang(Tiny):
        def forward(self, model, x, t, params):
            Path("worker.pid").write_text(str(os.getpid()))
            time.sleep(600)
''')


@pytest.fixture
def suites(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "tiny.py").write_text(SUITE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class _Wl:
    name, dataset, batch_size = "tiny", "points", 8


def desc(workload="tiny", timeout=60.0, spec=DeviceSpec("cpu", "cpu", (), 1, "single")):
    plan = load_plan(None, {"workloads": [workload], "devices": ["cpu"], "timeout_s": timeout})
    wl = _Wl()
    wl.name = workload
    d = describe_cell(plan, wl, {}, workload, spec, 0)
    d["settings"].update(warmup_steps=1, steps=2, val_batches=1)
    return d


def test_describe_cell():
    d = desc(timeout=42.0, spec=DeviceSpec("cpu:dp2", "cpu", (), 2, "mpi"))
    assert isinstance(d, CellDesc)
    assert d.id == results.cell_id("tiny", "cpu:dp2", 0) and d.n_ranks == 2 and d.communicator == "mpi"
    assert d.timeout_s == 42.0 and d.settings["steps"] == 2 and d.scaling == "strong"
    assert CellDesc.from_dict(json.loads(json.dumps(d.as_dict()))) == d  # serialised and read back whole
    with pytest.raises(ValueError, match="unknown field"):
        CellDesc.from_dict({**d.as_dict(), "stale": 1})


def test_worker_commands(tmp_path):
    single = launcher.worker_command(desc(), "c.json", "o.json")
    assert single == [sys.executable, "-m", "benchbench.executor.cell", "--cell", "c.json", "--out", "o.json"]
    dp = desc(spec=DeviceSpec("cpu:dp2", "cpu", (), 2, "mpi"))
    if launcher.mpiexec_path() is None:
        with pytest.raises(RuntimeError, match="pip install mpi4py mpich"):
            launcher.worker_command(dp, "c.json", "o.json")
        return
    cmd = launcher.worker_command(dp, "c.json", "o.json", hostfile="hosts")
    assert cmd[:5] == [launcher.mpiexec_path(), "-n", "2", "-f", "hosts"] and cmd[5:] == single


def test_a_cell_runs_in_a_worker_and_reports_progress(suites):
    events = []
    cell = launcher.run_one(desc(), on_progress=events.append, log_path=suites / "logs" / "tiny.log")
    assert cell["status"] == "ok", cell["reason"]
    results.add_cell({"cells": []}, cell)
    assert [e["done"] for e in events] == [1, 2, 3] and events[-1]["total"] == 3
    assert (suites / "logs" / "tiny.log").exists()


def test_a_hung_worker_is_killed_at_the_timeout(suites, monkeypatch):
    # The worker's pid is taken from Popen, not from the worker itself: on a busy machine the
    # worker may still be importing when its 2 s are up, and it must be killed all the same.
    started = []

    class RecordingPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self.pid)

    monkeypatch.setattr(launcher.subprocess, "Popen", RecordingPopen)
    t0 = time.monotonic()
    cell = launcher.run_one(desc("hang", timeout=2.0))
    assert cell["status"] == "timeout" and "2 s" in cell["reason"]
    assert time.monotonic() - t0 < 60
    pids = started + ([int((suites / "worker.pid").read_text())] if (suites / "worker.pid").exists() else [])
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    results.add_cell({"cells": []}, cell)


def test_a_dead_worker_is_failed_with_signal_and_stderr(suites):
    cell = launcher.run_one(desc("abort"))
    assert cell["status"] == "failed"
    assert "SIGABRT" in cell["reason"] and "last words" in cell["reason"] and "line one" in cell["reason"]


def test_ctrl_c_kills_the_worker_and_propagates(suites):
    pid_file = suites / "worker.pid"

    def on_alarm(signum, frame):  # Ctrl-C as soon as the worker is inside its step
        if pid_file.exists():
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            raise KeyboardInterrupt

    def start(i, d):
        signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with pytest.raises(KeyboardInterrupt):
            launcher.run_cells([desc("hang")], on_cell_start=start)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, old)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_failing_rank_wins_over_rank_zero(tmp_path):
    out = tmp_path / "result.json"
    assert launcher._read_result(out) is None
    out.write_text(json.dumps({"status": "failed", "reason": "rank 0: CollectiveTimeout"}))
    (tmp_path / "result.json.rank1").write_text(json.dumps({"status": "failed", "reason": "rank 1: boom"}))
    assert launcher._read_result(out)["reason"] == "rank 1: boom"
    out.write_text(json.dumps({"status": "ok", "reason": None}))
    assert launcher._read_result(out)["status"] == "ok"


def test_the_root_cause_wins_over_peers_timing_out(tmp_path):
    out = tmp_path / "result.json"
    # rank 0 failed first with its own error; ranks 1 and 2 then timed out waiting for it
    out.write_text(json.dumps({"status": "failed", "reason": "rank 0: RuntimeError: CUDA error", "failed_at": 10.0}))
    for r, when in ((1, 12.0), (2, 11.0)):
        (tmp_path / f"result.json.rank{r}").write_text(json.dumps({
            "status": "failed", "failed_at": when,
            "reason": f"rank {r}: CollectiveTimeout: nccl allreduce on rank {r}/3 timed out after 5 s: another rank "
                      "died or hangs"}))
    got = launcher._read_result(out)
    assert got["reason"] == "rank 0: RuntimeError: CUDA error" and "failed_at" not in got
    # of two failures of their own, the earlier one
    (tmp_path / "result.json.rank1").write_text(json.dumps({"status": "failed", "reason": "rank 1: boom",
                                                            "failed_at": 9.5}))
    assert launcher._read_result(out)["reason"] == "rank 1: boom"
    (tmp_path / "result.json.rank1.tmp123").write_text("{")  # a half-written file is ignored
    assert launcher._read_result(out)["reason"] == "rank 1: boom"


def test_benchbench_mpiexec_chooses_the_launcher(tmp_path, monkeypatch):
    exe = tmp_path / "mpiexec"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv(launcher.MPIEXEC_ENV, str(exe))
    assert launcher.mpiexec_path() == str(exe)
    desc = {"n_ranks": 2}
    assert launcher.worker_command(desc, "c.json", "o.json")[:3] == [str(exe), "-n", "2"]
    assert launcher.mpi_record(str(exe))["mpiexec"] == str(exe)


@pytest.mark.parametrize("make", ["missing", "folder", "not executable"])
def test_a_benchbench_mpiexec_that_is_not_an_executable_is_a_user_error(tmp_path, monkeypatch, make):
    from benchbench.errors import UserError

    path = tmp_path / "mpiexec"
    if make == "folder":
        path.mkdir()
    elif make == "not executable":
        path.write_text("")
        path.chmod(0o644)
    monkeypatch.setenv(launcher.MPIEXEC_ENV, str(path))
    if make == "not executable" and os.access(path, os.X_OK):
        pytest.skip("permissions do not bind here")
    with pytest.raises(UserError, match="BENCHBENCH_MPIEXEC=.*no such executable file"):
        launcher.mpiexec_path()


def test_an_empty_benchbench_mpiexec_means_the_default(monkeypatch):
    monkeypatch.setenv(launcher.MPIEXEC_ENV, "")
    empty = launcher.mpiexec_path()
    monkeypatch.delenv(launcher.MPIEXEC_ENV)
    assert empty == launcher.mpiexec_path()
