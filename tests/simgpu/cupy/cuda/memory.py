"""Simulated device memory: blocks, pointers, the caching pool and the allocator hook.

Every device array owns (or views) a ``Memory`` block obtained from the current allocator,
by default ``MemoryPool.malloc``. The pool keeps freed blocks cached, as cupy's does; its
``used_bytes``/``total_bytes`` are per current device; an allocation that does not fit in the
simulated capacity, even after the cache is emptied, raises ``OutOfMemoryError`` with cupy's
message.
"""
from __future__ import annotations

import bisect
import contextlib
import threading
import weakref

from .. import _capture, _state

_ALIGN = 512


class OutOfMemoryError(MemoryError):
    """cupy's out-of-memory error (same message)."""

    def __init__(self, size, total, limit=0):
        msg = f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes"
        if limit:
            msg += f", limit set to: {limit:,} bytes"
        super().__init__(msg + ").")


class Memory:
    """One device allocation. ``ptr`` is the address of the host buffer that backs it once bound."""

    def __init__(self, device_id: int, size: int, pool):
        self.device_id = device_id
        self.size = size
        self._pool = pool
        self.ptr = 0
        self.host = None  # the numpy array whose memory backs this block
        self._users = None  # the captures (graphs) whose operations use it: a WeakSet, once one does
        _capture.new_block(self)

    def bind(self, host_array) -> None:
        self.host = host_array
        self.ptr = int(host_array.__array_interface__["data"][0])
        _registry.add(self)

    def __del__(self):
        try:
            _registry.remove(self)
            if self._pool is not None:
                self._pool._free(self)
        except Exception:
            pass


class MemoryPointer:
    """A pointer into a ``Memory`` block (cupy's ``MemoryPointer``)."""

    def __init__(self, mem: Memory, offset: int = 0):
        self.mem = mem
        self.offset = offset

    @property
    def ptr(self) -> int:
        return self.mem.ptr + self.offset

    @property
    def device_id(self) -> int:
        return self.mem.device_id

    @property
    def device(self):
        from . import Device

        return Device(self.mem.device_id)

    def __int__(self):
        return self.ptr

    def __add__(self, n):
        return MemoryPointer(self.mem, self.offset + int(n))


class _Registry:
    """Live blocks by address, so NCCL can resolve the device pointers it is given."""

    def __init__(self):
        self._lock = threading.RLock()  # Memory.__del__ may run (garbage collection) while this thread holds it
        self._starts: list[int] = []
        self._blocks: dict[int, list] = {}

    def add(self, mem: Memory):
        with self._lock:
            if mem.ptr not in self._blocks:
                bisect.insort(self._starts, mem.ptr)
                self._blocks[mem.ptr] = []
            self._blocks[mem.ptr].append(weakref.ref(mem))

    def remove(self, mem: Memory):
        with self._lock:
            refs = self._blocks.get(mem.ptr)
            if refs is None:
                return
            refs[:] = [r for r in refs if r() is not None and r() is not mem]
            if not refs:
                del self._blocks[mem.ptr]
                i = bisect.bisect_left(self._starts, mem.ptr)
                if i < len(self._starts) and self._starts[i] == mem.ptr:
                    del self._starts[i]

    def find(self, ptr: int, nbytes: int):
        """The live block holding ``[ptr, ptr + nbytes)``, or None (live blocks never overlap)."""
        with self._lock:
            i = bisect.bisect_right(self._starts, ptr) - 1
            if i < 0:
                return None
            start = self._starts[i]
            for r in self._blocks.get(start, ()):
                mem = r()
                if mem is not None and mem.host is not None and ptr + nbytes <= start + mem.host.nbytes:
                    return mem
            return None


_registry = _Registry()


def find_block(ptr: int, nbytes: int):
    return _registry.find(ptr, nbytes)


class _DevicePool:
    def __init__(self, device_id: int):
        self.device_id = device_id
        self.used = 0
        # (stream pointer, size) -> the cached blocks of that size in that stream's arena, each as the
        # captures (graphs) whose work used it (a WeakSet, or None); the last freed is handed out first
        self.cached: dict[tuple[int, int], list] = {}
        self.cached_bytes = 0


