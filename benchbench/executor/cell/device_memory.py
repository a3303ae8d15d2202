"""Device memory a cell really allocated: the high-water mark of the memory pool's allocated bytes.

NVML's figure counts the CUDA context and every cached block of the pool, for the whole device.
``PoolPeak`` puts itself in front of cupy's default memory pool (``cupy.cuda.set_allocator``) and
records, after every allocation, the pool's ``used_bytes()`` (bytes held by live arrays) when it
is a new maximum; when an allocation fails it records the size asked for. cupy is reached through
``core.backend`` only.

Example:
    >>> tracker = PoolPeak(backend.cupy)      # doctest: +SKIP
    >>> with tracker:                          # doctest: +SKIP
    ...     x = backend.cupy.zeros(1 << 20)
    >>> tracker.peak_bytes >= 8 << 20          # doctest: +SKIP
    True
"""
from __future__ import annotations

import re

_OOM_SIZE = re.compile(r"allocating\s+([\d,]+)\s+bytes", re.IGNORECASE)


def failed_size(exc: BaseException) -> int | None:
    """The size (bytes) an out-of-memory error says it failed to allocate, or None.

    Reads cupy's ``OutOfMemoryError`` attributes where present, else its message
    (``"Out of memory allocating 1,024 bytes (allocated so far: ...)"``).
    """
    for attr in ("size", "_size"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    m = _OOM_SIZE.search(str(exc))
    return int(m.group(1).replace(",", "")) if m else None


class PoolPeak:
    """Tracks the default memory pool's high-water mark of allocated bytes in this process.

    Args:
        cupy: the cupy module (``core.backend.cupy``).

    Attributes:
        peak_bytes: the largest ``used_bytes()`` seen after an allocation (starts at the current value).
        failed_bytes: the size of the last allocation that failed, or None.
    """

    def __init__(self, cupy):
        if cupy is None:
            raise ValueError("PoolPeak: cupy is not available")
        self._cupy = cupy
        self.pool = cupy.get_default_memory_pool()
        self.peak_bytes = int(self.pool.used_bytes())
        self.failed_bytes: int | None = None
        self._installed = False

    def malloc(self, size: int):
        """Allocate ``size`` bytes from the default pool and record the pool's allocated bytes."""
        try:
            mem = self.pool.malloc(size)
        except Exception:
            self.failed_bytes = int(size)
            raise
        used = int(self.pool.used_bytes())
        if used > self.peak_bytes:
            self.peak_bytes = used
        return mem

    def install(self) -> PoolPeak:
        """Route cupy's allocations through :meth:`malloc`."""
        self._cupy.cuda.set_allocator(self.malloc)
        self._installed = True
        return self

    def uninstall(self) -> None:
        """Give allocations back to the default pool directly."""
        if self._installed:
            self._cupy.cuda.set_allocator(self.pool.malloc)
            self._installed = False

    def __enter__(self) -> PoolPeak:
        return self.install()

    def __exit__(self, *exc) -> bool:
        self.uninstall()
        return False
