"""Class 6 of the second pass: the environment checked like options, warnings where a limit cannot
hold, messages for people, spreadsheets and Markdown that cannot be made to run anything."""
import json

import pandas as pd
import pytest

from benchbench import cli, results
from benchbench.reporting import render

from .conftest import PLAN, results_doc

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def plan_here(tmp_path, monkeypatch):
    (tmp_path / "plan.yaml").write_text(PLAN.replace("[tiny]", "['mlp_mnist:small']").replace("synthetic", "auto"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_benchbench_data_that_is_not_a_folder_is_refused_like_data_dir(plan_here, monkeypatch, capsys):
    monkeypatch.setenv("BENCHBENCH_DATA", "/dev/null")
    assert cli.main(["run", "--config", "plan.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("benchbench: error: BENCHBENCH_DATA=/dev/null: not a folder") and err.count("\n") == 1
    (plan_here / "file").write_text("")
    monkeypatch.setenv("BENCHBENCH_DATA", str(plan_here / "file"))
    assert cli.main(["run", "--config", "plan.yaml"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_memory_limit_above_the_machines_memory_is_warned(plan_here, monkeypatch, capsys):
    from benchbench.executor.planning import batch

    def stop(*a, **k):  # the warning comes before the batch search: no need to search
        raise KeyboardInterrupt
    monkeypatch.setattr(batch, "expand", stop)
    assert cli.main(["run", "--config", "plan.yaml", "--batch-size", "max", "--memory-limit", "1000TiB",
                     "--data", "synthetic"]) == 130
    assert "warning: --memory-limit 1,024,000.0 GiB is more than this machine's memory" in capsys.readouterr().err


def test_a_hostfile_that_is_a_folder_is_said_to_be_no_regular_file(plan_here, capsys):
    assert cli.main(["run", "--config", "plan.yaml", "--hostfile", str(plan_here), "--data", "synthetic"]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_messages_about_a_plan_name_no_internal_function(tmp_path):
    with pytest.raises(results.ResultsError) as info:
        results.new_run({"id": "m"}, {}, "x")
    assert "new_run" not in str(info.value)
    run = results_doc()
    with pytest.raises(results.ResultsError) as info:
        results.add_cell(run, {"id": 3})
    assert "add_cell" not in str(info.value)


@pytest.mark.parametrize("value, written", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("-1.5", "-1.5"), ("plain", "plain"), (-2.0, "-2.0"),
])
def test_csv_cells_are_escaped_as_spreadsheets_expect(value, written):
    text = render.csv_text(pd.DataFrame({"workload": [value]}))
    assert text.splitlines()[1].strip('"').startswith(written)


def test_a_csv_report_of_a_hostile_workload_name_cannot_run_a_formula(tmp_path, capsys):
    doc = results_doc(status="complete")
    cell = doc["cells"][0]
    cell["workload"] = "=cmd|' /C calc'!A0"
    cell["id"] = f"{cell['workload']}/cpu/r0"
    path = tmp_path / "m-1" / "r.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    assert cli.main(["report", str(path), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "=cmd" in out and not any(field.startswith("=") for line in out.splitlines() for field in line.split(","))


def test_html_in_a_markdown_report_is_shown_as_text(tmp_path, capsys):
    doc = results_doc(status="complete")
    cell = doc["cells"][0]
    cell["workload"] = "<img src=x onerror=alert(1)>"
    cell["id"] = f"{cell['workload']}/cpu/r0"
    path = tmp_path / "m-1" / "r.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    assert cli.main(["report", str(path), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "<img" not in out and "&lt;img src=x onerror=alert(1)>" in out
