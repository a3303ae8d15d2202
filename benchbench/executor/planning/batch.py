"""Batch sweeps: the ``--batch-size`` and ``--memory-limit`` values, the cells they make, and the
learning-rate rule used when the full profile trains at a batch other than the workload's own.

``--batch-size 32,64,128`` makes one cell per batch size (the global batch; the per-device batch
under ``--scaling weak``); ``max`` makes a cell that first searches the largest batch that trains
on each device (see :mod:`benchbench.executor.cell.batch_search`) and then times it.

Example:
    >>> parse_batch_sizes("32,64,max")
    [32, 64, 'max']
    >>> parse_bytes("2GiB")
    2147483648
"""
from __future__ import annotations

import copy
import re

MAX = "max"
#: the largest batch the search tries (2**14) unless the training set is smaller
DEFAULT_SEARCH_CAP = 1 << 14
#: the default CPU budget: this fraction of the memory available when the run starts
DEFAULT_CPU_BUDGET_FRACTION = 0.5
#: epochs of linear learning-rate warm-up when the full profile runs at another batch
WARMUP_EPOCHS = 5

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_BYTES = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*$")


def parse_batch_sizes(value) -> list:
    """The batch sizes of ``--batch-size`` (or the plan's ``batch_size``).

    Args:
        value: ``"32,64,128"``, ``"max"``, an int, or a list of ints and ``"max"``.

    Returns:
        A list of positive ints and at most one ``"max"``, in the order given.

    Raises:
        ValueError: an empty list, a value that is not a positive integer nor ``max``, a duplicate.
    """
    if isinstance(value, str):
        items = [p.strip() for p in value.split(",")]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"batch size must be positive integers or 'max' (e.g. 32,64,128), got {value!r}")
    if not items:
        raise ValueError("batch size: give at least one size, e.g. 32,64,128 or max")
    out = []
    for item in items:
        if isinstance(item, str) and item.strip().lower() == MAX:
            size = MAX
        else:
            size = None
            if isinstance(item, int) and not isinstance(item, bool):
                size = item
            elif isinstance(item, str) and item.strip().isdigit():
                size = int(item)
            if size is None or size < 1:
                raise ValueError(f"batch size must be a positive integer or 'max', got {item!r}")
        if size in out:
            raise ValueError(f"batch size {size} is given twice")
        out.append(size)
    return out


