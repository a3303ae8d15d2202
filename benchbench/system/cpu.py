"""CPU, BLAS and memory part of the machine fingerprint.

The CPU model, ISA flags of interest and core counts (``cpu_info``), the BLAS
library, kernel and threads with a warning where the kernel is narrower than the
CPU allows (``blas_info``, ``blas_warning``), total host memory
(``memory_bytes``), and the environment variables that change performance
(``PERF_ENV_VARS``).
"""
from __future__ import annotations

import os
import platform
import re

# Environment variables that change performance, recorded with every run.
PERF_ENV_VARS = (
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "MKL_ENABLE_INSTRUCTIONS", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_", "PYTHONMALLOC", "LD_PRELOAD", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
    "NVIDIA_TF32_OVERRIDE", "CUPY_TF32", "BENCHBENCH_CONV_ALGORITHM",
    "BENCHBENCH_CPU_KERNELS", "NUMBA_THREADING_LAYER", "NUMBA_NUM_THREADS",
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
