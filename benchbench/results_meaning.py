"""Checks of a results file's meaning, beyond its shape: what a schema cannot say.

A file can follow the schema and still say nothing true: a negative step time, an ``ok`` cell
that timed no step, a median outside its own interval, a cell id that names another workload,
device or repeat than its fields, a batch of zero. Such a file was not written by benchbench
(or was edited); reading it would print figures that mean nothing, so it is refused with one
line naming the file and the field.

Example:
    >>> check_cell({"id": "w/cpu/r0", "workload": "w", "device": "cpu", "repeat": 0, "status": "failed",
    ...             "timing": {"step_s": []}}, "cells[0]", lambda p, m: None)
"""
from __future__ import annotations

import math
import re

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TOLERANCE = 1e-9  # relative: a median equal to its interval's end up to rounding is inside


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _inside(value, low, high) -> bool:
    slack = _TOLERANCE * max(abs(low), abs(high), abs(value))
    return low - slack <= value <= high + slack


def check_names(run: dict, fail) -> None:
    """The run id and machine id must be plain file names (they name the results file and its folder)."""
    for path, value in (("run_id", run.get("run_id")), ("machine.id", (run.get("machine") or {}).get("id"))):
        if not isinstance(value, str) or not _SAFE_NAME.match(value) or value in (".", ".."):
            fail(path, f"{value!r} cannot name a file (letters, digits, '.', '_' and '-' only); "
                       "not a file benchbench wrote")


def _check_summary(summary, path: str, fail) -> None:
    if not isinstance(summary, dict):
        return
    for key in ("median", "q1", "q3", "ci_low", "ci_high"):
        if not _positive(summary.get(key)):
            fail(f"{path}.{key}", f"expected a positive number, got {summary.get(key)!r}")
    if not summary["q1"] <= summary["q3"] or not summary["ci_low"] <= summary["ci_high"]:
        fail(path, "an interval whose low end is above its high end")
    for low, high in (("q1", "q3"), ("ci_low", "ci_high")):
        if not _inside(summary["median"], summary[low], summary[high]):
            fail(f"{path}.median", f"{summary['median']!r} lies outside [{low}, {high}] = "
                                   f"[{summary[low]!r}, {summary[high]!r}]")
    if isinstance(summary.get("n"), int) and summary["n"] < 1:
        fail(f"{path}.n", f"expected a count >= 1, got {summary['n']!r}")


def check_cell(cell: dict, path: str, fail) -> None:
    """Refuse a cell whose figures cannot be true or whose id contradicts its fields.

    Args:
        cell: a cell that follows the schema.
        path: its place in the file, e.g. ``cells[3]``.
        fail: ``fail(field path, message)``, raises.
    """
    workload, device, repeat = cell.get("workload"), cell.get("device"), cell.get("repeat")
    cid = str(cell.get("id"))
    if (not cid.startswith(str(workload)) or cid[len(str(workload)):][:1] not in ("/", "@", ":")
            or f"/{device}/" not in cid or not cid.endswith(f"/r{repeat}")):
        fail(f"{path}.id", f"{cid!r} does not match workload {workload!r}, device {device!r} and "
                           f"repeat {repeat!r} (expected '{workload}/{device}/r{repeat}')")
    for key in ("batch_size", "per_device_batch"):
        value = cell.get(key)
        if value is not None and value < 1:
            fail(f"{path}.{key}", f"expected a batch of 1 or more samples, got {value!r}")
    timing = cell.get("timing") or {}
    for i, t in enumerate(timing.get("step_s") or []):
        if not _positive(t):
            fail(f"{path}.timing.step_s[{i}]", f"expected a positive step time in seconds, got {t!r}")
    for name, values in (timing.get("phases_s") or {}).items():
        for i, t in enumerate(values or []):
            if not (math.isfinite(t) and t >= 0):
                fail(f"{path}.timing.phases_s.{name}[{i}]", f"expected a time >= 0 in seconds, got {t!r}")
    if cell.get("status") == "ok" and not timing.get("step_s"):
        fail(f"{path}.timing.step_s", "an 'ok' cell without a single timed step; not a file benchbench wrote")
    duration = cell.get("duration_s")
    if duration is not None and not (math.isfinite(duration) and duration >= 0):
        fail(f"{path}.duration_s", f"expected a duration >= 0 in seconds, got {duration!r}")
    stats = cell.get("stats") or {}
    for key in ("step_s", "samples_per_s"):
        _check_summary(stats.get(key), f"{path}.stats.{key}", fail)
