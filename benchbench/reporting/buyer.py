"""The buyer's summary: one table of device × workload throughput that answers "which is faster, by how much".

One column per device of each run (``machine device`` where several runs are summarised), one row
per workload, then:

- a geometric-mean row over the workloads every column measured (so no column is scored on an
  easier set), optionally normalised to a reference column (``--baseline DEVICE|RUN``);
- samples/s per watt (samples per joule over the timed steps) and per 1,000 units of money, where
  energy was measured or a price was given;
- the share of the device's measured peak: a cell's achieved GFLOP/s over the run's own GEMM probe
  (the CPU's one-thread sgemm times the BLAS threads, a GPU's GEMM probe times its devices).

The summary reads only ``summarize_run()`` rows and the run's probes; it never guesses a figure.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchbench.reporting.marks import mark_text
from benchbench.reporting.render import _finite, fmt_number
from benchbench.reporting.runs import ReportError, Run, runs_label
from benchbench.reporting.summary import group_cells

GEOMEAN = "geometric mean"


def _cells_of(run: Run, workload: str, device: str) -> list[dict]:
    return group_cells(run).get((workload, device), [])


def cpu_peak_gflops(run: Run, n_threads: int | None = None) -> tuple[float, str] | None:
    """The CPU's measured GEMM peak: the run's one-thread sgemm probe times the BLAS threads (capped at the cores)."""
    start = ((run.data.get("probes") or {}).get("start")) or {}
    one = start.get("sgemm_gflops")
    if not _finite(one) or one <= 0:
        return None
    cpu = run.machine.get("cpu") or {}
    threads = n_threads or (run.machine.get("blas") or {}).get("threads") or 1
    cores = cpu.get("cores_logical") or cpu.get("cores_physical") or threads
    threads = max(1, min(int(threads), int(cores)))
    return one * threads, f"sgemm probe {one:.3g} GFLOP/s × {threads} thread(s)"


def gpu_peak_gflops(cells: list[dict], n_devices: int) -> tuple[float, str] | None:
    """A GPU cell's measured GEMM peak: the best GEMM probe around its cells, times its devices."""
    values = []
    for c in cells:
        probes = ((c.get("interference") or {}).get("probes")) or {}
        for side in ("before", "after"):
            v = (probes.get(side) or {}).get("gpu_gemm_gflops")
            if _finite(v) and v > 0:
                values.append(float(v))
    if not values:
        return None
    best = max(values)
    return best * n_devices, f"GEMM probe {best:.3g} GFLOP/s × {n_devices} device(s)"


def _peak(run: Run, row) -> tuple[float, str] | None:
    cells = _cells_of(run, row.workload, row.device)
    if row.device_kind == "gpu":
        return gpu_peak_gflops(cells, int(row.n_devices))
    threads = next((c.get("interference", {}).get("blas_threads") for c in cells
                    if isinstance(c.get("interference"), dict) and c["interference"].get("blas_threads")), None)
    return cpu_peak_gflops(run, threads)


