"""Throughput against batch size per device, and the largest batch per device and workload.

Reads the ``batch`` block that batch-sweep cells (``benchbench run --batch-size``) record. A point
of the throughput curve is a batch some ok cell was timed at; the largest batch comes from the
cell's search (its probes), and says what stopped the search (memory or the cap). A batch that
was never timed (a failed cell, an out-of-memory) is never drawn or listed as measured.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchbench.reporting.render import fmt_bytes, fmt_number, markdown_table, terminal_table
from benchbench.reporting.runs import Run, runs_label
from benchbench.reporting.summary import _throughput_stats


def _is_batch_cell(cell: dict) -> bool:
    return isinstance(cell.get("batch"), dict) and "requested" in cell["batch"]


def batch_frame(run: Run) -> pd.DataFrame:
    """One row per workload x device x timed batch of ``run``'s batch-sweep cells.

    Columns: ``workload, device, batch, per_device_batch, requested, samples_per_s, ci_low, ci_high,
    repeats``; repeats of one batch are combined as in the summary table. Only ok cells
    with step times make rows.
    """
    groups: dict[tuple, list[dict]] = {}
    for cell in run.cells:
        if not _is_batch_cell(cell) or cell.get("status") != "ok" or not cell.get("batch_size"):
            continue
        key = (str(cell.get("workload")), str(cell.get("device")), int(cell["batch_size"]))
        groups.setdefault(key, []).append(cell)
    rows = []
    for (workload, device, batch), cells in groups.items():
        s = _throughput_stats(cells)
        if not s:
            continue
        rows.append({"workload": workload, "device": device, "batch": batch,
                     "per_device_batch": cells[0].get("per_device_batch"),
                     "requested": str(cells[0]["batch"]["requested"]),
                     "samples_per_s": float(s["median"]), "ci_low": float(s["ci_low"]),
                     "ci_high": float(s["ci_high"]), "repeats": len(cells)})
    cols = ["workload", "device", "batch", "per_device_batch", "requested", "samples_per_s", "ci_low", "ci_high",
            "repeats"]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.sort_values(["workload", "device", "batch"], kind="stable").reset_index(drop=True)


def max_batch_frame(run: Run) -> pd.DataFrame:
    """The largest batch per workload x device that ``run``'s ``max`` searches found.

    Columns: ``workload, device, max_per_device_batch, stopped_by, limit, memory_limit_bytes,
    bytes_at_max, probes, timed, text``. ``timed`` says whether the cell was then timed at that batch
    (its status ok). Repeats of a cell give one row each.
    """
    rows = []
    for cell in run.cells:
        info = cell.get("batch") if _is_batch_cell(cell) else None
        search = (info or {}).get("search")
        if not isinstance(search, dict):
            continue
        found = search.get("max_batch")
        at_max = [p.get("bytes") for p in search.get("probes") or [] if p.get("ok") and p.get("batch") == found]
        rows.append({"workload": str(cell.get("workload")), "device": str(cell.get("device")),
                     "max_per_device_batch": found, "stopped_by": search.get("stopped_by"),
                     "limit": search.get("limit"), "memory_limit_bytes": info.get("memory_limit_bytes"),
                     "bytes_at_max": at_max[0] if at_max else None, "probes": len(search.get("probes") or []),
                     "timed": cell.get("status") == "ok", "text": search.get("text", "")})
    cols = ["workload", "device", "max_per_device_batch", "stopped_by", "limit", "memory_limit_bytes",
            "bytes_at_max", "probes", "timed", "text"]
    return pd.DataFrame(rows, columns=cols)


def _int(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{int(v):,}"


def batch_text(run: Run, markdown: bool = False) -> str:
    """The report's section on batch sizes (empty when the run has no batch-sweep cell)."""
    curve, top = batch_frame(run), max_batch_frame(run)
    if curve.empty and top.empty:
        return ""
    parts = []
    if not curve.empty:
        table = pd.DataFrame({
            "workload": curve["workload"], "device": curve["device"], "batch": curve["batch"].map(_int),
            "per device": curve["per_device_batch"].map(_int),
            "samples/s [95% CI]": [f"{fmt_number(r.samples_per_s)} [{fmt_number(r.ci_low)}–{fmt_number(r.ci_high)}]"
                                   for r in curve.itertuples()]})
        parts.append(("throughput against batch (timed batches only)", table))
    if not top.empty:
        table = pd.DataFrame({
            "workload": top["workload"], "device": top["device"],
            "largest batch per device": top["max_per_device_batch"].map(_int),
            "stopped by": top["stopped_by"], "limit": top["limit"],
            "budget": top["memory_limit_bytes"].map(lambda v: fmt_bytes(v) if v is not None and v == v else "-"),
            "memory at max": top["bytes_at_max"].map(lambda v: fmt_bytes(v) if v is not None and v == v else "-"),
            "probes": top["probes"], "timed": top["timed"].map(lambda v: "yes" if v else "no")})
        parts.append(("largest batch per device", table))
    out = []
    for title, table in parts:
        if markdown:
            out.append(f"### {title}\n\n{markdown_table(table)}\n")
        else:
            out.append(f"{title}\n{terminal_table(table)}\n")
    notes = sorted({t for t in top["text"] if "cap" in str(t)}) if not top.empty else []
    out.extend(f"note: {n}" for n in notes)
    return "\n".join(out)


