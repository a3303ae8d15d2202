"""Machine fingerprint: CPU, BLAS and threads, memory, GPUs via NVML, performance settings, versions.

This is the only module of benchbench that imports ``pynvml`` (package
``nvidia-ml-py``). Where NVML is missing or fails (no driver, no GPU) the GPU
part is empty and nothing raises. ``GpuMonitor`` reads a GPU's energy counter and
memory during a cell.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import socket
import threading

from benchbench import __version__

try:  # pragma: no cover - depends on the machine
    import pynvml
except Exception:  # ImportError, or a broken install
    pynvml = None

# Environment variables that change performance, recorded with every run.
PERF_ENV_VARS = (
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "MKL_ENABLE_INSTRUCTIONS", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_", "PYTHONMALLOC", "LD_PRELOAD", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
    "NVIDIA_TF32_OVERRIDE", "CUPY_TF32",
)

# ISA flags worth recording (x86 /proc/cpuinfo "flags", aarch64 "Features").
ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "asimdhp", "asimddp", "fphp", "bf16", "i8mm", "sve", "sve2", "sme",
)

# ISA level a BLAS kernel uses, and the level a CPU supports (higher is wider SIMD).
_X86_KERNEL_LEVEL = {
    **dict.fromkeys(("prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron", "opteron_sse3",
                     "barcelona", "bobcat", "katmai", "coppermine", "northwood", "banias", "athlon"), 0),
    **dict.fromkeys(("sandybridge", "bulldozer", "piledriver"), 1),
    **dict.fromkeys(("haswell", "zen", "steamroller", "excavator"), 2),
    **dict.fromkeys(("skylakex", "cooperlake", "sapphirerapids"), 3),
}
_X86_LEVEL_NAME = {0: "SSE only", 1: "avx", 2: "avx2 + fma", 3: "avx512f"}
_ARM_KERNEL_LEVEL = {
    **dict.fromkeys(("armv8", "cortexa53", "cortexa55", "cortexa57", "cortexa72", "cortexa73", "neoversen1",
                     "thunderx", "thunderx2t99", "thunderx3t110", "tsv110", "falkor", "emag8180", "vortex"), 0),
    **dict.fromkeys(("neoversev1", "a64fx", "armv8sve"), 1),
    **dict.fromkeys(("neoversen2", "neoversev2", "armv9sme"), 2),
}
_ARM_LEVEL_NAME = {0: "asimd", 1: "sve", 2: "sve2"}
_MKL_LEVEL = {"sse4_2": 0, "avx": 1, "avx2": 2, "avx512": 3, "avx512_e1": 3, "avx512_e2": 3, "avx512_e3": 3,
              "avx512_e4": 3, "avx10": 3}


# ---------------------------------------------------------------- CPU

def _read_cpuinfo() -> dict:
    """The first processor block of /proc/cpuinfo as a dict (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return {}
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())
    return info


# aarch64 /proc/cpuinfo has no model name: (implementer, part) -> name for common server cores.
_ARM_PARTS = {
    ("0x41", "0xd0c"): "ARM Neoverse-N1", ("0x41", "0xd40"): "ARM Neoverse-V1", ("0x41", "0xd49"): "ARM Neoverse-N2",
    ("0x41", "0xd4f"): "ARM Neoverse-V2", ("0x41", "0xd84"): "ARM Neoverse-V3", ("0x41", "0xd8e"): "ARM Neoverse-N3",
    ("0x46", "0x001"): "Fujitsu A64FX", ("0x48", "0xd01"): "HiSilicon Kunpeng-920",
}


def _arm_model(info: dict) -> str | None:
    implementer, part = info.get("CPU implementer"), info.get("CPU part")
    if not implementer or not part:
        return None
    return _ARM_PARTS.get((implementer.lower(), part.lower()), f"ARM implementer {implementer} part {part}")


def _max_mhz() -> float | None:
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="ascii") as f:
            return int(f.read().strip()) / 1000.0
    except (OSError, ValueError):
        pass
    try:
        import psutil

        freq = psutil.cpu_freq()
        if freq is not None and freq.max:
            return float(freq.max)
    except Exception:
        pass
    return None


def cpu_info() -> dict:
    """The CPU block: model, arch, physical and logical cores, ISA flags of interest, max MHz."""
    info = _read_cpuinfo()
    model = (info.get("model name") or info.get("Model Name") or info.get("cpu model") or _arm_model(info)
             or info.get("Hardware") or platform.processor() or platform.machine() or "unknown")
    flags = set((info.get("flags") or info.get("Features") or "").split())
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:
        physical = None
    return {
        "model": re.sub(r"\s+", " ", model).strip(),
        "arch": platform.machine() or None,
        "cores_physical": physical,
        "cores_logical": os.cpu_count(),
        "flags": [f for f in ISA_FLAGS if f in flags],
        "max_mhz": _max_mhz(),
    }


