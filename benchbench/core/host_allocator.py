"""The host allocator's policy for large arrays: reuse freed memory instead of faulting fresh pages.

Every training step allocates its activations and gradients afresh. glibc serves an allocation
above its *mmap threshold* (at most 32 MiB, and it starts at 128 KiB) with a fresh memory map and
returns it to the kernel when it is freed, so the next step touches new pages again: one page
fault per 4 KiB, kernel time that grows with the batch and is no part of the hardware's work.
Measured on a 2-core machine: about 1,600 faults per LeNet5 step and 3,900 per CNN step, 5 and
30 ms of system time per step (12 % and 10 % of the step); with the policy below, none.

:func:`tune` makes the allocator keep such memory: large blocks come from the heap
(``M_MMAP_THRESHOLD``), and free memory at the top of the heap is returned to the kernel only
beyond ``M_TRIM_THRESHOLD``. Every thread allocates from that one heap (``M_ARENA_MAX`` 1): a
worker thread's own arena is a chain of 64 MiB maps, and one that held arrays too large for it
(the convolution workers' transformed filters and their gradients, about 38 MB each at 512
channels) was unmapped when they were freed and faulted in again at the next step (ResNet-18 at
batch 64: 1,600 faults and about 35 ms of system time a step, none with one arena; the workers
allocate a few arrays per layer, so they do not queue on its lock). Steady-state training then
reuses the same pages every step. Peak
memory is unchanged (what is freed is reused, not added to); the process only keeps its peak
until it exits, which a benchmark worker does at the end of its cell.

It applies to glibc only (``mallopt``), once per process, and never over the user's own choice:
when any of ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
``MALLOC_ARENA_MAX`` or a
``glibc.malloc`` tunable in ``GLIBC_TUNABLES`` is set, the allocator is left as configured. What
was done is returned (and recorded with each cell).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["ARENAS", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "USER_SETTINGS", "describe", "tune"]

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
# Allocations below this come from the heap and are reused; larger ones still get their own map.
MMAP_THRESHOLD = 1 << 30
# Free memory at the top of the heap beyond this is given back to the kernel.
TRIM_THRESHOLD = 2 << 30
# Arenas for all threads together: one, the heap the thresholds above keep.
ARENAS = 1
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")

_done = {}  # pid -> the record of what tune() did in that process


def _glibc():
    """(libc handle, glibc version) or (None, reason)."""
    if not sys.platform.startswith("linux"):
        return None, f"not Linux ({sys.platform})"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None, "the C library is not glibc"
    version.restype = ctypes.c_char_p
    return libc, version().decode()


def _user_choice(environ) -> str | None:
    set_vars = [name for name in USER_SETTINGS if environ.get(name)]
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        set_vars.append("GLIBC_TUNABLES")
    return ", ".join(set_vars) or None


def tune(environ=None) -> dict:
    """Set this process's glibc allocator to reuse large blocks (see the module docstring); once per process.

    Args:
        environ: the environment to read the user's own settings from (default ``os.environ``).

    Returns:
        A dict for the results: ``applied`` (bool), and ``allocator``, ``mmap_threshold``,
        ``trim_threshold`` and ``arenas`` when applied, else ``reason``.
    """
    pid = os.getpid()
    if pid in _done:
        return dict(_done[pid])
    environ = os.environ if environ is None else environ
    libc, version = _glibc()
    user = _user_choice(environ)
    if libc is None:
        record = {"applied": False, "reason": version}
    elif user:
        record = {"applied": False, "allocator": f"glibc {version}", "reason": f"left as the user set it ({user})"}
    else:
        mallopt = libc.mallopt
        mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        ok = (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
              and mallopt(_M_ARENA_MAX, ARENAS) == 1)
        record = ({"applied": True, "allocator": f"glibc {version}", "mmap_threshold": MMAP_THRESHOLD,
                   "trim_threshold": TRIM_THRESHOLD, "arenas": ARENAS} if ok else
                  {"applied": False, "allocator": f"glibc {version}", "reason": "mallopt refused the settings"})
    _done[pid] = record
    return dict(record)


def describe(record: dict) -> str:
    """One line for a report: what :func:`tune` did (``record``, as it returned it)."""
    if not record.get("applied"):
        return f"host allocator: as it was ({record.get('reason')})"
    line = f"host allocator: {record['allocator']}, freed blocks up to {record['mmap_threshold'] >> 20} MiB reused"
    if "arenas" in record:  # records written before the arenas were set
        line += f", {record['arenas']} arena{'' if record['arenas'] == 1 else 's'} for all threads"
    return line
