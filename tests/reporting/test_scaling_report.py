"""The scaling-model section: measured beside predicted, more devices, what-if interconnects."""
from benchbench.reporting.runs import load_run
from benchbench.reporting.scaling_report import INTERCONNECTS, scaling_models, scaling_text

from .conftest import alpha_cells, run_doc, write


def _run(tmp_path, with_bytes):
    cells = alpha_cells()
    if with_bytes:
        for c in cells:
            if c["n_devices"] > 1:
                c["allreduce_bytes"] = 3_600_000
    return load_run(write(tmp_path / "m" / "r.json", run_doc("m-1", cells)))


def test_measured_points_are_checked_against_the_model(tmp_path):
    (entry,) = scaling_models(_run(tmp_path, with_bytes=False))
    assert (entry["workload"], entry["kind"], entry["mode"]) == ("mlp_mnist", "gpu", "strong")
    assert [p["n"] for p in entry["measured"]] == [1, 2, 4]
    # the single-device point is the model's compute term: predicted == measured there
    assert abs(entry["measured"][0]["error"]) < 1e-6
    for p in entry["measured"]:
        assert abs(p["error"]) < 0.5  # the crafted points follow a ring model roughly
    assert sorted(entry["predicted"]) == [1, 2, 4, 8, 16]
    assert entry["interconnects"] == {}  # no gradient size recorded: no bandwidth what-ifs


def test_interconnect_predictions_need_the_gradient_size(tmp_path):
    (entry,) = scaling_models(_run(tmp_path, with_bytes=True))
    assert set(entry["interconnects"]) == set(INTERCONNECTS)
    nvlink = entry["interconnects"]["NVLink 4 (H100)"][64]["samples_per_s"]
    pcie4 = entry["interconnects"]["PCIe 4.0 x16"][64]["samples_per_s"]
    assert nvlink > pcie4 > 0
    text = scaling_text(_run(tmp_path, with_bytes=True))
    assert "fitted bandwidth" in text and "assumption, not measured: over NVLink 4 (H100) (450 GB/s): n=8:" in text
    assert "n=4: measured" in text


def test_two_device_counts_give_no_prediction_without_a_sweep(tmp_path):
    cells = [c for c in alpha_cells() if c["device"] != "gpu:0,1,2,3"]
    run = load_run(write(tmp_path / "m" / "r.json", run_doc("m-1", cells)))
    (entry,) = scaling_models(run)
    assert entry["model"] is None and entry["predicted"] == {} and "distinct device counts" in entry["note"]
    assert "no prediction" in scaling_text(run)
    # With the interconnect measured (a sweep recorded with the cell) and the gradient size, it predicts.
    for c in cells:
        if c["n_devices"] > 1:
            c["allreduce_bytes"] = 3_600_000
            c["interconnect"] = {"ranks": 2, "points": [], "fit": {"latency_s": 2e-6, "bandwidth_bytes_per_s": 20e9}}
    run = load_run(write(tmp_path / "m2" / "r.json", run_doc("m-1", cells)))
    (entry,) = scaling_models(run)
    assert entry["model"].source == "measured interconnect" and sorted(entry["predicted"]) == [1, 2, 4, 8]
    text = scaling_text(run)
    assert "assumption, not measured: over NVLink 4 (H100)" in text and "extrapolated" in text
