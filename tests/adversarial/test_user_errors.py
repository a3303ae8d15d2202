"""Classes 4 and 5: what the user did is one line and exit 2 before any work; bugs are exit 3."""
import json
import os
import shutil

import pytest

from benchbench import cli as cli_mod
from benchbench.errors import UserError

from .conftest import assert_user_error, cli, results_doc, run_args

pytestmark = pytest.mark.timeout(90)


def _nothing_written(project):
    assert not (project / "results").exists() or not any((project / "results").rglob("*.json"))


def test_output_that_is_a_file(project):
    (project / "out").write_text("not a folder")
    proc = cli(project, "run", "--config", project / "plan.yaml", "--output", project / "out")
    assert_user_error(proc, "--output", "is a file")
    assert (project / "out").read_text() == "not a folder"


def test_output_below_a_file(project):
    (project / "out").write_text("")
    proc = cli(project, "run", "--config", project / "plan.yaml", "--output", project / "out" / "sub")
    assert_user_error(proc, "--output", "is a file")


def test_output_that_cannot_be_written(project):
    proc = cli(project, "run", "--config", project / "plan.yaml", "--output", "/proc/benchbench-results")
    assert_user_error(proc, "--output /proc/benchbench-results", "cannot write")


def test_output_on_a_full_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    from benchbench.executor.planning import preflight

    real_fdopen = preflight.os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(preflight.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(UserError, match="No space left on device"):
        preflight.check_output_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe file is removed


def test_data_folder_that_is_a_file(project):
    (project / "data").write_text("")
    proc = cli(project, *run_args(project, "--data-dir", project / "data"))
    assert_user_error(proc, "--data-dir", "is a file")
    _nothing_written(project)


def test_non_utf8_config_names_file_and_line(project):
    (project / "plan.yaml").write_bytes(b"devices: cpu\n# caf\xe9\nworkloads: [tiny]\n")
    assert_user_error(cli(project, *run_args(project)), "plan.yaml:2:", "not UTF-8")
    _nothing_written(project)


def test_duplicate_top_level_key(project):
    (project / "plan.yaml").write_text("devices: cpu\nworkloads: [tiny]\ndevices: gpu:0\n")
    assert_user_error(cli(project, *run_args(project)), "plan.yaml:3:", "duplicate key 'devices'", "line 1")


def test_duplicate_nested_key(project):
    (project / "plan.yaml").write_text("profiles:\n  quick:\n    steps: 2\n    steps: 3\n")
    assert_user_error(cli(project, *run_args(project)), "plan.yaml:4:", "duplicate key 'steps'")


def test_two_workload_specs_resolving_to_one_cell(project):
    proc = cli(project, *run_args(project, "--workload", "tiny", "tiny"))
    assert_user_error(proc, "tiny/cpu/r0", "given twice")
    _nothing_written(project)


def test_two_spellings_of_one_workload_resolving_to_one_cell(tmp_path):
    (tmp_path / "plan.yaml").write_text("devices: cpu\ndata: synthetic\n")
    proc = cli(tmp_path, "run", "--config", tmp_path / "plan.yaml", "--output", tmp_path / "results",
               "--workload", "resnet_cifar10", "resnet_cifar10:depth=18")
    assert_user_error(proc, "resnet_cifar10/cpu/r0", "'resnet_cifar10:depth=18'", "given twice")
    _nothing_written(tmp_path)


def test_batch_that_does_not_divide_over_ranks_under_strong_scaling(project):
    proc = cli(project, *run_args(project, "--workload", "big_batch", "--device", "cpu:dp3", "--scaling", "strong"))
    assert_user_error(proc, "cpu:dp3", "3 devices", "batch of 10", "--scaling weak")
    _nothing_written(project)


@pytest.mark.parametrize("option", ["--json", "--chart"])
def test_profile_output_checked_before_profiling(project, option):
    proc = cli(project, "profile", "tiny", option, project / "missing" / "p.json")
    assert_user_error(proc, option, "does not exist")
    assert "forward" not in proc.stdout  # nothing was profiled


def test_profile_of_an_unknown_workload_is_a_user_error(project):
    assert_user_error(cli(project, "profile", "no_such_workload"), "no_such_workload")


def test_report_output_checked_before_reporting(project):
    (project / "r.json").write_text(json.dumps(results_doc()))
    proc = cli(project, "report", project / "r.json", "--output", project / "missing" / "report.md")
    assert_user_error(proc, "--output", "does not exist")


def test_plot_outdir_that_is_a_file(project):
    (project / "r.json").write_text(json.dumps(results_doc()))
    (project / "plots").write_text("")
    assert_user_error(cli(project, "plot", project / "r.json", "--outdir", project / "plots"), "--output", "is a file")


def test_compare_output_that_is_a_folder(project):
    (project / "r.json").write_text(json.dumps(results_doc()))
    proc = cli(project, "compare", project / "r.json", project / "r.json", "--output", project)
    assert_user_error(proc, "--output", "is a folder")


@pytest.mark.parametrize("bad, field", [
    ("NaN", "cells[0].timing.step_s[1]"),
    ("Infinity", "cells[0].timing.step_s[1]"),
    ("-1e999", "cells[0].timing.step_s[1]"),
    ('"0.011"', "cells[0].timing.step_s[1]"),
])
def test_results_with_non_finite_or_mistyped_numbers(project, bad, field):
    text = json.dumps(results_doc()).replace("0.011, 0.012", f"{bad}, 0.012")
    (project / "bad.json").write_text(text)
    assert_user_error(cli(project, "report", project / "bad.json"), "bad.json", field)


def test_non_finite_summary_value_names_its_field(project):
    text = json.dumps(results_doc()).replace('"median": 0.011', '"median": 1e400')
    (project / "bad.json").write_text(text)
    assert_user_error(cli(project, "report", project / "bad.json"), "cells[0].stats.step_s.median", "finite")


def test_compare_of_a_run_with_itself_and_a_copy(project):
    path = project / "r.json"
    path.write_text(json.dumps(results_doc()))
    shutil.copy(path, project / "copy.json")
    for other in (path, project / "copy.json"):
        proc = cli(project, "compare", path, other)
        assert proc.returncode == 0, proc.stderr
        assert "#2" in proc.stdout and "1×" in proc.stdout


def test_bug_is_an_internal_error_not_a_usage_error(monkeypatch, capsys):
    def buggy(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(cli_mod, "_cmd_info", buggy)
    assert cli_mod.main(["info"]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "an internal invariant broke" in err


def test_user_error_type_is_exit_2(monkeypatch, capsys):
    def wrong(args):
        raise UserError("the user gave a wrong thing")

    monkeypatch.setattr(cli_mod, "_cmd_info", wrong)
    assert cli_mod.main(["info"]) == 2
    assert capsys.readouterr().err.strip() == "benchbench: error: the user gave a wrong thing"


def test_internal_error_during_a_run_keeps_finished_cells(project, monkeypatch, capsys):
    from benchbench import results
    from benchbench.executor.launch import progress

    calls = {"n": 0}
    real_done = progress.RunProgress.done

    def done_then_bug(self, index, cell):
        real_done(self, index, cell)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("a bug after the first cell")

    monkeypatch.setattr(progress.RunProgress, "done", done_then_bug)
    monkeypatch.chdir(project)
    code = cli_mod.main([str(a) for a in run_args(project, "--workload", "tiny", "sleepy")])
    assert code == 3
    assert "internal error" in capsys.readouterr().err
    [path] = results.find_runs(project / "results")
    run = results.load(path)
    assert run["status"] == "interrupted" and [c["workload"] for c in run["cells"]] == ["tiny"]
    assert not list((project / "results").rglob("*.lock"))


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not bind root")
def test_output_and_data_folders_without_permission(project):
    locked = project / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        proc = cli(project, *[a if a != project / "results" else locked / "results" for a in run_args(project)])
        assert_user_error(proc, "--output", "cannot write")
        unreadable = project / "data"
        unreadable.mkdir(mode=0o000)
        proc = cli(project, *run_args(project, "--data-dir", unreadable))
        assert_user_error(proc, "--data-dir", "cannot read")
    finally:
        for folder in (locked, project / "data"):
            if folder.exists():
                folder.chmod(0o700)
