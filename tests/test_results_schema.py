"""The results schema file (benchbench/results.schema.json) and the messages its validation gives."""
import copy
import json
from pathlib import Path

import jsonschema
import pytest

from benchbench import results
from benchbench.results import ResultsError

from .test_results import _cell, _machine, _plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run():
    r = results.new_run(_machine(), _plan(), "benchbench run")
    results.add_cell(r, _cell(0))
    return r


def test_the_schema_is_a_valid_draft_2020_12_document():
    doc = results.schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["properties"]["schema"] == {"const": results.SCHEMA}
    assert set(doc["required"]) >= {"schema", "schema_version", "run_id", "machine", "plan", "cells"}
    on_disk = json.loads((ROOT / "benchbench" / "results.schema.json").read_text(encoding="utf-8"))
    assert doc == on_disk
    doc["title"] = "changed"  # schema() is a copy: the validator's schema stays
    assert results.schema()["title"] != "changed"


def test_the_schema_names_the_statuses_the_code_uses():
    cell = results.schema()["$defs"]["cell"]["properties"]
    assert cell["status"]["enum"] == list(results.CELL_STATUSES)
    assert results.schema()["properties"]["status"]["enum"] == list(results.RUN_STATUSES)


def _at(doc, keys, value):
    *head, last = keys
    for k in head:
        doc = doc[k]
    doc[last] = value


FULL_CELL = {
    "interference": {"other_share": 0.01, "share_uncertainty": 0.001, "other_cores": 0.02, "own_cores": 1.0,
                     "cores": 2, "free_cores": 1.98, "blas_threads": 1, "oversubscribed": False, "window_s": 1.0,
                     "threshold": 0.1, "gpu": {"other_processes": [], "clock_events": []}, "probes": None,
                     "reasons": [], "verdict": "quiet"},
    "energy": {"joules": 12.0, "joules_per_epoch": None, "samples_per_joule": 80.0, "watts": 120.0,
               "joules_per_sample": 0.0125, "window": "timed steps", "ranks": 2, "source": "nvml",
               "whole_cell_joules_rank0": 30.0},
    "memory": {"peak_host_bytes": 1, "peak_device_bytes": 2, "pool_peak_bytes_per_rank": [1, 2],
               "pool_peak_bytes": 2, "device_scope": "NVML, process-wide", "failed_alloc_bytes": None},
    "batch": {"requested": "max", "default": 100, "value": 300, "per_device": False, "quality": "throughput only",
              "lr_scaling": None, "memory_limit_bytes": 1 << 30, "memory_limit_enforced": None,
              "memory_limit_during_timing": False, "search_cap": 16384,
              "search": {"max_batch": 300, "stopped_by": "oom", "cap": 16384, "limit": "device memory",
                         "probes": [{"batch": 1, "ok": True, "bytes": 10, "seconds": 0.1}],
                         "per_rank_max": [300, 310], "text": "largest batch 300"}},
    "batchnorm_sync": {"buffers": 4, "ranks_agree": True, "rule": "averaged"},
    "interrupted": True, "some_later_field": {"kept": [1, "x"]},
}


def test_the_fields_cells_carry_beyond_the_core_are_accepted_and_kept(run, tmp_path):
    stored = results.add_cell(run, _cell(1, **copy.deepcopy(FULL_CELL)))
    assert stored["some_later_field"] == {"kept": [1, "x"]}
    path = results.atomic_write_json(tmp_path / "r.json", run)
    assert results.load(path)["cells"][1]["batch"]["search"]["per_rank_max"] == [300, 310]


