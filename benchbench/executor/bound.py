"""Whether a GPU cell's figures time its GPU or its host: the bound verdict.

Each timed step records how long the host took to issue it (from the step's first event to its
last, everything the Python side does included) and how long the final synchronize then waited
for the GPU to finish. A GPU that was waiting for the host has finished almost all of its work by
the time the host reaches the end of the step: the wait is near zero, the step time is the host's
(Python, framework, kernel launches), and a faster GPU would show the same figure. The cell then
reads ``bound: host``; otherwise ``bound: device``.

A synchronisation inside the step (mixed precision's overflow check reads one value back) makes
the host wait there too; that wait counts as issue time, so such a step leans towards ``host``.
"""
from __future__ import annotations

import statistics

# The final synchronize waited less than this share of the step: the GPU was waiting for the host.
HOST_WAIT_SHARE = 0.05


def bound_record(issue_s: list[float], wait_s: list[float], threshold: float = HOST_WAIT_SHARE) -> dict | None:
    """The verdict from per-step host issue times and final-synchronize waits (seconds), or None
    when there is no timed step.

    Returns:
        ``{"verdict": "host"|"device", "host_issue_s", "sync_wait_s" (medians over the timed steps),
        "host_share", "wait_share" (of issue + wait), "threshold", "steps"}``.
    """
    if not issue_s or len(issue_s) != len(wait_s):
        return None
    issue, wait = statistics.median(issue_s), statistics.median(wait_s)
    total = issue + wait
    wait_share = wait / total if total > 0 else 0.0
    return {"verdict": "host" if wait_share < threshold else "device", "host_issue_s": issue, "sync_wait_s": wait,
            "host_share": 1.0 - wait_share, "wait_share": wait_share, "threshold": threshold,
            "steps": len(issue_s)}
