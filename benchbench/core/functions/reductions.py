"""Reductions: sum and mean over any axes, the gradient broadcast back to the input's shape."""
from __future__ import annotations

import numpy

from ..function import Function
from ._checks import check_operand

__all__ = ["sum", "mean"]


def _normalize_axis(name, axis, ndim):
    """``axis`` (None, int or tuple of ints) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, numpy.integer)) else axis
    try:
        out = []
        for a in axes:
            if isinstance(a, bool) or not isinstance(a, (int, numpy.integer)):
                raise TypeError
            if not -ndim <= a < ndim:
                raise ValueError(
                    f"{name}: axis {axis!r} is out of range for an array of {ndim} dimensions"
                )
            out.append(int(a) % ndim)
    except TypeError:
        raise TypeError(f"{name}: axis must be None, an int or a tuple of ints, got {axis!r}") from None
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


class Sum(Function):
    def __init__(self, axes, keepdims, scale=None):
        self.axes = axes
        self.keepdims = keepdims
        self.scale = scale  # 1/n for mean

    def forward(self, xp, xs):
        x = xs[0]
        if self.scale is None:
            return (xp.asarray(x.sum(axis=self.axes, keepdims=self.keepdims)),)
        return (xp.asarray(x.mean(axis=self.axes, keepdims=self.keepdims)),)

    def backward(self, xp, xs, gys):
        x = xs[0]
        gy = gys[0]
        if not self.keepdims and self.axes:
            gy = gy.reshape([1 if i in self.axes else n for i, n in enumerate(x.shape)])
        if self.scale is not None:
            gy = gy * self.scale
        gx = xp.empty(x.shape, dtype=gy.dtype)
        gx[...] = gy
        return (gx,)


def _reduce(name, x, axis, keepdims, mean):
    check_operand(name, "x", x)
    axes = _normalize_axis(name, axis, x.ndim)
    scale = None
    if mean:
        n = 1
        for a in axes:
            n *= x.shape[a]
        scale = 1.0 / n if n else float("nan")
    return Sum(axes, bool(keepdims), scale).apply((x,))[0]


def sum(x, axis=None, keepdims=False):
    """Sum of the elements over ``axis``.

    Args:
        x: Variable or array.
        axis: None (all axes), an int, or a tuple of ints.
        keepdims: keep the reduced axes with length 1.

    Returns:
        Variable: the sum, of ``x``'s dtype.
    """
    return _reduce("sum", x, axis, keepdims, False)


def mean(x, axis=None, keepdims=False):
    """Mean of the elements over ``axis`` (arguments as ``sum``)."""
    return _reduce("mean", x, axis, keepdims, True)