@pytest.mark.parametrize("keys, value, message", [
    (["interference", "other_share"], "high", r"cells\[1\]\.interference\.other_share: expected a number or null, "
                                              r"got str"),
    (["interference", "verdict"], "busy", r"cells\[1\]\.interference\.verdict: expected one of 'quiet', "
                                          r"'contended' or null, got 'busy'"),
    (["batch", "search", "probes", 0, "ok"], "yes", r"cells\[1\]\.batch\.search\.probes\[0\]\.ok: expected a "
                                                     r"boolean, got str"),
    (["batch", "requested"], 1.5, r"cells\[1\]\.batch\.requested: expected an integer or a string, got float"),
    (["memory", "pool_peak_bytes_per_rank"], 7, r"cells\[1\]\.memory\.pool_peak_bytes_per_rank: expected a list "
                                                r"of integers or null, got int"),
    (["energy", "watts"], "100", r"cells\[1\]\.energy\.watts: expected a number or null, got str"),
    (["interrupted"], 1, r"cells\[1\]\.interrupted: expected a boolean, got int"),
])
def test_a_wrong_type_in_the_carried_fields_names_its_path(run, keys, value, message):
    cell = _cell(1, **copy.deepcopy(FULL_CELL))
    _at(cell, keys, value)
    with pytest.raises(ResultsError, match=f"^{message}$"):
        results.add_cell(run, cell)
    run["cells"].append(results.to_jsonable(cell))
    with pytest.raises(ResultsError, match=f"^r.json: {message}$"):
        results.validate(run, "r.json")


def test_a_missing_probe_field_is_named(run):
    cell = _cell(1, **copy.deepcopy(FULL_CELL))
    del cell["batch"]["search"]["probes"][0]["ok"]
    with pytest.raises(ResultsError, match=r"cells\[1\]\.batch\.search\.probes\[0\]\.ok: missing required field$"):
        results.add_cell(run, cell)


def test_an_integer_field_refuses_a_whole_float_and_a_boolean(run):
    for bad, got in ((4.0, "float"), (True, "bool")):
        doc = copy.deepcopy(run)
        doc["cells"][0]["n_devices"] = bad
        with pytest.raises(ResultsError, match=rf"cells\[0\]\.n_devices: expected an integer, got {got}$"):
            results.validate(doc, "r.json")


def test_the_most_relevant_of_several_problems_is_reported(run):
    doc = copy.deepcopy(run)
    del doc["run_id"]
    doc["cells"][0]["timing"]["step_s"] = "x"
    with pytest.raises(ResultsError, match="^r.json: run_id: missing required field$"):
        results.validate(doc, "r.json")


def test_non_finite_and_huge_numbers_are_refused_anywhere(run):
    for keys, value, message in ((["plan", "config"], {"lr": float("nan")}, r"plan\.config\.lr: expected a finite"),
                                 (["cells", 0, "params"], {"n": 1 << 70}, r"cells\[0\]\.params\.n: number out of "
                                                                          r"range \(22 digits\)")):
        doc = copy.deepcopy(run)
        _at(doc, keys, value)
        with pytest.raises(ResultsError, match=f"^r.json: {message}"):
            results.validate(doc, "r.json")


def test_a_reason_is_still_required_for_a_cell_that_is_not_ok(run):
    cell = _cell(1, status="oom")
    cell["reason"] = ""
    with pytest.raises(ResultsError, match=r"cells\[1\]\.reason: a cell with status 'oom' needs a reason"):
        results.add_cell(run, cell)


def test_hundreds_of_cells_validate_with_one_compiled_validator(run, tmp_path):
    for i in range(1, 400):
        results.add_cell(run, _cell(i, **copy.deepcopy(FULL_CELL)))
    path = results.atomic_write_json(tmp_path / "r.json", run)
    assert len(results.load(path)["cells"]) == 400
    assert results._validators() is results._validators()
    bad = json.loads(path.read_text())
    bad["cells"][399]["timing"]["step_s"] = "x"
    with pytest.raises(ResultsError, match=r"cells\[399\]\.timing\.step_s: expected a list of numbers, got str"):
        results.validate(bad, "r.json")


def test_the_readme_points_at_the_schema_file():
    text = (ROOT / "results" / "README.md").read_text(encoding="utf-8")
    assert "benchbench/results.schema.json" in text
