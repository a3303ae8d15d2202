"""The cells of a run: one per workload × device spec × seed × repeat.

Seeds and repeats are different axes. A *repeat* runs the same computation again (same seed):
on the CPU it must give the same weights, and its step times measure run-to-run variation. A
*seed* starts from another initialisation and data order: it trains to the target in its own
number of epochs, as MLPerf's runs do, and its cells are never called repeats of another seed's.

Example:
    >>> from benchbench.executor.plan import load_plan
    >>> plan = load_plan(None, {"profile": "full", "seeds": 3, "devices": ["cpu"]})
    >>> plan.seeds
    [0, 1, 2]
"""
from __future__ import annotations

from . import launcher


def plan_cells(plan, workloads: list, specs: list) -> tuple[list[dict], list[tuple[str, str]]]:
    """The cell descriptions of a plan, in the order they run.

    Args:
        plan: the ``plan.Plan`` (its ``seeds`` and ``repeat``).
        workloads: ``(Workload, params, label)`` per workload of the plan, in the plan's order.
        specs: the parsed ``devices.DeviceSpec`` list.

    Returns:
        ``(descs, sources)``: one description per workload × device × seed × repeat (seeds outer,
        repeats inner), and per description ``(id, where it comes from)`` for the duplicate check.
        CPU cells run float32 whatever the plan's dtype.
    """
    descs, sources = [], []
    for i, (wl, params, label) in enumerate(workloads):
        name = plan.workloads[i] if i < len(plan.workloads) else label
        for spec in specs:
            for seed in plan.seeds:
                for r in range(plan.repeat):
                    desc = launcher.describe_cell(plan, wl, params, label, spec, r, seed=seed)
                    if spec.kind == "cpu":
                        desc["dtype"] = "float32"
                    descs.append(desc)
                    sources.append((desc["id"], f"workload {name!r} on device {spec.spec!r}"))
    return descs, sources
