"""CPU work buffers for the convolution family: a pool of reusable arrays and a threaded copy.

Large numpy arrays are fresh memory maps: allocating one per layer per step costs page
faults and kernel time on every training step. Functions therefore take their large
*internal* arrays (im2col columns, padded inputs, transposed gradients) from a pool with
``acquire`` and hand them back with ``release`` once no computation reads them any more;
steady-state training then allocates nothing big. An array handed out stays out of the
pool until it is released, so two live users never share a buffer. Arrays that escape a
Function (its outputs and input gradients) never come from the pool.

``copy`` is ``copyto`` split over a few threads for large arrays: numpy releases the GIL
while it copies, and a strided gather (im2col, a layout transpose) is bound by memory
latency that one core cannot hide. It uses as many threads as the BLAS library is
allowed (``threadpoolctl`` limits, ``OMP_NUM_THREADS``), so data-parallel processes
that share a machine are not oversubscribed.

On cupy, ``acquire`` is ``empty`` (cupy has its own memory pool), ``release`` does
nothing and ``copy`` is one ``copyto``.
"""
from __future__ import annotations

import os
import threading
import weakref

import numpy

from .. import backend

__all__ = ["BufferPool", "acquire", "release", "copy", "split_run", "clear", "copy_threads"]

# Below this size a copy runs in the calling thread: starting threads would cost more.
_PARALLEL_MIN_BYTES = 1 << 20
# Arrays smaller than this are not worth pooling (malloc reuses them well already).
_POOL_MIN_BYTES = 1 << 16


class BufferPool:
    """Free arrays keyed by (shape, dtype); an array is either free here or held by one user.

    Args:
        max_free_bytes: free arrays beyond this total are dropped rather than kept.
    """

    def __init__(self, max_free_bytes=3 << 30):
        self.max_free_bytes = int(max_free_bytes)
        self._free = {}
        self._free_bytes = 0
        self._held = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    @property
    def free_bytes(self):
        """Bytes held by free arrays."""
        return self._free_bytes

    def acquire(self, shape, dtype):
        """A C-contiguous array of ``shape`` and ``dtype`` with undefined contents, held until released."""
        key = (tuple(shape), numpy.dtype(dtype))
        with self._lock:
            free = self._free.get(key)
            if free:
                a = free.pop()
                self._free_bytes -= a.nbytes
            else:
                a = None
        if a is None:
            a = numpy.empty(key[0], dtype=key[1])
        with self._lock:
            self._held[id(a)] = a
        return a

    def release(self, a):
        """Return the array ``a`` (or a view of it) came from; arrays not held from this pool are ignored."""
        owner = a
        while isinstance(owner.base, numpy.ndarray):
            owner = owner.base
        with self._lock:
            if self._held.get(id(owner)) is not owner:
                return
            del self._held[id(owner)]
            if self._free_bytes + owner.nbytes > self.max_free_bytes:
                return
            self._free.setdefault((owner.shape, owner.dtype), []).append(owner)
            self._free_bytes += owner.nbytes

    def clear(self):
        """Drop every free array (held arrays stay valid and are simply not taken back)."""
        with self._lock:
            self._free.clear()
            self._free_bytes = 0


_pool = BufferPool()


def acquire(xp, shape, dtype):
    """A work array for ``xp`` (pooled on numpy when large); give it back with ``release``."""
    if xp is not numpy:
        return xp.empty(shape, dtype=dtype)
    size = numpy.dtype(dtype).itemsize
    for s in shape:
        size *= s
    if size < _POOL_MIN_BYTES:
        return numpy.empty(shape, dtype=dtype)
    return _pool.acquire(shape, dtype)


def release(xp, a):
    """Hand back an array from ``acquire`` (a view of it will do); any other array is ignored."""
    if xp is numpy and a is not None:
        _pool.release(a)


def clear():
    """Free the memory of every pooled array not currently in use."""
    _pool.clear()


# -- threaded copy ---------------------------------------------------------------------
_executor = {"pool": None, "pid": None}


def copy_threads():
    """Threads a large copy may use: the BLAS library's current thread count (at least 1)."""
    return max(1, min(backend.blas_threads(), os.cpu_count() or 1))


def thread_pool():
    """This process's pool of worker threads (made again in a forked child)."""
    from concurrent.futures import ThreadPoolExecutor

    pid = os.getpid()
    if _executor["pid"] != pid:  # a forked child cannot use its parent's threads
        _executor["pid"] = pid
        _executor["pool"] = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                               thread_name_prefix="benchbench-copy")
    return _executor["pool"]


def split_run(fn, extent, nbytes, min_bytes=None):
    """Call ``fn(lo, hi)`` on chunks covering ``range(extent)``, in ``copy_threads()`` threads when
    ``nbytes`` (the memory the whole job touches) is at least ``min_bytes`` (default 1 MiB);
    ``fn`` must release the GIL to gain.
    """
    min_bytes = _PARALLEL_MIN_BYTES if min_bytes is None else min_bytes
    threads = min(copy_threads(), extent) if nbytes >= min_bytes else 1
    if threads <= 1:
        fn(0, extent)
        return
    bounds = [extent * k // threads for k in range(threads + 1)]
    pool = thread_pool()
    futures = [pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, threads)]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()


def copy(xp, dst, src):
    """``dst[...] = src`` (same shapes), split over ``copy_threads()`` threads when large on numpy."""
    if xp is not numpy:
        xp.copyto(dst, src)
        return dst
    threads = copy_threads() if dst.nbytes >= _PARALLEL_MIN_BYTES else 1
    axis = next((i for i, s in enumerate(dst.shape) if s >= threads), None)
    if threads <= 1 or axis is None:
        numpy.copyto(dst, src)
        return dst
    index = (slice(None),) * axis

    def part(lo, hi):
        numpy.copyto(dst[index + (slice(lo, hi),)], src[index + (slice(lo, hi),)])

    split_run(part, dst.shape[axis], dst.nbytes)
    return dst
