"""Thread-local switches: training mode, backprop recording, deterministic kernels."""
from __future__ import annotations

import contextlib
import threading

_DEFAULTS = {"train": True, "enable_backprop": True, "deterministic": False}


class _Config(threading.local):
    def __init__(self):
        self.__dict__.update(_DEFAULTS)


config = _Config()


@contextlib.contextmanager
def using_config(name: str, value):
    """Set ``config.<name>`` to ``value`` for the block, then restore it.

    Example:
        >>> with using_config("train", False):
        ...     y = model(x)   # dropout off, batch-norm uses running statistics
    """
    if name not in _DEFAULTS:
        raise ValueError(f"using_config: unknown name {name!r}; known: {sorted(_DEFAULTS)}")
    old = getattr(config, name)
    setattr(config, name, value)
    try:
        yield
    finally:
        setattr(config, name, old)


def no_backprop_mode():
    """Context in which functions record no graph (inference, evaluation)."""
    return using_config("enable_backprop", False)
