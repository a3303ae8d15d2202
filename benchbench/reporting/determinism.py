"""Repeatability: are repeats of a cell bit-identical, and what does deterministic mode cost?

Cells of the same workload (and parameters) on the same device are grouped by mode
(``deterministic`` true or false). Within a group of two or more finished repeats the weight
and loss-curve hashes either all agree (bit-identical) or not; where they differ, the spread
of the final training loss and of the validation quality says by how much. Where a run (or
the runs given together) holds both modes *and the modes differ* (deterministic mode changed
something: on GPUs, atomic-free gradients, TF32 off, cuBLAS's deterministic workspace), the
slowdown is the ratio of the median throughputs with its bootstrap CI. On the CPU the kernels
are deterministic already, so the two modes are the same computation: the report says so and
shows no cost (a ratio there would measure noise).
"""
from __future__ import annotations

import numpy as np

from benchbench import stats
from benchbench.reporting.runs import Run
from benchbench.reporting.summary import multi_params, throughput_groups, workload_key


def _final_loss(cell: dict, length: int | None = None):
    """The last finite loss within the first ``length`` steps (all of them when None)."""
    curve = (cell.get("loss_curve") or [])[:length]
    vals = [v for v in curve if isinstance(v, (int, float)) and np.isfinite(v)]
    return float(vals[-1]) if vals else None


def _common_length(group: list[dict]) -> int:
    """Steps every repeat made: a minimum timed duration lets repeats make different numbers of steps,
    so losses are compared at the last step they share."""
    return min((len(c.get("loss_curve") or []) for c in group), default=0)


def _spread(values):
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return None
    return float(max(vals) - min(vals))


def _modes_differ(cells: list[dict]) -> bool:
    """Did deterministic mode change the computation of these cells? (Records without the field:
    only GPU cells can differ.)"""
    for c in cells:
        mode = c.get("deterministic_mode")
        if isinstance(mode, dict):
            if mode.get("differs"):
                return True
        elif c.get("device_kind") == "gpu":
            return True
    return False


def determinism_rows(runs: list[Run]) -> list[dict]:
    """One row per workload × device × mode with at least two finished repeats.

    Returns:
        dicts: workload, device, deterministic, repeats, bit_identical (weights and loss curve
        hashes all equal), distinct_weights, loss_spread, quality_spread, slowdown (throughput
        of the other mode over this one, only on deterministic rows), slowdown_ci_low/high,
        slowdown_significant.
    """
    cells = [c for run in runs for c in run.cells]
    multi = multi_params(cells)
    groups: dict[tuple[str, str, bool], list[dict]] = {}
    for c in cells:
        if c.get("status") != "ok":
            continue
        key = (workload_key(c, multi), str(c.get("device")), bool(c.get("deterministic")))
        groups.setdefault(key, []).append(c)
    rows = []
    for (workload, device, det), group in sorted(groups.items()):
        hashes = [c.get("hashes") or {} for c in group]
        weights = {h.get("weights") for h in hashes}
        curves = {h.get("loss_curve") for h in hashes}
        row = {
            "workload": workload, "device": device, "deterministic": det, "repeats": len(group),
            "bit_identical": None, "distinct_weights": None,
            "loss_spread": _spread([_final_loss(c, _common_length(group)) for c in group]),
            "quality_spread": _spread([(c.get("quality") or {}).get("value") for c in group]),
            "slowdown": None, "slowdown_ci_low": None, "slowdown_ci_high": None, "slowdown_significant": None,
        }
        if len(group) >= 2 and None not in weights and None not in curves:
            row["bit_identical"] = len(weights) == 1 and len(curves) == 1
            row["distinct_weights"] = len(weights)
        other = groups.get((workload, device, not det))
        row["modes_differ"] = _modes_differ(group) if det else None
        if det and other and row["modes_differ"]:
            fast, slow = throughput_groups(other), throughput_groups(group)
            if fast and slow:
                r = stats.repeats_ratio(fast, slow)
                row.update(slowdown=r["ratio"], slowdown_ci_low=r["ci_low"], slowdown_ci_high=r["ci_high"],
                           slowdown_significant=r["significant"])
        if len(group) >= 2 or row["slowdown"] is not None:
            rows.append(row)
    return rows


def determinism_text(runs: list[Run]) -> str:
    """The repeatability section of a report ('' when no cell was repeated)."""
    rows = determinism_rows(runs)
    if not rows:
        return ""
    lines = ["Repeatability (same seed):"]
    for r in rows:
        mode = "deterministic" if r["deterministic"] else "default"
        if r["bit_identical"] is None:
            verdict = "no hashes recorded"
        elif r["bit_identical"]:
            verdict = f"bit-identical over {r['repeats']} repeats"
        else:
            parts = [f"{r['distinct_weights']} distinct final weights over {r['repeats']} repeats"]
            if r["loss_spread"] is not None:
                parts.append(f"final loss spread {r['loss_spread']:.3g}")
            if r["quality_spread"] is not None:
                parts.append(f"quality spread {r['quality_spread']:.3g}")
            verdict = ", ".join(parts)
        line = f"- {r['workload']} on {r['device']} ({mode}): {verdict}"
        if r["deterministic"] and r["modes_differ"] is False:
            line += ("; the mode ran no different computation here (recorded per cell: on the CPU the kernels are "
                     "deterministic already; on a GPU no atomic path ran), so it has no cost to show")
        if r["slowdown"] is not None:
            sig = "" if r["slowdown_significant"] else ", no significant difference"
            line += (f"; step time x{r['slowdown']:.3f} that of the default mode "
                     f"[{r['slowdown_ci_low']:.3f}, {r['slowdown_ci_high']:.3f}]{sig}")
        lines.append(line)
    return "\n".join(lines) + "\n"
