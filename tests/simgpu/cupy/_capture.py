"""Stream capture: work issued on a capturing stream is recorded into a graph, not executed.

How it is simulated. An operation issued on a capturing stream is checked as CUDA checks it, then run
once on the current contents of its operands (so that later captured operations see values of the
right shapes and the errors cupy raises at call time are raised), and recorded as a replay (a
closure over the same buffers). When the capture ends, every block the capture touched is put back
as it was before the capture and every block allocated during it is filled with garbage (NaN, -1):
nothing the capture computed is visible until ``Graph.launch()`` replays the recorded operations in
order into the same buffers. No kernel launch is counted for a recorded operation; a graph launch
counts one ``graph_launches`` and queues the device time of its kernels.

Errors, as CUDA and cupy give them (``runtime.CUDARuntimeError`` with CUDA's code):
- 900 cudaErrorStreamCaptureUnsupported: synchronising the capturing stream, the device, or an
  unsafe call (a ``cudaMalloc`` by the pool) in a capture begun in global / thread-local mode; the
  capture is invalidated;
- 901 cudaErrorStreamCaptureInvalidated: work on, or ``end_capture`` of, an invalidated capture;
- 906 cudaErrorStreamCaptureImplicit: work on the legacy null stream while a blocking stream of its
  device captures (the capture is invalidated); querying the null stream only raises;
- 907 cudaErrorCapturedEvent: querying, synchronising with or timing an event recorded in a capture;
- 908 cudaErrorStreamCaptureWrongThread, 401 cudaErrorIllegalState: ending a non-relaxed capture from
  another thread, beginning twice or ending a stream that does not capture.
cupy's own refusals: transfers to or from the host on a capturing stream (``RuntimeError``), cuRAND
(``NotImplementedError``), capturing on the null stream (``RuntimeError``).
"""
from __future__ import annotations

import itertools
import threading
import weakref

import numpy

from . import _launches, _state

GLOBAL, THREAD_LOCAL, RELAXED = 0, 1, 2  # cudaStreamCaptureMode

_MESSAGES = {
    401: "cudaErrorIllegalState: the operation cannot be performed in the present state",
    900: "cudaErrorStreamCaptureUnsupported: operation not permitted when stream is capturing",
    901: "cudaErrorStreamCaptureInvalidated: operation failed due to a previous error during capture",
    906: "cudaErrorStreamCaptureImplicit: operation would make the legacy stream depend on a capturing "
         "blocking stream",
    907: "cudaErrorCapturedEvent: operation not permitted on an event last recorded in a capturing stream",
    908: "cudaErrorStreamCaptureWrongThread: attempt to terminate a thread-local capture sequence from "
         "another thread",
}

active: dict[int, Capture] = {}  # stream pointer -> the capture it runs (active or invalidated)
_births = itertools.count(1)  # allocation order: a graph's inputs were allocated before its capture began


def cuda_error(code: int, detail: str = ""):
    from .cuda.runtime import CUDARuntimeError

    return CUDARuntimeError(code, _MESSAGES[code] + (f" ({detail})" if detail else ""))


def birth() -> int:
    return next(_births)


class Capture:
    """One capture sequence on one stream, and after ``end_capture`` the body of its graph."""

    def __init__(self, stream, mode: int):
        self.stream_ptr, self.device, self.mode = stream.ptr, stream.device_id, mode
        self.blocking = not getattr(stream, "_non_blocking", False)
        self.thread = threading.get_ident()
        self.invalidated = None  # why, once invalidated
        self.done = False  # True once end_capture made it a graph
        self.first_birth = birth()
        self.nodes: list = []  # (name, replay) in issue order
        self.kernels = 0  # kernel nodes, each as much device time as one launch
        self.saved: dict[int, tuple] = {}  # id(host buffer) -> (buffer, its contents before the capture)
        self.new: list = []  # weakrefs to the blocks allocated during the capture
        self.freed_inputs: list[str] = []  # inputs (allocated before the capture) freed while it lives
        self.released: list[str] = []  # its blocks given back to the device while it lives
        self.graph = None  # a weakref to its graph, once end_capture made one

    def invalidate(self, why: str) -> None:
        if self.invalidated is None:
            self.invalidated = why

    def touch(self, mem) -> None:
        """Before an operation writes or reads block ``mem``: keep its pre-capture contents (once) and
        mark the block as memory of this capture."""
        host = mem.host
        if host is None:
            return
        if mem._users is None:
            mem._users = weakref.WeakSet()
        mem._users.add(self)
        if getattr(mem, "_birth", 0) >= self.first_birth or id(host) in self.saved:
            return
        self.saved[id(host)] = (host, host.copy(order="K"))

    def record(self, name: str, replay, kernels: int = 1) -> None:
        self.nodes.append((name, replay))
        self.kernels += kernels

    def finish(self) -> None:
        """End of capture: nothing it recorded has run yet."""
        for host, before in self.saved.values():
            host[...] = before
        self.saved = {}
        for ref in self.new:
            mem = ref()
            if mem is not None and mem.host is not None:
                garbage(mem.host)
        self.new = []


