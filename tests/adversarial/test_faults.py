"""Classes 6, 7 and 8: broken suite files, long runs keep what they measured, honest statuses."""
import io
import json
import signal
import time

import pytest
from rich.console import Console

from benchbench import registry, results
from benchbench.executor.launch import launcher, oom_evidence
from benchbench.executor.launch.progress import RunProgress

from .conftest import cli, only_run, popen, run_args

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("raising, name", [("raise SystemExit(3)", "SystemExit: 3"),
                                           ("raise KeyboardInterrupt", "KeyboardInterrupt"),
                                           ("import sys; sys.exit()", "SystemExit"),
                                           ("raise GeneratorExit", "GeneratorExit"),
                                           ("1 / 0", "ZeroDivisionError")])
def test_suite_raising_anything_at_import_is_reported_and_others_load(project, raising, name):
    (project / "suites" / "broken.py").write_text(raising + "\n")
    reg = registry.discover(project / "suites", entry_points=False)
    assert "tiny" in reg.workloads
    [(where, message)] = reg.errors
    assert where.endswith("broken.py") and message.startswith(name), message


def test_list_and_run_go_on_beside_a_suite_that_exits(project):
    (project / "suites" / "broken.py").write_text("import sys\nsys.exit('no')\n")
    listed = cli(project, "list")
    assert listed.returncode == 0, listed.stderr
    assert "tiny" in listed.stdout and "broken.py" in listed.stderr
    ran = cli(project, *run_args(project))
    assert ran.returncode == 0, ran.stderr
    assert "broken.py" in ran.stderr and only_run(project)["cells"][0]["status"] == "ok"


def test_full_cell_killed_mid_run_keeps_its_epochs_and_names_the_signal(project):
    proc = cli(project, *run_args(project, "--workload", "killed_late", "--profile", "full"))
    assert proc.returncode == 1, proc.stderr
    [cell] = only_run(project)["cells"]
    assert cell["status"] == "failed"  # SIGKILL alone is no evidence of an out-of-memory kill
    assert "SIGKILL" in cell["reason"] and "kept" in cell["reason"]
    assert [row["epoch"] for row in cell["epoch_log"]] == [1]
    assert cell["epoch_log"][0]["main/loss"] > 0


def test_full_cell_timing_out_keeps_its_epochs(project):
    (project / "stall.flag").write_text("")
    (project / "plan.yaml").write_text((project / "plan.yaml").read_text().replace(
        "full: {warmup_steps: 1, val_batches: 1}", "full: {warmup_steps: 1, val_batches: 1, timeout_s: 10}"))
    proc = cli(project, *run_args(project, "--workload", "stall_late", "--profile", "full"))
    assert proc.returncode == 1, proc.stderr
    [cell] = only_run(project)["cells"]
    assert cell["status"] == "timeout", cell["reason"]
    assert [row["epoch"] for row in cell["epoch_log"]] == [1]


def test_interrupted_full_cell_keeps_its_epochs_and_resume_reruns_it(project):
    (project / "stall.flag").write_text("")
    proc = popen(project, *run_args(project, "--workload", "stall_late", "--profile", "full"))
    deadline, seen = time.monotonic() + 90, ""
    while time.monotonic() < deadline and "epoch 1" not in seen:
        line = proc.stderr.readline()  # off a terminal, progress is a line per epoch
        assert line or proc.poll() is None, seen
        seen += line
    assert "epoch 1" in seen, seen
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, seen + err
    run = only_run(project)
    assert run["status"] == "interrupted"
    [cell] = run["cells"]
    assert cell["interrupted"] is True and "interrupted after 1" in cell["reason"]
    assert [row["epoch"] for row in cell["epoch_log"]] == [1]
    (project / "stall.flag").unlink()
    [path] = results.find_runs(project / "results")
    resumed = cli(project, "run", "--resume", path)
    assert resumed.returncode == 0, resumed.stderr
    [cell] = only_run(project)["cells"]
    assert cell["status"] == "ok" and len(cell["epoch_log"]) == 3 and not cell.get("interrupted")


def test_progress_lines_per_epoch_when_not_a_terminal(project):
    proc = cli(project, *run_args(project, "--profile", "full"))
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ": epoch " in ln]
    assert [ln.split(": epoch ")[1].split()[0] for ln in lines] == ["1", "2", "3"], proc.stderr


def test_progress_heartbeat_when_not_a_terminal():
    out = io.StringIO()
    progress = RunProgress(1, console=Console(file=out, width=120), heartbeat_s=0.2)
    try:
        progress.start(0, {"id": "tiny/cpu/r0", "device": "cpu"})
        progress.update(0, {"done": 3, "total": 10})
        deadline = time.monotonic() + 30
        while "running" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        progress.close()
    assert "tiny on cpu: running step 3/10" in out.getvalue()
    with pytest.raises(ValueError, match="heartbeat_s"):
        RunProgress(1, console=Console(file=io.StringIO()), heartbeat_s=0)


def test_epoch_log_reader_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "epochs.jsonl"
    path.write_text(json.dumps({"epoch": 1, "main/loss": 0.5}) + "\n" + '{"epoch": 2, "main/lo')
    assert launcher.read_epoch_log(path) == [{"epoch": 1, "main/loss": 0.5}]
    assert launcher.read_epoch_log(tmp_path / "missing") == []


def test_memory_error_in_the_worker_is_oom(project):
    proc = cli(project, *run_args(project, "--workload", "no_memory"))
    assert proc.returncode == 1, proc.stderr
    [cell] = only_run(project)["cells"]
    assert cell["status"] == "oom" and "MemoryError" in cell["reason"]


def test_worker_killed_by_sigterm_is_recorded_with_that_signal(project):
    proc = cli(project, *run_args(project, "--workload", "terminated"))
    assert proc.returncode == 1, proc.stderr
    [cell] = only_run(project)["cells"]
    assert cell["status"] == "failed" and "SIGTERM" in cell["reason"]


def test_oom_only_on_a_counted_out_of_memory_kill(tmp_path, monkeypatch):
    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 0\noom 1\noom_kill 4\n")
    monkeypatch.setattr(oom_evidence, "_cgroup_files", lambda: [tmp_path / "missing", events])
    before = oom_evidence.oom_kill_count()
    assert before == 4
    assert not oom_evidence.oom_killed_since(before)
    events.write_text("oom 2\noom_kill 5\n")
    assert oom_evidence.oom_killed_since(before)
    assert not oom_evidence.oom_killed_since(None)
