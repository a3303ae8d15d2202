"""Simulated ``cupyx``: the helpers benchbench may use."""
from __future__ import annotations

import numpy

import cupy
from cupy import _strict
from cupy._core import apply as _apply


def scatter_add(a, slices, value):
    """``a[slices] += value`` with repeated indices accumulated (cupyx.scatter_add)."""
    if not isinstance(a, cupy.ndarray):
        raise TypeError("cupyx.scatter_add: a must be a device array")
    _strict.check_at("add", a, slices, "scatter_add")
    _apply("cupyx.scatter_add", numpy.add.at, (a, slices, value), {})


def empty_pinned(shape, dtype=float, order="C"):
    return numpy.empty(shape, dtype=dtype, order=order)


def zeros_pinned(shape, dtype=float, order="C"):
    return numpy.zeros(shape, dtype=dtype, order=order)
