"""A simulated NVML (``pynvml``, as the nvidia-ml-py package provides it) for the simulated GPUs.

Settings:
    BENCHBENCH_SIM_GPUS         number of GPUs (default 2), shared with the simulated cupy
    BENCHBENCH_SIM_GPU_MEMORY   capacity of each GPU
    BENCHBENCH_SIM_GPU_POWER_W  constant power draw in watts (default 250; "300,200" per GPU): the
                                energy counter grows at exactly this rate with wall time, the same in
                                every process, so an energy figure can be checked against P x time
    BENCHBENCH_SIM_GPU_THROTTLE throttle-reason bit mask reported while set (default 0: none)
    BENCHBENCH_SIM_GPU_FOREIGN  number of other processes NVML lists on each GPU (default 0)
    BENCHBENCH_SIM_GPU_HOST_PIDS  1: NVML lists host pids (a container's view): the run's own pids are
                                absent from the process list, which holds other numbers for them
    BENCHBENCH_SIM_GPU_RAMP_S   seconds the SM clock takes to ramp from idle (345 MHz) to 1980 MHz
                                after the device's first matrix product (default 0: always at 1980)

Memory in use is what this process's simulated pool holds plus a fixed context size, from the
first use of a device on; NVML sees no other process's simulated memory.
"""
from __future__ import annotations

import os
import sys
import time

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_UNKNOWN = 999

NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_CLOCK_VIDEO = 0, 1, 2, 3
NVML_TEMPERATURE_GPU = 0
nvmlClocksThrottleReasonGpuIdle = 0x1
nvmlClocksThrottleReasonApplicationsClocksSetting = 0x2
nvmlClocksThrottleReasonSwPowerCap = 0x4
nvmlClocksThrottleReasonHwSlowdown = 0x8
nvmlClocksThrottleReasonSwThermalSlowdown = 0x20
nvmlClocksThrottleReasonHwThermalSlowdown = 0x40
nvmlClocksThrottleReasonHwPowerBrakeSlowdown = 0x80
nvmlClocksThrottleReasonNone = 0x0
nvmlClocksEventReasonNone = 0x0

_CONTEXT_BYTES = 512 << 20
_EPOCH = 1.7e9  # the counters count from a fixed time, so every process reads the same energy


class NVMLError(Exception):
    _messages = {1: "Uninitialized", 2: "Invalid Argument", 3: "Not Supported", 6: "Not Found", 999: "Unknown Error"}

    def __new__(cls, value=NVML_ERROR_UNKNOWN):
        sub = _ERRORS.get(value, cls) if cls is NVMLError else cls
        obj = Exception.__new__(sub)
        obj.value = value
        return obj

    def __init__(self, value=NVML_ERROR_UNKNOWN):
        self.value = value
        super().__init__(self._messages.get(value, "Unknown Error"))

    def __str__(self):
        return self._messages.get(self.value, "Unknown Error")


class NVMLError_Uninitialized(NVMLError):
    pass


class NVMLError_InvalidArgument(NVMLError):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_NotFound(NVMLError):
    pass


_ERRORS = {1: NVMLError_Uninitialized, 2: NVMLError_InvalidArgument, 3: NVMLError_NotSupported,
           6: NVMLError_NotFound}

_init_count = 0


def nvmlInit():
    global _init_count
    _init_count += 1


nvmlInitWithFlags = lambda flags=0: nvmlInit()  # noqa: E731


def nvmlShutdown():
    global _init_count
    if _init_count == 0:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    _init_count -= 1


def _ready():
    if _init_count == 0:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)


def _count() -> int:
    text = os.environ.get("BENCHBENCH_SIM_GPUS", "").strip()
    return int(text) if text.isdigit() else 2


class _Handle:
    def __init__(self, index):
        self.index = index

    def __repr__(self):
        return f"<simulated nvmlDevice {self.index}>"


def _handle(h) -> int:
    _ready()
    if not isinstance(h, _Handle) or not 0 <= h.index < _count():
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return h.index


class _Struct:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return f"{type(self).__name__}({self.__dict__})"


class c_nvmlMemory_t(_Struct):
    pass


class c_nvmlPciInfo_t(_Struct):
    pass


class c_nvmlProcessInfo_t(_Struct):
    pass


class c_nvmlUtilization_t(_Struct):
    pass


def nvmlSystemGetDriverVersion():
    _ready()
    return "580.00.00-sim"


def nvmlSystemGetCudaDriverVersion():
    _ready()
    return 13000


nvmlSystemGetCudaDriverVersion_v2 = nvmlSystemGetCudaDriverVersion