# ---------------------------------------------------------------- BLAS

def _cpu_level(flags, arch: str | None) -> tuple[int, str, bool]:
    """(ISA level, its name, is_arm) of a CPU from its flags."""
    flags = set(flags)
    if (arch or "").lower() in ("aarch64", "arm64") or "asimd" in flags:
        level = 2 if "sve2" in flags else 1 if "sve" in flags else 0
        return level, _ARM_LEVEL_NAME[level], True
    level = 3 if "avx512f" in flags else 2 if {"avx2", "fma"} <= flags else 1 if "avx" in flags else 0
    return level, _X86_LEVEL_NAME[level], False


def blas_warning(kernel: str | None, flags, env: dict, arch: str | None = None) -> str | None:
    """A one-line warning when an environment variable forces a BLAS kernel below what the CPU supports.

    Args:
        kernel: the kernel the BLAS library reports (threadpoolctl's ``architecture``).
        flags: the CPU's ISA flags.
        env: the environment (``OPENBLAS_CORETYPE``, ``MKL_ENABLE_INSTRUCTIONS`` are read).
        arch: the machine architecture (``platform.machine()``).

    Returns:
        The warning, or None when nothing is forced or the forced kernel is as wide as the CPU allows.
    """
    level, level_name, is_arm = _cpu_level(flags, arch)
    forced = env.get("OPENBLAS_CORETYPE")
    if forced:
        name = kernel or forced
        table = _ARM_KERNEL_LEVEL if is_arm else _X86_KERNEL_LEVEL
        kernel_level = table.get(name.lower().replace("-", "").replace("_", ""))
        if kernel_level is not None and kernel_level < level:
            return (f"OPENBLAS_CORETYPE={forced} forces the {name} kernel; this CPU supports {level_name}; "
                    f"BLAS figures may be lower than the hardware allows")
    mkl = env.get("MKL_ENABLE_INSTRUCTIONS")
    if mkl and not is_arm:
        mkl_level = _MKL_LEVEL.get(mkl.lower())
        if mkl_level is not None and mkl_level < level:
            return (f"MKL_ENABLE_INSTRUCTIONS={mkl} limits MKL to {mkl}; this CPU supports {level_name}; "
                    f"BLAS figures may be lower than the hardware allows")
    return None


def _threadpool_info() -> list[dict]:
    try:
        import numpy  # noqa: F401  (loads the BLAS library so that threadpoolctl sees it)
        import threadpoolctl

        return threadpoolctl.threadpool_info()
    except Exception:
        return []


def blas_info(cpu: dict | None = None, env: dict | None = None) -> dict:
    """The BLAS block: library, version, kernel, threads and a warning (fields None where unknown)."""
    cpu = cpu_info() if cpu is None else cpu
    env = os.environ if env is None else env
    blas = next((lib for lib in _threadpool_info() if lib.get("user_api") == "blas"), None)
    out = {"library": None, "version": None, "kernel": None, "threads": None, "warning": None}
    if blas is not None:
        out.update(library=blas.get("internal_api"), version=blas.get("version"),
                   kernel=blas.get("architecture"), threads=blas.get("num_threads"))
    out["warning"] = blas_warning(out["kernel"], cpu.get("flags", ()), env, cpu.get("arch"))
    return out


