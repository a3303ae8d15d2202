"""The report's eager against CUDA-graph table: rows only where a graph was used, both modes paired."""
from pathlib import Path

import numpy as np

from benchbench.reporting.graphs import graph_frame, graph_text
from benchbench.reporting.runs import Run
from benchbench.reporting.summary import summarize_run

from .conftest import cell, run_doc


def _graph_cell(mode, step, used, device="gpu:0"):
    c = cell("mlp_mnist", device, step, seed=len(mode) + len(device))
    c["id"] = f"mlp_mnist@graphs-{mode}/{device}/r0"
    c["graph"] = {"requested": mode, "used": used, "reason": "captured" if used else "--gpu-graphs off: eager"}
    if used:
        c["graph"].update(host_launch_s=2e-5, gpu_step_s=step)
    return c


def test_eager_and_graph_cells_of_one_workload_and_device_make_one_row():
    cells = [cell("mlp_mnist", "cpu", 0.1), _graph_cell("on", 0.001, True), _graph_cell("off", 0.004, False),
             _graph_cell("on", 0.002, True, device="gpu:1")]
    run = Run(Path("m.json"), run_doc("m", cells))
    frame = graph_frame(run)
    assert list(zip(frame["workload"], frame["device"])) == [("mlp_mnist", "gpu:0"), ("mlp_mnist", "gpu:1")]
    row = frame.iloc[0]
    assert row.speedup == np.float64(row.graph_samples_per_s / row.eager_samples_per_s)
    assert 3.5 < row.speedup < 4.5 and row.host_launch_ms == 2e-2 and row.gpu_step_ms == 1.0
    assert np.isnan(frame.iloc[1].eager_samples_per_s)  # no eager twin on gpu:1
    text = graph_text(run)
    assert "eager vs CUDA graph" in text and "no eager cell beside the graph cells of mlp_mnist on gpu:1" in text
    keys = set(summarize_run(run)["workload"])  # the summary keeps the two modes apart
    assert {"mlp_mnist@graphs-on", "mlp_mnist@graphs-off"} <= keys


def test_no_graph_used_no_table():
    run = Run(Path("m.json"), run_doc("m", [cell("mlp_mnist", "gpu:0", 0.01), _graph_cell("off", 0.004, False)]))
    assert graph_frame(run).empty and graph_text(run) == ""
