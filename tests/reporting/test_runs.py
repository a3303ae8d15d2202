import json

import pytest

from benchbench.reporting.runs import ReportError, file_stem, load_run, resolve_runs, runs_label


def test_default_is_newest_run(results_dir):
    (run,) = resolve_runs(None, results_dir)
    assert run.machine_id == "beta-5e6f7a8b"
    assert run.date == "2026-11-24 09:00 UTC"


def test_machine_folder_and_file(results_dir, alpha_path):
    a, b = resolve_runs([results_dir / "alpha-1a2b3c4d", alpha_path])
    assert a.path == alpha_path and b.path == alpha_path
    assert len(a.cells) == 8


def test_no_results(tmp_path):
    with pytest.raises(ReportError, match=r"no results in .*; run `benchbench run` first"):
        resolve_runs(None, tmp_path / "results")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no results in"):
        resolve_runs([tmp_path / "empty"])


def test_missing_file(tmp_path):
    with pytest.raises(ReportError, match="no such results file"):
        resolve_runs([tmp_path / "nope.json"])


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "m" / "r.json"
    path.parent.mkdir()
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ReportError) as info:
        load_run(path)
    assert str(path) in str(info.value) and "JSON" in str(info.value)
    assert "\n" not in str(info.value)


def test_wrong_version_names_the_file(tmp_path, build, alpha_doc):
    alpha_doc["schema_version"] = 99
    path = build.write(tmp_path / "m" / "r.json", alpha_doc)
    with pytest.raises(ReportError, match="schema_version") as info:
        load_run(path)
    assert str(path) in str(info.value)


def test_bad_field_names_the_field(tmp_path, build, alpha_doc):
    alpha_doc["cells"][0]["timing"]["step_s"] = "fast"
    path = build.write(tmp_path / "m" / "r.json", alpha_doc)
    with pytest.raises(ReportError, match=r"cells\[0\]\.timing\.step_s"):
        load_run(path)


def test_empty_run(tmp_path, build):
    path = build.write(tmp_path / "m" / "r.json", build.run_doc("m-1", []))
    with pytest.raises(ReportError, match="no cells"):
        resolve_runs([path])


def test_paths_must_be_a_list(results_dir):
    with pytest.raises(TypeError, match="resolve_runs: paths"):
        resolve_runs(str(results_dir))


def test_labels_and_file_stem(alpha_run, beta_run):
    assert runs_label([alpha_run, beta_run]) == {0: "alpha-1a2b3c4d", 1: "beta-5e6f7a8b"}
    # the same run twice (compared with itself or a copy): still one label per position
    assert runs_label([alpha_run, alpha_run]) == {0: f"alpha-1a2b3c4d@{alpha_run.run_id}#1",
                                                  1: f"alpha-1a2b3c4d@{alpha_run.run_id}#2"}
    assert file_stem("a/<b> c") == "a_b_c"