def nvmlSystemGetNVMLVersion():
    _ready()
    return "13.580.00-sim"


def nvmlDeviceGetCount():
    _ready()
    return _count()


def nvmlDeviceGetHandleByIndex(index):
    _ready()
    if not isinstance(index, int) or not 0 <= index < _count():
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(index)


def _bus_id(index) -> str:
    return f"00000000:{index + 0x10:02X}:00.0"  # NVML's form: 8-digit domain, upper case


def nvmlDeviceGetHandleByPciBusId(bus_id):
    _ready()
    text = bus_id.decode() if isinstance(bus_id, bytes) else str(bus_id)
    try:
        dom, bus, rest = text.split(":")
        key = (int(dom, 16), int(bus, 16), rest.lower())
    except ValueError:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT) from None
    for i in range(_count()):
        if key == (0, i + 0x10, "00.0"):
            return _Handle(i)
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def _uuid(index) -> str:
    return f"GPU-5151a7ed-0000-4000-8000-{index:012d}"


def nvmlDeviceGetHandleByUUID(uuid):
    _ready()
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    for i in range(_count()):
        if text == _uuid(i):
            return _Handle(i)
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def nvmlDeviceGetName(handle):
    return f"Simulated GPU {_handle(handle)} (benchbench simgpu)"


def nvmlDeviceGetUUID(handle):
    return _uuid(_handle(handle))


def nvmlDeviceGetIndex(handle):
    return _handle(handle)


def nvmlDeviceGetPciInfo(handle):
    i = _handle(handle)
    return c_nvmlPciInfo_t(busId=_bus_id(i), busIdLegacy=_bus_id(i)[4:], domain=0, bus=i + 0x10, device=0)


def _capacity() -> int:
    cupy_state = sys.modules.get("cupy._state")
    if cupy_state is not None:
        return cupy_state.device_memory()
    from cupy import _state as cupy_state  # the same settings as the simulated cupy

    return cupy_state.device_memory()


def _used(index) -> int:
    cupy_state = sys.modules.get("cupy._state")
    if cupy_state is None or index not in cupy_state.contexts:
        return 0
    pool = sys.modules["cupy.cuda.memory"]._default_pool
    p = pool._pools.get(index)
    return _CONTEXT_BYTES + ((p.used + p.cached_bytes) if p is not None else 0)


def nvmlDeviceGetMemoryInfo(handle, version=None):
    i = _handle(handle)
    total, used = _capacity(), _used(i)
    return c_nvmlMemory_t(total=total, used=used, free=max(0, total - used))


def _power_w(index) -> float:
    text = os.environ.get("BENCHBENCH_SIM_GPU_POWER_W", "").strip()
    if not text:
        return 250.0
    parts = [float(p) for p in text.split(",")]
    return parts[index] if index < len(parts) else parts[-1]


def nvmlDeviceGetPowerUsage(handle):
    return int(round(_power_w(_handle(handle)) * 1000))


def nvmlDeviceGetEnforcedPowerLimit(handle):
    _handle(handle)
    return 700_000


nvmlDeviceGetPowerManagementLimit = nvmlDeviceGetEnforcedPowerLimit


def nvmlDeviceGetTotalEnergyConsumption(handle):
    """Millijoules since a fixed time, at the simulated constant power."""
    i = _handle(handle)
    return int((time.time() - _EPOCH) * _power_w(i) * 1000)


def nvmlDeviceGetMaxClockInfo(handle, clock_type):
    _handle(handle)
    return {NVML_CLOCK_SM: 1980, NVML_CLOCK_GRAPHICS: 1980, NVML_CLOCK_MEM: 2619}.get(clock_type, 1000)


def nvmlDeviceGetClockInfo(handle, clock_type):
    """The current clock: the SM clock ramps from idle under ``BENCHBENCH_SIM_GPU_RAMP_S`` (see cupy._clocks)."""
    i = _handle(handle)
    clocks = sys.modules.get("cupy._clocks")
    if clocks is not None and clock_type in (NVML_CLOCK_SM, NVML_CLOCK_GRAPHICS):
        return clocks.sm_clock_mhz(i)
    if clock_type in (NVML_CLOCK_SM, NVML_CLOCK_GRAPHICS) and os.environ.get("BENCHBENCH_SIM_GPU_RAMP_S", "").strip() \
            not in ("", "0"):
        return 345  # never used in this process: idle
    return nvmlDeviceGetMaxClockInfo(handle, clock_type)


