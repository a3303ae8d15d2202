"""The scaling model in words and numbers: measured against predicted, and what-if interconnects.

For every data-parallel series of a run (device kind × scaling mode of one workload) the ring
all-reduce model of ``reporting.scaling`` is fitted to the measured points; the report shows
each measured point beside the model's prediction (so the model is checked where both exist),
predictions for more devices, and — where the gradient size per step is recorded — the step
time and efficiency with the all-reduce running over common interconnects.
"""
from __future__ import annotations

import numpy as np

from benchbench import link_model

from benchbench.reporting.plots import scaling_series
from benchbench.reporting.runs import Run
from benchbench.reporting.scaling import EXTRAPOLATION_FACTOR, InsufficientData, fit, predict, predicted_throughput
from benchbench.reporting.summary import group_cells

# Effective one-direction bandwidths, bytes/s, for what-if predictions.
INTERCONNECTS = {
    "PCIe 4.0 x16": 25e9,
    "PCIe 5.0 x16": 50e9,
    "NVLink 4 (H100)": 450e9,
    "100 Gb/s network": 12.5e9,
    "400 Gb/s network": 50e9,
}
# The links a device kind can use: a CPU run is never priced over a GPU's NVLink or PCIe peer link.
INTERCONNECTS_FOR = {"gpu": tuple(INTERCONNECTS), "cpu": ("100 Gb/s network", "400 Gb/s network")}
MODEL_TOLERANCE = 0.25  # predictions are shown only where the model misses no measured point by more


def _gradient_bytes(run: Run, workload: str, kind: str) -> float | None:
    sizes = [c.get("allreduce_bytes") for (w, _), cells in group_cells(run).items() if w == workload
             for c in cells if c.get("device_kind") == kind and (c.get("n_devices") or 1) > 1]
    sizes = [s for s in sizes if isinstance(s, int) and s > 0]
    return float(np.median(sizes)) if sizes else None


def _measured_link(run: Run, workload: str, kind: str) -> dict | None:
    """Per-hop latency and bandwidth from the all-reduce sweeps recorded with the data-parallel cells: only
    from accepted fits, and only where sweeps at two or more rank counts split the fixed cost into hops."""
    sweeps = [c["interconnect"] for (w, _), cells in group_cells(run).items() if w == workload for c in cells
              if c.get("device_kind") == kind and c.get("status") == "ok"
              and isinstance((c.get("interconnect") or {}).get("points"), list) and c["interconnect"]["points"]]
    if not sweeps:
        return None
    link = link_model.fit_link_counts(sweeps)
    return link if link["accepted"] else None


def scaling_models(run: Run) -> list[dict]:
    """One entry per workload × device kind × mode with a data-parallel series.

    Returns:
        dicts: workload, kind, mode, model (ScalingModel), measured (list of dicts n, samples_per_s,
        predicted_samples_per_s, error), predicted (n -> samples/s and efficiency for n up to 4x the
        largest measured), interconnects (name -> {n: samples/s} at n = 8 and 64; empty without bytes).
    """
    workloads = sorted({str(c.get("workload")) for c in run.cells})
    out = []
    for workload in workloads:
        from benchbench.reporting.summary import multi_params, workload_key

        keys = {workload_key(c, multi_params(run.cells)) for c in run.cells if c.get("workload") == workload}
        for key in sorted(keys):
            for (kind, mode), points in scaling_series(run, key).items():
                bytes_ = _gradient_bytes(run, workload, kind)
                try:
                    model = fit([(p[0], p[4], p[5]) for p in points], mode=mode, bytes=bytes_,
                                link=_measured_link(run, workload, kind))
                except InsufficientData as e:
                    out.append({"workload": key, "kind": kind, "mode": mode, "model": None, "measured": [],
                                "predicted": {}, "interconnects": {}, "note": str(e).removeprefix("fit: ")})
                    continue
                batch = points[0][6]
                base = points[0][1]
                measured = []
                for p in points:
                    pred = float(predicted_throughput(model, p[0], batch))
                    measured.append({"n": p[0], "samples_per_s": p[1], "predicted_samples_per_s": pred,
                                     "error": pred / p[1] - 1 if p[1] else float("nan")})
                n_max = max(p[0] for p in points)
                grid = [2**k for k in range(0, int(np.log2(4 * n_max)) + 1)]
                predicted = {n: {"samples_per_s": float(predicted_throughput(model, n, batch)),
                                 "efficiency": float(predicted_throughput(model, n, batch)) / (n * base)}
                             for n in grid}
                inter = {}
                miss = max((abs(p["error"]) for p in measured if np.isfinite(p["error"])), default=float("inf"))
                if miss > MODEL_TOLERANCE:
                    predicted = {}
                if model.bytes is not None and miss <= MODEL_TOLERANCE:
                    for name in INTERCONNECTS_FOR.get(kind, ()):
                        bw = INTERCONNECTS[name]
                        row = {}
                        for n in (8, 64):
                            t = float(predict(model, n, bandwidth=bw))
                            b = batch if mode == "strong" else batch * n
                            row[n] = {"samples_per_s": b / t, "efficiency": (b / t) / (n * base)}
                        inter[name] = row
                out.append({"workload": key, "kind": kind, "mode": mode, "model": model, "miss": miss,
                            "measured": measured, "predicted": predicted, "interconnects": inter, "note": None})
    return out


