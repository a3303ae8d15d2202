"""Figures of a run: throughput, scaling, time-to-accuracy and where each step's time goes.

Every figure is a standalone ``matplotlib.figure.Figure`` (no pyplot, so no global backend state
and nothing to close): the ``*_figure`` functions build and return one, or ``None`` where the run
has no data for it; ``plot()`` saves them as PNG and SVG.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchbench.reporting.batch import batch_frame, batch_workloads
from benchbench.reporting.figure_marks import hatch_contended, mark_figure, refuse_mixed, workload_title
from benchbench.reporting.marks import synthetic_cells
from benchbench.reporting.runs import Run, file_stem, resolve_runs, runs_label
from benchbench.reporting.scaling import ScalingPoint, fit, predicted_throughput
from benchbench.reporting.summary import PHASES, group_cells, phase_medians, step_times, summarize_run
from benchbench.reporting.summary_plot import summary_figure
from benchbench.reporting.tables import EFFICIENCY_FLAG
from benchbench.reporting.tta import crossing

KINDS = ("throughput", "scaling", "tta", "phases", "batch", "summary")
IMPLAUSIBLE = "baseline contended or cache effect"
MODEL_TOLERANCE = 0.25  # the scaling model is drawn only where it misses no measured point by more


def _plain(text) -> str:
    """``text`` from a results file, with ``$`` escaped so that matplotlib never reads it as math."""
    return str(text).replace("$", r"\$")


def _figure(width: float = 8.0, height: float = 5.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))
    return fig


def _caption(fig, run: Run) -> None:
    fig.text(0.01, 0.01, _plain(run.caption), fontsize=8, color="0.35", ha="left", va="bottom")


def throughput_figure(run: Run):
    """Samples/s per device with 95% CI error bars: one panel per workload, each on a linear axis.

    Contended cells are hatched and hollow; a simulated run is watermarked; synthetic data is named
    in the footer.

    Returns:
        A Figure, or ``None`` where no cell has a throughput.
    """
    s = summarize_run(run)
    s = s[np.isfinite(s["samples_per_s"].astype(float))]
    if s.empty:
        return None
    workloads = list(dict.fromkeys(s["workload"]))
    devices = list(dict.fromkeys(s["device"]))
    colors = {d: f"C{i % 10}" for i, d in enumerate(devices)}
    fig = _figure(max(6.0, 3.2 * len(workloads) + 1.5), 5.0)
    axes = fig.subplots(1, len(workloads), squeeze=False)[0]
    for ax, w in zip(axes, workloads):
        sub = s[s["workload"] == w]
        lo = (sub["samples_per_s"] - sub["samples_per_s_ci_low"]).clip(lower=0).fillna(0)
        hi = (sub["samples_per_s_ci_high"] - sub["samples_per_s"]).clip(lower=0).fillna(0)
        bars = ax.bar(range(len(sub)), sub["samples_per_s"], yerr=[lo, hi], capsize=3,
                      color=[colors[d] for d in sub["device"]], label="_nolegend_")
        hatch_contended(bars, list(sub["contended"]))
        ax.set_xticks(range(len(sub)), [_plain(d) for d in sub["device"]], rotation=30, ha="right")
        ax.set_title(_plain(workload_title(run, w)), fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("throughput (samples/s, median, 95% CI)")
    fig.suptitle(_plain(f"Training throughput per device — {run.label}"))
    _caption(fig, run)
    mark_figure(fig, [run], synthetic_cells(s), bool(s["contended"].any()))
    return fig


def scaling_series(run: Run, workload: str):
    """Per (device kind, scaling mode): rows of (n, samples/s, ci_low, ci_high, step_s, allreduce_s, batch)."""
    s = summarize_run(run)
    s = s[(s["workload"] == workload) & np.isfinite(s["samples_per_s"].astype(float))]
    groups = group_cells(run)
    series: dict[tuple[str, str], list] = {}
    for r in s[s["n_devices"] > 1].itertuples():
        if r.baseline_device is None:
            continue
        series.setdefault((r.device_kind, r.scaling, r.baseline_device), []).append(r)
    out = {}
    for (kind, mode, base), rows in series.items():
        base_row = s[s["device"] == base].iloc[0]
        points = []
        for r in [base_row, *sorted(rows, key=lambda r: r.n_devices)]:
            phases = phase_medians(groups[(workload, r.device)])
            batch = r.batch_size / r.n_devices if mode == "weak" else r.batch_size
            points.append((int(r.n_devices), r.samples_per_s, r.samples_per_s_ci_low, r.samples_per_s_ci_high,
                           r.ms_per_step / 1e3, phases.get("allreduce"), batch))
        out[(kind, mode)] = points
    return out


def scaling_figure(run: Run, workload: str):
    """Samples/s against the number of devices: measured (95% CI), ideal, and the ring model (dashed).

    Returns:
        A Figure, or ``None`` where the workload has no data-parallel cell with a single-device baseline.
    """
    series = scaling_series(run, workload)
    if not series:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    n_max = 1
    hidden = []
    for (kind, mode), points in series.items():
        n = np.array([p[0] for p in points], dtype=float)
        thr = np.array([p[1] for p in points])
        lo = np.array([p[2] if np.isfinite(p[2]) else p[1] for p in points])
        hi = np.array([p[3] if np.isfinite(p[3]) else p[1] for p in points])
        bars = ax.errorbar(n, thr, yerr=[np.maximum(thr - lo, 0), np.maximum(hi - thr, 0)], fmt="o-", capsize=3,
                           label=f"{kind.upper()} measured ({mode} scaling)")
        color = bars[0].get_color()
        n_max = max(n_max, int(n.max()))
        grid = np.arange(1, 2 * int(n.max()) + 1, dtype=float)
        ax.plot(grid, thr[0] * grid, ":", color=color, alpha=0.7, label=f"{kind.upper()} ideal (linear)")
        try:
            model = fit([ScalingPoint(p[0], p[4], p[5]) for p in points], mode=mode)  # step times: no bytes needed
        except ValueError:  # too few device counts to fit the model: no curve rather than a guess
            model = None
        miss = model_miss(model, points) if model is not None else None
        if model is not None and miss <= MODEL_TOLERANCE:
            ax.plot(grid, predicted_throughput(model, grid, points[0][6]), "--", color=color, alpha=0.9,
                    label=f"{kind.upper()} ring all-reduce model")
        elif model is not None:
            hidden.append(f"{kind.upper()} model hidden: it misses the measured points by up to {miss:.0%}")
        for ni, ti in zip(n[1:], thr[1:]):
            eff = ti / (thr[0] * ni)
            ax.annotate(f"{eff:.0%}" + (" ! " + IMPLAUSIBLE if eff > EFFICIENCY_FLAG else ""), (ni, ti),
                        textcoords="offset points", xytext=(6, -12), fontsize=8,
                        color="#b00020" if eff > EFFICIENCY_FLAG else None)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = [2**k for k in range(0, int(np.log2(2 * n_max)) + 1)]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("devices (n)")
    ax.set_ylabel("throughput (samples/s, log scale)")
    ax.set_title(_plain(f"Data-parallel scaling — {workload_title(run, workload)} (labels: efficiency)"))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for i, line in enumerate(hidden):
        ax.text(0.01, 0.98 - 0.05 * i, line, transform=ax.transAxes, fontsize=8, va="top", color="#b35900")
    _caption(fig, run)
    s = summarize_run(run)
    s = s[s["workload"] == workload]
    mark_figure(fig, [run], synthetic_cells(s), bool(s["contended"].any()))
    return fig


def model_miss(model, points) -> float:
    """The largest relative miss of the scaling model at the measured points."""
    errors = [abs(float(predicted_throughput(model, p[0], points[0][6])) / p[1] - 1) for p in points if p[1]]
    return max(errors) if errors else float("inf")


def _quality_key(cells: list[dict]) -> tuple[str, str]:
    metric = next((c["quality"].get("metric") for c in cells if isinstance(c.get("quality"), dict)), "accuracy")
    if metric == "accuracy":
        return "validation/main/accuracy", "validation accuracy"
    return "validation/main/loss", f"validation loss ({metric})"


def tta_figure(run: Run, workload: str):
    """Validation quality against wall-clock time, one line per cell (every seed, every repeat), with
    the target line and a mark where each cell first met it (the epoch the quality table counts).

    Returns:
        A Figure, or ``None`` where no cell of the workload has an epoch log.
    """
    groups = {k: v for k, v in group_cells(run).items() if k[0] == workload}
    cells = [c for v in groups.values() for c in v if c.get("epoch_log")]
    if not cells:
        return None
    key, label = _quality_key(cells)
    fig = _figure()
    ax = fig.add_subplot()
    lines = 0
    for c in cells:
        log = [e for e in c["epoch_log"] if isinstance(e.get(key), (int, float)) and isinstance(e.get("elapsed_time"), (int, float))]
        if log:
            group = groups[(workload, c['device'])]
            suffix = f" seed {c.get('seed')}" if len({g.get("seed") for g in group}) > 1 else ""
            if len({g.get("repeat") for g in group}) > 1:
                suffix += f" r{c.get('repeat')}"
            # A value is known only at the end of its epoch: a step there, never a slope before it.
            (line,) = ax.plot([e["elapsed_time"] for e in log], [e[key] for e in log], "o-", ms=3,
                              drawstyle="steps-post", label=_plain(f"{c['device']}{suffix}"))
            # A star where (and when) the target was reached: the table's time, the epoch of reporting.tta
            tta = (c.get("quality") or {}).get("time_to_target_s")
            target_value = (c.get("quality") or {}).get("target")
            mark = crossing(c)
            if isinstance(tta, (int, float)) and isinstance(target_value, (int, float)):
                ax.plot([tta], [target_value], marker="*", ms=12, color=line.get_color(), ls="none", gid="tta",
                        label="_crossing")
                ax.annotate(f"{tta:.3g} s", (tta, target_value), textcoords="offset points", xytext=(4, 6), fontsize=8,
                            color=line.get_color())
                if mark:
                    ax.annotate(f"epoch {mark['epochs']}", (tta, target_value), textcoords="offset points",
                                xytext=(4, -10), fontsize=7, color=line.get_color())
            lines += 1
    if not lines:
        return None
    target = next((c["quality"].get("target") for c in cells if isinstance((c.get("quality") or {}).get("target"), (int, float))), None)
    if target is not None:
        ax.axhline(target, color="0.3", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xscale("log")
    ax.set_xlabel("wall-clock time (s, log scale)")
    ax.set_ylabel(label)
    ax.set_title(_plain(f"Time to accuracy — {workload_title(run, workload)} (★: the target reached, at the end of that epoch)"))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _caption(fig, run)
    s = summarize_run(run)
    s = s[s["workload"] == workload]
    mark_figure(fig, [run], synthetic_cells(s), False)
    return fig


def phases_figure(run: Run, workload: str):
    """Median time per step in each phase (data, forward, backward, update, all-reduce), stacked per device.

    Returns:
        A Figure, or ``None`` where no cell of the workload timed its phases.
    """
    rows = [(device, phase_medians(cells)) for (w, device), cells in group_cells(run).items() if w == workload]
    rows = [(d, p) for d, p in rows if p]
    if not rows:
        return None
    fig = _figure(11.0, 5.0)
    ax, share = fig.subplots(1, 2, width_ratios=(3, 2))
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    bottom_share = np.zeros(len(rows))
    totals = np.array([sum(p.values()) for _, p in rows]) * 1e3
    for phase in PHASES:
        ms = np.array([p.get(phase, 0.0) * 1e3 for _, p in rows])
        if np.any(ms > 0):
            ax.bar(x, ms, bottom=bottom, label=phase)
            pct = np.divide(100 * ms, totals, out=np.zeros_like(ms), where=totals > 0)
            share.bar(x, pct, bottom=bottom_share, label=phase)
            bottom += ms
            bottom_share += pct
    steps = []
    for d, _ in rows:
        st = step_times(group_cells(run)[(workload, d)])
        steps.append(float(np.median(st)) * 1e3 if st.size else np.nan)
    ax.plot(x, steps, "k_", ms=30, mew=2, label="median step", gid="step-median")
    labels = [_plain(d) for d, _ in rows]
    ax.set_xticks(x, labels)
    ax.set_xlabel("device")
    ax.set_ylabel("median time per step (ms)")
    ax.set_title("Time per step")
    ax.legend(title="phase", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    share.set_xticks(x, labels)
    share.set_xlabel("device")
    share.set_ylabel("share of the step (%)")
    share.set_ylim(0, 100)
    share.set_title("Share of the step")
    fig.suptitle(_plain(f"Where each step's time goes — {workload_title(run, workload)}"))
    fig.text(0.5, 0.045, "each bar is the median of one phase over the timed steps; medians do not add up, so a stack "
             "can differ from the median step (black bar); the share panel divides by the stack", fontsize=7,
             ha="center", color="0.3", gid="phase-note")
    _caption(fig, run)
    mark_figure(fig, [run])
    return fig


def build_figures(run: Run, kind: str = "all") -> tuple[list[tuple[str, object]], list[str]]:
    """The figures of ``kind`` for one run.

    Args:
        run: a loaded run.
        kind: one of ``throughput``, ``scaling``, ``tta``, ``phases``, ``batch``, ``all``.

    Returns:
        ``(figures, notes)``: ``(name, Figure)`` pairs, and one line per plot skipped for lack of data.
    """
    if kind not in KINDS + ("all",):
        raise ValueError(f"plot: kind must be one of {', '.join(KINDS + ('all',))}, got {kind!r}")
    kinds = tuple(k for k in KINDS if k != "summary") if kind == "all" else (kind,)
    workloads = list(dict.fromkeys(summarize_run(run)["workload"]))
    figures, notes = [], []
    builders = {"scaling": scaling_figure, "tta": tta_figure, "phases": phases_figure}
    for k in kinds:
        if k == "summary":  # drawn over all runs together in plot(); one run's summary here
            fig = summary_figure([run])
            if fig is not None:
                figures.append(("summary", fig))
            continue
        if k == "batch":  # throughput against batch size (reporting/batch.py)
            names = batch_workloads([run])
            for w in names:
                figures.append((f"batch_{w}", batch_figure([run], w)))
            if not names and kind == "batch":  # with "all", a run without a sweep needs no note
                notes.append(f"{run.path}: batch plot skipped: no timed cell of a batch sweep (run --batch-size)")
            continue
        if k == "throughput":
            fig = throughput_figure(run)
            figures.append(("throughput", fig)) if fig is not None else notes.append(
                f"{run.path}: throughput plot skipped: no cell finished with step times")
            continue
        for w in workloads:
            fig = builders[k](run, w)
            if fig is not None:
                figures.append((f"{k}_{w}", fig))
            else:
                why = {"scaling": "no data-parallel cell with a single-device baseline",
                       "tta": "no epoch log (profile 'full' logs epochs)", "phases": "no phase timings"}[k]
                notes.append(f"{run.path}: {k} plot of {w} skipped: {why}")
    return figures, notes


def plot(paths: list[Path] | None = None, results_dir: Path = Path("results"), kind: str = "all",
         outdir: Path = Path("plots"), on_note: Callable[[str], None] | None = None) -> list[Path]:
    """Saves each figure of each run as PNG and SVG (what ``benchbench plot`` does).

    Args:
        paths: results files or folders; ``None`` takes the newest run under ``results_dir``.
        results_dir: where runs are looked for when ``paths`` is empty.
        kind: ``throughput``, ``scaling``, ``tta``, ``phases``, ``batch`` or ``all`` (``batch`` with several
            runs also draws their curves together, ``compare_batch_<workload>``).
        outdir: the folder to write into (created if needed).
        on_note: called with one line per plot skipped for lack of data (default: print to stderr).

    Returns:
        The files written, ``<machine>_<run>_<plot>.png`` and ``.svg`` for each figure.

    Raises:
        ReportError: no results, a malformed or wrong-version file, an empty run.
        ValueError: unknown ``kind``.
    """
    if kind not in KINDS + ("all",):
        raise ValueError(f"plot: kind must be one of {', '.join(KINDS + ('all',))}, got {kind!r}")
    note = on_note or (lambda line: print(line, file=sys.stderr))
    runs = resolve_runs(paths, results_dir)
    refuse_mixed(runs, "plot")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    if kind in ("summary", "all") and len(runs) > 1:  # one chart, the runs side by side
        fig = summary_figure(runs)
        if fig is not None:
            stem = file_stem("compare_summary_" + "_".join(r.run_id for r in runs))
            for ext in ("png", "svg"):
                fig.savefig(outdir / f"{stem}.{ext}", format=ext)
                written.append(outdir / f"{stem}.{ext}")
    for run in runs:
        if kind == "summary" and len(runs) > 1:
            break
        figures, notes = build_figures(run, kind)
        for line in notes:
            note(line)
        for name, fig in figures:
            stem = file_stem(f"{run.machine_id}_{run.run_id}_{name}")
            for ext in ("png", "svg"):
                path = outdir / f"{stem}.{ext}"
                fig.savefig(path, format=ext)
                written.append(path)
    if kind in ("batch", "all") and len(runs) > 1:  # the machines' curves side by side
        for w in batch_workloads(runs):
            fig = batch_figure(runs, w)
            stem = file_stem(f"compare_batch_{w}")
            for ext in ("png", "svg"):
                path = outdir / f"{stem}.{ext}"
                fig.savefig(path, format=ext)
                written.append(path)
    return written


def batch_figure(runs: list[Run], workload: str):
    """Throughput against batch for ``workload``: one line per device (and machine), with 95% CIs.

    Returns:
        A matplotlib Figure, or None when no timed batch-sweep cell of ``workload`` exists.
    """
    labels = runs_label(runs) if len(runs) > 1 else {}
    series = []
    for i, run in enumerate(runs):
        frame = batch_frame(run)
        for device, sub in frame[frame["workload"] == workload].groupby("device", sort=False):
            name = f"{labels[i]}: {device}" if labels else device
            series.append((name, sub))
    if not series:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for name, sub in series:
        err = np.vstack([sub["samples_per_s"] - sub["ci_low"], sub["ci_high"] - sub["samples_per_s"]])
        ax.errorbar(sub["batch"], sub["samples_per_s"], yerr=np.clip(err, 0, None), marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("global batch size (samples per step)")
    ax.set_ylabel("samples/s (median, 95% CI)")
    ax.set_title(_plain(f"{workload_title(runs[0], workload)}: throughput against batch size"))
    ax.legend(fontsize="small")
    if len(runs) == 1:
        _caption(fig, runs[0])
    else:
        fig.text(0.01, 0.01, _plain("machines: " + ", ".join(labels.values())), fontsize=8, color="0.35")
    mark_figure(fig, runs)
    return fig
