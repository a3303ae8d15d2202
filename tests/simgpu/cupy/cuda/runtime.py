"""Simulated CUDA runtime API (``cupy.cuda.runtime``)."""
from __future__ import annotations

from .. import _state

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

    _sync_events(_state.check_device(_state.local.device))


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
