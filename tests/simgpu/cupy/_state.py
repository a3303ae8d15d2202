"""Process-wide state of the simulated CUDA machine: devices, the current device, memory, counters.

Settings (read once, at first use):
    BENCHBENCH_SIM_GPUS        number of GPUs each process sees (default 2; 0 means none)
    BENCHBENCH_SIM_GPU_MEMORY  capacity of each GPU in bytes, or with a KiB/MiB/GiB suffix (default 16GiB)
"""
from __future__ import annotations

import os
import re
import threading

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1000**2,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1000**3, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40}


def parse_bytes(text: str, name: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise ValueError(f"simulated GPUs: {name} must be a size such as 4GiB or 1073741824, got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise ValueError(f"simulated GPUs: {name} must be a non-negative integer, got {text!r}")
    return int(text)


def device_count() -> int:
    return _env_int("BENCHBENCH_SIM_GPUS", 2)


def device_memory() -> int:
    text = os.environ.get("BENCHBENCH_SIM_GPU_MEMORY", "").strip()
    return parse_bytes(text, "BENCHBENCH_SIM_GPU_MEMORY") if text else 16 << 30


class _Local(threading.local):
    device = 0  # the CUDA current device is per host thread


local = _Local()

# Counters of host <-> device traffic, so tests can assert how often a step synchronises.
stats = {"device_to_host": 0, "host_to_device": 0}
_stats_lock = threading.Lock()


def count(kind: str, n: int = 1, stream=None) -> None:
    from . import _capture

    _capture.check_transfer(kind, local.device, stream)  # cupy refuses a transfer on a capturing stream
    with _stats_lock:
        stats[kind] += n
    if kind == "device_to_host":  # a read back waits for the work queued before it
        from . import _launches

        _launches.wait(local.device)
        _blocking_copy_done()


def _blocking_copy_done() -> None:
    """A blocking copy to the host waits for the current device's work: its recorded events complete."""
    import sys

    cuda = sys.modules.get("cupy.cuda")
    if cuda is not None and hasattr(cuda, "_sync_events"):
        cuda._sync_events(local.device)


def check_device(index: int) -> int:
    """``index`` as a valid device ordinal, or cudaErrorInvalidDevice as the runtime raises it."""
    from .cuda.runtime import CUDARuntimeError

    n = device_count()
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n:
        raise CUDARuntimeError(101, f"cudaErrorInvalidDevice: invalid device ordinal ({index!r}; {n} simulated GPUs)")
    return index


# Devices that have been used by this process (have a "CUDA context"), for NVML's process list.
contexts: set[int] = set()
