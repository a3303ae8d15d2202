import copy
import json
import os
import re

import numpy
import pytest

from benchbench import results
from benchbench.results import ResultsError


def _machine():
    return {"id": "host-1a2b3c4d", "hostname": "host", "os": "Linux", "python": "3.11.7",
            "cpu": {"model": "Test CPU", "arch": "x86_64", "cores_physical": 2, "cores_logical": 4,
                    "flags": ["avx2"], "max_mhz": None},
            "blas": {"library": "openblas", "version": "0.3", "kernel": "Haswell", "threads": 2, "warning": None},
            "memory_bytes": 1 << 30, "env": {"OMP_NUM_THREADS": None}, "gpus": [],
            "versions": {"benchbench": "0.1.0", "cupy": None}}


def _plan():
    return {"profile": "quick", "devices": ["cpu"], "workloads": ["mlp_mnist"], "repeat": 2, "seed": 0}


def _cell(repeat=0, status="ok", **over):
    summary = {"n": 3, "median": 0.1, "q1": 0.1, "q3": 0.1, "iqr": 0.0, "ci_low": 0.1, "ci_high": 0.1,
               "noisy": True}
    cell = {
        "id": results.cell_id("mlp_mnist", "cpu", repeat), "workload": "mlp_mnist", "params": {},
        "device": "cpu", "device_kind": "cpu", "n_devices": 1, "scaling": "none", "communicator": "single",
        "repeat": repeat, "profile": "quick", "status": status, "reason": None if status == "ok" else "boom",
        "data": {"dataset": "mnist", "source": "synthetic", "note": None},
        "batch_size": 100, "per_device_batch": 100,
        "timing": {"warmup_steps": 1, "step_s": [0.1, 0.1, 0.1], "phases_s": {"forward": [0.05]}},
        "stats": {"step_s": summary, "samples_per_s": dict(summary, median=1000.0, q1=1000.0, q3=1000.0, ci_low=1000.0, ci_high=1000.0), "gflops": None},
        "epoch_log": [{"epoch": 1, "main/loss": 0.5, "elapsed_time": 1.0}],
        "memory": {"peak_host_bytes": 123, "peak_device_bytes": None},
        "energy": {"joules": None, "joules_per_epoch": None, "source": None},
    }
    cell.update(over)
    return cell


@pytest.fixture
def run():
    r = results.new_run(_machine(), _plan(), ["benchbench", "run", "--device", "cpu"])
    results.add_cell(r, _cell(0))
    results.add_cell(r, _cell(1, status="failed"))
    return r


def test_new_run_fields():
    r = results.new_run(_machine(), _plan(), "benchbench run")
    assert r["schema"] == results.SCHEMA and r["schema_version"] == results.SCHEMA_VERSION == 1
    assert r["status"] == "running" and r["cells"] == [] and r["command"] == "benchbench run"
    assert r["created"].endswith("Z")


def test_new_run_rejects_bad_machine_and_command():
    bad = _machine()
    del bad["cpu"]
    with pytest.raises(ResultsError, match=r"the new run: machine\.cpu: missing required field"):
        results.new_run(bad, _plan(), "x")
    with pytest.raises(TypeError, match="new_run: command"):
        results.new_run(_machine(), _plan(), 3)


def test_run_id_and_cell_id():
    a, b = results.run_id_now(), results.run_id_now()
    assert a != b and a[8] == "T" and a[15] == "Z" and a[16] == "-"
    assert results.cell_id("lstm_sine", "gpu:0,1", 2) == "lstm_sine/gpu:0,1/r2"
    for args in (("", "cpu", 0), ("a/b", "cpu", 0), ("w", "cpu", -1), ("w", "cpu", True), ("w", None, 0)):
        with pytest.raises(ValueError, match="cell_id"):
            results.cell_id(*args)