def nvmlDeviceGetCurrentClocksThrottleReasons(handle):
    _handle(handle)
    text = os.environ.get("BENCHBENCH_SIM_GPU_THROTTLE", "").strip()
    return int(text, 0) if text else 0


nvmlDeviceGetCurrentClocksEventReasons = nvmlDeviceGetCurrentClocksThrottleReasons


def nvmlDeviceGetTemperature(handle, sensor=NVML_TEMPERATURE_GPU):
    _handle(handle)
    return 40


def nvmlDeviceGetUtilizationRates(handle):
    _handle(handle)
    return c_nvmlUtilization_t(gpu=0, memory=0)


def nvmlDeviceGetMaxPcieLinkGeneration(handle):
    _handle(handle)
    return 5


def nvmlDeviceGetMaxPcieLinkWidth(handle):
    _handle(handle)
    return 16


def nvmlDeviceGetComputeRunningProcesses(handle):
    i = _handle(handle)
    procs = []
    if _used(i):
        procs.append(c_nvmlProcessInfo_t(pid=_listed_pid(os.getpid()), usedGpuMemory=_used(i)))
    text = os.environ.get("BENCHBENCH_SIM_GPU_FOREIGN", "").strip()
    for k in range(int(text) if text.isdigit() else 0):
        procs.append(c_nvmlProcessInfo_t(pid=10_000_000 + k, usedGpuMemory=1 << 30))
    return procs


nvmlDeviceGetComputeRunningProcesses_v3 = nvmlDeviceGetComputeRunningProcesses


# ---------------------------------------------------------------------------------------------------
# Clocks, persistence mode and the links between GPUs (what the machine fingerprint records).
#   BENCHBENCH_SIM_GPU_NVLINK   NVLinks per GPU (default 0: PCIe only, NVLink queries are
#                               "Not Supported" as on a PCIe card); with k > 0, GPU i's even links
#                               join it to GPU i+1 and its odd links to GPU i-1 (mod the count): a
#                               ring, each physical link seen from both of its ends
NVML_FEATURE_DISABLED, NVML_FEATURE_ENABLED = 0, 1
NVML_NVLINK_MAX_LINKS = 18
NVML_TOPOLOGY_INTERNAL, NVML_TOPOLOGY_SINGLE, NVML_TOPOLOGY_MULTIPLE = 0, 10, 20
NVML_TOPOLOGY_HOSTBRIDGE, NVML_TOPOLOGY_NODE, NVML_TOPOLOGY_SYSTEM = 30, 40, 50


def _sim_nvlinks() -> int:
    text = os.environ.get("BENCHBENCH_SIM_GPU_NVLINK", "").strip()
    return int(text) if text.isdigit() else 0


def nvmlDeviceGetPersistenceMode(handle):
    _handle(handle)
    return NVML_FEATURE_ENABLED


def nvmlDeviceGetCurrPcieLinkGeneration(handle):
    return nvmlDeviceGetMaxPcieLinkGeneration(handle)


def nvmlDeviceGetCurrPcieLinkWidth(handle):
    return nvmlDeviceGetMaxPcieLinkWidth(handle)


def _sim_link(handle, link) -> int:
    i = _handle(handle)
    if not isinstance(link, int) or not 0 <= link < NVML_NVLINK_MAX_LINKS:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    if _sim_nvlinks() == 0:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return i


def nvmlDeviceGetNvLinkState(handle, link):
    _sim_link(handle, link)
    return NVML_FEATURE_ENABLED if link < _sim_nvlinks() else NVML_FEATURE_DISABLED


def nvmlDeviceGetNvLinkRemotePciInfo(handle, link):
    i = _sim_link(handle, link)
    if link >= _sim_nvlinks():
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    peer = (i + (1 if link % 2 == 0 else -1)) % _count()
    return c_nvmlPciInfo_t(busId=_bus_id(peer), busIdLegacy=_bus_id(peer)[4:], domain=0, bus=peer + 0x10, device=0)


def nvmlDeviceGetTopologyCommonAncestor(handle1, handle2):
    a, b = _handle(handle1), _handle(handle2)
    return NVML_TOPOLOGY_INTERNAL if a == b else NVML_TOPOLOGY_HOSTBRIDGE
def _listed_pid(pid: int) -> int:
    """``pid`` as NVML lists it: under ``BENCHBENCH_SIM_GPU_HOST_PIDS=1`` the host's pid of a process in a
    container (another pid namespace), which is not the pid the process sees for itself."""
    return pid + 4_000_000 if os.environ.get("BENCHBENCH_SIM_GPU_HOST_PIDS", "").strip() == "1" else pid
