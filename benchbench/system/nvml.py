"""NVML part of the machine fingerprint: the GPU list and the per-cell GPU monitor.

This is the only module of benchbench that imports ``pynvml`` (package
``nvidia-ml-py``). Where NVML is missing or fails (no driver, no GPU) the GPU
list is empty and nothing raises. ``GpuMonitor`` reads a GPU's energy counter and
memory during a cell.
"""
from __future__ import annotations

import os
import threading

try:  # pragma: no cover - depends on the machine
    import pynvml
except Exception:  # ImportError, or a broken install
    pynvml = None

class _NvmlSession:
    """``with _NvmlSession() as nv``: the initialised pynvml module, or None where NVML fails."""

    def __enter__(self):
        self.nv = None
        if pynvml is not None:
            try:
                pynvml.nvmlInit()
                self.nv = pynvml
            except Exception:
                self.nv = None
        return self.nv

    def __exit__(self, *exc):
        if self.nv is not None:
            try:
                self.nv.nvmlShutdown()
            except Exception:
                pass
        return False


def _call(nv, name: str, *args):
    """``nv.<name>(*args)``, or None where the function is missing or NVML says it is unsupported."""
    fn = getattr(nv, name, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except Exception:
        return None


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _cuda_version_text(v) -> str | None:
    """12040 -> '12.4' (the encoding of CUDA driver and runtime versions)."""
    if not isinstance(v, int) or v <= 0:
        return None
    return f"{v // 1000}.{v % 1000 // 10}"


def _other_processes(nv, handle) -> int | None:
    procs = _call(nv, "nvmlDeviceGetComputeRunningProcesses", handle)
    if procs is None:
        return None
    return sum(1 for p in procs if getattr(p, "pid", None) != os.getpid())


def _gpu_entry(nv, index: int, handle, driver, cuda) -> dict:
    mem = _call(nv, "nvmlDeviceGetMemoryInfo", handle)
    power_mw = _call(nv, "nvmlDeviceGetEnforcedPowerLimit", handle)
    pci = _call(nv, "nvmlDeviceGetPciInfo", handle)
    sm_clock = getattr(nv, "NVML_CLOCK_SM", 1)
    mem_clock = getattr(nv, "NVML_CLOCK_MEM", 2)
    return {
        "index": index,
        "name": _text(_call(nv, "nvmlDeviceGetName", handle)) or "unknown GPU",
        "uuid": _text(_call(nv, "nvmlDeviceGetUUID", handle)),
        "pci_bus_id": _text(getattr(pci, "busId", None)),
        "memory_bytes": int(mem.total) if mem is not None else None,
        "driver": driver,
        "cuda": cuda,
        "power_limit_w": power_mw / 1000.0 if isinstance(power_mw, (int, float)) else None,
        "clocks_mhz": {"sm_max": _call(nv, "nvmlDeviceGetMaxClockInfo", handle, sm_clock),
                       "mem_max": _call(nv, "nvmlDeviceGetMaxClockInfo", handle, mem_clock)},
        "pcie": {"gen": _call(nv, "nvmlDeviceGetMaxPcieLinkGeneration", handle),
                 "width": _call(nv, "nvmlDeviceGetMaxPcieLinkWidth", handle)},
        "processes": _other_processes(nv, handle),
        **_clocks_and_links(nv, handle),
    }


_TOPOLOGY = {0: "same board", 10: "PCIe switch", 20: "PCIe switches", 30: "PCIe host bridge",
             40: "NUMA node (across host bridges)", 50: "system (across CPU sockets)"}


def _clocks_and_links(nv, handle) -> dict:
    """Current clocks, persistence mode, current PCIe link and active NVLinks of one GPU."""
    sm, mem = getattr(nv, "NVML_CLOCK_SM", 1), getattr(nv, "NVML_CLOCK_MEM", 2)
    persistence = _call(nv, "nvmlDeviceGetPersistenceMode", handle)
    peers = []
    for link in range(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18)):
        if _call(nv, "nvmlDeviceGetNvLinkState", handle, link) != 1:
            continue
        peers.append(_text(getattr(_call(nv, "nvmlDeviceGetNvLinkRemotePciInfo", handle, link), "busId", None)))
    return {
        "clocks_current_mhz": {"sm": _call(nv, "nvmlDeviceGetClockInfo", handle, sm),
                               "mem": _call(nv, "nvmlDeviceGetClockInfo", handle, mem)},
        "persistence_mode": None if persistence is None else persistence == 1,
        "pcie_current": {"gen": _call(nv, "nvmlDeviceGetCurrPcieLinkGeneration", handle),
                         "width": _call(nv, "nvmlDeviceGetCurrPcieLinkWidth", handle)},
        "nvlink": {"active_links": len(peers), "peers": [p for p in peers if p]},
    }