def test_add_cell_converts_numpy_and_non_finite(run):
    stored = results.add_cell(run, _cell(
        2, timing={"step_s": numpy.array([0.1, 0.2], numpy.float32)},
        epoch_log=[{"epoch": numpy.int64(1), "main/loss": float("nan")}],
        batch_size=numpy.int32(100)))
    assert stored["timing"]["step_s"] == pytest.approx([0.1, 0.2])
    assert stored["epoch_log"][0] == {"epoch": 1, "main/loss": None}
    assert type(stored["batch_size"]) is int
    json.dumps(run, allow_nan=False)


def test_add_cell_rejects_duplicate_and_malformed(run):
    with pytest.raises(ResultsError, match=r"cells\[2\]\.id: duplicate"):
        results.add_cell(run, _cell(0))
    with pytest.raises(ResultsError, match=r"^cells\[2\]\.timing\.step_s\[1\]: expected a number, got str"):
        results.add_cell(run, _cell(5, timing={"step_s": [0.1, "x"]}))
    assert len(run["cells"]) == 2


def test_round_trip(tmp_path, run):
    path = results.atomic_write_json(tmp_path / "r.json", run)
    assert results.load(path) == run


def test_run_writer_writes_after_every_cell_and_completes(tmp_path):
    r = results.new_run(_machine(), _plan(), "benchbench run")
    with results.RunWriter(tmp_path, r) as w:
        assert w.path == tmp_path / "host-1a2b3c4d" / f"{r['run_id']}.json"
        assert results.load(w.path)["status"] == "running"
        w.add_cell(_cell(0))
        on_disk = results.load(w.path)
        assert on_disk["status"] == "running" and len(on_disk["cells"]) == 1
    final = results.load(w.path)
    assert final["status"] == "complete" and len(final["cells"]) == 1


def test_run_writer_marks_interrupted_and_keeps_cells(tmp_path):
    r = results.new_run(_machine(), _plan(), "benchbench run")
    with pytest.raises(KeyboardInterrupt):
        with results.RunWriter(tmp_path, r) as w:
            w.add_cell(_cell(0))
            raise KeyboardInterrupt
    final = results.load(w.path)
    assert final["status"] == "interrupted" and final["cells"][0]["id"] == "mlp_mnist/cpu/r0"


def test_run_writer_refuses_unsafe_machine_id(tmp_path):
    m = _machine()
    m["id"] = "../escape"
    with pytest.raises(ValueError, match=r"machine\.id: '\.\./escape' cannot name a file"):
        results.RunWriter(tmp_path, results.new_run(m, _plan(), "x"))


def test_find_runs_newest_first_and_latest(tmp_path, run):
    assert results.find_runs(tmp_path / "missing") == [] and results.latest_run(tmp_path) is None
    names = ["20260101T000000Z-aaaaaa", "20261123T105100Z-bbbbbb", "20250505T101010Z-cccccc"]
    for i, name in enumerate(names):
        results.atomic_write_json(tmp_path / f"m{i % 2}" / f"{name}.json", run)
    (tmp_path / "m0" / ".20991231T000000Z-x.json.tmp").write_text("{")
    found = results.find_runs(tmp_path)
    assert [p.stem for p in found] == [names[1], names[0], names[2]]
    assert results.latest_run(tmp_path) == found[0]
    assert [p.stem for p in results.find_runs(tmp_path, machine_id="m0")] == [names[0], names[2]]


# ---------------------------------------------------------------- loader errors

def _write(tmp_path, obj):
    path = tmp_path / "bad.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_load_unreadable_and_invalid_json(tmp_path):
    with pytest.raises(ResultsError, match="nope.json: no such results file"):
        results.load(tmp_path / "nope.json")
    with pytest.raises(ResultsError, match=r"bad.json: not valid JSON \(line 1, column"):
        results.load(_write(tmp_path, '{"schema": '))
    with pytest.raises(ResultsError, match="bad.json: expected a JSON object at the top level, got list"):
        results.load(_write(tmp_path, "[]"))


def _mutate(run, fn):
    bad = copy.deepcopy(run)
    fn(bad)
    return bad


def _set(path, value):
    def fn(obj):
        *head, last = path
        for key in head:
            obj = obj[key]
        obj[last] = value
    return fn


def _delete(path):
    def fn(obj):
        *head, last = path
        for key in head:
            obj = obj[key]
        del obj[last]
    return fn


