"""Report tables: per workload × device of a run, as terminal text or Markdown.

``display_frame()`` gives the formatted table per workload; ``reporting/sections.py`` lays the
tables and notes out as one report in every medium.
"""
from __future__ import annotations

import pandas as pd

from benchbench.reporting.render import _finite, fmt_bytes, fmt_energy, fmt_number, fmt_seconds
from benchbench.reporting.runs import SIMULATED_BANNER, ReportError, Run
from benchbench.reporting.marks import CONTENDED, mark_text
from benchbench.reporting.summary import summarize_run

EFFICIENCY_FLAG = 1.10  # a scaling efficiency above this is flagged, never shown as a plain result

LOG_COLUMNS = ("epoch", "main/loss", "validation/main/loss", "main/accuracy", "validation/main/accuracy", "elapsed_time")

DISPLAY_COLUMNS = ["device", "data", "samples/s [95% CI]", "ms/step", "GFLOP/s", "vs CPU", "scaling eff.",
                   "time to target", "quality", "peak mem", "energy/epoch", "status"]


def _quality_text(row) -> str:
    if not _finite(row.quality_value):
        return "—"
    metric = row.quality_metric or "quality"
    text = f"{metric} {row.quality_value:.4g}"
    if not getattr(row, "quality_judged", True):
        return text + " (quick: sanity value)"
    best = getattr(row, "quality_best", float("nan"))
    if _finite(best) and best != row.quality_value:
        text += f", best {best:.4g}"
    if _finite(row.quality_target):
        sign = "≥" if row.higher_is_better else "≤"
        mark = "✓" if row.quality_reached else "✗"
        n = int(getattr(row, "quality_n", 0) or 0)
        if int(getattr(row, "seeds", 1) or 1) > 1 and n > 1:
            mark += f" {int(row.time_to_target_n)}/{n} reached"
        text += f" ({sign}{row.quality_target:g} {mark})"
    partial = getattr(row, "quality_partial_epochs", float("nan"))
    if _finite(partial):
        text += f" [partial: ended after {partial:g} epoch(s)]"
    return text


def _status_text(row) -> str:
    return row.status if not row.reason else f"{row.status}: {row.reason}"


def _efficiency_text(row) -> str:
    if row.n_devices <= 1:
        return "—"
    if not _finite(row.scaling_efficiency):
        return f"— ({row.scaling}, no single-device cell)" if row.baseline_device is None else "—"
    text = f"{row.scaling_efficiency:.0%} ({row.scaling}, vs {row.baseline_device})"
    if row.scaling_efficiency > EFFICIENCY_FLAG:  # more than linear: the single-device figure is suspect
        text += " ! implausible: baseline contended or cache effect"
    return text


def _tta_text(row) -> str:
    """The median time to target; over several seeds, how many of them it is the median of."""
    text = fmt_seconds(row.time_to_target_s)
    n = int(getattr(row, "quality_n", 0) or 0)
    if int(getattr(row, "seeds", 1) or 1) > 1 and n > 1 and _finite(row.time_to_target_s):
        text += f" (median of {int(row.time_to_target_n)}/{n} that reached it)"
    return text


def _device_text(row) -> str:
    """The device, with how many runs its figures pool: ``cpu ×3`` (repeats), ``cpu (3 seeds)``."""
    seeds = int(getattr(row, "seeds", 1) or 1)
    if seeds > 1:
        return f"{row.device} ({seeds} seeds" + (f", {row.repeats} cells)" if row.repeats != seeds else ")")
    return row.device + (f" ×{row.repeats}" if row.repeats > 1 else "")


