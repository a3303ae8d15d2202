"""One row per workload × device of a run: the figures every table, plot and comparison shows.

Repeats of a cell (``r0``, ``r1`` …) are pooled: their step times are summarised together. So are
the cells of different seeds (``--seeds``), for throughput only: a seed changes the initial weights
and the data order, not the work a step does, so each seed's cell is one more run of the
throughput measurement (``seeds`` says how many seeds a row pools; the report says so). What the
seeds achieved in quality and time to target is the quality table's (``reporting/quality.py``). The
speed-up is over the CPU cell of the same workload; the scaling efficiency of a data-parallel cell
is its speed-up over the single-device cell of the same kind, divided by its number of devices
(``samples/s(n) / (n × samples/s(1))``, which is the usual definition for strong scaling — fixed
global batch — and for weak scaling — fixed per-device batch — alike).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from benchbench import stats
from benchbench.reporting.runs import Run

from benchbench.phases import PHASES
_STATUS_ORDER = {"ok": 0, "diverged": 1, "timeout": 2, "oom": 3, "failed": 4}

COLUMNS = [
    "workload", "device", "device_kind", "n_devices", "scaling", "communicator", "status", "reason",
    "repeats", "data_source", "data_note", "batch_size", "samples_per_s", "samples_per_s_ci_low",
    "samples_per_s_ci_high", "noisy", "ms_per_step", "gflops", "quality_metric", "quality_value",
    "quality_target", "quality_reached", "higher_is_better", "time_to_target_s", "speedup_vs_cpu",
    "baseline_device", "scaling_efficiency", "peak_memory_bytes", "energy_j_per_epoch",
    "energy_j", "duration_s", "interval", "contended", "contended_reason", "samples_per_joule",
    "energy_window", "quality_judged", "quality_best", "watts", "seeds", "quality_n", "time_to_target_n",
    "quality_partial_epochs", "host_bound",
]


def workload_key(cell: dict, multi_params: set[str]) -> str:
    """The workload's name, with its parameters where one run holds several variants of it."""
    name = str(cell.get("workload"))
    params = cell.get("params") or {}
    if name in multi_params and params:
        inner = ",".join(f"{k}={params[k]}" for k in sorted(params))
        name = f"{name}[{inner}]"
    batch = cell.get("batch")
    if isinstance(batch, dict) and "requested" in batch:  # a batch sweep: one row per batch
        name += f"@b{batch['requested']}"
    tag = re.search(r"@graphs-(on|off|auto)/", str(cell.get("id")))
    if tag:  # --gpu-graphs on,off: one row per mode
        name += f"@graphs-{tag.group(1)}"
    return name


def multi_params(cells: list[dict]) -> set[str]:
    """Workloads that appear with more than one set of parameters among ``cells``."""
    seen: dict[str, set[str]] = {}
    for cell in cells:
        seen.setdefault(str(cell.get("workload")), set()).add(json.dumps(cell.get("params") or {}, sort_keys=True))
    return {name for name, variants in seen.items() if len(variants) > 1}


def _floats(values) -> np.ndarray:
    out = np.asarray([v for v in (values or []) if isinstance(v, (int, float)) and not isinstance(v, bool)], dtype=np.float64)
    return out[np.isfinite(out)]


def step_times(cells: list[dict]) -> np.ndarray:
    """Every timed step of the ok cells, pooled, in seconds."""
    parts = [_floats((c.get("timing") or {}).get("step_s")) for c in cells if c.get("status") == "ok"]
    parts = [p[p > 0] for p in parts]
    return np.concatenate(parts) if parts else np.empty(0)


def throughput_samples(cells: list[dict]) -> np.ndarray:
    """Samples/s of every timed step of the ok cells (global batch over step time)."""
    parts = []
    for c in cells:
        if c.get("status") != "ok":
            continue
        steps = _floats((c.get("timing") or {}).get("step_s"))
        steps = steps[steps > 0]
        batch = c.get("batch_size")
        if steps.size and isinstance(batch, (int, float)) and batch > 0:
            parts.append(float(batch) / steps)
    return np.concatenate(parts) if parts else np.empty(0)


def phase_medians(cells: list[dict]) -> dict[str, float]:
    """Median seconds per step of each timed phase, over the ok cells; absent phases are left out."""
    out = {}
    for phase in PHASES:
        parts = [_floats(((c.get("timing") or {}).get("phases_s") or {}).get(phase)) for c in cells if c.get("status") == "ok"]
        values = np.concatenate(parts) if parts else np.empty(0)
        if values.size:
            out[phase] = float(np.median(values))
    return out


def throughput_groups(cells: list[dict]) -> list[np.ndarray]:
    """Samples/s of every timed step, one array per ok repeat (for the hierarchical bootstrap)."""
    groups = [throughput_samples([c]) for c in cells if c.get("status") == "ok"]
    return [g for g in groups if g.size]


