"""One cell in this process: records in the results schema, failures classified, hashes, batches."""
import json

import pytest

from benchbench import results
from benchbench.cell_record import classify, failed, one_line
from benchbench.executor.cell.worker import main
from benchbench.executor.cell.run_cell import run_cell
from benchbench.executor.cell import training

from ..fake_suite import suite_source

SUITE = suite_source(target=0.0, epochs=3, extra='''

    @workload(name="crash", **COMMON)
    class Crash(Tiny):
        def forward(self, model, x, t, params):
            raise RuntimeError("boom")


    @workload(name="hungry", **COMMON)
    class Hungry(Tiny):
        def forward(self, model, x, t, params):
            raise MemoryError("cannot allocate")


    @workload(name="nan", **COMMON)
    class NaN(Tiny):
        def forward(self, model, x, t, params):
            loss, acc = super().forward(model, x, t, params)
            return loss * float("inf"), acc
''')


@pytest.fixture
def suites(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "tiny.py").write_text(SUITE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def desc(workload="tiny", profile="quick", **settings):
    s = {"warmup_steps": 1, "steps": 3, "val_batches": 1, "epochs": None, "timeout_s": 60}
    s.update(settings)
    return {"id": f"{workload}/cpu/r0", "workload": workload, "workload_name": workload, "params": {},
            "dataset": "points", "device": "cpu", "device_kind": "cpu", "indices": [], "n_ranks": 1,
            "communicator": "single", "scaling": "strong", "repeat": 0, "profile": profile, "settings": s,
            "seed": 0, "data": "synthetic", "data_dir": None, "dtype": "float32", "deterministic": False}


def stored(cell):
    run = {"cells": []}
    return results.add_cell(run, cell)


def test_quick_cell_follows_the_schema(suites):
    cell = run_cell(desc())
    assert cell["status"] == "ok", cell["reason"]
    stored(cell)
    assert len(cell["timing"]["step_s"]) == 3 and cell["timing"]["warmup_steps"] == 1
    assert cell["stats"]["step_s"]["n"] == 3
    assert cell["stats"]["gflops"] == pytest.approx(48.0 * cell["stats"]["samples_per_s"]["median"] / 1e9)
    assert cell["data"] == {"dataset": "points", "source": "generated", "note": "random points"}
    assert cell["quality"]["metric"] == "accuracy" and cell["quality"]["reached"] is True
    assert cell["scaling"] == "none" and cell["epoch_log"] == []
    # the compiled CPU kernels were made ready before the first step, and the record says how
    from benchbench.core.kernels import cpu_compiled

    kernels = cell["cpu_kernels"]
    assert kernels["path"] == ("compiled" if cpu_compiled.active() else "numpy")
    if kernels["path"] == "compiled":
        assert kernels["kernels"] >= 10 and kernels["threads"] >= 1 and kernels["compile_s"] >= 0
        assert kernels["cold"] + kernels["cached"] <= kernels["kernels"]


def test_full_cell_logs_epochs_and_stops_at_the_target(suites):
    cell = run_cell(desc(profile="full", val_batches=None))
    assert cell["status"] == "ok", cell["reason"]
    stored(cell)
    [row] = cell["epoch_log"]  # target 0.0 is reached after the first epoch
    assert set(row) == {"epoch", "main/loss", "validation/main/loss", "main/accuracy",
                        "validation/main/accuracy", "elapsed_time"}
    assert cell["quality"]["time_to_target_s"] == row["elapsed_time"] > 0
    assert len(cell["timing"]["step_s"]) == 64 // 8 - 1  # one epoch, minus the warm-up step


def test_repeats_are_bit_identical_on_the_cpu(suites):
    a, b = run_cell(desc()), run_cell(desc())
    assert a["hashes"] == b["hashes"]
    c = run_cell({**desc(), "seed": 1})
    assert c["hashes"]["weights"] != a["hashes"]["weights"]


@pytest.mark.parametrize("workload, status, needle", [
    ("crash", "failed", "RuntimeError: boom"),
    ("hungry", "oom", "MemoryError"),
    pytest.param("nan", "diverged", "loss became inf at step 1",
                 marks=pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")),
    ("missing", "failed", "unknown workload 'missing'"),
])
def test_failures_become_records(suites, workload, status, needle):
    cell = run_cell(desc(workload))
    assert cell["status"] == status and needle in cell["reason"]
    assert "\n" not in cell["reason"]
    stored(cell)


def test_bfloat16_is_refused_in_a_cell(suites):
    cell = run_cell({**desc(), "dtype": "bfloat16"})
    assert cell["status"] == "failed" and "bfloat16 is not supported" in cell["reason"]


def test_main_writes_the_result_file(suites):
    (suites / "cell.json").write_text(json.dumps(desc()))
    assert main(["--cell", str(suites / "cell.json"), "--out", str(suites / "out.json")]) == 0
    cell = json.loads((suites / "out.json").read_text())
    assert cell["status"] == "ok"
    assert not list(suites.glob("*out.json*tmp*"))


def test_skeleton_and_failed_records_follow_the_schema():
    cell = failed(desc(), "timeout", "no result\nwithin 3 s")
    assert cell["reason"] == "no result within 3 s"
    stored(cell)
    assert one_line("x" * 1000).endswith("…") and len(one_line("x" * 1000)) <= 300


def test_batches_for_strong_and_weak_scaling():
    assert training._batches(100, 1, "strong") == (100, 100)
    assert training._batches(100, 4, "strong") == (100, 25)
    assert training._batches(100, 4, "weak") == (400, 100)
    with pytest.raises(ValueError, match="does not split over 3 devices"):
        training._batches(100, 3, "strong")


def test_classify():
    assert classify(MemoryError()) == "oom"
    assert classify(type("OutOfMemoryError", (Exception,), {})("Out of memory allocating")) == "oom"
    assert classify(ValueError("x")) == "failed"


def test_float16_cell_trains_with_float32_master_weights_and_loss_scaling():
    # The CLI keeps --dtype float16 to GPUs; the runner's mixed-precision path itself is device-neutral.
    from benchbench.cell_record import classify, failed, one_line
    from benchbench.executor.cell.worker import main
    from benchbench.executor.cell.run_cell import run_cell

    desc = {"id": "mlp_mnist/cpu/r0", "workload": "mlp_mnist:small", "device": "cpu", "device_kind": "cpu",
            "dtype": "float16", "data": "synthetic", "settings": {"warmup_steps": 1, "steps": 3, "val_batches": 1}}
    cell = run_cell(desc)
    assert cell["status"] == "ok", cell["reason"]
    assert cell["dtype"] == "float16"
    assert cell["loss_scale"] == {"final": 2.0 ** 15, "skipped_steps": 0}
    assert len(cell["loss_curve"]) == 4 and cell["loss_curve"][-1] < cell["loss_curve"][0]


def test_full_cell_until_epochs_trains_every_epoch_and_keeps_the_best(suites):
    cell = run_cell(desc(profile="full", val_batches=None, until="epochs"))
    assert cell["status"] == "ok", cell["reason"]
    stored(cell)
    assert [row["epoch"] for row in cell["epoch_log"]] == [1, 2, 3]  # the target (0.0) did not stop it
    q = cell["quality"]
    assert q["until"] == "epochs" and q["epochs"] == 3 and q["reached"] is True
    values = [row["validation/main/accuracy"] for row in cell["epoch_log"]]
    assert q["value"] == values[-1] and q["best_value"] == max(values)
    assert q["time_to_target_s"] == cell["epoch_log"][0]["elapsed_time"]  # first reached after epoch 1


def test_quick_quality_is_not_judged(suites):
    cell = run_cell(desc())
    assert cell["quality"]["judged"] is False


def test_minimum_time_steps_do_not_change_the_hashes(suites):
    # The extra steps depend on the machine's speed; the hashes cover the fixed steps only.
    a = run_cell(desc(min_time_s=0.2))
    b = run_cell(desc(min_time_s=0.4))
    plain = run_cell(desc())
    assert len(b["timing"]["step_s"]) > len(plain["timing"]["step_s"]) == 3
    assert a["hashes"] == b["hashes"] == plain["hashes"]
