"""``--gpu-graphs``: whether GPU cells capture their step as a CUDA graph, and the cells a list makes.

``auto`` (the default) captures where the workload's shapes are fixed; ``on`` asks for graphs too and
is refused when the plan has no GPU cell; ``off`` launches every operation from Python (eager). A
list (``on,off``) makes one GPU cell per mode, as ``--batch-size`` lists do, with the mode in the
id (``mlp_mnist@graphs-on/gpu:0/r0``) so that reports and ``--resume`` keep them apart; CPU cells
are not repeated (a CUDA graph is a GPU feature). Whatever the mode, a cell records in ``graph``
whether its graph was used and why (see ``executor/graph_step.py``).

Example:
    >>> parse_modes("on,off")
    ['on', 'off']
"""
from __future__ import annotations

MODES = ("on", "off", "auto")
DEFAULT = ["auto"]


def parse_modes(value) -> list[str]:
    """The modes of ``--gpu-graphs`` (or the plan's ``gpu_graphs``).

    Args:
        value: ``"auto"``, ``"on,off"``, a bool (YAML's ``on``/``off``) or a list of them.

    Returns:
        The modes in the order given, each once.

    Raises:
        ValueError: an empty list, a value that is not on/off/auto, a mode given twice.
    """
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError("gpu graphs: give at least one of on, off, auto")
    out = []
    for item in items:
        mode = {True: "on", False: "off"}.get(item, item) if isinstance(item, bool) else item
        mode = mode.strip().lower() if isinstance(mode, str) else mode
        if mode not in MODES:
            raise ValueError(f"gpu graphs must be on, off or auto (or a list such as on,off), got {item!r}")
        if mode in out:
            raise ValueError(f"gpu graphs mode {mode} is given twice")
        out.append(mode)
    return out


def expand(modes: list[str], descs: list, specs) -> list:
    """The cell descriptions over the graph modes.

    Args:
        modes: from :func:`parse_modes`.
        descs: the planned descriptions (``CellDesc``).
        specs: the plan's device specs.

    Returns:
        One description per mode for each GPU cell (the mode in the id when there are several), the
        CPU cells once.

    Raises:
        PlanError: ``on`` and no GPU cell in the plan.
    """
    from benchbench.errors import PlanError

    if "on" in modes and not any(s.kind == "gpu" for s in specs):
        raise PlanError(f"--gpu-graphs on needs a GPU; CUDA graphs are a GPU feature "
                        f"(devices: {', '.join(s.spec for s in specs)})")
    out = []
    for desc in descs:
        if desc.device_kind != "gpu":
            out.append(desc)
            continue
        if len(modes) == 1:
            out.append(desc.replace(gpu_graphs=modes[0]))
            continue
        workload, _, rest = desc.id.partition("/")
        out.extend(desc.replace(id=f"{workload}@graphs-{m}/{rest}", gpu_graphs=m) for m in modes)
    return out
