"""The worker's side of a batch-sweep cell: its batch, the largest-batch search, the learning rate.

A cell description with a ``batch`` block (see :func:`benchbench.executor.planning.batch.batch_descs`)
trains at that batch instead of the workload's own. For ``max`` the worker first searches the
largest batch that trains on its device (:mod:`benchbench.executor.cell.batch_search`), records every
probe in the cell, and then times the cell at that batch like any other. A data-parallel cell
searches on every rank and takes the smallest per-device maximum, and trains at it per device.

The cell's ``batch`` record::

    {"requested": 32 | "max", "default": 100, "per_device": bool, "value": 32,
     "memory_limit_bytes": int | None, "search": {...} | None, "quality": "...", "lr_scaling": {...} | None}
"""
from __future__ import annotations

import contextlib
import os

from benchbench.executor.cell import batch_search
from benchbench.executor.planning import batch as batch_mod
from benchbench.executor.protocol import data_seed

#: probes of a search load at most this many distinct samples (a probe's batch repeats them)
_PROBE_SAMPLES = 256


def _train_size(dataset: str) -> int | None:
    """The full training set's size of a built-in dataset, or None when not known."""
    try:
        from benchbench.data import loader

        if dataset in loader._REAL:
            return int(loader._REAL[dataset][1])
        if dataset == "sine":
            return int(loader._SINE_SIZES[0])
    except (ImportError, AttributeError, IndexError, TypeError, ValueError):
        return None
    return None


def _search(c, cell: dict, info: dict) -> int:
    """Run the largest-batch search on this rank; returns the per-device batch to train at."""
    desc = c.desc
    cap = int(info.get("search_cap") or batch_mod.DEFAULT_SEARCH_CAP)
    cap_why = f"the search cap of {cap}"
    size = _train_size(c.wl.dataset)
    if size is not None and size // c.size < cap:
        cap, cap_why = size // c.size, f"the training set ({size} samples{' over %d devices' % c.size if c.size > 1 else ''})"
    ds = c.wl.load_data(desc.get("data", "auto"), data_dir=desc.get("data_dir"), seed=data_seed(desc),
                        n_train=_PROBE_SAMPLES, n_val=1)
    limits = contextlib.ExitStack()
    c.batch_limits = limits
    info["memory_limit_bytes"] = info.get("memory_limit_bytes") if c.device.kind == "cpu" else None
    info["memory_limit_enforced"] = limits.enter_context(batch_search.memory_budget(info["memory_limit_bytes"]))
    dtype = desc.get("dtype", "float32")
    load = None
    if c.device.kind == "cpu" and c.size == 1 and hasattr(os, "fork"):
        if desc.get("profile", "quick") == "quick":  # the data the timed steps load (one global batch)
            def load(b):
                d = c.wl.load_data(desc.get("data", "auto"), data_dir=desc.get("data_dir"),
                                   seed=data_seed(desc), n_train=b * c.size, n_val=1)
                return d.train if isinstance(d.train, (list, tuple)) else (d.train,)
        probe = batch_search.forked(batch_search.make_probe(c, ds.train, dtype, load),
                                    under_budget=info["memory_limit_enforced"] is not None)
    else:
        probe = batch_search.make_probe(c, ds.train, dtype)
    result = batch_search.search(probe, cap=cap)
    result["cap_reason"] = cap_why
    result["limit"] = ("device memory" if c.device.kind == "gpu" else
                       "host memory budget" if info["memory_limit_enforced"] else "host memory (no budget enforced)")
    found = result["max_batch"]
    if c.size > 1:  # every rank must train at the same per-device batch: the smallest maximum
        rows = c.comm.allgather_obj(found)
        result["per_rank_max"] = rows
        found = None if any(r is None for r in rows) else min(rows)
        result["max_batch"] = found
    result["text"] = _search_text(result)
    info["search"] = result
    # The budget bounds the search, whose probes went up to the first batch that did not fit. The
    # batch found then trains with the limit lifted: it fitted within the budget, and the timed run
    # must not fail on the few pages that threads and bookkeeping outside a probe add on top.
    limits.close()
    info["memory_limit_during_timing"] = False
    if found is None:
        raise MemoryError(f"not even a batch of 1 trains within the {result['limit']}")
    return found


def _search_text(r: dict) -> str:
    if r["max_batch"] is None:
        return f"batch 1 does not fit ({r['limit']})"
    if r["stopped_by"] == "cap":
        return f"largest batch {r['max_batch']}: stopped by {r['cap_reason']}, not by memory (a larger batch may fit)"
    bad = min(p["batch"] for p in r["probes"] if not p["ok"])
    return f"largest batch {r['max_batch']}: batch {bad} ran out of {r['limit']}"


def cell_batches(c, cell: dict) -> tuple[int, int]:
    """(global batch, per-device batch) of a batch-sweep cell, searching it for ``max``.

    Records the ``batch`` block in ``cell`` and, for the full profile at another batch than the
    workload's own, puts the learning-rate rule on ``c`` (``c.lr_rule``).

    Raises:
        MemoryError: ``max`` and not even a batch of 1 fits (the cell is then ``oom``).
        ValueError: a global batch that does not split over the devices (strong scaling).
    """
    info = dict(c.desc["batch"])
    cell["batch"] = info
    requested = info["requested"]
    scaling = c.desc.get("scaling", "strong")
    if requested == batch_mod.MAX:
        per_device = _search(c, cell, info)
        global_batch = per_device * c.size
        info["per_device"] = True
    else:
        global_batch, per_device = batch_mod.scaled_batches(int(requested), c.size, scaling)
    info["value"] = global_batch
    default = int(info.get("default") or c.wl.batch_size)
    default_global = default * c.size if (c.size > 1 and scaling == "weak") else default
    quick = c.desc.get("profile", "quick") == "quick"
    if global_batch == default_global:
        info["quality"] = "as the workload (its own batch)"
        info["lr_scaling"] = None
    elif quick:
        info["quality"] = "throughput only"
        info["lr_scaling"] = None
    else:
        per_epoch = max(1, _train_size(c.wl.dataset) or global_batch) // global_batch
        rule = LrRule(global_batch, default_global, batch_mod.WARMUP_EPOCHS * max(per_epoch, 1))
        c.lr_rule = rule
        info["quality"] = "learning rate scaled"
        info["lr_scaling"] = rule.scaling.record()
    return global_batch, per_device


class LrRule:
    """Applies :class:`~benchbench.executor.planning.batch.LinearScaling` on top of the workload's own schedule."""

    def __init__(self, batch: int, default_batch: int, warmup_steps: int):
        self.scaling = batch_mod.LinearScaling(batch, default_batch, warmup_steps)
        self._base = self._last = None

    def base(self, optimizer) -> float:
        """The workload's learning rate for this epoch (what its schedule set, unscaled)."""
        current = getattr(optimizer, batch_mod.lr_attribute(optimizer))
        if self._last is None or current != self._last:  # the schedule set a new rate
            self._base = current
        return self._base

    def apply(self, optimizer, base: float, step: int) -> None:
        """Set the scaled learning rate of ``step``."""
        self._last = base * self.scaling.factor(step)
        setattr(optimizer, batch_mod.lr_attribute(optimizer), self._last)
