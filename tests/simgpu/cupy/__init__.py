"""A strict simulated cupy: every GPU code path of benchbench runs on a CPU-only machine.

Put ``tests/simgpu`` first on ``PYTHONPATH`` and ``import cupy`` gives this module: device arrays of
their own type backed by numpy, ``BENCHBENCH_SIM_GPUS`` devices (default 2) of
``BENCHBENCH_SIM_GPU_MEMORY`` bytes each, a caching memory pool, streams and events, NCCL across
processes (``cupy.cuda.nccl``) and, beside it, a simulated ``pynvml``.

It refuses what real cupy refuses (see ``_core``), and counts the transfers back to the host
(``_sim_stats()``), so tests can hold a training step to the synchronisations it needs.

Rules (each held by a test in ``tests/test_simgpu*.py``):

===============================================  ==================================================
rule of the simulator                            the cupy / CUDA / NCCL / NVML behaviour it mirrors
===============================================  ==================================================
no implicit host conversion (``__array__``)      ``TypeError: Implicit conversion to a NumPy array``
numpy functions/ufuncs dispatch to cupy's        ``ndarray.__array_function__`` (NEP 18) and
(``__array_function__``, ``__array_ufunc__``)    ``__array_ufunc__`` (NEP 13); a host operand: TypeError
host arrays in device operations refused         ``TypeError: Unsupported type <class 'numpy.ndarray'>``
two devices in one operation, or an array        ``ValueError: The device where the array resides (0)
not on the current device, refused               is different from the current device`` (no peer access)
basic and integer indexing give views            ``a[i]`` is a 0-d view sharing memory, never a copy
``add.at`` and ``cupyx.scatter_add`` with        ``_scatter_op_single``: atomics only for int32, float16,
integer-array indices: atomic dtypes only        float32, float64, uint32, uint64 (``TypeError``)
events complete only after a synchronisation     ``cudaEventQuery`` is ``cudaErrorNotReady`` until the
(own, stream, device, blocking copy) or a        device reaches the event; ``cudaEventElapsedTime`` on
latency: ``query()`` is False right after record an incomplete event fails (NotReady)
streams and events belong to a device            ``cudaEventRecord`` on another device's stream and a
                                                 stream of another GPU given to NCCL both fail
boolean-mask indexing, ``nonzero``,              the output size is read back to the host: one
``flatnonzero``, ``argwhere``, ``compress``,     synchronising device-to-host transfer each
``extract``, ``unique``: counted syncs
host index arrays (numpy arrays, lists) in an    copied to the device before the kernel: a
index: counted host-to-device transfers          host-to-device transfer each
an RNG per device; ``seed`` seeds the current    ``cupy.random.get_random_state()`` keeps one generator
device's only                                    per device
``copy()`` makes its copy on the current device  ``ndarray.copy`` allocates on the current device
(``astype`` is a kernel: current device only)    (peer copy); ``astype`` launches an elementwise kernel
NCCL: same collectives in the same order,        NCCL hangs or corrupts on a mismatch; init fails with
one rank per GPU ("Duplicate GPU detected"),     ``Duplicate GPU detected``; buffers must be device
live device buffers of the communicator's GPU    memory of the communicator's GPU
memory pool capacity, ``OutOfMemoryError``       cupy's pool and ``cudaErrorMemoryAllocation``
NVML (``pynvml``): idle clocks that ramp up      an idle GPU sits at a few hundred MHz and ramps to boost
under load (``BENCHBENCH_SIM_GPU_RAMP_S``), a    under load; ``sw_power_cap`` is set while a GEMM-heavy
power cap event (``..._THROTTLE=0x4``), host     step runs at the power limit; inside a container NVML
pid mode (``..._HOST_PIDS=1``)                   lists host pids, not the container's
stream capture records, ``Graph.launch()``       ``Stream.begin_capture`` / ``end_capture`` ->
replays in order into the same buffers; one      ``cupy.cuda.Graph``; nothing captured runs until
``graph_launches`` per launch, no ``launches``   the graph is launched
during capture: a transfer to or from the host,  cupy's ``RuntimeError`` (``... so D2H transfers are
a cuRAND draw, on the capturing stream, raise    disallowed``), ``NotImplementedError`` (cuRAND)
synchronising the stream or the device: 900,     cudaErrorStreamCaptureUnsupported, then
capture invalidated; later work and              cudaErrorStreamCaptureInvalidated (901)
``end_capture``: 901
the null stream beside a capturing blocking      cudaErrorStreamCaptureImplicit (906)
stream: 906 (a launch also invalidates)
an event recorded in a capture: 907 on query,    cudaErrorCapturedEvent
synchronize, elapsed time
``cudaMalloc`` (the pool growing) in a global /  cudaErrorStreamCaptureUnsupported; cupy captures
thread-local mode capture: 900                   in relaxed mode, where it is allowed
a freed block a live graph uses handed to        nothing (real CUDA corrupts silently):
another allocation or released, a graph whose    ``cupy.cuda.graph.GraphMemoryError`` here
input was freed launched: ``GraphMemoryError``
NCCL collectives on a capturing stream are       NCCL kernels captured into the graph communicate
recorded; they communicate at each launch        when the graph runs, on every rank
===============================================  ==================================================

Stream capture (``_capture``) is simulated by running each captured operation once on its operands
(for shapes and call-time errors) and putting every touched block back when the capture ends (new
blocks filled with NaN / -1), so no captured result is visible before a launch, also not to copies on
other streams. Not simulated: captures that fork and join several streams (a stream waiting on an
event of another stream's capture raises ``NotImplementedError``), host functions in graphs, graph
updates, conditional nodes, ``cudaMallocAsync`` pools; eager device work on another stream during a
capture sees the captured values (real CUDA: the values before); a private ``MemoryPool`` is not
bounded by the device capacity together with the default pool.

It is NOT a speed model: its timings say nothing about any GPU. ``_benchbench_simulated`` is True
here and absent from real cupy; benchbench marks every result made under it as simulated.
"""
from __future__ import annotations

