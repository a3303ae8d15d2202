"""Class 2 of the second pass: `bandwidth` under the process discipline of `run` (one helper for all)."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchbench.executor.launch import processes

from .conftest import assert_user_error, cli, fake_sweep, popen

pytestmark = pytest.mark.timeout(90)

PACKAGE = Path(__file__).resolve().parents[2] / "benchbench"


@pytest.mark.parametrize("sizes, needle", [
    ("0,1024", "0 bytes is not a multiple of 4"), ("-1,1024", "-1 bytes"), ("6,1024", "6 bytes"),
    ("1024", "got 1"), ("1024,1024", "1024 is given twice"), ("", "give two or more"),
    ("x,1024", "'x' is not a whole number"), ("99999999999999999999,4", "from 4 bytes to 1 GiB"),
])
def test_bandwidth_sizes_are_checked_before_anything_starts(tmp_path, sizes, needle, monkeypatch, capsys):
    from benchbench import cli as cli_mod
    from benchbench.executor import bandwidth

    monkeypatch.setattr(bandwidth, "run_sweep", lambda *a, **k: pytest.fail("the sweep started"))
    assert cli_mod.main(["bandwidth", "--device", "cpu:dp2", f"--sizes={sizes}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("benchbench: error: --sizes") and needle in err and "\n" not in err


@pytest.mark.parametrize("where, needle", [("missing/out.json", "does not exist"), ("ro/out.json", "cannot write")])
def test_bandwidth_json_output_is_checked_before_the_sweep(tmp_path, where, needle, monkeypatch, capsys):
    from benchbench import cli as cli_mod
    from benchbench.executor import bandwidth

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(bandwidth, "run_sweep", lambda *a, **k: pytest.fail("the sweep started"))
    if where.startswith("ro"):
        from benchbench.executor.planning import preflight

        def full(*a, **k):
            raise OSError(30, "Read-only file system")
        monkeypatch.setattr(preflight.tempfile, "mkstemp", full)
    assert cli_mod.main(["bandwidth", "--device", "cpu:dp2", "--json", str(tmp_path / where)]) == 2
    err = capsys.readouterr().err
    assert "--json" in err and needle in err
    assert not (tmp_path / "missing").exists()


def test_bandwidth_json_that_cannot_be_written_after_the_sweep_is_one_line(tmp_path, monkeypatch, capsys):
    from benchbench import cli as cli_mod, json_files
    from benchbench.executor import bandwidth

    fake = fake_sweep()
    monkeypatch.setattr(bandwidth, "run_sweep", lambda *a, **k: fake)

    def read_only(*a, **k):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(json_files.tempfile, "mkstemp", read_only)
    assert cli_mod.main(["bandwidth", "--device", "cpu:dp2", "--json", str(tmp_path / "out.json")]) == 2
    assert "Read-only file system" in capsys.readouterr().err


def test_one_helper_starts_every_process_group():
    """Whatever launches mpiexec or a worker goes through processes.group: nobody else makes sessions."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "processes.py" and re.search(r"start_new_session|setsid|set_parent_death_signal\b(?!\()", text):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []
    for name in ("executor/launch/launcher.py", "executor/bandwidth.py"):
        assert "processes.group(" in (PACKAGE / name).read_text(encoding="utf-8"), name


def test_group_ends_the_whole_tree_when_the_block_is_interrupted():
    grandchild = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    with pytest.raises(KeyboardInterrupt):
        with processes.group([sys.executable, "-c", grandchild]) as proc:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not psutil.Process(proc.pid).children():
                time.sleep(0.05)
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            assert len(tree) == 2
            raise KeyboardInterrupt
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive


def test_stale_scratch_folders_of_dead_owners_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"benchbench-cell-{int(dead.stdout)}-abc"
    mine = tmp_path / f"benchbench-bw-{os.getpid()}-def"
    other = tmp_path / "benchbench-cell-xyz"  # no owner recorded: never touched
    for folder in (stale, mine, other):
        (folder / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / f"benchbench-cell-{int(dead.stdout)}-link").symlink_to(outside)
    assert processes.sweep_stale_scratch(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and other.exists() and outside.exists()


def test_a_run_names_its_scratch_folder_after_itself():
    with processes.scratch_dir("cell") as tmp:
        assert Path(tmp).name.startswith(f"benchbench-cell-{os.getpid()}-")


def _long_sweep(project, *extra):
    return ("bandwidth", "--device", "cpu:dp2", "--sizes", "4096,8192", "--reps", "100000", *extra)


def _ranks(pid):
    try:
        return [p for p in psutil.Process(pid).children(recursive=True)
                if "benchbench.executor.bandwidth" in " ".join(p.cmdline())]
    except psutil.Error:
        return []


@pytest.mark.mpi
def test_sigterm_to_bandwidth_leaves_no_process_behind(project):
    proc = popen(project, *_long_sweep(project))
    deadline, ranks = time.monotonic() + 60, []
    while time.monotonic() < deadline and len(ranks) < 2:
        ranks = _ranks(proc.pid)
        time.sleep(0.1)
    assert len(ranks) >= 2, "the ranks did not start"
    everything = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    gone, alive = psutil.wait_procs(everything, timeout=10)
    for p in alive:
        p.kill()
    assert not alive, f"left running after SIGTERM: {alive}"
    assert not list((project / "tmp").glob("benchbench-bw-*")), "scratch folders were left behind"


@pytest.mark.mpi
def test_bandwidth_time_out_ends_every_rank(project):
    proc = cli(project, *_long_sweep(project, "--timeout", "1"), timeout=60)
    assert_user_error(proc, "longer than 1 s", "--timeout")
    assert not list((project / "tmp").glob("benchbench-bw-*"))
    assert not [p for p in psutil.process_iter(["cmdline"])
                if str(project) in " ".join(p.info["cmdline"] or []) and "bandwidth" in " ".join(p.info["cmdline"] or [])]


@pytest.mark.mpi
def test_ranks_of_bandwidth_end_when_it_is_killed_outright(project):
    proc = popen(project, *_long_sweep(project))
    deadline, ranks = time.monotonic() + 60, []
    while time.monotonic() < deadline and len(ranks) < 2:
        ranks = _ranks(proc.pid)
        time.sleep(0.1)
    assert len(ranks) >= 2, "the ranks did not start"
    everything = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()  # SIGKILL: no handler runs; the parent-death signal and the ranks' watchdog must do it
    proc.communicate(timeout=30)
    gone, alive = psutil.wait_procs(everything, timeout=10)
    for p in alive:
        p.kill()
    assert not alive, f"left running after SIGKILL: {alive}"
