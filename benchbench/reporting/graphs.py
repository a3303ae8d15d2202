"""Eager against CUDA-graph throughput, where a run has both (``benchbench run --gpu-graphs on,off``).

Reads the ``graph`` block every GPU cell records (``executor/graph_step.py``): a cell whose graph was
used is a *graph* cell, any other ok GPU cell of the same workload and device an *eager* one. A row
pairs the two, with the graph's host time per step (one ``Graph.launch``) beside the GPU time of a
step: a launch much shorter than the step means the figure times the GPU, not Python.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from benchbench.reporting.render import fmt_number, markdown_table, terminal_table
from benchbench.reporting.runs import Run
from benchbench.reporting.summary import _throughput_stats, multi_params, workload_key

_TAG = re.compile(r"@graphs-(on|off|auto)$")


def graph_frame(run: Run) -> pd.DataFrame:
    """One row per workload x device whose GPU cells include one that replayed a CUDA graph.

    Columns: ``workload, device, eager_samples_per_s, graph_samples_per_s, speedup,
    host_launch_ms, gpu_step_ms, graph`` (``graph``: used, or why not).
    """
    multi = multi_params(run.cells)
    groups: dict[tuple[str, str], dict[str, list]] = {}
    for cell in run.cells:
        block = cell.get("graph")
        if cell.get("device_kind") != "gpu" or cell.get("status") != "ok" or not isinstance(block, dict):
            continue
        key = (_TAG.sub("", workload_key(cell, multi)), str(cell.get("device")))
        groups.setdefault(key, {"graph": [], "eager": []})["graph" if block.get("used") else "eager"].append(cell)
    rows = []
    for (workload, device), both in groups.items():
        if not both["graph"]:
            continue
        eager, graph = (_median(both[k]) for k in ("eager", "graph"))
        launch = [c["graph"].get("host_launch_s") for c in both["graph"]]
        step = [c["graph"].get("gpu_step_s") for c in both["graph"]]
        rows.append({"workload": workload, "device": device, "eager_samples_per_s": eager,
                     "graph_samples_per_s": graph,
                     "speedup": graph / eager if np.isfinite(eager) and eager > 0 else np.nan,
                     "host_launch_ms": _ms(launch), "gpu_step_ms": _ms(step),
                     "eager_reason": "; ".join(sorted({c["graph"].get("reason", "") for c in both["eager"]}))})
    cols = ["workload", "device", "eager_samples_per_s", "graph_samples_per_s", "speedup", "host_launch_ms",
            "gpu_step_ms", "eager_reason"]
    return pd.DataFrame(rows, columns=cols)


def _median(cells) -> float:
    st = _throughput_stats(cells) if cells else None
    return float(st["median"]) if st else np.nan


def _ms(values) -> float:
    v = [x for x in values if isinstance(x, (int, float)) and np.isfinite(x)]
    return float(np.median(v)) * 1e3 if v else np.nan


def graph_text(run: Run, markdown: bool = False) -> str:
    """The report's table of eager against graph throughput (empty when no cell replayed a graph)."""
    frame = graph_frame(run)
    if frame.empty:
        return ""
    table = pd.DataFrame({
        "workload": frame["workload"], "device": frame["device"],
        "eager samples/s": frame["eager_samples_per_s"].map(fmt_number),
        "graph samples/s": frame["graph_samples_per_s"].map(fmt_number),
        "graph / eager": frame["speedup"].map(lambda v: f"{v:.2f}x" if np.isfinite(v) else "—"),
        "host ms per launch": frame["host_launch_ms"].map(fmt_number),
        "GPU ms per step": frame["gpu_step_ms"].map(fmt_number)})
    title = "throughput, eager vs CUDA graph (median samples/s; host time of one graph launch beside the GPU step)"
    body = f"### {title}\n\n{markdown_table(table)}\n" if markdown else f"{title}\n{terminal_table(table)}\n"
    eager_only = frame[~np.isfinite(frame["eager_samples_per_s"])]
    note = ("\nnote: no eager cell beside the graph cells of " + ", ".join(f"{w} on {d}" for w, d in
            zip(eager_only["workload"], eager_only["device"])) + " (run --gpu-graphs on,off for both)"
            if not eager_only.empty else "")
    return body + note
