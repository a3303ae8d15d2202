"""Thread-local switches (training mode, backprop recording, deterministic kernels, compute dtype,
convolution algorithm) and the framework's environment switches, each read once per process.

``compute_dtype`` (default None: compute in the parameters' own dtype) is the dtype the
links cast their parameters and inputs to at use, for mixed-precision training; the
float32 Parameters stay the master weights (see ``core.mixed_precision``).
"""
from __future__ import annotations

import collections
import contextlib
import os
import threading

from .backend import float_dtype

_DEFAULTS = {"train": True, "enable_backprop": True, "deterministic": False, "compute_dtype": None,
             "conv_algorithm": None}

# The framework's environment switches: name -> (default, allowed values). Each is read once per
# process, at its first use, and validated then (``check_switches`` reads them all, so a command
# can refuse a bad value before it runs anything). The README lists every ``BENCHBENCH_*`` switch.
SWITCHES = {
    "BENCHBENCH_CONV_ALGORITHM": ("auto", ("auto", "im2col", "winograd", "direct")),
    "BENCHBENCH_CPU_KERNELS": ("compiled", ("compiled", "numpy")),
    "BENCHBENCH_SIMD_BYTES": ("auto", ("auto", "32", "64")),
}
_read: dict[str, str] = {}


class _Config(threading.local):
    def __init__(self):
        self.__dict__.update(_DEFAULTS)


config = _Config()

# How many times each path that runs only in deterministic mode (on a GPU) ran in this process, by
# what it replaces: a cell's record reads it, so "deterministic mode changed something" is measured.
deterministic_paths: collections.Counter = collections.Counter()


@contextlib.contextmanager
def using_config(name: str, value):
    """Set ``config.<name>`` to ``value`` for the block, then restore it.

    Example:
        >>> with using_config("train", False):
        ...     y = model(x)   # dropout off, batch-norm uses running statistics
    """
    if name not in _DEFAULTS:
        raise ValueError(f"using_config: unknown name {name!r}; known: {sorted(_DEFAULTS)}")
    if name == "compute_dtype" and value is not None:
        value = _compute_dtype(value)
    if name == "conv_algorithm" and value is not None and value not in SWITCHES["BENCHBENCH_CONV_ALGORITHM"][1]:
        raise ValueError(f"using_config: conv_algorithm must be None or one of "
                         f"{', '.join(SWITCHES['BENCHBENCH_CONV_ALGORITHM'][1])}, got {value!r}")
    old = getattr(config, name)
    setattr(config, name, value)
    try:
        yield
    finally:
        setattr(config, name, old)


def _compute_dtype(value):
    return float_dtype(value, "using_config: compute_dtype must be None or a float dtype")


def no_backprop_mode():
    """Context in which functions record no graph (inference, evaluation)."""
    return using_config("enable_backprop", False)


def switch(name: str) -> str:
    """The value of the environment switch ``name`` (its default when unset), read once per process.

    Raises:
        ValueError: the variable holds a value the switch does not allow; the message names both.
    """
    if name not in _read:
        default, allowed = SWITCHES[name]
        value = os.environ.get(name, "").strip().lower() or default
        if value not in allowed:
            raise ValueError(f"{name}={value}: must be one of {', '.join(allowed)}")
        _read[name] = value
    return _read[name]


def check_switches() -> None:
    """Read and validate every environment switch (a command calls this before it runs anything).

    Raises:
        ValueError: a switch holds a value it does not allow.
    """
    for name in SWITCHES:
        switch(name)


def reload_switches() -> None:
    """Forget the switches read so far, so the next use reads the environment again (tests, and
    benchmarks that compare settings within one process)."""
    _read.clear()
