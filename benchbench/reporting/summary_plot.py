"""``plot --kind summary``: the buyer's summary as one grouped bar chart, several runs side by side.

One panel per workload (each on its own linear axis, so bar lengths compare), one bar per run ×
device with its 95% CI; contended bars hatched and hollow, simulated runs watermarked, synthetic
data named in the footer.
"""
from __future__ import annotations

import textwrap

import numpy as np

from benchbench.reporting.buyer import buyer_frame
from benchbench.reporting.figure_marks import hatch_contended, mark_figure
from benchbench.reporting.marks import synthetic_cells
from benchbench.reporting.runs import Run, runs_label
from benchbench.reporting.summary import summarize_run


def summary_figure(runs: list[Run]):
    """Samples/s of every run × device, grouped by workload (see the module docstring).

    Returns:
        A Figure, or ``None`` where no cell of any run has a throughput.
    """
    from matplotlib.figure import Figure

    summaries = [summarize_run(r) for r in runs]
    frame = buyer_frame(runs, summaries)
    if frame.empty:
        return None
    if len(runs) > 1:  # runs as letters in the legend, named once in the title
        frame["column"] = [f"{_letter(r)} {d}" for r, d in zip(frame["run"], frame["device"])]
    workloads = list(dict.fromkeys(frame["workload"]))
    columns = list(dict.fromkeys(frame["column"]))
    colors = {c: f"C{i % 10}" for i, c in enumerate(columns)}
    fig = Figure(figsize=(max(6.0, 3.0 * len(workloads) + 2.5), 5.0), dpi=100, layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))
    axes = fig.subplots(1, len(workloads), squeeze=False)[0]
    for ax, w in zip(axes, workloads):
        sub = frame[frame["workload"] == w]
        lo = (sub["samples_per_s"] - sub["ci_low"]).clip(lower=0).fillna(0)
        hi = (sub["ci_high"] - sub["samples_per_s"]).clip(lower=0).fillna(0)
        x = [columns.index(c) for c in sub["column"]]
        bars = ax.bar(x, sub["samples_per_s"], yerr=[lo, hi], capsize=3, color=[colors[c] for c in sub["column"]])
        hatch_contended(bars, list(sub["contended"]))
        ax.set_xticks(range(len(columns)), ["" for _ in columns])
        ax.set_title(str(w).replace("$", r"\$"), fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("throughput (samples/s, median, 95% CI)")
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=colors[c], label=c.replace("$", r"\$")) for c in columns], loc="outside right upper",
               fontsize=8, title="run · device" if len(runs) > 1 else "device")
    labels = runs_label(runs)
    names = "; ".join(f"{_letter(i)} = {label}" for i, label in labels.items()) if len(runs) > 1 else labels[0]
    width = max(40, int(fig.get_figwidth() * 9))
    fig.suptitle("\n".join(textwrap.wrap("Training throughput, every workload — " + names, width)).replace("$", r"\$"),
                 fontsize=11)
    synthetic = [c for s in summaries for c in synthetic_cells(s)]
    mark_figure(fig, runs, synthetic, bool(frame["contended"].any()))
    caption = "; ".join(f"{_letter(i) + ': ' if len(runs) > 1 else ''}run {r.run_id}, {r.date}" for i, r in enumerate(runs))
    fig.text(0.01, 0.005, caption.replace("$", r"\$"), fontsize=7, color="0.35")
    return fig


def _letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"R{i + 1}"


def summary_ok(runs: list[Run]) -> bool:
    """Is there anything to draw?"""
    return any(np.isfinite(summarize_run(r)["samples_per_s"].astype(float)).any() for r in runs)
