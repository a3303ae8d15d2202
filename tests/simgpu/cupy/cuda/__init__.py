"""Simulated ``cupy.cuda``: devices, streams, events, the runtime, memory and NCCL."""
from __future__ import annotations

import itertools
import threading
import time

from .. import _launches, _state
from . import memory, runtime  # noqa: F401
from .memory import MemoryPointer, MemoryPool, PinnedMemoryPool, get_allocator, set_allocator  # noqa: F401
from .runtime import CUDARuntimeError  # noqa: F401


def is_available() -> bool:
    return _state.device_count() > 0


def get_device_id() -> int:
    return _state.local.device


def get_local_runtime_version() -> int:
    return runtime.runtimeGetVersion()


class Device:
    """A simulated CUDA device; ``with Device(i):`` or ``.use()`` makes it current."""

    def __init__(self, device=None):
        self.id = _state.local.device if device is None else int(device)
        self._prev: list[int] = []

    def use(self):
        _state.local.device = _state.check_device(self.id)

    def __enter__(self):
        _state.check_device(self.id)
        self._prev.append(_state.local.device)
        _state.local.device = self.id
        return self

    def __exit__(self, *exc):
        _state.local.device = self._prev.pop()
        return False

    def synchronize(self):
        _state.check_device(self.id)
        _launches.wait(self.id)

    @property
    def pci_bus_id(self) -> str:
        return runtime.pci_bus_id(self.id)

    @property
    def compute_capability(self) -> str:
        _state.check_device(self.id)
        return "90"

    @property
    def mem_info(self):
        with Device(self.id):
            return runtime.memGetInfo()

    def __int__(self):
        return self.id

    def __index__(self):
        return self.id

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(("sim-cuda-device", self.id))

    def __repr__(self):
        return f"<CUDA Device {self.id} (simulated)>"


_ptrs = itertools.count(0x1000)


class Stream:
    """A simulated stream: work is done when it is issued, so synchronisation waits for nothing."""

    _current = threading.local()

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.ptr = 0 if null else next(_ptrs)
        self.device_id = _state.local.device
        self._prev: list = []

    def synchronize(self):
        _launches.wait(self.device_id)

    def record(self, event=None):
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):
        return None

    def use(self):
        Stream._current.stream = self
        return self

    def __enter__(self):
        self._prev.append(getattr(Stream._current, "stream", None))
        Stream._current.stream = self
        return self

    def __exit__(self, *exc):
        Stream._current.stream = self._prev.pop()
        return False

    @property
    def done(self):
        return True


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    s = getattr(Stream._current, "stream", None)
    return s if s is not None else Stream.null


class Event:
    """A simulated CUDA event: ``record`` takes the host clock."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.disable_timing = disable_timing
        self._t = None
        self.ptr = next(_ptrs)

    def record(self, stream=None):
        _state.check_device(_state.local.device)
        self._t = _launches.queue_end(_state.local.device)  # when the work queued before it is done

    def synchronize(self):
        left = (self._t or 0.0) - time.perf_counter()
        if left > 0:
            time.sleep(left)

    def query(self) -> bool:
        return True

    @property
    def done(self):
        return True


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds between two recorded events (cupy's units)."""
    for e in (start_event, end_event):
        if e.disable_timing:
            raise CUDARuntimeError(400, "cudaErrorInvalidResourceHandle: an event created with "
                                        "disable_timing=True cannot be timed")
        if e._t is None:
            raise CUDARuntimeError(600, "cudaErrorNotReady: the event has not been recorded")
    return (end_event._t - start_event._t) * 1e3


from . import nccl  # noqa: E402,F401  (after Device/Stream: nccl uses them)