def scaling_text(run: Run) -> str:
    """The scaling-model section of a report ('' when the run has no data-parallel series)."""
    entries = scaling_models(run)
    if not entries:
        return ""
    lines = ["Scaling model (ring all-reduce: t(n) = compute/n + 2(n-1)/n x bytes/bandwidth + 2(n-1) x latency):"]
    for e in entries:
        m = e["model"]
        if m is None:
            lines.append(f"- {e['workload']} on {e['kind'].upper()} ({e['mode']} scaling): no prediction: {e['note']}")
            continue
        kind_bw = "measured" if m.source == "measured interconnect" else "fitted"
        bw = f", {kind_bw} bandwidth {m.bandwidth / 1e9:.3g} GB/s over {m.bytes / 1e6:.3g} MB" if m.bandwidth else ""
        lines.append(f"- {e['workload']} on {e['kind'].upper()} ({e['mode']} scaling): compute {m.t_compute * 1e3:.3g} ms"
                     f"/step, all-reduce {m.comm_s * 1e3:.3g} ms, latency {m.latency * 1e6:.3g} us{bw} "
                     f"(all-reduce terms: {m.source})")
        for p in e["measured"]:
            lines.append(f"    n={p['n']}: measured {p['samples_per_s']:,.0f} samples/s, model {p['predicted_samples_per_s']:,.0f}"
                         f" ({p['error']:+.0%})")
        limit = EXTRAPOLATION_FACTOR * m.max_measured_n
        if not e["predicted"]:
            lines.append(f"    no predictions: the model misses the measured points by up to {e['miss']:.0%} "
                         f"(more than {MODEL_TOLERANCE:.0%}), so it does not describe this run")
            continue
        pred = ", ".join(f"n={n}: {v['samples_per_s']:,.0f} ({v['efficiency']:.0%})" for n, v in e["predicted"].items())
        lines.append(f"    predicted (up to {EXTRAPOLATION_FACTOR}x the largest measured count): {pred}")
        for name, row in e["interconnects"].items():
            cells = ", ".join(f"n={n}: {v['samples_per_s']:,.0f} samples/s ({v['efficiency']:.0%})"
                              + (" extrapolated" if n > limit else "") for n, v in row.items())
            lines.append(f"    assumption, not measured: over {name} ({INTERCONNECTS[name] / 1e9:g} GB/s): {cells}")
        if any(n > limit for row in e["interconnects"].values() for n in row):
            lines.append(f"    extrapolated: past {limit} devices ({EXTRAPOLATION_FACTOR}x the largest measured count) "
                         "the model has not been checked against any measurement")
    return "\n".join(lines) + "\n"
