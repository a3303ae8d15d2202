"""Class 3 of the second pass: a user's mistake or a full disk is exit 2 (or 1) and one line, never 3."""
import errno
import json

import pytest

from benchbench import cli, results
from benchbench.cell_record import failed
from benchbench.executor import interference, probes
from benchbench.executor.launch import launcher

from .conftest import PLAN

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def quick_run(tmp_path, monkeypatch):
    """A plan of three cells whose workers are stand-ins that finish at once (in this process)."""
    (tmp_path / "plan.yaml").write_text(PLAN.replace("[tiny]", "['mlp_mnist:small', 'lstm_sine', 'cnn_mnist']"))
    monkeypatch.chdir(tmp_path)

    def run_cells(descs, on_cell_start=None, on_progress=None, on_cell_done=None, **kw):
        for i, desc in enumerate(descs):
            on_cell_done(i, failed(desc, "failed", "stand-in worker"))
    monkeypatch.setattr(launcher, "run_cells", run_cells)
    monkeypatch.setattr(interference, "preflight", lambda *a, **k: {"other_share": 0.0, "cores": 1, "busy": False,
                                                                     "top": [], "load_avg": None})
    monkeypatch.setattr(probes.RunCalibration, "run_start", lambda self: None)
    return tmp_path


def _disk_fills(monkeypatch, after: int, recovers: bool):
    """RunWriter.write fails with ENOSPC from its ``after``-th call on (only once when it ``recovers``)."""
    real, calls = results.RunWriter.write, {"n": 0}

    def write(self):
        calls["n"] += 1
        if calls["n"] == after or (calls["n"] > after and not recovers):
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real(self)
    monkeypatch.setattr(results.RunWriter, "write", write)


@pytest.mark.parametrize("recovers", [True, False])
def test_a_disk_that_fills_mid_run_stops_it_with_one_line_and_a_resume_hint(quick_run, monkeypatch, capsys, recovers):
    _disk_fills(monkeypatch, after=3, recovers=recovers)  # 1: the run starts, 2: first cell, 3: second cell
    code = cli.main(["run", "--config", "plan.yaml", "--output", "out"])
    err = capsys.readouterr().err
    assert code == 2, err
    [line] = [ln for ln in err.splitlines() if ln.startswith("benchbench: error")]
    assert "No space left on device" in line and "--resume" in line and "internal error" not in err
    [path] = results.find_runs(quick_run / "out")
    run = json.loads(path.read_text())
    if recovers:  # the cell that could not be written is kept in the final write: nothing lost
        assert run["status"] == "interrupted" and len(run["cells"]) == 2
    else:
        assert run["status"] == "running" and len(run["cells"]) == 1 and "status still 'running'" in line
    assert not list((quick_run / "out").rglob("*.lock"))


@pytest.mark.parametrize("text, needle", [
    ("repeat: 1000000000\n", "'repeat' must be an integer from 1 to 1,000"),
    ("repeat: 99999999999999999999\n", "'repeat' must be an integer from 1 to 1,000"),
    ("timeout_s: .inf\n", "'timeout_s' must be a number of seconds above 0"),
    ("timeout_s: .nan\n", "'timeout_s' must be a number of seconds above 0"),
    ("seed: 18446744073709551616\n", "'seed' must be an integer from 0 to"),
])
def test_plan_file_numbers_are_bounded(tmp_path, monkeypatch, capsys, text, needle):
    (tmp_path / "plan.yaml").write_text(PLAN.replace("timeout_s: 120\n", "") + text)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--config", "plan.yaml"]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("output", ["n" * 300, "/".join(["d" * 250] * 17)])
def test_an_output_path_too_long_for_the_file_system_is_refused_before_any_work(quick_run, capsys, output):
    assert cli.main(["run", "--config", "plan.yaml", "--output", output]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("benchbench: error: --output") and "more than the" in err
    assert not results.find_runs(quick_run / "n")


def test_resume_of_a_file_whose_run_id_climbs_out_is_refused(tmp_path, capsys):
    from .conftest import results_doc

    doc = results_doc(run_id="../../escape")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    assert cli.main(["run", "--resume", str(path)]) == 2
    assert "run_id: '../../escape' cannot name a file" in capsys.readouterr().err


def test_list_of_a_missing_suites_folder_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["list", "--suites", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("err", [errno.EACCES, errno.ENAMETOOLONG, errno.ENOSPC, errno.EROFS])
def test_an_os_error_about_the_users_files_is_a_usage_error_anywhere(tmp_path, monkeypatch, capsys, err):
    """A data folder the user cannot read, say, is reported as theirs to fix, wherever it is met."""
    def list_data(args):
        raise OSError(err, "what the system says", str(tmp_path / "data"))
    monkeypatch.setitem(cli._VERBS, "data", "_fails")
    monkeypatch.setattr(cli, "_fails", list_data, raising=False)
    assert cli.main(["data", "path"]) == 2
    assert capsys.readouterr().err == f"benchbench: error: {tmp_path / 'data'}: what the system says\n"


def test_an_os_error_of_a_bug_is_still_an_internal_error(monkeypatch, capsys):
    def broken(args):
        raise OSError(errno.EBADF, "Bad file descriptor")
    monkeypatch.setitem(cli._VERBS, "data", "_fails")
    monkeypatch.setattr(cli, "_fails", broken, raising=False)
    assert cli.main(["data", "path"]) == 3
