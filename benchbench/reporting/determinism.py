"""Repeatability: are repeats of a cell bit-identical, and what does deterministic mode cost?

Cells of the same workload (and parameters) on the same device *and with the same seed* are
grouped by mode (``deterministic`` true or false). Cells of different seeds start from different
weights and data orders: they are never compared here (the quality table shows what the seeds
achieved). Within a group of two or more finished repeats the weight and loss-curve hashes either
all agree (bit-identical) or not; where they differ, the spread of the final training loss and of
the validation quality says by how much. Quick cells are compared at the last step every repeat
made (the same point of training); full-profile cells, which stop at the target after as many
epochs as they need, at the last epoch every repeat finished, by the validation loss of that
epoch, and the epochs each repeat trained are shown when they differ. Where a run (or
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


def _common_epoch_loss(cell: dict, epoch: int):
    """The validation loss of ``cell`` at epoch ``epoch`` of its log."""
    row = next((e for e in cell.get("epoch_log") or [] if e.get("epoch") == epoch), None)
    v = (row or {}).get("validation/main/loss")
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def _loss_spread(group: list[dict]):
    """(spread of the loss at a point every repeat reached, epochs trained where they differ, ``"epoch"``
    or ``"step"``: where the losses were compared)."""
    logs = [c.get("epoch_log") or [] for c in group]
    if all(logs):
        common = min(len(log) for log in logs)
        epochs = sorted({len(log) for log in logs})
        return _spread([_common_epoch_loss(c, common) for c in group]), (epochs if len(epochs) > 1 else None), "epoch"
    return _spread([_final_loss(c, _common_length(group)) for c in group]), None, "step"


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
    """One row per workload × device × seed × mode with at least two finished repeats.

    Returns:
        dicts: workload, device, seed, deterministic, repeats, bit_identical (weights and loss curve
        hashes all equal), distinct_weights, loss_spread, quality_spread, slowdown (throughput
        of the other mode over this one, only on deterministic rows), slowdown_ci_low/high,
        slowdown_significant, epochs (the epochs each repeat trained, where they differ), several_seeds
        (the runs hold more than one seed of this workload × device).
    """
    cells = [c for run in runs for c in run.cells]
    multi = multi_params(cells)
    groups: dict[tuple, list[dict]] = {}
    seeds: dict[tuple, set] = {}
    for c in cells:
        if c.get("status") != "ok":
            continue
        seed = _seed(c, runs)
        key = (workload_key(c, multi), str(c.get("device")), seed, bool(c.get("deterministic")))
        groups.setdefault(key, []).append(c)
        seeds.setdefault(key[:2], set()).add(seed)
    rows = []
    for (workload, device, seed, det), group in sorted(groups.items(), key=lambda kv: (kv[0][:2], str(kv[0][2]), kv[0][3])):
        hashes = [c.get("hashes") or {} for c in group]
        weights = {h.get("weights") for h in hashes}
        curves = {h.get("loss_curve") for h in hashes}
        loss_spread, epochs, spread_at = _loss_spread(group)
        row = {
            "workload": workload, "device": device, "seed": seed, "deterministic": det, "repeats": len(group),
            "several_seeds": len(seeds[(workload, device)]) > 1,
            "bit_identical": None, "distinct_weights": None, "loss_spread": loss_spread, "epochs": epochs,
            "loss_spread_at": spread_at,
            "quality_spread": _spread([(c.get("quality") or {}).get("value") for c in group]),
            "slowdown": None, "slowdown_ci_low": None, "slowdown_ci_high": None, "slowdown_significant": None,
        }
        if len(group) >= 2 and None not in weights and None not in curves:
            row["bit_identical"] = len(weights) == 1 and len(curves) == 1
            row["distinct_weights"] = len(weights)
        other = groups.get((workload, device, seed, not det))
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


def _seed(cell: dict, runs: list[Run]):
    """The cell's seed; files from before seeds were recorded per cell ran the plan's one seed."""
    seed = cell.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    for run in runs:
        if any(c is cell for c in run.cells):
            plan_seed = (run.data.get("plan") or {}).get("seed")
            return plan_seed if isinstance(plan_seed, int) else None
    return None


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
            if r["epochs"]:
                parts.append(f"epochs trained {'/'.join(str(e) for e in r['epochs'])}")
            if r["loss_spread"] is not None:
                at = "validation loss spread at the last common epoch" if r["loss_spread_at"] == "epoch" \
                    else "final loss spread"
                parts.append(f"{at} {r['loss_spread']:.3g}")
            if r["quality_spread"] is not None:
                parts.append(f"quality spread {r['quality_spread']:.3g}")
            verdict = ", ".join(parts)
        seed = f", seed {r['seed']}" if r["several_seeds"] and r["seed"] is not None else ""
        line = f"- {r['workload']} on {r['device']} ({mode}{seed}): {verdict}"
        if r["deterministic"] and r["modes_differ"] is False:
            line += ("; the mode ran no different computation here (recorded per cell: on the CPU the kernels are "
                     "deterministic already; on a GPU no atomic path ran), so it has no cost to show")
        if r["slowdown"] is not None:
            sig = "" if r["slowdown_significant"] else ", no significant difference"
            line += (f"; step time x{r['slowdown']:.3f} that of the default mode "
                     f"[{r['slowdown_ci_low']:.3f}, {r['slowdown_ci_high']:.3f}]{sig}")
        lines.append(line)
    return "\n".join(lines) + "\n"
