"""Classes 1 and 4 of the second pass: no link followed by the lock or a rewritten results file;
results files checked for meaning, not only shape."""
import copy
import json
import os
import subprocess
import sys

import pytest

from benchbench import cli, results, runlock
from benchbench.errors import UserError

from .conftest import results_doc

pytestmark = pytest.mark.timeout(60)


def _write(path, doc=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc or results_doc()))
    return path


def test_a_lock_symlink_to_an_outside_file_leaves_that_file_untouched(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    target = tmp_path / "results" / "m" / "r.json"
    target.parent.mkdir(parents=True)
    runlock.lock_path(target).symlink_to(outside)
    with pytest.raises(UserError, match="symbolic link"):
        runlock.RunLock(target).acquire()
    assert outside.read_text() == "keep me"
    assert runlock.lock_path(target).is_symlink()  # refused, not removed behind the user's back


def test_a_lock_hard_linked_to_another_file_is_not_written(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    target = tmp_path / "r.json"
    os.link(outside, runlock.lock_path(target))
    with pytest.raises(UserError, match="2 hard links"):
        runlock.RunLock(target).acquire()
    assert outside.read_text() == "keep me"


def test_resume_of_a_lock_symlink_is_one_line_and_exit_2(tmp_path, capsys):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    path = _write(tmp_path / "results" / "m-1" / "20261123T105100Z-3f9c2a.json")
    runlock.lock_path(path).symlink_to(outside)
    assert cli.main(["run", "--resume", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("benchbench: error:") and "symbolic link" in err
    assert outside.read_text() == "keep me"


def test_resume_of_a_symlinked_results_file_is_refused_and_the_link_kept(tmp_path, capsys):
    real = _write(tmp_path / "elsewhere" / "r.json")
    link = tmp_path / "results" / "m-1" / "20261123T105100Z-3f9c2a.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    before = real.read_bytes()
    assert cli.main(["run", "--resume", str(link)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and real.read_bytes() == before


def test_results_file_read_for_rewriting_refuses_a_link(tmp_path):
    real = _write(tmp_path / "r.json")
    (tmp_path / "link.json").symlink_to(real)
    assert results.load(tmp_path / "link.json")["run_id"]  # reading a report through a link is fine
    with pytest.raises(results.ResultsError, match="symbolic link"):
        results.load(tmp_path / "link.json", follow_symlinks=False)


def test_the_lock_is_keyed_on_the_resolved_file(tmp_path):
    real = tmp_path / "results"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    with runlock.RunLock(real / "r.json"):
        with pytest.raises(runlock.LockHeld):
            runlock.RunLock(tmp_path / "alias" / "r.json").acquire()


def test_the_lock_message_names_the_live_holder_not_a_stale_record(tmp_path):
    target = tmp_path / "r.json"
    code = ("import sys, time, json, os; from benchbench.runlock import RunLock, lock_path; "
            f"RunLock({str(target)!r}).acquire(); "
            f"os.pwrite(os.open(lock_path({str(target)!r}), os.O_WRONLY), json.dumps({{'pid': 1, 'host': 'x', "
            "'started': 'then'}).ljust(200).encode(), 0); print('held', flush=True); time.sleep(60)")
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(runlock.LockHeld, match=f"process {holder.pid} on "):
                runlock.RunLock(target).acquire()
        finally:
            holder.kill()


def test_a_results_path_that_is_not_a_regular_file_is_said_so(tmp_path, capsys):
    fifo = tmp_path / "r.json"
    os.mkfifo(fifo)
    assert cli.main(["report", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert cli.main(["run", "--resume", str(fifo)]) == 2
    err = capsys.readouterr().err
    assert "not a regular file" in err and "no run" not in err


def _cell(**changes):
    cell = copy.deepcopy(results_doc()["cells"][0])
    for dotted, value in changes.items():
        *keys, last = dotted.split(".")
        node = cell
        for key in keys:
            node = node[key]
        node[last] = value
    return cell


@pytest.mark.parametrize("changes, needle", [
    ({"timing.step_s": [0.01, -0.011, 0.012]}, "timing.step_s[1]: expected a positive step time"),
    ({"timing.step_s": [0.01, 0.0]}, "timing.step_s[1]: expected a positive step time"),
    ({"timing.step_s": []}, "an 'ok' cell without a single timed step"),
    ({"stats.step_s.median": -0.011}, "stats.step_s.median: expected a positive number"),
    ({"stats.step_s.median": 0.5}, "stats.step_s.median: 0.5 lies outside [q1, q3]"),
    ({"stats.step_s.ci_high": 0.0106}, "lies outside [ci_low, ci_high]"),
    ({"id": "other/cpu/r0"}, "cells[0].id: 'other/cpu/r0' does not match workload 'tiny'"),
    ({"id": "tiny/gpu:0/r0"}, "does not match workload 'tiny', device 'cpu'"),
    ({"id": "tiny/cpu/r5"}, "and repeat 0"),
    ({"batch_size": 0}, "batch_size: expected a batch of 1 or more samples, got 0"),
])
def test_a_tampered_results_file_is_refused_by_report_compare_and_plot(tmp_path, capsys, changes, needle):
    path = _write(tmp_path / "m-1" / "r.json", results_doc(status="complete", cells=[_cell(**changes)]))
    for argv in (["report", str(path)], ["compare", str(path), str(path)],
                 ["plot", str(path), "--output", str(tmp_path / "plots")]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("benchbench: error: ") and err.count("\n") == 1 and needle in err, (argv, err)
    assert not (tmp_path / "plots").exists()


def test_an_untampered_results_file_still_reads():
    assert results.validate(results_doc()) is not None
