"""Thread-local switches: training mode, backprop recording, deterministic kernels, compute dtype.

``compute_dtype`` (default None: compute in the parameters' own dtype) is the dtype the
links cast their parameters and inputs to at use, for mixed-precision training; the
float32 Parameters stay the master weights (see ``core.mixed_precision``).
"""
from __future__ import annotations

import collections
import contextlib
import threading

from .backend import float_dtype

_DEFAULTS = {"train": True, "enable_backprop": True, "deterministic": False, "compute_dtype": None}


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
