"""Kernel launches, counted as real cupy issues them, and an optional slow device.

Every operation that real cupy runs as a kernel counts one launch: ufuncs, reductions, copies and
casts, fancy indexing and assignment, fills, random draws, each cuBLAS call, user kernels. Views
(basic indexing, reshape of a contiguous array, transpose, broadcast), ``empty`` and metadata queries
launch nothing. ``_sim_stats()["launches"]`` reports the count. Work recorded by a stream capture
launches nothing; each ``Graph.launch()`` counts one ``graph_launches`` (its kernels are not host
launches, but their device time is queued as theirs).

Setting (read once per launch):
    BENCHBENCH_SIM_LAUNCH_DELAY_US  device time each launch takes, in microseconds (default 0). Work
                                    is queued per device: a synchronisation (device, stream, event,
                                    a transfer back to the host) then waits until the queue drains,
                                    as a GPU slower than its host would make it wait.
"""
from __future__ import annotations

import os
import threading
import time

import numpy

_lock = threading.Lock()
_count = {"launches": 0, "graph_launches": 0}
by_name: dict[str, int] = {}  # launches per operation name, to see where a step's launches come from
_busy_until: dict[int, float] = {}  # device -> perf_counter time its queued work ends

# Operations that launch no kernel although they go through the generic operation path.
# (Reshapes, transposes and the like are told apart by their result: a view launches nothing, a
# copy of a non-contiguous array launches a copy kernel, as in cupy.)
NO_KERNEL = frozenset("cupy.empty cupy.empty_like cupy.result_type".split())


def _delay_s() -> float:
    text = os.environ.get("BENCHBENCH_SIM_LAUNCH_DELAY_US", "").strip()
    if not text:
        return 0.0
    try:
        us = float(text)
    except ValueError:
        raise ValueError(f"simulated GPUs: BENCHBENCH_SIM_LAUNCH_DELAY_US must be a number of microseconds, "
                         f"got {text!r}") from None
    if not us >= 0:
        raise ValueError(f"simulated GPUs: BENCHBENCH_SIM_LAUNCH_DELAY_US must be >= 0, got {text!r}")
    return us * 1e-6


def launch(device: int, n: int = 1, name: str = "kernel") -> None:
    """Count ``n`` kernel launches on ``device`` (and queue their device time, if any is set)."""
    delay = _delay_s()
    with _lock:
        _count["launches"] += n
        by_name[name] = by_name.get(name, 0) + n
        if delay:
            now = time.perf_counter()
            _busy_until[device] = max(now, _busy_until.get(device, 0.0)) + n * delay


def graph_launch(device: int, kernels: int) -> None:
    """Count one graph launch on ``device``: one host call, ``kernels`` kernels' device time queued
    (its kernels are not host launches and are not counted in ``launches``)."""
    delay = _delay_s()
    with _lock:
        _count["graph_launches"] += 1
        if delay:
            now = time.perf_counter()
            _busy_until[device] = max(now, _busy_until.get(device, 0.0)) + kernels * delay


def wait(device: int | None = None) -> None:
    """Block the host until ``device``'s queued work is done (all devices when None)."""
    with _lock:
        end = max(_busy_until.values(), default=0.0) if device is None else _busy_until.get(device, 0.0)
    left = end - time.perf_counter()
    if left > 0:
        time.sleep(left)


def queue_end(device: int) -> float:
    """When ``device``'s queued work ends (perf_counter seconds; now if it is idle)."""
    with _lock:
        return max(time.perf_counter(), _busy_until.get(device, 0.0))


def stats() -> dict:
    return dict(_count)


def reset() -> None:
    with _lock:
        _count["launches"] = _count["graph_launches"] = 0
        by_name.clear()


def _is_new(r, operands) -> bool:
    if isinstance(r, numpy.ndarray):
        return not any(numpy.may_share_memory(r, a) for a in operands)
    if isinstance(r, (list, tuple)):
        return any(_is_new(v, operands) for v in r)
    return True  # a scalar or None (a fill, a reduction to a host value): the kernel ran


def kernel_ran(name: str, result, operands, has_out: bool) -> bool:
    """Whether one generic operation launched a kernel (not when it only made views or launched nothing)."""
    return name not in NO_KERNEL and (has_out or _is_new(result, operands))
