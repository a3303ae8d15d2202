"""Machines side by side: throughput ratios with bootstrap CIs, performance per watt and per price.

The first run given is the baseline; every other run is compared with it on each workload × device
both ran. A ratio whose 95% CI contains 1 is reported as "no significant difference". Rows that
only one machine has are kept and marked ``missing`` on the others.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchbench import stats
from benchbench.reporting.batch import compare_batch_text
from benchbench.reporting.compare_gate import metadata_diff, pairing_warnings
from benchbench.reporting.render import csv_text, drop_empty_columns, fmt_number
from benchbench.reporting.runs import ReportError, Run, runs_label
from benchbench.reporting.sections import Section, render_markdown, render_terminal, report_sections
from benchbench.reporting.summary import group_cells, multi_params, summarize_run, throughput_groups

MISSING = "missing"


def _validate_prices(prices, runs: list[Run]) -> dict[str, float]:
    if prices is None:
        return {}
    if not isinstance(prices, dict):
        raise TypeError(f"compare: prices must be a dict of machine id -> price, got {type(prices).__name__}")
    known = {r.machine_id for r in runs} | {r.label for r in runs}
    out = {}
    for machine, price in prices.items():
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
            raise ReportError(f"--price {machine}={price}: a price must be a positive number")
        if machine not in known:
            raise ReportError(f"--price {machine}={price:g}: no such machine among the compared runs "
                              f"({', '.join(sorted(known))})")
        out[machine] = float(price)
    return out


def version_differences(runs: list[Run]) -> list[str]:
    """One line per library whose version (or BLAS) differs between the runs' machines."""
    labels = runs_label(runs)
    lines = []
    blocks = [dict(r.machine.get("versions") or {}) for r in runs]
    for i, r in enumerate(runs):
        blas = r.machine.get("blas") or {}
        if blas.get("library"):
            blocks[i]["BLAS"] = f"{blas.get('library')} {blas.get('version') or ''}".strip()
    keys = list(dict.fromkeys(k for b in blocks for k in b))
    for key in keys:
        values = [b.get(key) or "none" for b in blocks]
        if len(set(values)) > 1:
            lines.append(f"{key}: " + ", ".join(f"{labels[i]} {v}" for i, v in enumerate(values)))
    return lines


def _watts(row) -> float:
    """Mean power over the window the joules cover (the timed steps); never joules of one window over
    the duration of another."""
    if row is None:
        return float("nan")
    w = getattr(row, "watts", float("nan"))
    return float(w) if w is not None and np.isfinite(w) else float("nan")


def compare_frame(runs: list[Run], prices: dict[str, float] | None = None) -> pd.DataFrame:
    """The comparison with raw numbers: one row per workload × device × machine.

    Args:
        runs: at least two loaded runs; the first is the baseline.
        prices: price per machine id, where known.

    Returns:
        Columns ``workload, device, machine, run_id, status, samples_per_s, ci_low, ci_high,
        ratio, ratio_ci_low, ratio_ci_high, significant, watts, samples_per_joule,
        samples_per_s_per_1k_price``; a machine without that workload × device has status ``missing``.
    """
    if len(runs) < 2:
        raise ReportError("compare needs at least two runs (give two results files or folders)")
    prices = _validate_prices(prices, runs)
    labels = runs_label(runs)
    multi = multi_params([c for r in runs for c in r.cells])
    summaries = [summarize_run(r, multi).set_index(["workload", "device"]) for r in runs]
    groups = [group_cells(r, multi) for r in runs]
    keys = list(dict.fromkeys(k for s in summaries for k in s.index))
    rows = []
    for key in keys:
        base_groups = throughput_groups(groups[0].get(key, []))
        for i, run in enumerate(runs):
            summary = summaries[i]
            row = summary.loc[key] if key in summary.index else None
            out = {"workload": key[0], "device": key[1], "machine": labels[i], "run_id": run.run_id,
                   "simulated": bool(run.machine.get("simulated_gpus")),
                   "status": MISSING if row is None else row.status, "reason": "" if row is None else row.reason,
                   "samples_per_s": np.nan, "ci_low": np.nan, "ci_high": np.nan, "ratio": np.nan,
                   "ratio_ci_low": np.nan, "ratio_ci_high": np.nan, "significant": None, "interval": None,
                   "repeats_needed": None, "contended": False if row is None else bool(row.contended),
                   "contended_reason": "" if row is None else row.contended_reason}
            out["seeds"] = 1 if row is None else int(row.seeds)
            if row is not None:
                out.update(samples_per_s=row.samples_per_s, ci_low=row.samples_per_s_ci_low, ci_high=row.samples_per_s_ci_high)
            samples = throughput_groups(groups[i].get(key, []))
            if i > 0 and samples and base_groups:
                # Significance needs repeats on both sides: steps of one run are not independent runs.
                r = stats.repeats_ratio(samples, base_groups)
                out.update(ratio=r["ratio"], ratio_ci_low=r["ci_low"], ratio_ci_high=r["ci_high"], significant=r["significant"],
                           interval=r["interval"], repeats_needed=r["repeats_needed"])
            watts = _watts(row)
            out["watts"] = watts
            out["samples_per_joule"] = out["samples_per_s"] / watts if np.isfinite(watts) and watts > 0 else np.nan
            if row is not None and np.isfinite(row.samples_per_joule):  # measured over the timed window
                out["samples_per_joule"] = row.samples_per_joule
            price = prices.get(run.machine_id, prices.get(run.label))
            out["samples_per_s_per_1k_price"] = out["samples_per_s"] / price * 1000 if price else np.nan
            rows.append(out)
    return pd.DataFrame(rows)