def _throughput_stats(cells: list[dict]) -> dict | None:
    ok = [c for c in cells if c.get("status") == "ok"]
    if len(ok) == 1:
        block = (ok[0].get("stats") or {}).get("samples_per_s")
        if isinstance(block, dict) and isinstance(block.get("median"), (int, float)):
            return {**block, "interval": "within-run"}
    groups = throughput_groups(ok)
    if not groups:
        return None
    return stats.repeats_summary(groups)


def contention(cells: list[dict]) -> tuple[bool, str]:
    """(any ok repeat contended, why) from the cells' ``interference`` records."""
    reasons = []
    for c in cells:
        inter = c.get("interference") if c.get("status") == "ok" else None
        if isinstance(inter, dict) and inter.get("verdict") == "contended":
            reasons += [r for r in inter.get("reasons") or [] if r not in reasons]
    return bool(reasons), "; ".join(reasons)


def _first(cells: list[dict], *keys):
    for c in cells:
        value = c
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def _mean_of(cells: list[dict], *keys) -> float:
    values = []
    for c in cells:
        if c.get("status") != "ok":
            continue
        value = c
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values.append(float(value))
    return float(np.mean(values)) if values else float("nan")


def _status(cells: list[dict]) -> tuple[str, str]:
    worst = max(cells, key=lambda c: _STATUS_ORDER.get(c.get("status"), 5))
    status = str(worst.get("status"))
    bad = [c for c in cells if c.get("status") != "ok"]
    if not bad:
        return "ok", ""
    reason = str(worst.get("reason") or "no reason recorded")
    if len(cells) > 1:
        several = len({c.get("seed") for c in cells}) > 1
        status = f"{status} ({len(bad)}/{len(cells)} {'cells' if several else 'repeats'})"
    return status, reason


def _quality(cells: list[dict]) -> dict:
    ok = [c for c in cells if c.get("status") == "ok" and isinstance(c.get("quality"), dict)]
    pool = ok or [c for c in cells if isinstance(c.get("quality"), dict)]
    if not pool:
        return {}
    values = [c["quality"].get("value") for c in pool if isinstance(c["quality"].get("value"), (int, float))]
    ttas = [c["quality"].get("time_to_target_s") for c in pool if isinstance(c["quality"].get("time_to_target_s"), (int, float))]
    q = pool[0]["quality"]
    return {
        "quality_metric": q.get("metric"),
        "quality_value": float(np.median(values)) if values else float("nan"),
        "quality_target": q.get("target") if isinstance(q.get("target"), (int, float)) else float("nan"),
        "quality_reached": all(bool(c["quality"].get("reached")) for c in pool),
        "higher_is_better": bool(q.get("higher_is_better", True)),
        "time_to_target_s": float(np.median(ttas)) if ttas else float("nan"),
        # Quick cells train a few steps: their quality is a sanity value, never judged against the target.
        "quality_judged": all(c["quality"].get("judged", True) for c in pool),
        "quality_best": _median_of([c["quality"].get("best_value") for c in pool]),
        "quality_n": len(pool), "time_to_target_n": len(ttas),
        # a cell that ended early: the quality of the epochs it finished (see executor/kept_epochs.py)
        "quality_partial_epochs": _median_of([c["quality"].get("epochs") for c in pool if c["quality"].get("partial")]),
    }


def _median_of(values) -> float:
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return float(np.median(vals)) if vals else float("nan")


def group_cells(run: Run, multi: set[str] | None = None) -> dict[tuple[str, str], list[dict]]:
    """The run's cells grouped by (workload key, device spec), in the run's order.

    ``multi`` names the workloads whose key carries their parameters (default: those that appear
    with several parameter sets in this run).
    """
    multi = multi_params(run.cells) if multi is None else multi
    groups: dict[tuple[str, str], list[dict]] = {}
    for cell in run.cells:
        groups.setdefault((workload_key(cell, multi), str(cell.get("device"))), []).append(cell)
    return groups


