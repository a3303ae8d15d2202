"""The marks a figure carries, spelled one way everywhere, and the banner that names what a report holds.

A throughput is followed by ``~noisy`` when its steps scatter (interquartile range over 10% of the
median) and by ``~contended`` when other processes or a moved calibration probe disturbed its
timed steps. ``legend()`` explains each mark in one line; ``banner()`` lists, for the top of a
report, what a reader must know before reading any figure: simulated GPUs, contended cells and
synthetic data.
"""
from __future__ import annotations

import pandas as pd

from benchbench.reporting.runs import Run

from benchbench.reporting.formats import CONTENDED, MARKS, NOISY, legend, mark_text  # noqa: F401


def is_simulated(run: Run) -> bool:
    """Did ``run`` use the simulated GPUs (``tests/simgpu``)?"""
    return bool(run.machine.get("simulated_gpus"))


def synthetic_cells(summary: pd.DataFrame) -> list[str]:
    """``workload on device`` for every row that trained on synthetic (not real, not generated) data."""
    return [f"{r.workload} on {r.device}" for r in summary.itertuples()
            if r.data_source not in ("real", "generated")]


def banner(runs: list[Run], summaries: list[pd.DataFrame]) -> list[tuple[str, str]]:
    """What the top of a report must name, as ``(kind, line)``; ``kind`` is simulated, contended or synthetic.

    Args:
        runs: the runs of the report.
        summaries: their ``summarize_run()`` frames, in the same order.
    """
    out = []
    sim = [r for r in runs if is_simulated(r)]
    if sim:
        which = ", ".join(f"{r.machine_id} (run {r.run_id})" for r in sim)
        out.append(("simulated", f"SIMULATED GPUs: {which}. Their GPU cells prove that the code runs; their "
                                 "timings, energy and memory are not figures of any GPU"))
    contended = [f"{r.workload} on {r.device}" for s in summaries for r in s.itertuples() if r.contended]
    if contended:
        out.append(("contended", f"CONTENDED: {len(contended)} cell(s) ran on a busy machine and are slower than "
                                 f"the hardware allows ({', '.join(contended[:6])}{', …' if len(contended) > 6 else ''})"))
    synthetic = [c for s in summaries for c in synthetic_cells(s)]
    if synthetic:
        out.append(("synthetic", f"SYNTHETIC DATA: {len(synthetic)} cell(s) trained on a synthetic stand-in, so their "
                                 "quality figures are not the dataset's (throughput is unaffected)"))
    return out
