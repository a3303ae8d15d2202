"""Simulated CUDA runtime API (``cupy.cuda.runtime``)."""
from __future__ import annotations

from .. import _capture, _state

is_hip = False
_RUNTIME_VERSION = 13000
_DRIVER_VERSION = 13000


class CUDARuntimeError(RuntimeError):
    """cupy's ``CUDARuntimeError`` (``status`` is the cudaError code)."""

    def __init__(self, status, message=None):
        self.status = status
        super().__init__(message or f"CUDA runtime error {status}")


def getDeviceCount() -> int:
    return _state.device_count()


def getDevice() -> int:
    return _state.local.device


def setDevice(device: int) -> None:
    _state.local.device = _state.check_device(device)


def runtimeGetVersion() -> int:
    return _RUNTIME_VERSION


def driverGetVersion() -> int:
    return _DRIVER_VERSION


def deviceSynchronize() -> None:
    from . import _sync_events

    dev = _state.check_device(_state.local.device)
    _capture.check_sync(dev, None, "cudaDeviceSynchronize")
    _sync_events(dev)


# ------------------------------------------------------------------ stream capture (see cupy._capture)
streamCaptureModeGlobal = _capture.GLOBAL
streamCaptureModeThreadLocal = _capture.THREAD_LOCAL
streamCaptureModeRelaxed = _capture.RELAXED
streamCaptureStatusNone, streamCaptureStatusActive, streamCaptureStatusInvalidated = 0, 1, 2
_ended: dict[int, object] = {}  # graph handle -> the capture it holds, until Stream.end_capture takes it


def _stream(ptr: int):
    from . import Stream

    s = Stream._by_ptr.get(int(ptr))
    if s is None:
        raise CUDARuntimeError(400, f"cudaErrorInvalidResourceHandle: no stream {int(ptr):#x}")
    return s


def streamBeginCapture(stream: int, mode: int = streamCaptureModeRelaxed) -> None:
    """Begin capturing stream ``stream`` (a pointer) in capture mode ``mode``."""
    if int(stream) == 0:
        raise _capture.cuda_error(900, "the legacy null stream cannot capture")
    s = _stream(stream)
    if mode not in (streamCaptureModeGlobal, streamCaptureModeThreadLocal, streamCaptureModeRelaxed):
        raise CUDARuntimeError(1, f"cudaErrorInvalidValue: invalid stream capture mode {mode!r}")
    if int(stream) in _capture.active:
        raise _capture.cuda_error(401, "the stream is already capturing")
    _capture.active[int(stream)] = _capture.Capture(s, mode)


def streamEndCapture(stream: int) -> int:
    """End the capture of ``stream``; a handle of the graph made (cudaErrorStreamCaptureInvalidated if an
    error invalidated the capture: then nothing is made, and the stream no longer captures)."""
    import threading

    c = _capture.active.get(int(stream))
    if c is None:
        raise _capture.cuda_error(401, "the stream is not capturing")
    if c.mode != streamCaptureModeRelaxed and c.thread != threading.get_ident():
        raise _capture.cuda_error(908)
    del _capture.active[int(stream)]
    c.finish()
    if c.invalidated:
        raise _capture.cuda_error(901, c.invalidated)
    c.done = True
    _ended[id(c)] = c
    return id(c)


def streamIsCapturing(stream: int) -> bool:
    """Whether ``stream`` captures (cupy raises RuntimeError for an invalidated capture, and CUDA
    cudaErrorStreamCaptureImplicit for the null stream beside a capturing blocking stream)."""
    if int(stream) == 0:
        c = _capture.blocking_capture(_state.local.device)
        if c is not None:
            raise _capture.cuda_error(906, "cudaStreamIsCapturing on the null stream")
        return False
    _stream(stream)
    c = _capture.active.get(int(stream))
    if c is not None and c.invalidated:
        raise RuntimeError("the stream was capturing, but an error has invalidated the capture sequence")
    return c is not None


def memGetInfo() -> tuple[int, int]:
    """(free, total) bytes of the current device, as the pool sees them."""
    from .memory import _default_pool

    total = _state.device_memory()
    return max(0, total - _default_pool.total_bytes()), total


def pci_bus_id(device: int) -> str:
    """The simulated PCI bus id of ``device`` in CUDA's form (4-digit domain)."""
    return f"0000:{_state.check_device(device) + 0x10:02x}:00.0"


def getDeviceProperties(device: int) -> dict:
    d = _state.check_device(device)
    return {
        "name": f"Simulated GPU {d} (benchbench simgpu)".encode(),
        "totalGlobalMem": _state.device_memory(),
        "multiProcessorCount": 4,
        "major": 9,
        "minor": 0,
        "clockRate": 1000000,
        "memoryClockRate": 1000000,
        "memoryBusWidth": 1024,
        "pciBusID": d + 0x10,
        "pciDeviceID": 0,
        "pciDomainID": 0,
        "warpSize": 32,
        "maxThreadsPerBlock": 1024,
        "l2CacheSize": 1 << 20,
    }