class MemoryPool:
    """cupy's caching memory pool over the simulated devices (one sub-pool per device, and in it one
    arena per stream, as cupy's: a block freed goes back to the arena of the stream it was allocated
    on, and only allocations on that stream take it again).

    Under stream capture (see ``cupy._capture``): a block is reused without any CUDA call; growing the
    pool is a ``cudaMalloc``, which a capture begun in global or thread-local mode refuses (900; cupy
    captures in relaxed mode, where it is allowed). A cached block that a live graph's work used is
    never handed to another allocation, nor released, without a ``GraphMemoryError``: on a real GPU
    the graph would go on reading and writing it."""

    def __init__(self, allocator=None):
        self._pools: dict[int, _DevicePool] = {}
        self._lock = threading.RLock()  # Memory.__del__ (garbage collection inside malloc) frees into it

    def _pool(self, device_id=None) -> _DevicePool:
        d = _state.local.device if device_id is None else device_id
        if d not in self._pools:
            self._pools[d] = _DevicePool(d)
        return self._pools[d]

    def malloc(self, size: int) -> MemoryPointer:
        size = int(size)
        if size < 0:
            raise ValueError(f"MemoryPool.malloc: negative size {size}")
        rounded = max(_ALIGN, -(-size // _ALIGN) * _ALIGN) if size else 0
        stream_ptr = _capture.current_stream_ptr()
        users = None
        with self._lock:
            dev = _state.check_device(_state.local.device)
            _state.contexts.add(dev)
            p = self._pool(dev)
            stack = p.cached.get((stream_ptr, rounded)) if rounded else None
            if stack:
                _capture.check_reuse(stack[-1], stream_ptr, rounded)
                users = stack.pop()
                p.cached_bytes -= rounded
            elif rounded:
                _capture.check_unsafe_call("cudaMalloc")  # the pool grows
                cap = _state.device_memory()
                if p.used + p.cached_bytes + rounded > cap:
                    self._release(p, None)
                if p.used + rounded > cap:
                    raise OutOfMemoryError(rounded, p.used)
            p.used += rounded
        mem = Memory(dev, rounded, self)
        mem._stream_ptr = stream_ptr
        _capture.inherit(mem, users)
        return MemoryPointer(mem)

    def _free(self, mem: Memory):
        _capture.freed(mem)
        with self._lock:
            p = self._pool(mem.device_id)
            p.used -= mem.size
            if mem.size:
                p.cached.setdefault((getattr(mem, "_stream_ptr", 0), mem.size), []).append(mem._users)
                p.cached_bytes += mem.size

    def _release(self, p: _DevicePool, stream_ptr) -> None:
        """Give the cached blocks (of one stream's arena, or all) back to the device (``cudaFree``)."""
        keys = [k for k in p.cached if stream_ptr is None or k[0] == stream_ptr]
        for k in keys:
            for users in p.cached[k]:
                _capture.check_release(users, k[1])
        if any(p.cached[k] for k in keys):
            _capture.check_unsafe_call("cudaFree")
        for k in keys:
            p.cached_bytes -= k[1] * len(p.cached.pop(k))

    def used_bytes(self) -> int:
        """Bytes held by live arrays on the current device."""
        return self._pool().used

    def free_bytes(self) -> int:
        """Bytes cached in the pool (freed, kept for reuse) on the current device."""
        return self._pool().cached_bytes

    def total_bytes(self) -> int:
        """``used_bytes() + free_bytes()`` on the current device."""
        p = self._pool()
        return p.used + p.cached_bytes

    def free_all_blocks(self, stream=None) -> None:
        """Release the cached blocks of the current device (of ``stream``'s arena only, if given)."""
        with self._lock:
            self._release(self._pool(), None if stream is None else int(stream.ptr))

    def n_free_blocks(self) -> int:
        return sum(len(v) for v in self._pool().cached.values())

    def set_limit(self, size=None, fraction=None):  # accepted and ignored: the capacity is the limit
        return None

    def get_limit(self) -> int:
        return _state.device_memory()


class PinnedMemoryPool:
    """Host pinned memory pool: nothing to simulate but its interface."""

    def free_all_blocks(self):
        return None

    def n_free_blocks(self):
        return 0


_default_pool = MemoryPool()
_default_pinned_pool = PinnedMemoryPool()
_allocator = None  # None: the default pool's malloc
_thread_local = threading.local()  # cupy.cuda.using_allocator's allocator of this thread


def set_allocator(allocator=None) -> None:
    """Route every device allocation through ``allocator(size) -> MemoryPointer`` (None: the default pool)."""
    global _allocator
    if allocator is not None and not callable(allocator):
        raise TypeError("set_allocator: allocator must be callable or None")
    _allocator = allocator


def get_allocator():
    local = getattr(_thread_local, "allocator", None)
    if local is not None:
        return local
    return _allocator if _allocator is not None else _default_pool.malloc


@contextlib.contextmanager
def using_allocator(allocator=None):
    """This thread's allocations go through ``allocator`` inside the block (cupy's; None: plain
    ``cudaMalloc``/``cudaFree`` without a pool)."""
    if allocator is not None and not callable(allocator):
        raise TypeError("using_allocator: allocator must be callable or None")
    prev = getattr(_thread_local, "allocator", None)
    _thread_local.allocator = _malloc if allocator is None else allocator
    try:
        yield
    finally:
        _thread_local.allocator = prev


class _NoPool:
    """Plain ``cudaMalloc``/``cudaFree``: a freed block goes straight back to the device."""

    def _free(self, mem: Memory) -> None:
        _capture.freed(mem)
        _capture.check_release(mem._users, mem.size, at_free=True)


_no_pool = _NoPool()


def _malloc(size: int) -> MemoryPointer:
    """``cudaMalloc`` without a pool (cupy's ``memory._malloc``)."""
    dev = _state.check_device(_state.local.device)
    _capture.check_unsafe_call("cudaMalloc")
    _state.contexts.add(dev)
    return MemoryPointer(Memory(dev, int(size), _no_pool))


def alloc(size: int) -> MemoryPointer:
    """Allocate ``size`` bytes on the current device through the current allocator."""
    mp = get_allocator()(size)
    if not isinstance(mp, MemoryPointer):
        raise TypeError(f"the allocator returned {type(mp).__name__}, not a MemoryPointer")
    return mp


def malloc_managed(size):  # pragma: no cover - not used by the project
    raise NotImplementedError("simulated GPUs: managed memory is not simulated")
