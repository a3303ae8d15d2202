"""Simulated SM clocks: idle until the GPU works, then ramping to the boost clock (opt-in).

``BENCHBENCH_SIM_GPU_RAMP_S`` (seconds, default 0: clocks always at the maximum) makes each device
start at the idle clock (345 MHz) and reach the maximum (1980 MHz) that many seconds after its first
matrix product in this process, linearly. While the clock is below the maximum a matrix product
takes max/current times as long (the extra time is slept), as a real GPU's first calls after idle
do; ``pynvml.nvmlDeviceGetClockInfo`` reports the same clock.
"""
from __future__ import annotations

import functools
import os
import time

from . import _state

IDLE_MHZ, MAX_MHZ = 345, 1980
_MAX_EXTRA_S = 0.05  # longest extra time one product is slowed by
_first_use: dict[int, float] = {}


def ramp_s() -> float:
    text = os.environ.get("BENCHBENCH_SIM_GPU_RAMP_S", "").strip()
    return float(text) if text else 0.0


def sm_clock_mhz(device: int) -> int:
    """The device's SM clock now."""
    ramp = ramp_s()
    if ramp <= 0:
        return MAX_MHZ
    t0 = _first_use.get(device)
    if t0 is None:
        return IDLE_MHZ
    frac = min(1.0, (time.monotonic() - t0) / ramp)
    return int(IDLE_MHZ + (MAX_MHZ - IDLE_MHZ) * frac)


def ramped(fn):
    """``fn`` (a matrix product) slowed by the clock's distance from its maximum."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if ramp_s() <= 0:
            return fn(*args, **kwargs)
        dev = _state.local.device
        _first_use.setdefault(dev, time.monotonic())
        clock = sm_clock_mhz(dev)
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        if clock < MAX_MHZ:
            time.sleep(min(_MAX_EXTRA_S, (time.perf_counter() - t0) * (MAX_MHZ / clock - 1.0)))
        return out
    return wrapper