def gpu_topology(gpus: list[dict]) -> list[dict]:
    """How each pair of GPUs is joined: ``NVLink xN`` where links join them, else NVML's common PCIe ancestor.

    Args:
        gpus: ``gpu_list()`` entries (their ``nvlink.peers`` and ``pci_bus_id``).

    Returns:
        One ``{"a", "b", "link"}`` per pair, ``link`` None where NVML cannot say.
    """
    by_bus = {str(g.get("pci_bus_id") or "").lower(): g.get("index") for g in gpus}
    pairs = []
    with _NvmlSession() as nv:
        for i, a in enumerate(gpus):
            for b in gpus[i + 1:]:
                # NVML lists each link from both of its ends: the larger count is the number of links.
                links = max(sum(1 for p in (x.get("nvlink") or {}).get("peers") or [] if by_bus.get(p.lower()) == y["index"])
                            for x, y in ((a, b), (b, a)))
                text = f"NVLink x{links}" if links else None
                if text is None and nv is not None:
                    ha = _call(nv, "nvmlDeviceGetHandleByIndex", a["index"])
                    hb = _call(nv, "nvmlDeviceGetHandleByIndex", b["index"])
                    level = _call(nv, "nvmlDeviceGetTopologyCommonAncestor", ha, hb) if ha and hb else None
                    text = _TOPOLOGY.get(level)
                pairs.append({"a": a["index"], "b": b["index"], "link": text})
    return pairs


def gpu_list() -> list[dict]:
    """The NVIDIA GPUs NVML sees (NVML order, all of them whatever ``CUDA_VISIBLE_DEVICES`` says).

    Returns:
        One dict per GPU: ``index, name, uuid, pci_bus_id, memory_bytes, driver, cuda,
        power_limit_w, clocks_mhz {sm_max, mem_max}, pcie {gen, width}, processes`` (the
        number of other processes on it); a field is None where NVML does not report it.
        An empty list where NVML is missing or fails (no driver, no GPU).
    """
    with _NvmlSession() as nv:
        if nv is None:
            return []
        count = _call(nv, "nvmlDeviceGetCount")
        if not isinstance(count, int) or count <= 0:
            return []
        driver = _text(_call(nv, "nvmlSystemGetDriverVersion"))
        cuda = _cuda_version_text(_call(nv, "nvmlSystemGetCudaDriverVersion_v2")
                                  or _call(nv, "nvmlSystemGetCudaDriverVersion"))
        gpus = []
        for i in range(count):
            handle = _call(nv, "nvmlDeviceGetHandleByIndex", i)
            if handle is not None:
                gpus.append(_gpu_entry(nv, i, handle, driver, cuda))
        return gpus


def cuda_pci_bus_id(index: int) -> str | None:
    """The PCI bus id of CUDA device ``index`` as cupy reports it, None without cupy or GPU."""
    from benchbench.core import backend

    if backend.cupy is None or not backend.cuda_available():
        return None
    try:
        return str(backend.cupy.cuda.Device(index).pci_bus_id)
    except Exception:
        return None


def _handle_for_cuda_index(nv, index: int):
    """The NVML handle of CUDA device ``index`` (CUDA and NVML may number GPUs differently)."""
    bus = cuda_pci_bus_id(index)
    if bus is not None:
        handle = _call(nv, "nvmlDeviceGetHandleByPciBusId", bus)
        if handle is not None:
            return handle
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if index < len(visible):
        v = visible[index]
        if v.isdigit():
            return _call(nv, "nvmlDeviceGetHandleByIndex", int(v))
        return _call(nv, "nvmlDeviceGetHandleByUUID", v)
    return _call(nv, "nvmlDeviceGetHandleByIndex", index)


# NVML clock event (throttle) reason bits that slow a measurement down.
_CLOCK_EVENTS = ((0x4, "sw_power_cap"), (0x8, "hw_slowdown"), (0x20, "sw_thermal"), (0x40, "hw_thermal"),
                 (0x80, "hw_power_brake"))