import builtins as _builtins

import numpy as _np

from . import _capture, _launches, _state
from . import _strict  # the rules beyond the plain wrapper (see the package docstring)
from ._core import apply as _apply
from ._core import ndarray
from . import cuda  # noqa: E402
from . import lib  # noqa: E402
from . import random  # noqa: E402
from .cuda.memory import OutOfMemoryError  # noqa: F401

__version__ = "14.0.0+simulated"
_benchbench_simulated = True


def _sim_stats() -> dict:
    """Counts of ``device_to_host`` and ``host_to_device`` transfers, of kernel ``launches`` and of CUDA
    ``graph_launches`` made by this process so far (a graph's kernels are not launches)."""
    return {**_state.stats, **_launches.stats()}


def _sim_host_transfers() -> int:
    """Transfers from a device back to the host so far (each one a synchronisation)."""
    return _state.stats["device_to_host"]


def _sim_reset_stats() -> None:
    for k in _state.stats:
        _state.stats[k] = 0
    _launches.reset()


def is_available() -> bool:
    return _state.device_count() > 0


# ------------------------------------------------------------------ dtypes and constants
for _name in ("float16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool_ complex64 "
              "complex128 intp uintp dtype finfo iinfo can_cast promote_types issubdtype floating integer "
              "number signedinteger unsignedinteger inexact generic newaxis inf nan pi e").split():
    globals()[_name] = getattr(_np, _name)
del _name


def result_type(*arrays_and_dtypes):
    return _np.result_type(*[a.dtype if isinstance(a, ndarray) else a for a in arrays_and_dtypes])