def display_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The human-readable table for the rows of ``summarize_run()``: one formatted string per cell.

    Args:
        summary: rows of ``summarize_run()`` (any subset).

    Returns:
        A DataFrame with the columns of ``DISPLAY_COLUMNS`` and the workload as index.
    """
    rows = []
    for r in summary.itertuples():
        sps = "—"
        if _finite(r.samples_per_s):
            sps = fmt_number(r.samples_per_s)
            if _finite(r.samples_per_s_ci_low) and _finite(r.samples_per_s_ci_high):
                sps += f" [{fmt_number(r.samples_per_s_ci_low)}, {fmt_number(r.samples_per_s_ci_high)}]"
            sps += mark_text(r.noisy, r.contended)
        rows.append({
            "device": _device_text(r),
            "data": r.data_source,
            "samples/s [95% CI]": sps,
            "ms/step": fmt_number(r.ms_per_step),
            "GFLOP/s": fmt_number(r.gflops),
            "vs CPU": f"{r.speedup_vs_cpu:.3g}×" if _finite(r.speedup_vs_cpu) else "—",
            "scaling eff.": _efficiency_text(r),
            "time to target": _tta_text(r),
            "quality": _quality_text(r),
            "peak mem": fmt_bytes(r.peak_memory_bytes),
            "energy/epoch": fmt_energy(r.energy_j_per_epoch),
            "status": _status_text(r),
        })
    return pd.DataFrame(rows, columns=DISPLAY_COLUMNS, index=list(summary["workload"]))


def run_header(run: Run) -> list[str]:
    """Lines that identify a run: machine, date, status, hardware and software."""
    m = run.machine
    cpu = m.get("cpu") or {}
    blas = m.get("blas") or {}
    gpus = m.get("gpus") or []
    versions = m.get("versions") or {}
    gpu_text = "none"
    if gpus:
        names = [str(g.get("name", "?")) for g in gpus]
        gpu_text = ", ".join(f"{names.count(n)} × {n}" for n in dict.fromkeys(names))
    soft = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    plan = run.data.get("plan") or {}
    banner = [SIMULATED_BANNER] if m.get("simulated_gpus") else []
    return banner + [
        f"machine {run.machine_id} · run {run.run_id} · {run.date} · {run.data.get('status', '?')}"
        f" · profile {plan.get('profile', '?')} · {run.path}",
        f"CPU: {cpu.get('model', '?')} ({cpu.get('cores_physical', '?')} cores; BLAS {blas.get('library', '?')} "
        f"{blas.get('version', '')} {blas.get('kernel', '') or ''}, {blas.get('threads', '?')} threads) · GPUs: {gpu_text}",
        f"software: {soft or 'unknown'}",
    ] + _settings_lines(m)


def _settings_lines(machine: dict) -> list[str]:
    """The CPU frequency settings, CPU energy and GPU links the machine block records, where it does."""
    lines = []
    freq = machine.get("cpu_frequency") or {}
    if freq:
        def fact(v):
            return "unknown" if v is None else ("on" if v is True else "off" if v is False else f"{v:g}")
        lines.append(f"CPU settings: governor {freq.get('governor') or 'unknown'}, turbo {fact(freq.get('turbo'))}, "
                     f"max {fact(freq.get('max_mhz'))} MHz, SMT {fact(freq.get('smt'))}, "
                     f"NUMA nodes {fact(freq.get('numa_nodes'))}")
    links = machine.get("gpu_topology") or []
    if links:
        lines.append("GPU links: " + ", ".join(f"{p.get('a')}-{p.get('b')} {p.get('link') or 'unknown'}" for p in links))
    return lines


def data_notes(summary: pd.DataFrame) -> list[str]:
    """One line per cell that did not run on the real dataset, saying what it ran on."""
    notes = []
    for r in summary.itertuples():
        if r.data_source not in ("real", "generated"):
            notes.append(f"{r.workload} on {r.device}: {r.data_source} data" + (f" ({r.data_note})" if r.data_note else ""))
    return notes


def _batch_text(sub: pd.DataFrame) -> str:
    batches = sorted({int(b) for b in sub["batch_size"] if _finite(b)})
    return "global batch " + "/".join(str(b) for b in batches) if batches else "batch unknown"


def figure_notes(run: Run, summary: pd.DataFrame) -> list[str]:
    """How the intervals were computed, which cells were contended, and the run's calibration probes."""
    notes = []
    kinds = set(summary["interval"].dropna()) if "interval" in summary else set()
    if "within-run" in kinds:
        notes.append("95% CI within-run: a bootstrap of one run's steps (one repeat); it does not cover run-to-run "
                     "variation; use --repeat 3 or more for intervals a second run should reproduce")
    if "t-log-medians" in kinds:
        notes.append("95% CI over repeats: t-interval on the log repeat medians (fewer than 10 repeats)")
    if "hierarchical" in kinds:
        notes.append("95% CI over repeats: hierarchical bootstrap (repeats resampled, then steps within each)")
    if "seeds" in summary and (summary["seeds"] > 1).any():
        notes.append("throughput over seeds: the cells of every seed are pooled as runs of the same measurement "
                     "(a seed changes the weights and data order, not a step's work); quality and time to target "
                     "per seed: the quality table")
    for r in summary.itertuples():
        if getattr(r, "contended", False):
            notes.append(f"{CONTENDED} {r.workload} on {r.device}: {r.contended_reason}")
    probes = run.data.get("probes") or {}
    start, end = probes.get("start") or {}, probes.get("end") or {}
    if start.get("sgemm_gflops"):
        text = f"calibration probes ({probes.get('what', 'sgemm, memory copy')}): start {start['sgemm_gflops']:.3g} GFLOP/s, " \
               f"{start.get('membw_gbs', float('nan')):.3g} GB/s"
        if end.get("sgemm_gflops"):
            text += f"; end {end['sgemm_gflops']:.3g} GFLOP/s, {end.get('membw_gbs', float('nan')):.3g} GB/s"
        notes.append(text)
    if "energy_window" in summary and ((summary["energy_window"] == "timed steps")
                                       & summary["samples_per_joule"].notna()).any():
        notes.append("energy: NVML counters (GPUs) read when timing starts and after the last timed step, on every rank, "
                     "summed; RAPL package counters (CPUs) over the same window, for the whole machine")
    if "energy_window" in summary and (summary["energy_window"].astype(str).str.startswith("timed steps (")
                                       & summary["samples_per_joule"].notna()).any():
        notes.append("energy: NVML counters read around each timed step (bookkeeping between steps left out), "
                     "on every rank, summed")
    return notes


