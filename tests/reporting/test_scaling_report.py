"""The scaling-model section: measured beside predicted, more devices, what-if interconnects."""
import pytest

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


def _sweep(n, noisy=False):
    """A sweep of a link with 2 us per hop and 20 GB/s (every other size 50% slow when noisy)."""
    sizes = [4096 * 4 ** k for k in range(6)]
    pts = [{"bytes": s, "time_s": (2 * (n - 1) * 2e-6 + 2 * (n - 1) / n * s / 20e9) * (1.5 if noisy and k % 2 else 1)}
           for k, s in enumerate(sizes)]
    return {"ranks": n, "points": pts}


def test_two_device_counts_give_no_prediction_without_a_sweep(tmp_path):
    cells = [c for c in alpha_cells() if c["device"] != "gpu:0,1,2,3"]
    run = load_run(write(tmp_path / "m" / "r.json", run_doc("m-1", cells)))
    (entry,) = scaling_models(run)
    assert entry["model"] is None and entry["predicted"] == {} and "distinct device counts" in entry["note"]
    assert "no prediction" in scaling_text(run)
    # A sweep at one rank count gives a bandwidth but no per-hop latency: still no prediction.
    for c in cells:
        if c["n_devices"] > 1:
            c["allreduce_bytes"] = 3_600_000
            c["interconnect"] = _sweep(c["n_devices"])
    run = load_run(write(tmp_path / "m1" / "r.json", run_doc("m-1", cells)))
    assert scaling_models(run)[0]["model"] is None
    # Sweeps at two rank counts (the 4-GPU cells too) split the fixed cost into hops: the model predicts.
    four = [dict(c, interconnect=_sweep(4), allreduce_bytes=3_600_000) for c in alpha_cells()
            if c["device"] == "gpu:0,1,2,3"]
    run = load_run(write(tmp_path / "m2" / "r.json", run_doc("m-1", cells + four)))
    entry = [e for e in scaling_models(run) if e["model"] is not None][0]
    assert entry["model"].source == "measured interconnect" and sorted(entry["predicted"])[:4] == [1, 2, 4, 8]
    assert entry["model"].latency == pytest.approx(2e-6, rel=1e-6)
    # A refused fit (a noisy sweep) is never used.
    for c in cells + four:
        if c["n_devices"] > 1:
            c["interconnect"] = _sweep(c["n_devices"], noisy=True)
    run = load_run(write(tmp_path / "m3" / "r.json", run_doc("m-1", cells + four)))
    assert all(e["model"] is None or e["model"].source != "measured interconnect" for e in scaling_models(run))
    for c in cells + four:
        if c["n_devices"] > 1:
            c["interconnect"] = _sweep(c["n_devices"])
    run = load_run(write(tmp_path / "m2b" / "r.json", run_doc("m-1", cells + four)))
    text = scaling_text(run)
    assert "assumption, not measured: over NVLink 4 (H100)" in text and "extrapolated" in text