def parse_bytes(value) -> int:
    """A memory size: ``2GiB``, ``512MiB``, ``1.5G``, ``1000000`` (bytes); binary and decimal units.

    Raises:
        ValueError: not a size, or not positive.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    else:
        m = _BYTES.match(str(value)) if isinstance(value, str) else None
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ValueError(f"memory limit must be a size such as 2GiB, 512MiB or 1000000 (bytes), got {value!r}")
        n = int(float(m.group(1)) * _UNITS[unit])
    if n < 1:
        raise ValueError(f"memory limit must be positive, got {value!r}")
    return n


def default_cpu_budget() -> int:
    """The CPU budget when none is given: a fraction of the memory available now (never swap)."""
    import psutil

    return int(psutil.virtual_memory().available * DEFAULT_CPU_BUDGET_FRACTION)


def sample_bytes(workload) -> int | None:
    """Bytes of one training sample (inputs and label) of ``workload``'s data, or None if unknown.

    Loads one generated sample of the workload's dataset (no download, no file read).
    """
    try:
        ds = workload.load_data("synthetic", n_train=1, n_val=1)
    except Exception:
        return None
    arrays = ds.train if isinstance(ds.train, (list, tuple)) else (ds.train,)
    return int(sum(a[:1].nbytes for a in arrays))


def batch_descs(desc: dict, sizes: list, memory_limit: int | None, search_cap: int = DEFAULT_SEARCH_CAP) -> list:
    """The cell descriptions of one workload x device x repeat over ``sizes``.

    Each gets ``batch``: ``{"requested", "default", "per_device", "memory_limit_bytes", "search_cap"}``
    and an id with the batch in it (``mlp_mnist@b32/cpu/r0``, ``mlp_mnist@bmax/gpu:0/r0``) so that
    ``--resume`` and the reports keep the batch sizes apart.

    Args:
        desc: a description from ``executor.run.describe_cell``.
        sizes: from :func:`parse_batch_sizes`.
        memory_limit: the CPU budget in bytes (CPU cells searching ``max``), or None.
        search_cap: the largest batch the search tries.
    """
    out = []
    workload, sep, rest = desc["id"].partition("/")
    assert sep, desc["id"]
    weak = desc.get("n_ranks", 1) > 1 and desc.get("scaling") == "weak"
    for size in sizes:
        block = {
            "requested": size, "default": desc.get("batch_size"), "per_device": bool(weak),
            "memory_limit_bytes": memory_limit if desc.get("device_kind") == "cpu" and size == MAX else None,
            "search_cap": int(search_cap), "search": None,
        }
        d = copy.deepcopy(desc)
        if isinstance(d, dict):
            d.update(id=f"{workload}@b{size}/{rest}", batch=block)
        else:
            d = d.replace(id=f"{workload}@b{size}/{rest}", batch=block)
        out.append(d)
    return out


def split_problem(batch: int, n: int, scaling: str) -> str | None:
    """Why the global ``batch`` cannot be split over ``n`` devices, or None when it can.

    The one divisibility rule of data parallel: under strong scaling each of the ``n`` ranks gets
    ``batch / n`` samples, so the batch must divide by ``n``; weak scaling and one device always split.
    Every check of it (the plan's cells, the batch sizes asked for, the worker's split) says this message.
    """
    if n <= 1 or (scaling or "strong") != "strong" or int(batch) % n == 0:
        return None
    divisors = [k for k in range(2, n + 1) if int(batch) % k == 0]
    counts = ("a device count that divides it (" + ", ".join(map(str, divisors)) + ")") if divisors else "one device"
    return (f"the global batch of {batch} does not split over {n} devices under strong scaling; "
            f"use --scaling weak, or {counts}")


def scaled_batches(requested: int, size: int, scaling: str) -> tuple[int, int]:
    """(global batch, per-device batch) for a requested batch on ``size`` devices.

    Raises:
        ValueError: strong scaling and a global batch that does not split over the devices.
    """
    if size <= 1:
        return requested, requested
    if scaling == "weak":
        return requested * size, requested
    problem = split_problem(requested, size, scaling)
    if problem:
        raise ValueError(problem)
    return requested, requested // size


class LinearScaling:
    """The learning-rate rule for training at another batch (Goyal et al., 2017).

    The workload's learning rate (and its schedule) is multiplied by ``k = batch / default_batch``;
    over the first ``warmup_steps`` steps the factor rises linearly from 1 to ``k``.

    Args:
        batch: the global batch trained at.
        default_batch: the workload's own batch.
        warmup_steps: steps of warm-up (``WARMUP_EPOCHS`` epochs' worth).
    """

    def __init__(self, batch: int, default_batch: int, warmup_steps: int):
        if batch < 1 or default_batch < 1 or warmup_steps < 0:
            raise ValueError(f"LinearScaling: batch {batch}, default_batch {default_batch} and "
                             f"warmup_steps {warmup_steps} must be positive")
        self.k = batch / default_batch
        self.warmup_steps = int(warmup_steps)

    def factor(self, step: int) -> float:
        """The learning-rate multiplier at ``step`` (from 0)."""
        if self.warmup_steps == 0 or step >= self.warmup_steps:
            return self.k
        return 1.0 + (self.k - 1.0) * step / self.warmup_steps

    def record(self) -> dict:
        """What the results file says about the rule."""
        return {"rule": "linear scaling with warm-up", "factor": self.k, "warmup_steps": self.warmup_steps,
                "text": f"learning rate x {self.k:g} (batch / the workload's batch), "
                        f"rising linearly from x1 over the first {self.warmup_steps} steps"}


def lr_attribute(optimizer) -> str:
    """The optimizer's learning-rate hyper-parameter: ``lr`` (SGD, MomentumSGD) or ``alpha`` (Adam)."""
    hp = getattr(optimizer, "hyperparam", None)
    for name in ("lr", "alpha"):
        if hp is not None and hasattr(hp, name):
            return name
    raise ValueError(f"no learning rate to scale on {type(optimizer).__name__}")


def expand(plan, workloads, specs, descs: list, given_limit: bool = True) -> list:
    """The plan's cells over its batch sizes (what ``benchbench run --batch-size`` runs).

    Args:
        plan: the ``plan.Plan`` (its ``batch_size`` and ``memory_limit``).
        workloads: ``(Workload, params, label)`` of the plan.
        specs: the device specs.
        descs: the descriptions at each workload's own batch, from ``executor.run.describe_cell``.
        given_limit: whether the memory limit was asked for (not only recorded in a plan).

    Returns:
        The descriptions, one per batch size for each of ``descs``.

    Raises:
        PlanError: a memory limit without ``max`` or without a CPU cell, a budget below one sample,
            a global batch that does not split over a data-parallel cell's devices, ``max`` on a CPU
            data-parallel cell.
    """
    from benchbench.errors import PlanError

    sizes = list(plan.batch_size or [])
    has_cpu = any(s.kind == "cpu" for s in specs)
    if plan.memory_limit is not None and given_limit:
        if MAX not in sizes:
            raise PlanError("--memory-limit is the CPU budget of --batch-size max; add --batch-size max or drop it")
        if not has_cpu:
            raise PlanError("--memory-limit applies to CPU cells; no CPU device is in the plan "
                            f"({', '.join(s.spec for s in specs)})")
    if not sizes:
        return descs
    budget = None
    if MAX in sizes and has_cpu:
        budget = plan.memory_limit if plan.memory_limit is not None else default_cpu_budget()
        for wl, _, label in workloads:
            one = sample_bytes(wl)
            if one is not None and budget < one:
                raise PlanError(f"--memory-limit {budget} bytes is below one sample of {label} ({one} bytes); "
                                "give a larger budget")
    for spec in specs:
        n = int(spec.n_ranks)
        if MAX in sizes and spec.kind == "cpu" and n > 1:
            raise PlanError(f"--batch-size max searches on the CPU as one process; drop {spec.spec} from the "
                            "devices (the largest batch per device of cpu is the same)")
        for b in sizes:
            problem = split_problem(b, n, plan.scaling) if b != MAX else None
            if problem:
                raise PlanError(f"--batch-size {b} on {spec.spec}: {problem}")
    out = []
    for desc in descs:
        out.extend(batch_descs(desc, sizes, budget))
    return out