def visible(x) -> numpy.ndarray:
    """Device array ``x`` as a copy to the host outside the running captures sees it: the work they
    recorded has not run (their blocks hold what they held before, new blocks garbage)."""
    mem = x._mem
    if not active or mem is None or mem._users is None:
        return x._a
    for c in _holders(mem._users):
        host = mem.host
        if c.done or not (host.flags.c_contiguous or host.flags.f_contiguous):
            continue
        if id(host) in c.saved:
            base = c.saved[id(host)][1]
        elif getattr(mem, "_birth", 0) >= c.first_birth:
            base = numpy.empty_like(host)
            garbage(base)
        else:
            continue
        offset = x._a.__array_interface__["data"][0] - host.__array_interface__["data"][0]
        return numpy.ndarray(x._a.shape, x._a.dtype, buffer=base.ravel(order="K").view(numpy.uint8),
                             offset=offset, strides=x._a.strides)
    return x._a


def garbage(a: numpy.ndarray) -> None:
    """Fill ``a`` as fresh device memory may be: NaN for floats, all ones bits for integers."""
    if a.dtype.kind in "fc":
        a[...] = numpy.nan
    elif a.dtype.kind == "b":
        a[...] = True
    else:
        a[...] = numpy.iinfo(a.dtype).max if a.dtype.kind == "u" else -1


def current_stream():
    from .cuda import get_current_stream

    return get_current_stream()


def on(stream_ptr: int) -> Capture | None:
    return active.get(int(stream_ptr)) if active else None


def blocking_capture(device: int) -> Capture | None:
    """A capture on a blocking stream of ``device`` (the legacy null stream cannot be used then)."""
    for c in list(active.values()):  # a snapshot: other threads may begin or end captures
        if c.blocking and c.device == device:
            return c
    return None


class Op:
    """One device operation about to be issued on the current stream of ``device``.

    ``recording`` is the capture it goes into (None: it runs now). Call ``touch`` with the blocks it
    reads or writes before running it, then ``issued`` once it has run (True: recorded, launch nothing).
    """

    __slots__ = ("device", "stream_ptr", "recording", "_saved")

    def __init__(self, device: int, stream=None):
        s = current_stream() if stream is None else stream
        self.device, self.stream_ptr = device, int(getattr(s, "ptr", s))  # a Stream, or a raw pointer
        c = active.get(self.stream_ptr)
        if c is not None and c.device != device:
            c = None  # another device's current stream is its null stream
            self.stream_ptr = 0
        self.recording = c
        self._saved = []

    def touch(self, *mems) -> None:
        for mem in mems:
            if mem is None:
                continue
            if self.recording is not None:
                self.recording.touch(mem)
            elif self.stream_ptr == 0 and mem.host is not None and blocking_capture(self.device) is not None:
                self._saved.append((mem.host, mem.host.copy()))  # undone if the launch fails (906)

    def refuse_legacy(self, name: str) -> None:
        """Before work on the null stream that cannot be undone: 906 beside a blocking capture."""
        if self.recording is None and self.stream_ptr == 0:
            c = blocking_capture(self.device)
            if c is not None:
                c.invalidate(f"{name} on the legacy null stream")
                raise cuda_error(906, f"{name} issued on the null stream while stream {c.stream_ptr:#x} captures")

    def issued(self, name: str, replay, kernels: int = 1) -> bool:
        """The operation ran; record it (True) or refuse it on the null stream (906)."""
        if self.recording is not None:
            if self.recording.invalidated:  # its blocks are put back when the capture ends
                raise cuda_error(901, self.recording.invalidated)
            self.recording.record(name, replay, kernels)
            return True
        if self.stream_ptr == 0:
            c = blocking_capture(self.device)
            if c is not None:
                for host, before in self._saved:
                    host[...] = before
                c.invalidate(f"{name} on the legacy null stream")
                raise cuda_error(906, f"{name} issued on the null stream while stream {c.stream_ptr:#x} captures")
        return False


def op(device: int, stream=None) -> Op | None:
    """The capture check for an operation on ``device``; None (nothing to check) when no capture runs."""
    return Op(device, stream) if active else None


def stream_is_capturing(device: int, stream=None) -> bool:
    """``runtime.streamIsCapturing`` of ``stream`` (the current one by default), as cupy checks it before
    a transfer or a cuRAND call: the null stream beside a capturing blocking stream raises 906, an
    invalidated capture a RuntimeError."""
    if not active:
        return False
    s = current_stream() if stream is None else stream
    c = active.get(int(s.ptr))
    if c is not None and c.device == device:
        if c.invalidated:
            raise RuntimeError("the stream was capturing, but an error has invalidated the capture sequence")
        return True
    if int(s.ptr) == 0 or c is not None:
        c = blocking_capture(device)
        if c is not None:
            raise cuda_error(906, "cudaStreamIsCapturing on the null stream while a blocking stream captures")
    return False