def _row(key: tuple[str, str], cells: list[dict]) -> dict:
    workload, device = key
    status, reason = _status(cells)
    thr = _throughput_stats(cells)
    steps = step_times(cells)
    memory_key = "peak_device_bytes" if _first(cells, "device_kind") == "gpu" else "peak_host_bytes"
    peak = _mean_of(cells, "memory", memory_key)
    if np.isnan(peak):
        peak = _mean_of(cells, "memory", "peak_host_bytes")
    row = {
        "workload": workload, "device": device,
        "device_kind": _first(cells, "device_kind") or ("gpu" if device.startswith("gpu") else "cpu"),
        "n_devices": int(_first(cells, "n_devices") or 1),
        "scaling": _first(cells, "scaling") or "none",
        "communicator": _first(cells, "communicator") or "single",
        "status": status, "reason": reason, "repeats": len(cells), "seeds": len({c.get("seed") for c in cells}),
        "data_source": _first(cells, "data", "source") or "unknown",
        "data_note": _first(cells, "data", "note") or "",
        "batch_size": _first(cells, "batch_size"),
        "samples_per_s": float(thr["median"]) if thr else float("nan"),
        "samples_per_s_ci_low": float(thr.get("ci_low", np.nan)) if thr else float("nan"),
        "samples_per_s_ci_high": float(thr.get("ci_high", np.nan)) if thr else float("nan"),
        "noisy": bool(thr.get("noisy", False)) if thr else False,
        "interval": thr.get("interval", "within-run") if thr else "",
        "ms_per_step": float(np.median(steps) * 1e3) if steps.size else float("nan"),
        "gflops": _mean_of(cells, "stats", "gflops"),
        "peak_memory_bytes": peak,
        "energy_j_per_epoch": _mean_of(cells, "energy", "joules_per_epoch"),
        "energy_j": _mean_of(cells, "energy", "joules"),
        "duration_s": _mean_of(cells, "duration_s"),
        "samples_per_joule": _mean_of(cells, "energy", "samples_per_joule"),
        "watts": _mean_of(cells, "energy", "watts"),  # over the same window as the joules
        "energy_window": _first(cells, "energy", "window") or ("whole cell" if _first(cells, "energy", "joules") else ""),
    }
    row["contended"], row["contended_reason"] = contention(cells)
    # a GPU cell whose GPU waited for the host: its figure times the host (executor/bound.py)
    row["host_bound"] = any((c.get("bound") or {}).get("verdict") == "host" for c in cells if c.get("status") == "ok")
    pool_peak = _mean_of(cells, "memory", "pool_peak_bytes")
    if not np.isnan(pool_peak):
        row["peak_memory_bytes"] = pool_peak
    if np.isnan(row["gflops"]):
        flops = _first(cells, "flops_per_sample", "train_step")
        if isinstance(flops, (int, float)) and thr:
            row["gflops"] = float(flops) * row["samples_per_s"] / 1e9
    quality = _quality(cells)
    for name in ("quality_metric", "quality_value", "quality_target", "quality_reached", "higher_is_better", "time_to_target_s"):
        row[name] = quality.get(name, None if name in ("quality_metric", "quality_reached") else float("nan"))
    row["quality_judged"] = quality.get("quality_judged", True)
    row["quality_best"] = quality.get("quality_best", float("nan"))
    row["quality_n"], row["time_to_target_n"] = quality.get("quality_n", 0), quality.get("time_to_target_n", 0)
    row["quality_partial_epochs"] = quality.get("quality_partial_epochs", float("nan"))
    if row["higher_is_better"] is None or (isinstance(row["higher_is_better"], float) and np.isnan(row["higher_is_better"])):
        row["higher_is_better"] = True
    return row


def _single_baseline(device: str, kind: str, singles: dict[str, float]) -> str | None:
    """The single-device cell a data-parallel cell is measured against."""
    if kind == "cpu":
        return "cpu" if "cpu" in singles else None
    if device.startswith("gpu:"):
        first = device[4:].split(",")[0]
        if f"gpu:{first}" in singles:
            return f"gpu:{first}"
    gpus = sorted(d for d in singles if d.startswith("gpu:"))
    return gpus[0] if gpus else None


def summarize_run(run: Run, multi: set[str] | None = None) -> pd.DataFrame:
    """One row per workload × device of ``run``, with the columns listed in ``COLUMNS``.

    Args:
        run: a loaded results file.
        multi: as in :func:`group_cells`.

    Returns:
        A DataFrame; missing figures are NaN.
    """
    rows = [_row(key, cells) for key, cells in group_cells(run, multi).items()]
    frame = pd.DataFrame(rows)
    frame["speedup_vs_cpu"] = np.nan
    frame["baseline_device"] = None
    frame["scaling_efficiency"] = np.nan
    for workload, sub in frame.groupby("workload", sort=False):
        singles = {r.device: r.samples_per_s for r in sub.itertuples() if r.n_devices == 1 and np.isfinite(r.samples_per_s)}
        cpu = singles.get("cpu")
        for idx, r in sub.iterrows():
            if cpu and np.isfinite(r.samples_per_s):
                frame.loc[idx, "speedup_vs_cpu"] = r.samples_per_s / cpu
            if r.n_devices > 1:
                base = _single_baseline(r.device, r.device_kind, singles)
                if base is not None:
                    frame.loc[idx, "baseline_device"] = base
                    if np.isfinite(r.samples_per_s):
                        frame.loc[idx, "scaling_efficiency"] = r.samples_per_s / (singles[base] * r.n_devices)
    return frame[COLUMNS]
