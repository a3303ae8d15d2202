"""Time to accuracy over seeds, as MLPerf Training scores it.

A seed is one training from its own initialisation and data order. For every workload × device
the seeds give: how many reached the target (the success rate), after how many epochs, and how
long it took. MLPerf Training's rule for a set of runs (training rules, "Benchmark results"):
*drop the fastest and the slowest run and take the mean of the remaining times; a single
non-converging run may be treated as the slowest run and dropped; the result is invalid if more
than one run did not converge.* :func:`olympic_mean` applies it to the seeds' times; with fewer
than three seeds nothing can be dropped and it gives no value (the median is shown instead).

Repeats of one seed (same seed run again) are combined first: a seed reached the target when every
finished repeat of it did, and its time and epochs are the median over those repeats.
"""
from __future__ import annotations

import math

import numpy as np


def _check_times(times, func: str) -> list[float]:
    out = []
    for t in times:
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)) or not math.isfinite(t) or t < 0:
            raise ValueError(f"{func}: times must be finite numbers >= 0, got {t!r}")
        out.append(float(t))
    return out


def olympic_mean(times, failures: int = 0) -> dict:
    """MLPerf Training's score of a set of runs: the mean after dropping the fastest and the slowest.

    Args:
        times: time to target of each run that reached it (seconds).
        failures: runs that did not reach the target; one may be dropped as the slowest run.

    Returns:
        ``{"value", "runs", "kept", "dropped", "why"}``: ``value`` is None when the rule gives no
        result (fewer than 3 runs, or more than one run that missed the target), and ``why`` says so.

    Raises:
        ValueError: a time that is not a finite number >= 0, or a negative ``failures``.

    Example:
        >>> olympic_mean([30.0, 10.0, 20.0, 100.0])["value"]   # drops 10 and 100
        25.0
        >>> olympic_mean([10.0, 20.0, 40.0], failures=1)["value"]  # drops 10 and the failed run
        30.0
    """
    t = sorted(_check_times(times, "olympic_mean"))
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
        raise ValueError(f"olympic_mean: failures must be an integer >= 0, got {failures!r}")
    runs = len(t) + failures
    out = {"value": None, "runs": runs, "kept": [], "dropped": [], "why": ""}
    if failures > 1:
        out["why"] = f"{failures} of {runs} seeds missed the target; MLPerf's rule allows one"
        return out
    if runs < 3:
        out["why"] = f"{runs} seed(s): the rule drops the fastest and the slowest, so it needs 3 or more"
        return out
    kept = t[1:] if failures else t[1:-1]
    out["dropped"] = [t[0], None if failures else t[-1]]
    out["kept"] = kept
    out["value"] = float(np.mean(kept))
    return out


def _binomial_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n