def memory_bytes() -> int | None:
    """Total host memory in bytes, None where unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


# ---------------------------------------------------------------- NVML

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
    }


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


# ---------------------------------------------------------------- versions and fingerprint

def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _mpi_library() -> str | None:
    for dist in ("mpich", "openmpi", "impi-rt", "msmpi"):
        v = _dist_version(dist)
        if v is not None:
            return f"{dist} {v}"
    return None


def _nccl_version(cupy) -> str | None:
    nccl = getattr(getattr(cupy, "cuda", None), "nccl", None)  # set once the communicators loaded it
    code = None
    if nccl is not None and getattr(nccl, "available", True):
        try:
            code = int(nccl.get_version())
        except Exception:
            code = None
    if code:
        major, rest = (code // 10000, code % 10000) if code >= 10000 else (code // 1000, code % 1000)
        return f"{major}.{rest // 100}.{rest % 100}"
    return _dist_version("nvidia-nccl-cu13", "nvidia-nccl-cu12", "nvidia-nccl-cu11")


def versions() -> dict:
    """Versions of benchbench and of the libraries that shape its figures (None where absent)."""
    import numpy

    from benchbench.core import backend

    out = {"benchbench": __version__, "numpy": numpy.__version__, "cupy": None, "cuda_runtime": None,
           "nccl": None, "mpi4py": _dist_version("mpi4py"), "mpi": _mpi_library(),
           "pandas": _dist_version("pandas"), "matplotlib": _dist_version("matplotlib")}
    cupy = backend.cupy
    if cupy is not None:
        out["cupy"] = str(getattr(cupy, "__version__", None) or "") or None
        try:
            out["cuda_runtime"] = _cuda_version_text(int(cupy.cuda.runtime.runtimeGetVersion()))
        except Exception:
            pass
        out["nccl"] = _nccl_version(cupy)
    return out


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return slug or "host"


def machine_id(fp: dict) -> str:
    """A stable id for the hardware: ``<hostname slug>-<8 hex>``, the hex a SHA-256 of CPU model and GPUs.

    Raises:
        ValueError: ``fp`` is not a fingerprint dict.
    """
    if not isinstance(fp, dict) or not isinstance(fp.get("cpu"), dict):
        raise ValueError(f"machine_id: fp must be a fingerprint() dict, got {type(fp).__name__}")
    parts = [str(fp["cpu"].get("model", ""))] + (["simulated GPUs"] if fp.get("simulated_gpus") else [])
    for gpu in fp.get("gpus") or ():
        parts += [str(gpu.get("name", "")), str(gpu.get("uuid") or "")]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:8]
    return f"{_slug(str(fp.get('hostname', '')))}-{digest}"


def _gpus_simulated() -> bool:
    from benchbench.core import backend

    return backend.gpu_simulated()


def fingerprint() -> dict:
    """The machine block of a results file (see ``results/README.md``).

    Never raises for missing hardware or libraries: unknown fields are None, and a
    machine without NVML has an empty ``gpus`` list.
    """
    cpu = cpu_info()
    env = {name: os.environ.get(name) for name in PERF_ENV_VARS}
    fp = {
        "id": None,
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "blas": blas_info(cpu, os.environ),
        "memory_bytes": memory_bytes(),
        "env": env,
        "gpus": gpu_list(),
        "simulated_gpus": _gpus_simulated(),
        "versions": versions(),
    }
    fp["id"] = machine_id(fp)
    return fp


def _simulated_note() -> str:
    from benchbench.core import backend

    return backend.SIMULATED_NOTE


def _gib(n) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def format_fingerprint(fp: dict) -> str:
    """The fingerprint as readable lines, for ``benchbench info``."""
    if not isinstance(fp, dict) or not isinstance(fp.get("cpu"), dict):
        raise ValueError(f"format_fingerprint: fp must be a fingerprint() dict, got {type(fp).__name__}")
    cpu, blas = fp["cpu"], fp.get("blas") or {}
    mhz = f", max {cpu['max_mhz']:.0f} MHz" if cpu.get("max_mhz") else ""
    lines = [] if not fp.get("simulated_gpus") else [f"WARNING   {_simulated_note()}"]
    lines += [
        f"machine   {fp.get('id')} (host {fp.get('hostname')})",
        f"os        {fp.get('os')}, Python {fp.get('python')}",
        f"cpu       {cpu.get('model')} ({cpu.get('arch')}), {cpu.get('cores_physical') or '?'} physical / "
        f"{cpu.get('cores_logical') or '?'} logical cores{mhz}",
        f"          ISA: {' '.join(cpu.get('flags') or []) or 'none of interest'}",
    ]
    if blas.get("library"):
        lines.append(f"blas      {blas['library']} {blas.get('version') or ''}"
                     f"{', kernel ' + blas['kernel'] if blas.get('kernel') else ''}, {blas.get('threads')} threads")
    else:
        lines.append("blas      not detected")
    if blas.get("warning"):
        lines.append(f"          warning: {blas['warning']}")
    lines.append(f"memory    {_gib(fp.get('memory_bytes'))}")
    gpus = fp.get("gpus") or []
    if not gpus:
        lines.append("gpus      none found (NVML reports no NVIDIA GPU)")
    for i, g in enumerate(gpus):
        head = "gpus      " if i == 0 else "          "
        clocks, pcie = g.get("clocks_mhz") or {}, g.get("pcie") or {}
        parts = [f"[{g.get('index')}] {g.get('name')}", _gib(g.get("memory_bytes")),
                 f"driver {g.get('driver')}", f"CUDA {g.get('cuda')}"]
        if g.get("power_limit_w"):
            parts.append(f"{g['power_limit_w']:.0f} W")
        if clocks.get("sm_max"):
            parts.append(f"SM {clocks['sm_max']} MHz")
        if pcie.get("gen"):
            parts.append(f"PCIe gen{pcie['gen']} x{pcie.get('width')}")
        if g.get("processes"):
            parts.append(f"{g['processes']} other process(es)")
        lines.append(head + ", ".join(parts))
    env = {k: v for k, v in (fp.get("env") or {}).items() if v is not None}
    lines.append("env       " + (" ".join(f"{k}={v}" for k, v in env.items()) or "no performance variables set"))
    vers = {k: v for k, v in (fp.get("versions") or {}).items() if v is not None}
    lines.append("versions  " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    return "\n".join(lines)
