"""Array backends: numpy on the CPU, cupy on NVIDIA GPUs.

This is the only module of benchbench that imports cupy. Everything else asks
it for the array module of an array (``get_array_module``) and moves arrays
with ``to_device``; on a machine without cupy the GPU half degrades to stub
types and clear errors.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
import warnings

import numpy


def _import_cupy():
    """``(cupy or None, the exception that stopped it or None, the warnings it emitted)``.

    A warning while importing cupy (a CUDA version notice, a deprecation) must not decide
    whether the GPU is used: where warnings are errors (pytest here), it would otherwise
    end the import and make every GPU path look absent. The warnings are kept, not shown.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import cupy as module
            import cupy.cuda  # noqa: F401
        except Exception as e:  # ImportError, or a broken CUDA install
            module, error = None, e
        else:
            error = None
    return module, error, tuple(f"{w.category.__name__}: {w.message}" for w in caught)


cupy, _cupy_import_error, _cupy_import_warnings = _import_cupy()


class _StubNdarray:
    """Stands in for ``cupy.ndarray`` where cupy is absent, so isinstance checks work."""


ndarray = cupy.ndarray if cupy is not None else _StubNdarray

_SPEC = re.compile(r"^(cpu|gpu:(\d+))$")
_cuda_ok: bool | None = None
_cuda_error: str | None = None


def cupy_available() -> bool:
    """True when cupy imported (a GPU may still be missing)."""
    return cupy is not None


def cupy_import_error() -> str | None:
    """Why cupy could not be imported (``"ModuleNotFoundError: No module named 'cupy'"``), or None."""
    if _cupy_import_error is None:
        return None
    return f"{type(_cupy_import_error).__name__}: {_cupy_import_error}"


def cupy_import_warnings() -> tuple[str, ...]:
    """The warnings importing cupy emitted (kept, not shown: they must not disable the GPU)."""
    return _cupy_import_warnings


def cupy_missing_text() -> str:
    """What stops cupy, for people: not installed, or installed but failing to import (and why)."""
    e = _cupy_import_error
    if e is None:
        return "cupy imported"
    if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == "cupy":
        return "cupy is not installed"
    return f"cupy is installed but its import failed ({cupy_import_error()})"


_blas = {"controller": None, "pid": None}


def blas_threads() -> int:
    """The CPU BLAS library's current thread limit (threadpoolctl), else ``OMP_NUM_THREADS``, else 1.

    The executor sets the limit (data-parallel ranks share the cores); array code that splits its own
    work over threads (large copies) follows it so that it oversubscribes nothing.
    """
    pid = os.getpid()
    if _blas["pid"] != pid:  # a forked child re-reads its own limits
        _blas["pid"], _blas["controller"] = pid, None
        try:
            import threadpoolctl

            found = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
            _blas["controller"] = found[0] if found else None
        except Exception:  # noqa: BLE001 - no introspection: fall back to the environment
            _blas["controller"] = None
    lib = _blas["controller"]
    if lib is not None:
        return max(1, int(lib.num_threads))
    text = os.environ.get("OMP_NUM_THREADS", "") or "1"
    return max(1, int(text)) if text.isdigit() else 1


@contextlib.contextmanager
def blas_limit(threads: int):
    """The CPU BLAS library at ``threads`` threads for the block, then at its limit before (nothing
    changes where no BLAS library is found). The limit is the whole process's: for code whose own
    threads each run single-threaded GEMMs (``cpu_winograd``)."""
    blas_threads()  # finds this process's controller
    lib = _blas["controller"]
    if lib is None:
        yield
        return
    before = int(lib.num_threads)
    lib.set_num_threads(threads)
    try:
        yield
    finally:
        lib.set_num_threads(before)


def gpu_simulated() -> bool:
    """True when ``cupy`` is the simulated CUDA machine of ``tests/simgpu`` (no figure is a GPU's)."""
    return cupy is not None and bool(getattr(cupy, "_benchbench_simulated", False))


def sim_counts() -> dict | None:
    """Kernel launches, CUDA graph launches and host synchronisations (transfers back to the host) so
    far, as the simulated GPUs count them: ``{"launches": n, "graph_launches": g, "syncs": m}``; None on
    a real GPU or without cupy."""
    if not gpu_simulated():
        return None
    s = cupy._sim_stats()
    return {"launches": int(s.get("launches", 0)), "graph_launches": int(s.get("graph_launches", 0)),
            "syncs": int(s["device_to_host"])}


SIMULATED_NOTE = ("SIMULATED GPUs (tests/simgpu): GPU cells prove that the code runs; "
                  "their timings, energy and memory are not figures of any GPU")