class GpuMonitor:
    """Energy and peak memory of one GPU over a cell, from NVML.

    Reads the GPU's total-energy counter (mJ, Volta and later) at start and stop, and
    the memory in use whenever :meth:`sample` is called (at start, at stop, and every
    ``interval_s`` seconds on a background thread when given). Every figure is None
    where NVML or the GPU does not provide it; nothing raises for a missing GPU.

    Args:
        index: the CUDA device index (as in ``gpu:N``).
        interval_s: memory sampling period for a background thread, or None for none.

    Example:
        >>> with GpuMonitor(0) as mon:  # doctest: +SKIP
        ...     train()
        >>> mon.result["energy_j"], mon.result["peak_memory_bytes"]  # doctest: +SKIP
    """

    def __init__(self, index: int, interval_s: float | None = None):
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"GpuMonitor: index must be an integer >= 0, got {index!r}")
        if interval_s is not None and not (isinstance(interval_s, (int, float)) and interval_s > 0):
            raise ValueError(f"GpuMonitor: interval_s must be a positive number or None, got {interval_s!r}")
        self.index, self.interval_s = index, interval_s
        self.result: dict | None = None
        self._session = _NvmlSession()
        self._nv = self._handle = None
        self._energy_start = None
        self._peak = None
        self._scope = None
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread = None

    def start(self) -> GpuMonitor:
        """Open NVML, read the energy counter and the memory in use."""
        self._nv = self._session.__enter__()
        if self._nv is not None:
            self._handle = _handle_for_cuda_index(self._nv, self.index)
        if self._handle is not None:
            self._energy_start = _call(self._nv, "nvmlDeviceGetTotalEnergyConsumption", self._handle)
            self.sample()
            if self.interval_s is not None:
                self._thread = threading.Thread(target=self._run, name=f"GpuMonitor({self.index})", daemon=True)
                self._thread.start()
        return self

    def _run(self):
        while not self._stop_event.wait(self.interval_s):
            self.sample()

    def sample(self) -> int | None:
        """Read the memory in use now (this process's where NVML tells it, else the device's)."""
        if self._handle is None:
            return None
        used, scope = None, None
        procs = _call(self._nv, "nvmlDeviceGetComputeRunningProcesses", self._handle) or ()
        for p in procs:
            if getattr(p, "pid", None) == os.getpid() and isinstance(getattr(p, "usedGpuMemory", None), int):
                used, scope = int(p.usedGpuMemory), "process"
        if used is None:
            mem = _call(self._nv, "nvmlDeviceGetMemoryInfo", self._handle)
            if mem is not None:
                used, scope = int(mem.used), "device"
        with self._lock:
            if used is not None and (self._peak is None or used > self._peak):
                self._peak, self._scope = used, scope
        return used

    def energy_mj(self) -> int | None:
        """The GPU's total-energy counter now (mJ), or None where NVML does not give it."""
        if self._handle is None:
            return None
        value = _call(self._nv, "nvmlDeviceGetTotalEnergyConsumption", self._handle)
        return int(value) if isinstance(value, int) else None

    def process_ids(self) -> list[int] | None:
        """Process ids with a compute context on the GPU now, or None where NVML does not say."""
        if self._handle is None:
            return None
        procs = _call(self._nv, "nvmlDeviceGetComputeRunningProcesses", self._handle)
        if procs is None:
            return None
        return sorted({int(p.pid) for p in procs if isinstance(getattr(p, "pid", None), int)})

    def clock_events(self) -> list[str] | None:
        """Reasons the GPU's clocks are held down now (thermal, power cap, hardware slowdown...).

        Idle and application-clock settings are not events; None where NVML does not say.
        """
        if self._handle is None:
            return None
        mask = _call(self._nv, "nvmlDeviceGetCurrentClocksEventReasons", self._handle)
        if mask is None:
            mask = _call(self._nv, "nvmlDeviceGetCurrentClocksThrottleReasons", self._handle)
        if not isinstance(mask, int):
            return None
        return [name for bit, name in _CLOCK_EVENTS if mask & bit]

    def stop(self) -> dict:
        """Stop sampling and return ``{index, energy_j, peak_memory_bytes, memory_scope, source}``."""
        if self._thread is not None:
            self._stop_event.set()
            self._thread.join()
            self._thread = None
        energy_j = None
        if self._handle is not None:
            self.sample()
            end = _call(self._nv, "nvmlDeviceGetTotalEnergyConsumption", self._handle)
            if isinstance(end, int) and isinstance(self._energy_start, int) and end >= self._energy_start:
                energy_j = (end - self._energy_start) / 1000.0
        self._session.__exit__(None, None, None)
        self.result = {
            "index": self.index,
            "energy_j": energy_j,
            "peak_memory_bytes": self._peak,
            "memory_scope": self._scope,
            "source": "nvml" if self._handle is not None else None,
        }
        self._nv = self._handle = None
        return self.result

    def __enter__(self) -> GpuMonitor:
        return self.start()

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False
