"""The one fast test plan: the quick profile with explicit steps and no minimum timed duration.

A plan without ``min_time_s: 0`` inherits the default of 2 s of timed steps per cell, which a test
that checks plumbing does not need; every test plan takes its quick profile from here.
"""
import textwrap

QUICK = "{warmup_steps: 1, steps: 3, val_batches: 1, min_time_s: 0}"


def fast_plan(workloads: str = "[tiny]", devices: str = "cpu", quick: str = QUICK, **top) -> str:
    """bench.yaml text: ``workloads`` and ``devices`` (YAML), synthetic data, the fast quick profile,
    and any other top-level keys given (``timeout_s=120`` ...)."""
    lines = [f"workloads: {workloads}", f"devices: {devices}", "data: synthetic"]
    lines += [f"{k}: {v}" for k, v in top.items()]
    lines += ["profiles:", f"  quick: {quick}"]
    return "\n".join(lines) + "\n"


def dedent(text: str) -> str:
    return textwrap.dedent(text)