def batch_workloads(runs: list[Run]) -> list[str]:
    """Workloads with at least one timed batch-sweep cell, in order of appearance."""
    names = []
    for run in runs:
        names.extend(batch_frame(run)["workload"])
    return list(dict.fromkeys(names))


def compare_batch_text(runs: list[Run], markdown: bool = False) -> str:
    """``compare``'s section: each machine's throughput-against-batch and largest batch, side by side."""
    labels = runs_label(runs)
    curves = {i: batch_frame(run) for i, run in enumerate(runs)}
    tops = {i: max_batch_frame(run) for i, run in enumerate(runs)}
    if all(f.empty for f in curves.values()) and all(f.empty for f in tops.values()):
        return ""
    keys = []
    for i in curves:
        keys.extend(zip(curves[i]["workload"], curves[i]["device"], curves[i]["batch"]))
    keys = sorted(set(keys), key=lambda k: (k[0], k[1], k[2]))
    rows = []
    for workload, device, b in keys:
        row = {"workload": workload, "device": device, "batch": _int(b)}
        for i, label in labels.items():
            f = curves[i]
            hit = f[(f["workload"] == workload) & (f["device"] == device) & (f["batch"] == b)]
            row[label] = "not measured" if hit.empty else (
                f"{fmt_number(hit.iloc[0].samples_per_s)} [{fmt_number(hit.iloc[0].ci_low)}–{fmt_number(hit.iloc[0].ci_high)}]")
        rows.append(row)
    top_keys = sorted({(w, d) for i in tops for w, d in zip(tops[i]["workload"], tops[i]["device"])})
    top_rows = []
    for workload, device in top_keys:
        row = {"workload": workload, "device": device}
        for i, label in labels.items():
            f = tops[i]
            hit = f[(f["workload"] == workload) & (f["device"] == device)]
            if hit.empty:
                row[label] = "not searched"
            else:
                r = hit.iloc[0]
                row[label] = _int(r.max_per_device_batch) + (" (cap)" if r.stopped_by == "cap" else "")
        top_rows.append(row)
    out = []
    for title, table in (("samples/s against batch [95% CI]", pd.DataFrame(rows)),
                         ("largest batch per device", pd.DataFrame(top_rows))):
        if table.empty:
            continue
        out.append(f"### {title}\n\n{markdown_table(table)}\n" if markdown else f"{title}\n{terminal_table(table)}\n")
    return "\n".join(out)
