"""The compiled CPU kernel layer: numba, imported lazily, its thread pool and its on-disk cache.

The fused CPU kernels (the families in :data:`FAMILIES`: ``cpu_update``, ``cpu_normalization``,
``cpu_loss``, ``cpu_rnn``, ``cpu_activation``) are plain Python functions compiled by numba with
:func:`kernel`; a family module is imported only once the layer is active. Nothing here runs at ``import benchbench``: numba is imported at the first
:func:`active` that finds the switch on ``compiled``, so a process that never trains on the CPU
never pays for it.

Choices, and why:
- ``parallel=True`` with ``prange`` over blocks; ``fastmath=False`` so that the compiled results
  round as numpy's (no reassociated sums, no approximate ``sqrt``/``exp``); ``error_model="numpy"``
  (a division by zero gives inf/nan as in numpy, and the loops carry no exception branch);
  ``cache=True`` in ``user_cache_dir("benchbench")/numba`` (``NUMBA_CACHE_DIR`` overrides), where
  numba writes each file to a temporary name and renames it, so ranks compiling at once are safe.
- Threading layer ``tbb`` (the ``tbb`` package): numba's only layer that is both fork-safe and
  thread-safe, and it starts a parallel region in a few microseconds. GNU OpenMP (``omp``) aborts
  a forked child that runs a parallel region after its parent did (the largest-batch probes fork),
  and ``workqueue`` wakes its threads through the kernel (tens of microseconds a region on a busy
  machine). Without TBB the layer falls back to ``workqueue`` (fork-safe) and records so.
- Threads follow the BLAS limit (``backend.blas_threads``, which the executor sets per rank), set
  with ``numba.set_num_threads`` at :func:`prepare` and again after a fork.
- Compilation happens in :func:`prepare`, which the step builder calls before any step: every
  kernel is compiled (or loaded from the cache) for the step's dtype with explicit signatures, so
  no compilation falls inside a timed step; the seconds and cold/cached counts go into the cell's
  record (``cpu_kernels``).

Switch ``BENCHBENCH_CPU_KERNELS=compiled|numpy`` (read once through ``core.config``): ``numpy`` keeps
the plain array-code path, which stays the reference every kernel is tested against.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
import time

import numpy

from .. import backend
from ..config import switch

SWITCH = "BENCHBENCH_CPU_KERNELS"
# The kernel families, imported (and their kernels compiled) by ``prepare``.
FAMILIES = ["cpu_update", "cpu_normalization", "cpu_loss", "cpu_rnn", "cpu_activation", "cpu_conv_lanes", "cpu_conv",
            "cpu_pooling", "cpu_col2im", "cpu_winograd_tiles", "cpu_winograd"]

_state = {"active": None, "numba": None, "error": None, "layer": None, "pid": None, "threads": None}
_kernels: list = []  # (dispatcher, signature templates), in definition order


def active() -> bool:
    """True when the compiled kernels are used: the switch says ``compiled`` (its default) and numba
    imports. The first call reads the switch and imports numba."""
    on = _state["active"]
    if on is None:
        on = switch(SWITCH) == "compiled" and _numba() is not None
        _state["active"] = on
    return on


@contextlib.contextmanager
def using(path: str):
    """Run the block on ``path`` (``"compiled"`` or ``"numpy"``) whatever the switch says, then go
    back (tests and benchmarks that compare both paths in one process).

    Raises:
        ValueError: ``path`` is neither; RuntimeError: ``compiled`` asked for where numba does not import.
    """
    if path not in ("compiled", "numpy"):
        raise ValueError(f"cpu_compiled.using: path must be 'compiled' or 'numpy', got {path!r}")
    if path == "compiled" and _numba() is None:
        raise RuntimeError(f"cpu_compiled.using: numba did not import ({_state['error']})")
    old = _state["active"]
    _state["active"] = path == "compiled"
    if path == "compiled" and _state["pid"] is None:
        sync_threads()
    try:
        yield
    finally:
        _state["active"] = old


def usable(*arrays) -> bool:
    """True when the compiled kernels apply to ``arrays``: the layer is active and every array is a
    C-contiguous numpy array of float32 or float64 (the compiled signatures)."""
    if not active():
        return False
    for a in arrays:
        if type(a) is not numpy.ndarray or a.dtype not in _FLOATS or not a.flags.c_contiguous:
            return False
    if _state["pid"] is None:  # first use in this process, or after a fork
        sync_threads()
    return True


_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def numba_error() -> str | None:
    """Why numba did not import (``None`` when it did, or when nothing tried yet)."""
    return _state["error"]


def cache_dir() -> str:
    """Where the compiled kernels are cached: ``NUMBA_CACHE_DIR``, else ``user_cache_dir/numba``."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given:
        return given
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir("benchbench"), "numba")


def _load_tbb() -> bool:
    """Make the ``tbb`` package's library loadable by numba's TBB layer (pip puts it in the
    environment's ``lib``, which the loader does not search); True when it is loaded."""
    names = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}
    name = names.get(sys.platform, "libtbb.so.12")
    for folder in (os.path.join(sys.prefix, "lib"), os.path.join(sys.prefix, "Library", "bin"), None):
        try:
            ctypes.CDLL(name if folder is None else os.path.join(folder, name), mode=ctypes.RTLD_GLOBAL)
            return True
        except OSError:
            continue
    return False