def epoch_log_text(run: Run, cell_id: str) -> str:
    """A cell's epoch log in Chainer's ``PrintReport`` columns.

    Args:
        run: the run that holds the cell.
        cell_id: the cell's id, e.g. ``mlp_mnist/cpu/r0``.

    Returns:
        The log as text, one epoch per line.

    Raises:
        ReportError: no such cell in the run, or the cell has no epoch log.
    """
    cell = next((c for c in run.cells if c.get("id") == cell_id), None)
    if cell is None:
        known = ", ".join(str(c.get("id")) for c in run.cells[:8])
        raise ReportError(f"{run.path}: no cell {cell_id!r} (cells: {known}{', …' if len(run.cells) > 8 else ''})")
    log = cell.get("epoch_log") or []
    if not log:
        raise ReportError(f"{run.path}: cell {cell_id!r} has no epoch log (profile 'quick' logs no epochs)")
    extra = [k for entry in log for k in entry if k not in LOG_COLUMNS]
    columns = list(LOG_COLUMNS) + list(dict.fromkeys(extra))
    widths = [max(10, len(c)) for c in columns]
    lines = ["   ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    for entry in log:
        values = []
        for c, w in zip(columns, widths):
            v = entry.get(c)
            values.append((f"{v:<{w}g}" if _finite(v) else " " * w))
        lines.append("   ".join(values).rstrip())
    return f"{cell_id} on {run.machine_id} ({run.run_id})\n" + "\n".join(lines) + "\n"


def csv_frame(runs: list[Run]) -> pd.DataFrame:
    """All rows of all runs as one flat table with raw numbers, for CSV."""
    frames = []
    for run in runs:
        s = summarize_run(run)
        s.insert(0, "run_id", run.run_id)
        s.insert(0, "machine_id", run.machine_id)
        frames.append(s)
    return pd.concat(frames, ignore_index=True)
