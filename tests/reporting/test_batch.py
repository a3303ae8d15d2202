"""Throughput against batch and the largest batch, held against crafted cells with known figures."""
from pathlib import Path

import numpy as np

from benchbench.reporting import batch as rb
from benchbench.reporting import plots
from benchbench.reporting.runs import Run
from benchbench.reporting.summary import summarize_run

from .conftest import cell, run_doc


def sweep_cell(device, b, step, status="ok", search=None, requested=None):
    c = cell("mlp_mnist", device, step, batch=b, status=status, reason=None if status == "ok" else "out of memory",
             seed=b)
    req = requested if requested is not None else b
    c["id"] = f"mlp_mnist@b{req}/{device}/r0"
    c["batch"] = {"requested": req, "default": 100, "per_device": False, "value": b, "search": search,
                  "memory_limit_bytes": 1 << 30 if search and device == "cpu" else None}
    return c


SEARCH = {"max_batch": 300, "stopped_by": "oom", "cap": 16384, "limit": "host memory budget",
          "text": "largest batch 300: batch 301 ran out of host memory budget",
          "probes": [{"batch": 256, "ok": True, "bytes": 1000}, {"batch": 512, "ok": False, "bytes": None},
                     {"batch": 300, "ok": True, "bytes": 1200}, {"batch": 301, "ok": False, "bytes": None}]}


def make_run(cells, mid="alpha-1a2b3c4d"):
    return Run(Path(f"{mid}.json"), run_doc(mid, cells))


def test_the_curve_holds_each_timed_batch_and_nothing_else():
    # samples/s = batch / step: 32 / 0.01 = 3200, 64 / 0.016 = 4000; batch 128 ran out of memory
    run = make_run([sweep_cell("cpu", 32, 0.01), sweep_cell("cpu", 64, 0.016),
                    sweep_cell("cpu", 128, 0.02, status="oom"), cell("mlp_mnist", "gpu:0", 0.001)])
    frame = rb.batch_frame(run)
    assert list(frame["batch"]) == [32, 64]
    assert np.allclose(frame["samples_per_s"], [3200, 4000], rtol=0.02)
    assert (frame["ci_low"] <= frame["samples_per_s"]).all() and (frame["samples_per_s"] <= frame["ci_high"]).all()
    fig = plots.batch_figure([run], "mlp_mnist")
    (container,) = fig.axes[0].containers
    line = container.lines[0]
    assert list(line.get_xdata()) == [32, 64]
    assert np.allclose(line.get_ydata(), frame["samples_per_s"])
    text = rb.batch_text(run)
    assert "128" not in text.split("largest batch")[0]    # never shown as measured
    # the summary table keeps the batches apart
    keys = set(summarize_run(run)["workload"])
    assert {"mlp_mnist@b32", "mlp_mnist@b64", "mlp_mnist@b128", "mlp_mnist"} == keys


def test_the_largest_batch_and_why_the_search_stopped():
    found = sweep_cell("cpu", 300, 0.05, search=SEARCH, requested="max")
    untimed = sweep_cell("gpu:0", 900, 0.05, status="oom", requested="max",
                         search={**SEARCH, "max_batch": 900, "limit": "device memory", "probes": [
                             {"batch": 900, "ok": True, "bytes": 5000}, {"batch": 901, "ok": False, "bytes": None}]})
    capped = sweep_cell("gpu:1", 16384, 0.5, requested="max",
                        search={**SEARCH, "max_batch": 16384, "stopped_by": "cap", "limit": "device memory",
                                "text": "largest batch 16384: stopped by the search cap of 16384, not by memory",
                                "probes": [{"batch": 16384, "ok": True, "bytes": 7}]})
    run = make_run([found, untimed, capped])
    top = rb.max_batch_frame(run).set_index("device")
    assert top.loc["cpu", "max_per_device_batch"] == 300 and top.loc["cpu", "bytes_at_max"] == 1200
    assert top.loc["cpu", "probes"] == 4 and top.loc["cpu", "timed"]
    assert not top.loc["gpu:0", "timed"] and top.loc["gpu:1", "stopped_by"] == "cap"
    assert list(rb.batch_frame(run)["device"]) == ["cpu", "gpu:1"]   # the oom cell has no point
    text = rb.batch_text(run)
    assert "largest batch per device" in text and "stopped by the search cap" in text


def test_compare_sets_machines_side_by_side():
    a = make_run([sweep_cell("cpu", 32, 0.01), sweep_cell("cpu", 64, 0.016)], mid="alpha-1a2b3c4d")
    b = make_run([sweep_cell("cpu", 32, 0.005)], mid="beta-5e6f7a8b")
    text = rb.compare_batch_text([a, b])
    rows = {tuple(ln.split()[:3]): ln for ln in text.splitlines() if ln.startswith("mlp_mnist")}
    assert "not measured" in rows[("mlp_mnist", "cpu", "64")]
    assert "not measured" not in rows[("mlp_mnist", "cpu", "32")]
    fig = plots.batch_figure([a, b], "mlp_mnist")
    lines = [c.lines[0] for c in fig.axes[0].containers]
    assert [list(ln.get_xdata()) for ln in lines] == [[32, 64], [32]]
    assert np.allclose(lines[1].get_ydata(), [6400], rtol=0.02)
    assert plots.batch_figure([a], "cnn_mnist") is None
    assert rb.compare_batch_text([make_run([cell("mlp_mnist", "cpu", 0.01)])] * 2) == ""