def _numba():
    if _state["numba"] is None and _state["error"] is None:
        os.environ.setdefault("NUMBA_CACHE_DIR", cache_dir())
        simd = switch("BENCHBENCH_SIMD_BYTES")
        if simd != "auto":  # kernels built for another vector width than the machine's: cached apart
            os.environ["NUMBA_CACHE_DIR"] = os.path.join(os.environ["NUMBA_CACHE_DIR"], f"simd{simd}")
        asked = os.environ.get("NUMBA_THREADING_LAYER", "").strip().lower()
        tbb = asked not in ("omp", "workqueue") and _load_tbb()  # a layer asked for by name is respected
        layer = asked or ("tbb" if tbb else "workqueue")
        try:
            import numba
        except Exception as e:  # noqa: BLE001 - no numba: the numpy path, and the record says why
            _state["error"] = f"{type(e).__name__}: {e}"
            return None
        numba.config.THREADING_LAYER = layer
        _state["numba"], _state["layer"] = numba, layer
    return _state["numba"]


def kernel(*signatures: str, parallel: bool = True, fastmath=False):
    """Decorator: ``fn`` compiled by numba, with its signatures for :func:`prepare`.

    Each signature is a template in which ``A`` stands for a C-contiguous 1-d array of the kernel's
    dtype, ``A2``/``A3``/``A4`` for 2/3/4-d ones, ``S`` for a scalar of that dtype (callers pass
    ``dtype.type(x)``: the arithmetic rounds as numpy's does with a Python float), ``D`` for a
    float64, ``I`` for an int64 and ``T`` for a C-contiguous 1-d int64 array, e.g. ``"void(A, A, S)"``. Call only from a family module, which is imported when :func:`active`.
    ``fastmath`` (numba's flags, e.g. ``{"reassoc"}``) only for a kernel whose sums may change order
    (a convolution's weight gradient: the dot products vectorise only then).
    """
    numba = _numba()
    assert numba is not None, "a kernel family was imported without numba"

    def wrap(fn):
        d = numba.njit(parallel=parallel, cache=True, fastmath=fastmath, error_model="numpy", nogil=True)(fn)
        _kernels.append((d, signatures))
        return d

    return wrap


def reduction(fn):
    """Decorator: ``fn`` compiled as a helper of the kernels (called from them, not from Python) whose
    floating-point additions may be reassociated (``fastmath={"reassoc"}``), so that LLVM splits a
    sum over several vector accumulators. Only for sums accumulated in float64 over float32 data:
    the order changes the float64 sum by far less than float32 rounding. The flag stays on the
    helper's own instructions when it is inlined into a kernel."""
    numba = _numba()
    assert numba is not None, "a kernel family was imported without numba"
    return numba.njit(cache=True, fastmath={"reassoc"}, error_model="numpy", nogil=True)(fn)


def signature(template: str, dtype) -> str:
    """A :func:`kernel` template made concrete for ``dtype`` (``float32`` or ``float64``)."""
    t = numpy.dtype(dtype).name
    out = template
    for k, v in (("A4", f"{t}[:, :, :, ::1]"), ("A3", f"{t}[:, :, ::1]"), ("A2", f"{t}[:, ::1]"),
                 ("A", f"{t}[::1]"), ("S", t), ("D", "float64"), ("I", "int64"),
                 ("T", "int64[::1]")):
        out = out.replace(k, v)
    return out


def _forked():
    """In a forked child: set the threads again at the next kernel (the child's BLAS limit may differ)."""
    _state["pid"] = None


os.register_at_fork(after_in_child=_forked)


def sync_threads() -> int:
    """Set numba's threads to the BLAS threads (at most numba's pool); returns the count."""
    numba = _state["numba"]
    n = max(1, min(backend.blas_threads(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    _state["pid"], _state["threads"] = os.getpid(), n
    return n


def start_threads() -> None:
    """Run one parallel region, so that the thread pool exists (before a memory limit, say)."""
    if active():
        if _state.get("touch") is None:
            _state["touch"] = _state["numba"].njit(parallel=True, cache=True)(_touch)
        _state["touch"](numpy.zeros(64, numpy.float32))


def _touch(a):
    a[:] = a + a  # an array expression: numba runs it as a parallel region


def threads() -> int:
    """The threads a parallel kernel uses now (1 when the layer is off)."""
    return _state["threads"] or 1


def prepare(dtype="float32") -> dict:
    """Compile (or load from the cache) every kernel for ``dtype`` and match the threads to BLAS.

    Called when a CPU training step is built, so that no compilation falls in a timed step.

    Returns:
        The cell record's ``cpu_kernels``: ``{"path": "compiled"|"numpy", ...}``; for the compiled
        path also ``layer`` (numba's threading layer), ``threads``, ``kernels`` (signatures made
        ready), ``cold`` (compiled now), ``cached`` (loaded from the cache) and ``compile_s``;
        for the numpy path ``reason`` where numba was wanted but did not import.
    """
    if not active():
        record = {"path": "numpy"}
        if _state["error"] is not None:
            record["reason"] = f"numba did not import ({_state['error']})"
        return record
    numba = _state["numba"]
    for name in FAMILIES:
        importlib.import_module(f"{__package__}.{name}")
    t0 = time.perf_counter()
    n = cold = cached = 0
    for d, templates in list(_kernels):
        for template in templates:
            sig = signature(template, dtype)
            before_hits, before_misses = sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())
            d.compile(sig)
            n += 1
            cached += sum(d.stats.cache_hits.values()) - before_hits
            cold += sum(d.stats.cache_misses.values()) - before_misses
    compile_s = time.perf_counter() - t0
    n_threads = sync_threads()
    layer = numba.threading_layer() if _parallel_ran() else _state["layer"]
    return {"path": "compiled", "numba": numba.__version__, "layer": layer, "threads": n_threads,
            "kernels": n, "cold": cold, "cached": cached, "compile_s": compile_s}


def _parallel_ran() -> bool:
    try:
        _state["numba"].threading_layer()
        return True
    except ValueError:  # no parallel region has run yet: the layer is the one asked for
        return False
