"""``cupy.lib.stride_tricks`` with a bounds check real cupy does not make: a strided view that
reaches outside its allocation is an error here, not a silent read of other memory."""
from __future__ import annotations

import numpy

from .._core import ndarray


def as_strided(x, shape=None, strides=None):
    if not isinstance(x, ndarray):
        raise TypeError(f"cupy.lib.stride_tricks.as_strided: Unsupported type {type(x)}")
    shape = x.shape if shape is None else tuple(int(s) for s in shape)
    strides = x.strides if strides is None else tuple(int(s) for s in strides)
    if len(shape) != len(strides):
        raise ValueError("as_strided: shape and strides must have the same length")
    start = int(x._a.__array_interface__["data"][0]) - x._mem.ptr
    lo = hi = start
    if all(s > 0 for s in shape):
        for n, st in zip(shape, strides):
            span = (n - 1) * st
            lo, hi = (lo + span, hi) if span < 0 else (lo, hi + span)
        hi += x.itemsize
        if lo < 0 or hi > x._mem.host.nbytes:
            raise ValueError(f"as_strided: the view (bytes {lo}..{hi}) reaches outside its allocation of "
                             f"{x._mem.host.nbytes} bytes")
    r = numpy.lib.stride_tricks.as_strided(x._a, shape=shape, strides=strides)
    return ndarray._view(r, x._mem)


def sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    if not isinstance(x, ndarray):
        raise TypeError(f"cupy.lib.stride_tricks.sliding_window_view: Unsupported type {type(x)}")
    r = numpy.lib.stride_tricks.sliding_window_view(x._a, window_shape, axis=axis, writeable=writeable)
    return ndarray._view(r, x._mem)
