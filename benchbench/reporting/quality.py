"""The quality table of a run: per workload × device, what training over several seeds achieved.

For every workload × device that trained full-profile epochs: the seeds run, the success rate
(seeds that reached the target), the epochs to target (median and range), the time to target as
MLPerf Training scores it (olympic mean over seeds, see ``reporting/tta.py``) and as a median with
its order-statistics interval, and the final and best validation quality with their range. A cell
that ended early after finished epochs (killed, timed out, crashed, interrupted) counts with the
quality of its kept epochs, marked partial. Quick cells (a few steps) have no quality to judge and
are left out.
"""
from __future__ import annotations

import pandas as pd

from benchbench.reporting.render import fmt_seconds, markdown_table, terminal_table
from benchbench.reporting.runs import Run
from benchbench.reporting.summary import group_cells
from benchbench.reporting.tta import crossing, median_interval, olympic_mean, seed_results

COLUMNS = ["device", "seeds", "reached target", "epochs to target", "time to target (olympic mean)",
           "time to target (median [interval])", "final quality", "best quality", "data", "kept epochs"]


def _range(values, fmt) -> str:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return "—"
    mid = vals[len(vals) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
    if vals[0] == vals[-1]:
        return fmt(mid)
    return f"{fmt(mid)} [{fmt(vals[0])}–{fmt(vals[-1])}]"


def quality_rows(run: Run) -> list[dict]:
    """One dict per workload × device with judged (full-profile) cells, raw numbers.

    Returns:
        dicts: workload, device, seeds, repeats (most cells of one seed), reached (seeds),
        success_rate, epochs (per reached seed), olympic (see ``tta.olympic_mean``), median
        (see ``tta.median_interval``), final and best (per cell), metric, target,
        higher_is_better, data_sources, partial (cells), partial_epochs.
    """
    rows = []
    for (workload, device), cells in group_cells(run).items():
        marks = [m for m in (crossing(c) for c in cells) if m is not None]
        if not marks:
            continue
        per_seed = seed_results(cells)
        reached = [s for s in per_seed.values() if s["reached"]]
        secs = [s["seconds"] for s in reached if s["seconds"] is not None]
        first = marks[0]
        partial_epochs = [m["epochs_run"] for m in marks if m["partial"]]
        rows.append({
            "workload": workload, "device": device, "seeds": len(per_seed),
            "repeats": max(s["cells"] for s in per_seed.values()),
            "reached": len(reached), "success_rate": len(reached) / len(per_seed),
            "epochs": [s["epochs"] for s in reached if s["epochs"] is not None],
            "olympic": olympic_mean(secs, failures=len(per_seed) - len(reached)) if len(secs) == len(reached)
            else {"value": None, "why": "a reached seed has no time recorded"},
            "median": median_interval(secs),
            "final": [v for s in per_seed.values() for v in s["final"]],
            "best": [v for s in per_seed.values() for v in s["best"]],
            "metric": first["metric"], "target": first["target"], "higher_is_better": first["higher_is_better"],
            "data_sources": sorted({str((c.get("data") or {}).get("source") or "unknown") for c in cells}),
            "partial": len(partial_epochs), "partial_epochs": partial_epochs,
        })
    return rows


def _display(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        seeds = f"{r['seeds']}" + (f" (×{r['repeats']} repeats)" if r["repeats"] > 1 else "")
        med = r["median"]
        median = "—"
        if med["median"] is not None:
            median = fmt_seconds(med["median"])
            if med["n"] > 1:
                median += f" [{fmt_seconds(med['low'])}, {fmt_seconds(med['high'])}] ({med['coverage']:.0%})"
        sign = "≥" if r["higher_is_better"] else "≤"
        target = f" ({sign}{r['target']:g})" if r["target"] is not None else ""
        partial = "—"
        if r["partial"]:
            partial = f"{r['partial']} cell(s) ended early after {', '.join(str(e) for e in r['partial_epochs'])} " \
                      "epoch(s): partial"
        out.append({
            "device": r["device"], "seeds": seeds,
            "reached target": f"{r['reached']}/{r['seeds']} ({r['success_rate']:.0%})",
            "epochs to target": _range(r["epochs"], lambda v: f"{v:g}"),
            "time to target (olympic mean)": fmt_seconds(r["olympic"]["value"]) if r["olympic"]["value"] is not None
            else "— " + ("(" + r["olympic"]["why"] + ")" if r["olympic"].get("why") else ""),
            "time to target (median [interval])": median,
            "final quality": f"{r['metric']} " + _range(r["final"], lambda v: f"{v:.4g}") + target,
            "best quality": _range(r["best"], lambda v: f"{v:.4g}"),
            "data": "/".join(r["data_sources"]),
            "kept epochs": partial,
        })
    return pd.DataFrame(out, columns=COLUMNS, index=[r["workload"] for r in rows])


NOTES = [
    "seeds: trainings from different initialisations and data orders; repeats (same seed) are combined per seed "
    "first: a seed reached the target when every finished repeat of it did",
    "time to target (olympic mean): MLPerf Training's rule: drop the fastest and the slowest seed and average the "
    "rest; one seed that missed the target may be the slowest dropped; more than one makes it invalid",
    "time to target (median [interval]): over the seeds that reached the target; the interval is the "
    "order-statistics interval of the median, with the coverage it has for that many seeds (the range of 3 seeds "
    "covers the median with 75%)",
    "epochs to target, final and best quality: median [range]; a crossing is the first epoch whose validation "
    "quality met the target (the epoch the TTA plot marks)",
]


def quality_text(run: Run, markdown: bool = False) -> str:
    """The quality section of ``benchbench report`` ('' when no cell trained judged epochs)."""
    rows = quality_rows(run)
    if not rows:
        return ""
    out = ["## Quality and time to target" if markdown else "Quality and time to target (per workload × device, over seeds):"]
    for workload in dict.fromkeys(r["workload"] for r in rows):
        frame = _display([r for r in rows if r["workload"] == workload])
        out += ["", f"### {workload}" if markdown else workload, "",
                markdown_table(frame) if markdown else terminal_table(frame)]
    out += [""] + [f"- {n}" for n in NOTES]
    return "\n".join(out) + "\n"