@pytest.mark.parametrize("change, message", [
    (_set(["schema"], "other"), "schema: expected 'benchbench.results', got 'other'"),
    (_set(["schema_version"], 2), "schema_version: 2 is newer than this benchbench"),
    (_set(["schema_version"], 0), "schema_version: 0 is older than this benchbench"),
    (_set(["schema_version"], "1"), "schema_version: expected an integer, got str"),
    (_delete(["run_id"]), "run_id: missing required field"),
    (_set(["status"], "paused"), "status: expected one of 'running', 'complete', 'interrupted', got 'paused'"),
    (_set(["cells"], {}), "cells: expected a list of objects, got dict"),
    (_delete(["machine", "gpus"]), r"machine\.gpus: missing required field"),
    (_set(["machine", "cpu", "cores_logical"], "4"), r"machine\.cpu\.cores_logical: expected an integer or null"),
    (_set(["machine", "gpus"], [{"index": 0}]), r"machine\.gpus\[0\]\.name: missing required field"),
    (_set(["plan", "devices"], "cpu"), r"plan\.devices: expected a list of strings, got str"),
    (_set(["cells", 1, "timing", "step_s"], "0.1"), r"cells\[1\]\.timing\.step_s: expected a list of numbers, got str"),
    (_set(["cells", 0, "timing", "step_s"], [0.1, True]), r"cells\[0\]\.timing\.step_s\[1\]: expected a number, got bool"),
    (_delete(["cells", 1, "status"]), r"cells\[1\]\.status: missing required field"),
    (_set(["cells", 1, "status"], "crashed"), r"cells\[1\]\.status: expected one of 'ok', 'failed'"),
    (_set(["cells", 1, "reason"], None), r"cells\[1\]\.reason: a cell with status 'failed' needs a reason"),
    (_set(["cells", 0, "device_kind"], "tpu"), r"cells\[0\]\.device_kind: expected one of 'cpu', 'gpu'"),
    (_set(["cells", 0, "n_devices"], 0), r"cells\[0\]\.n_devices: expected an integer >= 1"),
    (_set(["cells", 0, "stats", "step_s", "median"], None), r"cells\[0\]\.stats\.step_s\.median: expected a number"),
    (_set(["cells", 0, "epoch_log"], [{"main/loss": 1.0}]), r"cells\[0\]\.epoch_log\[0\]\.epoch: missing"),
    (_set(["cells", 0, "epoch_log", 0, "main/loss"], "x"), r"cells\[0\]\.epoch_log\[0\]\.main/loss: expected a number"),
    (_set(["cells", 0, "memory", "peak_host_bytes"], 1.5), r"cells\[0\]\.memory\.peak_host_bytes: expected an integer"),
    (_set(["cells", 1, "id"], "mlp_mnist/cpu/r0"), r"cells\[1\]\.id: duplicate cell id 'mlp_mnist/cpu/r0' \(also cells\[0\]\)"),
])
def test_load_names_file_and_field(tmp_path, run, change, message):
    path = _write(tmp_path, _mutate(run, change))
    with pytest.raises(ResultsError, match=f"^{re.escape(str(tmp_path / 'bad.json'))}: {message}") as info:
        results.load(path)
    assert "\n" not in str(info.value)


def test_newer_version_message_says_what_to_do(tmp_path, run):
    path = _write(tmp_path, _mutate(run, _set(["schema_version"], 9)))
    with pytest.raises(ResultsError, match="upgrade benchbench"):
        results.load(path)


def test_unknown_extra_fields_are_accepted(tmp_path, run):
    extended = _mutate(run, _set(["cells", 0, "quality"], {"metric": "accuracy", "value": 0.9, "extra": 1}))
    extended["note"] = "added by a later minor change"
    assert results.load(_write(tmp_path, extended))["note"] == "added by a later minor change"


def test_to_jsonable_rejects_unknown_types():
    with pytest.raises(TypeError, match=r"to_jsonable: a\.b\[1\]: object has no JSON form"):
        results.to_jsonable({"a": {"b": [1, object()]}})