def geomean(values) -> float:
    """The geometric mean of the finite positive ``values`` (NaN when there is none)."""
    vals = [float(v) for v in values if _finite(v) and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else float("nan")


def _price_for(run: Run, label: str, prices: dict | None) -> float | None:
    prices = prices or {}
    for key in (run.machine_id, label, run.machine.get("label")):
        if key and key in prices:
            return float(prices[key])
    return None


def buyer_frame(runs: list[Run], summaries: list[pd.DataFrame], prices: dict | None = None) -> pd.DataFrame:
    """One row per column (run × single or data-parallel device) × workload with the summary's figures.

    Args:
        runs: loaded runs.
        summaries: their ``summarize_run()`` frames (same order; batch-sweep rows are left out).
        prices: machine id or label -> price.

    Returns:
        Columns ``column, run, machine, device, device_kind, workload, samples_per_s, ci_low, ci_high,
        noisy, contended, samples_per_joule, gflops, peak_gflops, peak_share, peak_source, price``.
    """
    labels = runs_label(runs)
    rows = []
    for i, (run, summary) in enumerate(zip(runs, summaries)):
        price = _price_for(run, labels[i], prices)
        for r in summary.itertuples():
            if "@b" in r.workload or not _finite(r.samples_per_s):
                continue
            column = r.device if len(runs) == 1 else f"{labels[i]} {r.device}"
            peak = _peak(run, r)
            rows.append({"column": column, "run": i, "machine": labels[i], "device": r.device,
                         "device_kind": r.device_kind, "workload": r.workload, "samples_per_s": r.samples_per_s,
                         "ci_low": r.samples_per_s_ci_low, "ci_high": r.samples_per_s_ci_high, "noisy": bool(r.noisy),
                         "contended": bool(r.contended), "samples_per_joule": r.samples_per_joule,
                         "gflops": r.gflops, "peak_gflops": peak[0] if peak else np.nan,
                         "peak_share": r.gflops / peak[0] if peak and _finite(r.gflops) else np.nan,
                         "peak_source": peak[1] if peak else "", "price": price})
    cols = ["column", "run", "machine", "device", "device_kind", "workload", "samples_per_s", "ci_low", "ci_high",
            "noisy", "contended", "samples_per_joule", "gflops", "peak_gflops", "peak_share", "peak_source", "price"]
    return pd.DataFrame(rows, columns=cols)


def resolve_baseline(spec: str | None, runs: list[Run], frame: pd.DataFrame) -> dict[str, str] | None:
    """Which column each column is normalised to: ``None`` without a baseline.

    ``spec`` is a device (``cpu``, ``gpu:0``: that device of the first run that has it, for every
    column), a column's full name (``machine device``), or a run (its machine id, run id or label:
    each column is set against the same device on that run).

    Raises:
        ReportError: ``spec`` names no device, column or run of the summary.
    """
    if spec is None:
        return None
    columns = list(dict.fromkeys(frame["column"]))
    if spec in columns:
        return {c: spec for c in columns}
    devices = frame[frame["device"] == spec]
    if not devices.empty:
        first = devices.sort_values("run", kind="stable")["column"].iloc[0]
        return {c: first for c in columns}
    labels = runs_label(runs)
    for i, run in enumerate(runs):
        if spec in (run.machine_id, run.run_id, labels[i], run.machine.get("label"), run.path.stem):
            mine = frame[frame["run"] == i].drop_duplicates("device").set_index("device")["column"]
            out = {}
            for c, d in frame.drop_duplicates("column")[["column", "device"]].itertuples(index=False):
                if d in mine.index:
                    out[c] = mine[d]
            return out
    known = sorted(set(frame["device"])) + [labels[i] for i in range(len(runs))]
    raise ReportError(f"--baseline {spec}: no such device or run in the summary (known: {', '.join(known)})")


def _cell_text(r, base: float | None) -> str:
    if base:
        return f"{r.samples_per_s / base:.3g}× ({fmt_number(r.samples_per_s)})" + mark_text(r.noisy, r.contended)
    text = fmt_number(r.samples_per_s)
    if _finite(r.ci_low) and _finite(r.ci_high):
        text += f" [{fmt_number(r.ci_low)}, {fmt_number(r.ci_high)}]"
    return text + mark_text(r.noisy, r.contended)


def summary_tables(runs: list[Run], summaries: list[pd.DataFrame], baseline: str | None = None,
                   prices: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The buyer's summary as display tables: throughput (with the geometric mean, per W, per price),
    the share of the measured peak, and the notes that say what each figure is.

    Returns:
        ``(throughput, peak_share, notes)``: DataFrames indexed by workload with one column per device.

    Raises:
        ReportError: an unknown ``baseline``.
    """
    frame = buyer_frame(runs, summaries, prices)
    if frame.empty:
        return pd.DataFrame(), pd.DataFrame(), ["no cell finished with a throughput: nothing to summarise"]
    columns = list(dict.fromkeys(frame["column"]))
    workloads = list(dict.fromkeys(frame["workload"]))
    base_of = resolve_baseline(baseline, runs, frame)
    by = {(r.column, r.workload): r for r in frame.itertuples()}
    common = [w for w in workloads if all((c, w) in by for c in columns)]
    thr = pd.DataFrame(index=workloads, columns=columns, dtype=object)
    share = pd.DataFrame(index=workloads, columns=columns, dtype=object)
    for (c, w), r in by.items():
        base_col = (base_of or {}).get(c)
        base = by.get((base_col, w)) if base_col else None
        thr.loc[w, c] = _cell_text(r, base.samples_per_s if base is not None else None)
        share.loc[w, c] = f"{r.peak_share:.1%}" if _finite(r.peak_share) else "—"
    geo = {c: geomean([by[(c, w)].samples_per_s for w in common]) for c in columns}
    row = {}
    for c in columns:
        base_col = (base_of or {}).get(c)
        if base_col and _finite(geo[c]) and _finite(geo.get(base_col)):
            row[c] = f"{geo[c] / geo[base_col]:.3g}×"
        else:
            row[c] = fmt_number(geo[c]) if not base_of else "—"
    thr.loc[GEOMEAN] = row
    notes = []
    if common:
        notes.append(f"{GEOMEAN}: over the {len(common)} workload(s) every column measured ({', '.join(common)})")
    else:
        notes.append(f"{GEOMEAN}: no workload was measured in every column, so no overall score is given")
    if base_of:
        targets = sorted(set(base_of.values()))
        notes.append(f"normalised to {', '.join(targets)} (--baseline {baseline}): each cell is samples/s over the "
                     "baseline's on the same workload, raw samples/s in brackets; columns without a baseline show —")
    per_j = {c: geomean([by[(c, w)].samples_per_joule for w in workloads if (c, w) in by]) for c in columns}
    if any(_finite(v) for v in per_j.values()):
        thr.loc["samples/s per W (geomean)"] = {c: fmt_number(v) for c, v in per_j.items()}
        notes.append("samples/s per W = samples per joule over the timed steps (NVML on GPUs, RAPL on CPUs), "
                     "geometric mean over the workloads with an energy reading")
    notes += energy_gaps(runs, frame, per_j)
    if frame["price"].notna().any():
        per_price = {c: geo[c] / frame[frame["column"] == c]["price"].iloc[0] * 1000
                     if _finite(frame[frame["column"] == c]["price"].iloc[0]) else float("nan") for c in columns}
        thr.loc["samples/s per 1k price (geomean)"] = {c: fmt_number(v) for c, v in per_price.items()}
        notes.append("per 1k price: the geometric-mean samples/s over the machine's price (--price) × 1000")
    notes += peak_notes(runs, frame)
    return thr.fillna("—"), share.fillna("—"), notes


def energy_gaps(runs: list[Run], frame: pd.DataFrame, per_j: dict) -> list[str]:
    """Why a column has no per-watt figure: the machine's record of its energy counter, or its absence."""
    notes = []
    for c, v in per_j.items():
        if _finite(v):
            continue
        sub = frame[frame["column"] == c].iloc[0]
        run = runs[int(sub.run)]
        if sub.device_kind == "cpu":
            energy = run.machine.get("cpu_energy") or {}
            why = energy.get("reason") or "this run recorded no CPU energy reading (RAPL/powercap not read)"
            notes.append(f"no per-watt figure for {c}: {why}")
        else:
            notes.append(f"no per-watt figure for {c}: NVML gave no energy counter for its cells")
    return notes


def peak_notes(runs: list[Run], frame: pd.DataFrame) -> list[str]:
    """What the peak shares are measured against, and the memory probe beside them."""
    sources = []
    for kind, what in (("cpu", "CPU"), ("gpu", "GPU")):
        sub = frame[(frame["device_kind"] == kind) & frame["peak_gflops"].notna()]
        if kind == "cpu" and not sub.empty:
            sources.append(f"{what}: {sub['peak_source'].iloc[0]}")
        elif not sub.empty:
            per = sub["peak_gflops"] / sub["device"].map(lambda d: len(d.split(":")[-1].split(",")))
            sources.append(f"{what}: the best GEMM probe around the cell ({per.min():.3g}–{per.max():.3g} GFLOP/s "
                           "per device) × its devices")
    notes = ["share of peak = the cell's achieved GFLOP/s (FLOPs per sample × samples/s) over the device's "
             "measured GEMM peak; " + ("; ".join(sources) or "no probe recorded")]
    for run in {r.machine_id: r for r in runs}.values():
        start = ((run.data.get("probes") or {}).get("start")) or {}
        if _finite(start.get("membw_gbs")):
            notes.append(f"memory: the copy probe of {run.machine_id} moved {start['membw_gbs']:.3g} GB/s; cells do "
                         "not record the bytes they move, so no per-cell memory share is given")
    return notes
