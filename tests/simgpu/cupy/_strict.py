"""Rules of real cupy that the plain array wrapper in ``_core`` would be laxer about.

Each function here mirrors one cupy behaviour (the package docstring lists them all):
- ``check_at``: ``ufunc.at`` / ``cupyx.scatter_*`` with integer-array indices run atomics, which
  exist for a few dtypes only (cupy ``_scatter_op_single``);
- ``count_index_traffic``: an index that holds a host array is copied to the device (a transfer),
  and a boolean-mask index needs the number of True values on the host (a synchronisation);
- ``syncing``: functions whose output size depends on the data (``nonzero``, ``flatnonzero``,
  ``argwhere``, ``compress``, ``extract``, ``unique``) read a count back to the host;
- ``copy_to_current`` / ``astype_on_current``: ``ndarray.copy()`` allocates on the current device,
  and ``astype`` that copies is a kernel on the current device;
- ``array_ufunc`` / ``array_function``: numpy ufuncs and functions given device arrays dispatch to
  cupy's (NEP 13 / NEP 18), as cupy's ``__array_ufunc__`` / ``__array_function__`` do.
"""
from __future__ import annotations

import functools

import numpy

from . import _state

# cupy/_core/_routines_indexing.pyx, _scatter_op_single: the dtypes each atomic scatter supports.
_AT_DTYPES = {
    "add": (numpy.int32, numpy.float16, numpy.float32, numpy.float64, numpy.uint32, numpy.uint64),
    "subtract": (numpy.int32, numpy.uint32),
    "maximum": (numpy.int32, numpy.float32, numpy.float64, numpy.uint32, numpy.uint64),
    "minimum": (numpy.int32, numpy.float32, numpy.float64, numpy.uint32, numpy.uint64),
    "bitwise_and": (numpy.int32, numpy.int64, numpy.uint32, numpy.uint64),
    "bitwise_or": (numpy.int32, numpy.int64, numpy.uint32, numpy.uint64),
    "bitwise_xor": (numpy.int32, numpy.int64, numpy.uint32, numpy.uint64),
}


def _index_items(key):
    return key if isinstance(key, tuple) else (key,)


def _is_int_array(k) -> bool:
    dtype = getattr(k, "dtype", None)
    if dtype is None and isinstance(k, list):
        dtype = numpy.asarray(k).dtype
    return dtype is not None and dtype.kind in "iu" and getattr(k, "ndim", 1) > 0


def check_at(name: str, a, indices, what: str | None = None) -> None:
    """Refuse ``<name>.at(a, indices, ...)`` where cupy has no atomic for ``a``'s dtype."""
    if not any(_is_int_array(k) for k in _index_items(indices)):
        return  # slices or a boolean mask: a plain elementwise kernel, any dtype
    allowed = _AT_DTYPES.get(name)
    if allowed is None:
        raise NotImplementedError(f"cupy.{name}.at is not supported (cupy implements add, subtract, maximum, "
                                  "minimum and the bitwise ufuncs' at)")
    if not issubclass(a.dtype.type, allowed):
        names = ", ".join(numpy.dtype(t).name for t in allowed)
        raise TypeError(f"{what or f'cupy.{name}.at'} only supports {names} as data type, got {a.dtype}")


def count_index_traffic(key) -> None:
    """Count what an index costs before the kernel runs: host index arrays are copied to the device;
    a boolean-mask device index makes cupy read the number of selected elements back (a sync)."""
    from ._core import ndarray

    for k in _index_items(key):
        if isinstance(k, (numpy.ndarray, list)) and numpy.asarray(k).ndim > 0:
            _state.count("host_to_device")
        elif isinstance(k, ndarray) and k.dtype.kind == "b" and k.ndim > 0:
            _state.count("device_to_host")


def syncing(fn):
    """``fn`` whose output shape depends on the data: one read back to the host per call."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        _state.count("device_to_host")
        return out
    return wrapper


def copy_to_current(self, order="C"):
    """``ndarray.copy``: a new array on the current device (cupy copies peer-to-peer)."""
    from . import _capture, _launches
    from ._core import ndarray

    dev = _state.local.device
    op = _capture.op(dev)
    if op is not None:
        op.touch(self._mem)
    out = ndarray._adopt(numpy.array(self._a, order=order, copy=True), dev, "ndarray.copy")
    src, dst = self._a, out._a
    if op is None or not op.issued("ndarray.copy", lambda: dst.__setitem__(Ellipsis, src)):
        _launches.launch(dev, 1, "ndarray.copy")  # one copy kernel, as cupy launches
    return out


def astype_on_current(self, dtype, order="K", casting=None, subok=None, copy=True):
    """``ndarray.astype``: returns the array itself when nothing changes and ``copy`` is False; otherwise
    an elementwise copy kernel, which must run on the array's device, made current."""
    from ._core import apply

    if not copy and numpy.dtype(dtype) == self.dtype:
        return self
    kwargs = {"order": order} if casting is None else {"order": order, "casting": casting}
    return apply("ndarray.astype", numpy.ndarray.astype, (self, dtype), kwargs)


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """NEP 13 as cupy: ``numpy.<ufunc>(device arrays)`` runs cupy's ufunc (a host array -> TypeError)."""
    import cupy
    from ._core import ndarray

    if method != "__call__":
        return NotImplemented
    fn = getattr(cupy, ufunc.__name__, None)
    if fn is None:
        return NotImplemented
    for x in list(inputs) + list(kwargs.get("out") or ()):
        if not isinstance(x, ndarray) and hasattr(x, "__array_ufunc__"):
            return NotImplemented  # a numpy array among the operands: TypeError, as in cupy
    return fn(*inputs, **kwargs)


def array_function(self, func, types, args, kwargs):
    """NEP 18 as cupy: ``numpy.<func>(device arrays)`` runs ``cupy.<func>`` where cupy has it."""
    import cupy
    from ._core import ndarray

    module = cupy
    try:
        for part in func.__module__.split(".")[1:]:
            module = getattr(module, part)
        cupy_func = getattr(module, func.__name__)
    except AttributeError:
        return NotImplemented
    if cupy_func is func or any(t not in (ndarray, numpy.ndarray) for t in types):
        return NotImplemented
    return cupy_func(*args, **kwargs)