# ------------------------------------------------------------------ host <-> device


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """A host copy of device array ``a`` (a numpy array is returned as it is)."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out)
    return _np.asarray(a, order=order)


def _to_device(obj, dtype, copy, order, ndmin, what):
    if isinstance(obj, ndarray):
        host = obj._a
        if obj._dev == _state.local.device:  # another device's array is copied (cudaMemcpyPeer)
            if not copy and (dtype is None or _np.dtype(dtype) == host.dtype) and not ndmin and order is None:
                return obj
            if not copy:
                r = _np.asarray(host, dtype=dtype, order=order)
                if ndmin:
                    r = _np.array(r, copy=False, ndmin=ndmin) if r.ndim < ndmin else r
                return ndarray._view(r, obj._mem) if _np.may_share_memory(r, host) else \
                    ndarray._adopt(r, obj._dev, what)
        dev = _state.local.device
        op = _capture.op(dev)  # a device-to-device copy (or cast)
        if op is not None:
            op.touch(obj._mem)
        out = ndarray._adopt(_np.array(host, dtype=dtype, order=order, copy=True, ndmin=ndmin), dev, what)
        dst = out._a
        if op is None or not op.issued(what, lambda: dst.__setitem__(
                Ellipsis, _np.array(host, dtype=dtype, order=order, copy=True, ndmin=ndmin))):
            _launches.launch(dev, 1, what)
        return out
    if isinstance(obj, (list, tuple)) and _builtins.any(isinstance(v, ndarray) for v in _flat(obj)):
        return stack([array(v) if not isinstance(v, ndarray) else v for v in obj]) if obj else \
            ndarray._adopt(_np.array(obj, dtype=dtype), _state.local.device, what)
    _state.count("host_to_device")
    return ndarray._adopt(_np.array(obj, dtype=dtype, order=order if order != "K" else "C", copy=True,
                                    ndmin=ndmin), _state.local.device, what)


def _flat(seq):
    for v in seq:
        if isinstance(v, (list, tuple)):
            yield from _flat(v)
        else:
            yield v


def asarray(a, dtype=None, order=None, blocking=False):
    """``a`` as a device array: a device array is returned as it is, host data is copied over."""
    return _to_device(a, dtype, False, order, 0, "cupy.asarray")


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    """A new device array (a copy) of ``obj``, on the current device."""
    return _to_device(obj, dtype, True if copy is None else copy, None if order == "K" else order, ndmin,
                      "cupy.array")


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"cupy.ascontiguousarray: Unsupported type {type(a)}")
    return _apply("cupy.ascontiguousarray", _np.ascontiguousarray, (a,), {"dtype": dtype})


def get_array_module(*args):
    for a in args:
        if isinstance(a, ndarray):
            import cupy

            return cupy
    return _np


def get_default_memory_pool():
    return cuda.memory._default_pool


def get_default_pinned_memory_pool():
    return cuda.memory._default_pinned_pool


def _not_simulated(name):
    class _Kernel:
        def __init__(self, *args, **kwargs):
            raise NotImplementedError(f"simulated GPUs: cupy.{name} is not simulated")
    _Kernel.__name__ = name
    return _Kernel


# User kernels: compiled with the real NVRTC, their C bodies run by the simulator (see _kernels).
from ._kernels import ElementwiseKernel, ReductionKernel, RawKernel  # noqa: E402,F401
RawModule = _not_simulated("RawModule")


# ------------------------------------------------------------------ ufuncs and functions


class ufunc:
    """A device ufunc: callable, with ``at``, ``reduce``, ``accumulate`` and ``outer``."""

    def __init__(self, np_ufunc):
        self._u = np_ufunc
        self.__name__ = np_ufunc.__name__
        self.nin, self.nout = np_ufunc.nin, np_ufunc.nout

    def __call__(self, *args, **kwargs):
        return _apply(f"cupy.{self.__name__}", self._u, args, kwargs)

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise TypeError(f"cupy.{self.__name__}.at: a must be a device array, got {type(a).__name__}")
        _strict.check_at(self.__name__, a, indices)
        args = (a, indices) if b is None else (a, indices, b)
        _apply(f"cupy.{self.__name__}.at", self._u.at, args, {})

    def reduce(self, *args, **kwargs):
        return _apply(f"cupy.{self.__name__}.reduce", self._u.reduce, args, kwargs)

    def accumulate(self, *args, **kwargs):
        return _apply(f"cupy.{self.__name__}.accumulate", self._u.accumulate, args, kwargs)

    def outer(self, *args, **kwargs):
        return _apply(f"cupy.{self.__name__}.outer", self._u.outer, args, kwargs)

    def __repr__(self):
        return f"<simulated ufunc '{self.__name__}'>"


_UFUNCS = ("add subtract multiply divide true_divide floor_divide power float_power maximum minimum fmax fmin "
           "exp exp2 expm1 log log2 log10 log1p sqrt cbrt square tanh sinh cosh sin cos tan arcsin arccos arctan "
           "arctan2 arctanh absolute fabs sign negative positive reciprocal greater greater_equal less less_equal "
           "equal not_equal logical_and logical_or logical_not logical_xor isfinite isnan isinf floor ceil rint "
           "trunc remainder mod fmod bitwise_and bitwise_or bitwise_xor invert left_shift right_shift hypot "
           "copysign signbit heaviside").split()
for _name in _UFUNCS:
    globals()[_name] = ufunc(getattr(_np, _name))
abs = absolute  # noqa: A001

_FUNCTIONS = ("sum mean average max amax min amin argmax argmin nanmax nanmin nansum prod var std cumsum cumprod "
              "dot vdot matmul einsum tensordot outer inner kron where concatenate stack hstack vstack dstack "
              "column_stack split array_split reshape transpose ravel moveaxis rollaxis swapaxes expand_dims "
              "squeeze atleast_1d atleast_2d atleast_3d broadcast_to broadcast_arrays tile repeat take "
              "take_along_axis put put_along_axis flip fliplr flipud pad roll sort argsort partition argpartition "
              "allclose isclose array_equal any all count_nonzero nonzero flatnonzero argwhere unique bincount "
              "copyto asfortranarray zeros ones empty full zeros_like ones_like empty_like full_like arange "
              "linspace logspace eye identity diag diagonal trace triu tril searchsorted around round "
              "nan_to_num real imag conj conjugate histogram percentile quantile median ptp diff "
              "cross meshgrid indices tri select choose compress extract place rot90 clip result_type").split()
for _name in _FUNCTIONS:
    if _name in globals():
        continue

    def _make(name, fn):
        def f(*args, **kwargs):
            return _apply(f"cupy.{name}", fn, args, kwargs)
        f.__name__ = name
        f.__doc__ = f"Device version of numpy.{name} (simulated)."
        return f

    globals()[_name] = _make(_name, getattr(_np, _name))
del _name


from ._clocks import ramped as _ramped  # noqa: E402

matmul = _ramped(matmul)  # noqa: F821  (idle clocks that ramp up: see _clocks)
dot = _ramped(dot)  # noqa: F821


# Functions whose output size depends on the data read a count back to the host (see _strict).
for _name in ("nonzero", "flatnonzero", "argwhere", "compress", "extract", "unique"):
    globals()[_name] = _strict.syncing(globals()[_name])
del _name
ndarray.nonzero = _strict.syncing(ndarray.nonzero)
ndarray.copy = _strict.copy_to_current
ndarray.astype = _strict.astype_on_current
ndarray.__array_ufunc__ = _strict.array_ufunc
ndarray.__array_function__ = _strict.array_function


def copy(a, order="K"):
    if not isinstance(a, ndarray):
        raise TypeError(f"cupy.copy: Unsupported type {type(a)}")
    return a.copy(order=order)


def fuse(*args, **kwargs):
    """cupy.fuse: the function runs unfused (each operation as its own device operation)."""
    if args and callable(args[0]) and len(args) == 1 and not kwargs:
        return args[0]
    return lambda f: f