def cuda_available() -> bool:
    """True when cupy imported and at least one CUDA device answers."""
    global _cuda_ok, _cuda_error
    if _cuda_ok is None:
        if cupy is None:
            _cuda_ok, _cuda_error = False, cupy_missing_text()
        else:
            try:
                n = cupy.cuda.runtime.getDeviceCount()
            except Exception as e:
                _cuda_ok, _cuda_error = False, f"CUDA does not answer ({type(e).__name__}: {e})"
            else:
                _cuda_ok = n > 0
                _cuda_error = None if _cuda_ok else "CUDA reports no device"
    return _cuda_ok


def cuda_unavailable_reason() -> str | None:
    """Why :func:`cuda_available` is False (one clause), or None when a GPU answers."""
    cuda_available()
    return _cuda_error


def gpu_count() -> int:
    """Number of CUDA devices cupy sees (0 without cupy)."""
    if not cuda_available():
        return 0
    return int(cupy.cuda.runtime.getDeviceCount())


def float_dtype(value, what: str):
    """``numpy.dtype(value)`` when it is a float type, else TypeError ``"{what}, got {value}"``."""
    try:
        dtype = numpy.dtype(value)
    except TypeError:
        raise TypeError(f"{what}, got {value!r}") from None
    if dtype.kind != "f":
        raise TypeError(f"{what}, got {dtype}")
    return dtype


def get_array_module(*args):
    """Return ``cupy`` if any argument is a cupy array (or a Variable holding one), else ``numpy``."""
    if cupy is not None:
        for a in args:
            a = getattr(a, "array", a)
            if isinstance(a, cupy.ndarray):
                return cupy
    return numpy


_kernel_cache: dict = {}


def elementwise_kernel(in_params: str, out_params: str, operation: str, name: str, **options):
    """A ``cupy.ElementwiseKernel``, made at its first use and cached by its definition.

    Nothing is compiled at import: cupy compiles a kernel at its first launch (for each set of
    argument types) and keeps it. The definitions live in ``core/kernels``.
    """
    key = ("elementwise", in_params, out_params, operation, name, tuple(sorted(options.items())))
    kernel = _kernel_cache.get(key)
    if kernel is None:
        kernel = _kernel_cache[key] = cupy.ElementwiseKernel(in_params, out_params, operation, name, **options)
    return kernel


def reduction_kernel(in_params: str, out_params: str, map_expr: str, reduce_expr: str, post_map_expr: str,
                     identity: str, name: str, **options):
    """A ``cupy.ReductionKernel``, made at its first use and cached by its definition."""
    key = ("reduction", in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name,
           tuple(sorted(options.items())))
    kernel = _kernel_cache.get(key)
    if kernel is None:
        kernel = _kernel_cache[key] = cupy.ReductionKernel(in_params, out_params, map_expr, reduce_expr,
                                                           post_map_expr, identity, name, **options)
    return kernel


def gemm_add(transa: str, transb: str, a, b, out) -> None:
    """``out += op(a) @ op(b)`` on a GPU in one cuBLAS call (``cupy.cublas.gemm`` with ``beta=1``);
    ``op`` is the transpose for ``'T'``. ``out`` must be C- or F-contiguous (else cupy copies it)."""
    import cupy.cublas  # cupy imports it lazily

    cupy.cublas.gemm(transa, transb, a, b, out=out, beta=1.0)


#: The array classes of both backends, for ``isinstance`` checks.
ARRAY_TYPES = (numpy.ndarray, ndarray)


def is_array(a) -> bool:
    """True for numpy and cupy arrays."""
    return isinstance(a, ARRAY_TYPES)