def _ratio_text(r) -> str:
    if not np.isfinite(r.ratio):
        return "—"
    text = f"{r.ratio:.3g}× [{r.ratio_ci_low:.3g}, {r.ratio_ci_high:.3g}]"
    if r.significant:
        return text
    if r.interval == "within-run":
        need = r.repeats_needed
        more = f"more than {stats.MAX_REPEATS_ADVICE}" if need and need > stats.MAX_REPEATS_ADVICE else str(need)
        return text + f" within-run only: not significant; about {more} repeats per machine would decide it"
    need = r.repeats_needed
    if need and need <= stats.MAX_REPEATS_ADVICE:
        return text + f" no significant difference (about {need} repeats per machine would decide it)"
    return text + " no significant difference"


def display_compare(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The wide, formatted comparison: one row per workload × device, columns per machine."""
    base = labels[0]
    has_energy = frame["samples_per_joule"].notna().any()
    has_price = frame["samples_per_s_per_1k_price"].notna().any()
    rows = []
    for (workload, device), sub in frame.groupby(["workload", "device"], sort=False):
        sub = sub.set_index("machine")
        out = {"workload": workload, "device": device}
        for m in labels:
            r = sub.loc[m]
            if r.status == MISSING:
                out[f"{m} samples/s"] = MISSING
            elif not np.isfinite(r.samples_per_s):
                out[f"{m} samples/s"] = f"{r.status}: {r.reason}" if r.reason else str(r.status)
            else:
                out[f"{m} samples/s"] = fmt_number(r.samples_per_s) + (" ~contended" if r.contended else "")
        for m in labels[1:]:
            out[f"{m} / {base}"] = _ratio_text(sub.loc[m])
        if has_energy:
            for m in labels:
                out[f"{m} samples/J"] = fmt_number(sub.loc[m].samples_per_joule)
        if has_price:
            for m in labels:
                out[f"{m} samples/s per 1k price"] = fmt_number(sub.loc[m].samples_per_s_per_1k_price)
        rows.append(out)
    return pd.DataFrame(rows)


def compare_notes(runs: list[Run], frame: pd.DataFrame) -> list[str]:
    """What a reader must know: the baseline, differing software, and what is missing where."""
    labels = runs_label(runs)
    notes = [f"baseline: {labels[0]} (run {runs[0].run_id}, {runs[0].date}); ratios are samples/s over the baseline's, "
             "95% bootstrap CI of the ratio of medians"]
    notes += [f"{labels[i]}: run {r.run_id}, {r.date}, {r.path}" for i, r in enumerate(runs) if i > 0]
    diffs = version_differences(runs)
    if diffs:
        notes.append("software versions differ: " + "; ".join(diffs))
    for label in (labels[i] for i in range(len(runs))):
        missing = frame[(frame["machine"] == label) & (frame["status"] == MISSING)]
        if not missing.empty:
            items = ", ".join(f"{w} on {d}" for w, d in zip(missing["workload"], missing["device"]))
            notes.append(f"missing on {label}: {items}")
    if frame["samples_per_joule"].notna().any():
        notes.append("samples/J: samples of the timed steps ÷ the energy of all ranks over the same window; results "
                     "without a timed-window energy fall back to samples/s ÷ mean power of the whole cell")
    contended = frame[frame["contended"].astype(bool)]
    for r in contended.itertuples():
        notes.append(f"warning: {r.workload} on {r.device} on {r.machine} was contended ({r.contended_reason}); "
                     "its ratio compares a busy machine, not the hardware")
    if "seeds" in frame and (frame["seeds"] > 1).any():
        notes.append("seeds: a side with several seeds pools their cells as runs of the throughput measurement (a seed "
                     "changes the weights and data order, not a step's work); their time to target is compared in "
                     "`benchbench report`'s quality table, never pooled here")
    if (frame["interval"] == "within-run").any():
        notes.append("within-run: one repeat on a side; such intervals miss run-to-run variation and are never called "
                     "significant (run with --repeat 3 on both machines)")
    probe_line = probe_figures(runs)
    if probe_line:
        notes.append(probe_line)
    return notes


def probe_figures(runs: list[Run]) -> str | None:
    """The machines' calibration probes side by side (the state of each machine when it ran)."""
    labels = runs_label(runs)
    parts = []
    for i, run in enumerate(runs):
        start = ((run.data.get("probes") or {}).get("start")) or {}
        if start.get("sgemm_gflops"):
            parts.append(f"{labels[i]} {start['sgemm_gflops']:.3g} GFLOP/s sgemm, {start.get('membw_gbs', float('nan')):.3g} GB/s copy")
    if not parts:
        return None
    return "calibration probes at the start of each run: " + "; ".join(parts)


def compare_text(runs: list[Run], prices: dict[str, float] | None = None, fmt: str = "terminal",
                 baseline: str | None = None, colour: bool = False) -> str:
    """The comparison of loaded runs as terminal text, Markdown or CSV (HTML is ``reporting/html.py``).

    Args:
        runs: two or more loaded runs; the first is the baseline.
        prices: machine id -> price (any currency).
        fmt: ``terminal``, ``markdown`` or ``csv``.
        baseline: normalise the buyer's summary to this device or run (``--baseline``).
        colour: colour the terminal banner (ANSI codes).

    Raises:
        ReportError: fewer than two runs, a bad price.
        ValueError: ``fmt`` is not a text format.
    """
    if fmt not in ("terminal", "markdown", "csv"):
        raise ValueError(f"compare_text: fmt must be terminal, markdown or csv, got {fmt!r}")
    frame = compare_frame(runs, prices)
    if fmt == "csv":
        return csv_text(frame)
    labels = list(runs_label(runs).values())
    table = drop_empty_columns(display_compare(frame, labels), keep=2)
    notes = pairing_warnings(runs) + compare_notes(runs, frame)
    summaries = [summarize_run(r, multi_params([c for r in runs for c in r.cells])) for r in runs]
    banner, sections = report_sections(runs, summaries, baseline, prices, per_run_tables=False)
    diff = metadata_diff(runs)
    lead = Section("Comparison", "comparison", tables=[("samples/s and ratios to the baseline", table, None)],
                   items=notes)
    if not diff.empty:
        lead.tables.append(("what differs between the machines and runs", diff, None))
    sections = [sections[0], lead] + sections[1:]
    title = "benchbench comparison: " + " vs ".join(labels)
    if fmt == "markdown":
        text = render_markdown(title, banner, sections)
    else:
        text = render_terminal(title, banner, sections, colour=colour)
    batches = compare_batch_text(runs, markdown=fmt == "markdown")
    if batches:
        text += "\n" + batches
    return text
