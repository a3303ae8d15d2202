"""Repeatability section: bit-identical repeats, spreads, and the cost of deterministic mode."""
from benchbench.reporting.determinism import determinism_rows, determinism_text
from benchbench.reporting.runs import load_run

from .conftest import cell, run_doc, write


def _repeat(workload, device, step, repeat, *, det, weights, loss):
    c = cell(workload, device, step, seed=repeat + (100 if det else 0), repeat=repeat)
    c["id"] = f"{workload}/{device}/{'det' if det else 'std'}/r{repeat}"
    c["deterministic"] = det
    c["hashes"] = {"weights": weights, "loss_curve": weights}
    c["loss_curve"] = [1.0, 0.5, loss]
    return c


def test_bit_identical_and_slowdown(tmp_path):
    cells = [_repeat("mlp_mnist", "gpu:0", 0.010, r, det=True, weights="a" * 64, loss=0.25) for r in range(3)]
    cells += [_repeat("mlp_mnist", "gpu:0", 0.008, r, det=False, weights=f"{r}" * 64, loss=0.25 + 0.01 * r)
              for r in range(3)]
    run = load_run(write(tmp_path / "m" / "r.json", run_doc("m-1", cells)))
    rows = {r["deterministic"]: r for r in determinism_rows([run])}
    assert rows[True]["bit_identical"] is True and rows[True]["repeats"] == 3
    assert rows[False]["bit_identical"] is False and rows[False]["distinct_weights"] == 3
    assert abs(rows[False]["loss_spread"] - 0.02) < 1e-12
    # deterministic steps take 10 ms against 8 ms: throughput ratio 0.8 / 1.0 -> costs x1.25
    assert abs(rows[True]["slowdown"] - 1.25) < 0.02 and rows[True]["slowdown_significant"]
    text = determinism_text([run])
    assert "bit-identical over 3 repeats" in text
    assert "3 distinct final weights over 3 repeats, final loss spread 0.02" in text
    assert "step time x1.2" in text and "that of the default mode" in text


def test_no_section_without_repeats(tmp_path):
    run = load_run(write(tmp_path / "m" / "r.json", run_doc("m-1", [cell("mlp_mnist", "cpu", 0.05)])))
    assert determinism_rows([run]) == [] and determinism_text([run]) == ""


def test_on_the_cpu_the_modes_are_the_same_and_no_cost_is_shown(tmp_path):
    cells = [_repeat("mlp_mnist", "cpu", 0.010, r, det=True, weights="a" * 64, loss=0.25) for r in range(3)]
    cells += [_repeat("mlp_mnist", "cpu", 0.008, r, det=False, weights="a" * 64, loss=0.25) for r in range(3)]
    for c in cells[:3]:
        c["deterministic_mode"] = {"changes": [], "differs": False, "note": "deterministic already"}
    run = load_run(write(tmp_path / "m" / "r.json", run_doc("m-1", cells)))
    rows = {r["deterministic"]: r for r in determinism_rows([run])}
    assert rows[True]["modes_differ"] is False and rows[True]["slowdown"] is None
    text = determinism_text([run])
    assert "the mode ran no different computation here" in text and "step time x" not in text
