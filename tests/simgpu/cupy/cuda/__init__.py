"""Simulated ``cupy.cuda``: devices, streams, events, the runtime, memory and NCCL."""
from __future__ import annotations

import itertools
import threading
import time

from .. import _capture, _launches, _state
from . import memory, runtime  # noqa: F401
from .memory import (MemoryPointer, MemoryPool, PinnedMemoryPool, get_allocator, set_allocator,  # noqa: F401
                     using_allocator)
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
        dev = _state.check_device(self.id)
        _capture.check_sync(dev, None, "cudaDeviceSynchronize")
        _launches.wait(dev)
        _sync_events(dev)

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
    """A simulated stream of the device current at its creation (the null stream: of whichever device
    is current). Work is done when it is issued, but an event recorded on it completes only when
    something synchronises with it (see ``Event``)."""

    _current = threading.local()
    _by_ptr: dict = {}

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.ptr = 0 if null else next(_ptrs)
        self._non_blocking = bool(non_blocking)
        self.device_id = None if null else _state.check_device(_state.local.device)
        self._prev: list = []
        if not null:
            Stream._by_ptr[self.ptr] = self

    def _device(self) -> int:
        return _state.local.device if self.device_id is None else self.device_id

    def synchronize(self):
        _capture.check_sync(self._device(), self.ptr, "cudaStreamSynchronize")
        _launches.wait(self._device())
        _sync_events(self._device(), self.ptr)

    def record(self, event=None):
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):
        if event._captured is not None and _capture.active.get(self.ptr) is not event._captured:
            raise NotImplementedError("simulated GPUs: a stream waiting on an event recorded in another stream's "
                                      "capture joins that capture; captures over several streams are not simulated")
        op = _capture.op(self._device(), self)
        if op is not None:
            op.issued("cudaStreamWaitEvent", lambda: None, 0)  # a dependency: no work of its own

    # ---- stream capture (cupy's API; see cupy._capture for what is simulated)
    def begin_capture(self, mode=None):
        """Begin capturing: work issued on this stream is recorded into a graph, not run."""
        if self.ptr == 0 or self.ptr == 1:
            raise RuntimeError("cannot capture on the default (legacy) stream")
        runtime.streamBeginCapture(self.ptr, runtime.streamCaptureModeRelaxed if mode is None else mode)

    def end_capture(self):
        """End the capture and return the graph of the work recorded (a ``cupy.cuda.Graph``)."""
        from .graph import Graph

        return Graph._from_capture(runtime._ended.pop(runtime.streamEndCapture(self.ptr)))

    def is_capturing(self):
        return runtime.streamIsCapturing(self.ptr)

    @property
    def is_non_blocking(self):
        return self._non_blocking

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
        _capture.check_sync(self._device(), self.ptr, "cudaStreamQuery")
        return all(e._reached() for e in _pending if e._stream_key == (self._device(), self.ptr))


Stream.null = Stream(null=True)


def stream_device(ptr: int) -> int | None:
    """The device of the stream with pointer ``ptr`` (None: the null stream, any device); an unknown
    pointer raises cudaErrorInvalidResourceHandle."""
    if int(ptr) == 0:
        return None
    s = Stream._by_ptr.get(int(ptr))
    if s is None:
        raise CUDARuntimeError(400, f"cudaErrorInvalidResourceHandle: no stream {int(ptr):#x}")
    return s.device_id


# Events recorded but not yet known complete: real CUDA completes them asynchronously, and a
# program may rely on completion only after a synchronisation (or a blocking copy to the host).
_pending: list = []


def _sync_events(device: int | None = None, stream_ptr: int | None = None, upto=None) -> None:
    """Mark complete the pending events of ``device`` (all devices: None), of one stream, and/or
    recorded no later than event ``upto`` on its stream."""
    keep = []
    for e in _pending:
        dev, ptr = e._stream_key
        same = (device is None or dev == device) and (stream_ptr is None or ptr == stream_ptr)
        if upto is not None:
            same = same and e._seq <= upto._seq
        if same:
            e._complete = True
        else:
            keep.append(e)
    _pending[:] = keep


def get_current_stream(device_id=None):
    s = getattr(Stream._current, "stream", None)
    return s if s is not None else Stream.null


_event_seq = itertools.count()


def _latency_s() -> float:
    """How long after its record an event completes by itself (``BENCHBENCH_SIM_EVENT_LATENCY_S``,
    default 2 ms): until then only a synchronisation completes it."""
    import os

    text = os.environ.get("BENCHBENCH_SIM_EVENT_LATENCY_S", "").strip()
    return float(text) if text else 0.002


class Event:
    """A simulated CUDA event of the device current at its creation: ``record`` takes the host clock;
    it is complete (``query()``, ``done``, timing) only after a synchronisation with it: its own, its
    stream's, its device's, or a blocking copy to the host."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.disable_timing = disable_timing
        self._t = None
        self.ptr = next(_ptrs)
        self.device_id = _state.check_device(_state.local.device)
        self._complete = True  # an event never recorded reports complete (cudaEventQuery: success)
        self._stream_key = self._seq = None
        self._captured = None  # the capture it was last recorded in

    def _check_not_captured(self):
        if self._captured is not None:
            raise _capture.cuda_error(907)

    def record(self, stream=None):
        stream = get_current_stream() if stream is None else stream
        dev = stream._device()
        if dev != self.device_id:
            raise CUDARuntimeError(400, f"cudaErrorInvalidResourceHandle: an event of GPU {self.device_id} recorded "
                                        f"on a stream of GPU {dev}")
        op = _capture.op(dev, stream)
        if op is not None and op.issued("cudaEventRecord", lambda: None, 0):
            self._captured, self._complete, self._t = op.recording, True, None  # a node of the capture
            return
        self._captured = None
        self._t = _launches.queue_end(dev)  # when the work queued before it is done (now on an idle device)
        self._stream_key, self._seq, self._complete = (dev, stream.ptr), next(_event_seq), False
        _pending.append(self)

    def synchronize(self):
        self._check_not_captured()
        if self._t is None:
            return
        left = self._t - time.perf_counter()
        if left > 0:
            time.sleep(left)
        if not self._complete:
            dev, ptr = self._stream_key
            _sync_events(dev, ptr, upto=self)  # and every earlier event of its stream

    def _reached(self) -> bool:
        """Complete: synchronised with, or the device got there on its own (``_LATENCY_S`` after its
        queued work ends)."""
        if not self._complete and time.perf_counter() >= self._t + _latency_s():
            self._complete = True
        return self._complete

    def query(self) -> bool:
        self._check_not_captured()
        return self._reached()

    @property
    def done(self):
        self._check_not_captured()
        return self._reached()


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds between two recorded events (cupy's units)."""
    for e in (start_event, end_event):
        e._check_not_captured()
        if e.disable_timing:
            raise CUDARuntimeError(400, "cudaErrorInvalidResourceHandle: an event created with "
                                        "disable_timing=True cannot be timed")
        if e._t is None:
            raise CUDARuntimeError(600, "cudaErrorNotReady: the event has not been recorded")
        if not e._reached():
            raise CUDARuntimeError(600, "cudaErrorNotReady: the event has not completed (synchronise with it "
                                        "before reading the time)")
    if start_event.device_id != end_event.device_id:
        raise CUDARuntimeError(400, "cudaErrorInvalidResourceHandle: events of two devices")
    return (end_event._t - start_event._t) * 1e3


from . import nccl  # noqa: E402,F401  (after Device/Stream: nccl uses them)
from . import graph  # noqa: E402,F401
from .graph import Graph  # noqa: E402,F401
