"""Kernel sources compiled with the real NVRTC (the compiler cupy uses at run time), without a GPU.

NVRTC runs on a machine with no GPU and no driver. It comes from the ``nvidia-cuda-nvrtc`` wheel
(a test dependency of benchbench) and is called through ctypes. Each (source, architecture) is
compiled once per process and kept in a cache folder under the temporary directory
(``BENCHBENCH_SIM_NVRTC_CACHE`` names another), so repeated test runs do not compile again.
"""
from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import tempfile
import threading

ARCHS = ("compute_80", "compute_90")


class CompileException(Exception):
    """NVRTC refused a kernel source; the message is NVRTC's log (as cupy's CompileException)."""


_lib = None
_lock = threading.Lock()
_memo: dict[tuple[str, str], str] = {}


def _find_library() -> str:
    try:
        import nvidia  # the namespace package of NVIDIA's CUDA wheels
    except ImportError:
        nvidia = None
    for root in list(getattr(nvidia, "__path__", [])):
        for pattern in ("cu13/lib/libnvrtc.so.*", "cuda_nvrtc/lib/libnvrtc.so.*", "cu12/lib/libnvrtc.so.*"):
            found = sorted(p for p in glob.glob(os.path.join(root, pattern)) if "builtins" not in p)
            if found:
                return found[0]
    raise RuntimeError("simulated GPUs: NVRTC is not installed, so kernel sources cannot be checked; install "
                       "the test dependencies (pip install -e '.[test]', which brings nvidia-cuda-nvrtc)")


def _nvrtc():
    global _lib
    with _lock:
        if _lib is None:
            lib = ctypes.CDLL(_find_library())
            lib.nvrtcGetErrorString.restype = ctypes.c_char_p
            _lib = lib
        return _lib


def _check(lib, status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"simulated GPUs: {what} failed: {lib.nvrtcGetErrorString(status).decode()}")


def version() -> tuple[int, int]:
    lib = _nvrtc()
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def _cache_dir() -> str:
    return os.environ.get("BENCHBENCH_SIM_NVRTC_CACHE") or os.path.join(tempfile.gettempdir(), "benchbench-nvrtc")


def compile_source(source: str, name: str, arch: str, options: tuple = ()) -> str:
    """PTX of ``source`` for ``arch`` (``compute_80``); CompileException with NVRTC's log if it fails."""
    opts = (f"-arch={arch}", "-std=c++17", *options)
    key = hashlib.sha256("\0".join((source, *opts)).encode()).hexdigest()
    memo = _memo.get((key, arch))
    if memo is not None:
        return memo
    path = os.path.join(_cache_dir(), f"{key}.ptx")
    try:
        with open(path, encoding="utf-8") as f:
            ptx = f.read()
        if ptx:
            _memo[(key, arch)] = ptx
            return ptx
    except OSError:
        pass
    lib = _nvrtc()
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), f"{name}.cu".encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        argv = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
        status = lib.nvrtcCompileProgram(prog, len(opts), argv)
        size = ctypes.c_size_t()
        _check(lib, lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
        log = ctypes.create_string_buffer(size.value)
        _check(lib, lib.nvrtcGetProgramLog(prog, log), "nvrtcGetProgramLog")
        if status != 0:
            raise CompileException(f"NVRTC ({arch}) refused kernel {name!r}: "
                                   f"{lib.nvrtcGetErrorString(status).decode()}\n{log.value.decode(errors='replace')}"
                                   f"\n--- source ---\n{source}")
        _check(lib, lib.nvrtcGetPTXSize(prog, ctypes.byref(size)), "nvrtcGetPTXSize")
        buf = ctypes.create_string_buffer(size.value)
        _check(lib, lib.nvrtcGetPTX(prog, buf), "nvrtcGetPTX")
        ptx = buf.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
    _memo[(key, arch)] = ptx
    try:
        os.makedirs(_cache_dir(), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(ptx)
        os.replace(tmp, path)
    except OSError:
        pass  # the cache is an optimisation only
    return ptx


def compile_all(source: str, name: str, options: tuple = ()) -> dict:
    """PTX of ``source`` for every architecture benchbench supports (sm_80 and sm_90)."""
    return {arch: compile_source(source, name, arch, options) for arch in ARCHS}