def median_interval(values, confidence: float = 0.95) -> dict:
    """The median of a few values with a distribution-free interval from order statistics.

    The interval ``[x_(k+1), x_(n-k)]`` covers the true median with probability
    ``1 - 2 P(B <= k)``, B ~ Binomial(n, 1/2); the narrowest one reaching ``confidence`` is taken.
    With too few values to reach it (fewer than 6 for 95%) the interval is the range and
    ``coverage`` says what it does cover (75% for 3 values).

    Returns:
        ``{"median", "low", "high", "coverage", "n"}`` (None where there are no values).

    Example:
        >>> r = median_interval([4.0, 13.0, 4.0]); r["median"], r["low"], r["high"], r["coverage"]
        (4.0, 4.0, 13.0, 0.75)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"median_interval: confidence must be in (0, 1), got {confidence!r}")
    x = sorted(_check_times(values, "median_interval"))
    n = len(x)
    if n == 0:
        return {"median": None, "low": None, "high": None, "coverage": None, "n": 0}
    best = 0
    for k in range((n - 1) // 2 + 1):
        if 1 - 2 * _binomial_cdf(k, n) >= confidence:
            best = k
        else:
            break
    coverage = 1 - 2 * _binomial_cdf(best, n) if n > 1 else 0.0
    return {"median": float(np.median(x)), "low": x[best], "high": x[n - 1 - best], "coverage": coverage, "n": n}


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _meets(value, target, higher) -> bool:
    return value is not None and target is not None and (value >= target if higher else value <= target)


def crossing(cell: dict) -> dict | None:
    """Where one cell reached its target: ``{"reached", "epochs", "seconds", "value", "final", "best",
    "epochs_run", "partial", "metric", "target", "higher_is_better"}``; None for a cell without a
    judged quality (quick profile, or no finished epoch).

    The epoch is the one recorded when training reached the target (``quality.epochs_to_target``),
    else the first epoch of the log whose validation quality met it; ``seconds`` is that epoch's
    elapsed time (``quality.time_to_target_s``), so the table and the plot give the same crossing.
    """
    q = cell.get("quality")
    if not isinstance(q, dict) or q.get("judged") is False:
        return None
    log = [e for e in cell.get("epoch_log") or [] if isinstance(e, dict) and isinstance(e.get("epoch"), int)]
    if not log and q.get("epochs") is None:
        return None
    metric, higher, target = q.get("metric") or "accuracy", q.get("higher_is_better", True) is not False, _num(q.get("target"))
    key = "validation/main/accuracy" if metric == "accuracy" else f"validation/main/{metric}"

    def value_of(e):
        v = _num(e.get(key))
        return v if v is not None or metric == "accuracy" else _num(e.get("validation/main/loss"))

    epochs = q.get("epochs_to_target") if isinstance(q.get("epochs_to_target"), int) else None
    seconds = _num(q.get("time_to_target_s"))
    if epochs is None:
        first = next((e for e in log if _meets(value_of(e), target, higher)), None)
        if first is not None:
            epochs = first["epoch"]
            seconds = seconds if seconds is not None else _num(first.get("elapsed_time"))
    reached = epochs is not None or seconds is not None
    at = next((e for e in log if e["epoch"] == epochs), None)
    return {"reached": reached, "epochs": epochs, "seconds": seconds if reached else None,
            "value": value_of(at) if at is not None else (_num(q.get("value")) if reached else None),
            "final": _num(q.get("value")), "best": _num(q.get("best_value")) if _num(q.get("best_value")) is not None
            else _num(q.get("value")), "epochs_run": q.get("epochs") if isinstance(q.get("epochs"), int) else len(log),
            "partial": bool(q.get("partial")) or cell.get("status") != "ok", "metric": metric, "target": target,
            "higher_is_better": higher}


def seed_results(cells: list[dict]) -> dict:
    """Per seed of ``cells`` (one workload × device): ``{seed: {"reached", "seconds", "epochs",
    "final", "best", "cells", "partial"}}``, repeats of a seed combined (see the module text).
    A cell that ended without a finished epoch counts as a run of its seed that missed the target.
    """
    by_seed: dict = {}
    for c in cells:
        by_seed.setdefault(c.get("seed"), []).append(c)
    out = {}
    for seed, group in by_seed.items():
        marks = [crossing(c) for c in group]
        found = [m for m in marks if m is not None]
        reached = bool(found) and len(found) == len(group) and all(m["reached"] for m in found)
        secs = [m["seconds"] for m in found if m["reached"] and m["seconds"] is not None]
        eps = [m["epochs"] for m in found if m["reached"] and m["epochs"] is not None]
        out[seed] = {
            "reached": reached,
            "seconds": float(np.median(secs)) if reached and secs else None,
            "epochs": float(np.median(eps)) if reached and eps else None,
            "final": [m["final"] for m in found if m["final"] is not None],
            "best": [m["best"] for m in found if m["best"] is not None],
            "epochs_run": [m["epochs_run"] for m in found],
            "cells": len(group), "partial": sum(m["partial"] for m in found),
        }
    return out
