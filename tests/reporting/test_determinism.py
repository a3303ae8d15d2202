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


def test_repeats_are_grouped_by_seed_and_full_cells_compared_at_a_common_epoch(tmp_path):
    # Two seeds, two repeats each, full profile (--until target): seed 1's repeats stopped after 4 and 5
    # epochs. Different seeds are never compared; a seed's repeats are compared at their last common
    # epoch (4), not at a step count the shorter one happened to reach.
    cells = []
    for seed, epochs in ((1, (4, 5)), (2, (3, 3))):
        for r, n in enumerate(epochs):
            c = cell("mlp_mnist", "cpu", 0.01, seed=seed, repeat=r, epochs=n)
            c["id"], c["seed"], c["profile"] = f"mlp_mnist/cpu/s{seed}/r{r}", seed, "full"
            c["hashes"] = {"weights": f"{seed}{r}" * 32, "loss_curve": f"{seed}{r}" * 32}
            c["loss_curve"] = [1.0] * (10 * n) + [0.1 * r]
            c["epoch_log"][3:] = [{**e, "validation/main/loss": 9.0} for e in c["epoch_log"][3:]]
            cells.append(c)
    run = load_run(write(tmp_path / "m" / "r.json", run_doc("m-1", cells)))
    rows = {r["seed"]: r for r in determinism_rows([run])}
    assert set(rows) == {1, 2} and all(r["repeats"] == 2 for r in rows.values())
    assert rows[1]["epochs"] == [4, 5] and rows[1]["loss_spread"] == 0.0 and rows[1]["loss_spread_at"] == "epoch"
    text = determinism_text([run])
    assert "(default, seed 1): 2 distinct final weights over 2 repeats, epochs trained 4/5" in text
    assert "validation loss spread at the last common epoch 0" in text