def check_transfer(kind: str, device: int, stream=None) -> None:
    """cupy's check before a copy between host and device (``MemoryPointer.copy_*_async``)."""
    if stream_is_capturing(device, stream):
        what = "D2H" if kind == "device_to_host" else "H2D"
        raise RuntimeError(f"the current stream is capturing, so {what} transfers are disallowed")


def check_curand(device: int) -> None:
    """cupy's ``curand.setStream``, called before every draw: cuRAND in a capture is refused."""
    if stream_is_capturing(device):
        raise NotImplementedError("calling cuRAND API during stream capture is currently unsupported")


def check_sync(device: int, stream_ptr: int | None, what: str) -> None:
    """A host synchronisation with ``stream_ptr`` (None: the whole device) while captures run."""
    if not active:
        return
    if stream_ptr is None:
        for c in list(active.values()):  # a snapshot: other threads may begin or end captures
            if c.device == device:
                c.invalidate(what)
                raise cuda_error(900, f"{what} while stream {c.stream_ptr:#x} captures")
        return
    c = active.get(int(stream_ptr))
    if c is not None:
        c.invalidate(what)
        raise cuda_error(900, f"{what} on a capturing stream")
    if int(stream_ptr) == 0:
        c = blocking_capture(device)
        if c is not None:
            c.invalidate(what)
            raise cuda_error(906, f"{what} on the null stream while stream {c.stream_ptr:#x} captures")


def check_unsafe_call(what: str) -> None:
    """A potentially unsafe API call (cudaMalloc, cudaFree) from this thread: prohibited while a
    capture begun in global mode (any thread) or thread-local mode (this thread) runs."""
    me = threading.get_ident()
    for c in list(active.values()):  # a snapshot: other threads may begin or end captures
        if c.invalidated:
            continue
        if c.mode == GLOBAL or (c.mode == THREAD_LOCAL and c.thread == me):
            c.invalidate(what)
            raise cuda_error(900, f"{what} during a capture begun in "
                                  f"{'global' if c.mode == GLOBAL else 'thread-local'} mode")


def current_stream_ptr() -> int:
    import sys

    cuda = sys.modules.get("cupy.cuda")
    s = getattr(cuda, "get_current_stream", None)
    return int(s().ptr) if s is not None else 0


def _holders(users):
    """The captures in ``users`` that still hold the block: running ones, and live graphs."""
    for c in list(users or ()):
        if c.done:
            if c.graph is not None and c.graph() is not None:
                yield c
        elif active.get(c.stream_ptr) is c:
            yield c


def _memory_error(text: str):
    from .cuda.graph import GraphMemoryError

    return GraphMemoryError("simulated GPUs: " + text)


def check_reuse(users, stream_ptr: int, size: int) -> None:
    """The pool is about to hand a cached block to a new allocation on ``stream_ptr``: allowed only if
    no live graph, and no capture but the one running on that stream, used it."""
    for c in _holders(users):
        if c.done:
            raise _memory_error(f"a freed block of {size} bytes that a live CUDA graph uses would be handed to "
                                "another allocation (its next launch would overwrite it); keep the graph's "
                                "memory reserved (hold its arrays, or capture with a private pool)")
        if c.stream_ptr != stream_ptr:
            raise _memory_error(f"a freed block of {size} bytes that the capture on stream {c.stream_ptr:#x} uses "
                                "would be handed to another allocation")


def check_release(users, size: int, at_free: bool = False) -> None:
    """A block is given back to the device (``cudaFree``) while a capture or a live graph uses it."""
    for c in _holders(users):
        if at_free:  # in a destructor: the graph's next launch raises
            c.released.append(f"a block of {size} bytes freed without a pool")
        else:
            raise _memory_error(f"releasing a cached block of {size} bytes that a "
                                f"{'live CUDA graph' if c.done else 'running capture'} uses")


def freed(mem) -> None:
    """Block ``mem`` was freed: an input of a running capture or a live graph (allocated before the
    capture began) is then memory its replays read but nobody keeps."""
    for c in _holders(mem._users):
        if getattr(mem, "_birth", 0) < c.first_birth:
            c.freed_inputs.append(f"an input block of {mem.size} bytes")


def new_block(mem) -> None:
    """Block ``mem`` was just allocated: its order of birth, and the capture it belongs to."""
    mem._birth = birth()
    if active:
        try:
            ptr = int(current_stream().ptr)
        except Exception:
            return
        c = active.get(ptr)
        if c is not None and c.device == mem.device_id:
            c.new.append(weakref.ref(mem))
            mem._users = weakref.WeakSet([c])


def inherit(mem, users) -> None:
    """A cached block handed out again: the captures that used it still do."""
    if users:
        if mem._users is None:
            mem._users = weakref.WeakSet()
        mem._users.update(users)