class Device:
    """A place for arrays: ``Device("cpu")`` or ``Device("gpu:N")``.

    Args:
        spec: ``"cpu"``, ``"gpu:N"``, an int N (a GPU), or another Device.

    Raises:
        ValueError: the spec is malformed.
        RuntimeError: a GPU was asked for and cupy or the GPU is missing.
    """

    __slots__ = ("kind", "index")

    def __init__(self, spec="cpu"):
        if isinstance(spec, Device):
            self.kind, self.index = spec.kind, spec.index
            return
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec = f"gpu:{spec}"
        if not isinstance(spec, str):
            raise TypeError(f"Device: spec must be 'cpu' or 'gpu:N', got {type(spec).__name__} {spec!r}")
        m = _SPEC.match(spec.strip())
        if m is None:
            raise ValueError(f"Device: spec must be 'cpu' or 'gpu:N', got {spec!r}")
        if m.group(1) == "cpu":
            self.kind, self.index = "cpu", None
            return
        self.kind, self.index = "gpu", int(m.group(2))
        if cupy is None:
            raise RuntimeError(
                f"Device: {spec!r} needs cupy, and {cupy_missing_text()}; install it with "
                "`pip install 'benchbench[gpu]'` on a machine with an NVIDIA GPU"
            )
        n = gpu_count()
        if self.index >= n:
            raise RuntimeError(f"Device: {spec!r} does not exist; this machine has {n} GPU(s)")

    @property
    def xp(self):
        return numpy if self.kind == "cpu" else cupy

    def __repr__(self):
        return f"Device({str(self)!r})"

    def __str__(self):
        return "cpu" if self.kind == "cpu" else f"gpu:{self.index}"

    def __eq__(self, other):
        return isinstance(other, Device) and (self.kind, self.index) == (other.kind, other.index)

    def __hash__(self):
        return hash((self.kind, self.index))

    @contextlib.contextmanager
    def scope(self):
        """Make this device current for the block (a no-op on the CPU)."""
        if self.kind == "cpu":
            yield self
        else:
            with cupy.cuda.Device(self.index):
                yield self

    def synchronize(self):
        """Wait for all queued work on this device (a no-op on the CPU)."""
        if self.kind == "gpu":
            with cupy.cuda.Device(self.index):
                cupy.cuda.get_current_stream().synchronize()


def get_device_from_array(a) -> Device:
    """The Device that holds array ``a``."""
    a = getattr(a, "array", a)
    if cupy is not None and isinstance(a, cupy.ndarray):
        return Device(f"gpu:{a.device.id}")
    return Device("cpu")


def to_device(a, device):
    """Copy array ``a`` to ``device`` (a Device or spec); returns ``a`` itself when it is already there."""
    device = Device(device)
    if a is None:
        return None
    if device.kind == "cpu":
        if cupy is not None and isinstance(a, cupy.ndarray):
            return cupy.asnumpy(a)
        return numpy.asarray(a)
    with cupy.cuda.Device(device.index):
        if isinstance(a, cupy.ndarray) and a.device.id == device.index:
            return a
        return cupy.asarray(a)


def capturing() -> bool:
    """True while the current stream (of the current GPU) is capturing a CUDA graph: work issued now
    is recorded for ``Graph.launch``, not run, and nothing may wait for it or read it back."""
    if cupy is None:
        return False
    stream = cupy.cuda.get_current_stream()
    return stream.ptr != 0 and bool(stream.is_capturing())  # the legacy stream never captures


def as_numpy(a):
    """A numpy copy (or the array itself) of a numpy or cupy array."""
    a = getattr(a, "array", a)
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy.asnumpy(a)
    return numpy.asarray(a)


def synchronize(xp_or_array=None):
    """Wait for the current stream of a cupy array's GPU (of the current GPU for ``cupy``); nothing on the CPU."""
    if cupy is None:
        return
    if isinstance(xp_or_array, cupy.ndarray):
        with xp_or_array.device:  # the array's own GPU, which need not be the current one
            cupy.cuda.get_current_stream().synchronize()
    elif xp_or_array is cupy:
        cupy.cuda.get_current_stream().synchronize()


class SyncedSpan:
    """What :func:`synced_timer` measured: ``seconds`` (set when the block ends)."""

    __slots__ = ("seconds",)

    def __init__(self):
        self.seconds = float("nan")


@contextlib.contextmanager
def synced_timer(device=None):
    """Wall seconds of the block on ``device``, its queued work included: the one device-synchronised timer.

    The device is synchronised before the first clock read (so earlier work is not counted) and
    again before the last (so the block's own queued kernels are). Every hand-timed span of
    benchbench (probes, the all-reduce, the profiler, ``profile``, the bandwidth sweep) uses it;
    per-step timing with CUDA events is ``executor.timing.StepTimer``.

    Args:
        device: a ``Device`` or spec (``"cpu"``, ``"gpu:0"``), or a device array (its own GPU);
            None or the CPU: no synchronisation.

    Example:
        >>> with synced_timer("cpu") as span:
        ...     pass
        >>> span.seconds >= 0
        True
    """
    if device is None:
        sync = _no_sync
    elif isinstance(device, (Device, str)):
        sync = Device(device).synchronize
    else:
        def sync(a=device):
            synchronize(a)
    span = SyncedSpan()
    sync()
    t0 = time.perf_counter()
    try:
        yield span
    finally:
        sync()
        span.seconds = time.perf_counter() - t0


def _no_sync():
    return None

