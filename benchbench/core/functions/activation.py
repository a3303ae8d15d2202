"""Activation functions: relu, leaky_relu, sigmoid, tanh, softmax, log_softmax."""
from __future__ import annotations

import numpy

from .. import kernels
from ..kernels import cpu_compiled
from ..function import Function
from ..kernels import buffers as _buffers
from ._checks import check_float

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"]

def _check_axis(name, x, axis):
    if isinstance(axis, bool) or not isinstance(axis, (int, numpy.integer)):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"{name}: axis {axis} is out of range for x of shape {x.shape} ({x.ndim} dimensions)"
        )
    return int(axis) % x.ndim


def _compiled(y, gy) -> bool:
    """A compiled CPU gradient kernel applies: same shape and dtype, C-contiguous numpy floats."""
    return gy.shape == y.shape and gy.dtype == y.dtype and cpu_compiled.usable(y, gy)


def _relu(xp, y, x):
    xp.maximum(x, 0, out=y)


def _relu_grad(xp, gx, y, gy):
    xp.greater(y, 0, out=gx)  # the 0/1 mask straight into floats: float * float beats float * bool
    gx *= gy


class ReLU(Function):
    def forward(self, xp, xs):
        x = xs[0]
        self.y = _flat_parts(xp, _relu, xp.empty(x.shape, dtype=x.dtype), x)
        return (self.y,)

    def backward(self, xp, xs, gys):
        y, gy = self.y, gys[0]
        if gy.shape == y.shape and kernels.fusable(y, gy) and gy.dtype == y.dtype:
            from ..kernels import cuda_activation

            return (cuda_activation.relu_grad(y, gy),)
        if _compiled(y, gy):
            from ..kernels import cpu_activation

            return (cpu_activation.relu_grad(y, gy),)
        if gy.shape != y.shape:
            return (gy * (y > 0),)
        return (_flat_parts(xp, _relu_grad, xp.empty(y.shape, dtype=xp.result_type(y, gy)), y, gy),)


class LeakyReLU(Function):
    def __init__(self, slope):
        self.slope = slope

    def forward(self, xp, xs):
        x = xs[0]
        self.pos = x >= 0
        # max(x, slope x) for slope <= 1 (min for slope > 1): exact, and faster than xp.where.
        y = x * self.slope
        (xp.maximum if self.slope <= 1 else xp.minimum)(x, y, out=y)
        return (y,)

    def backward(self, xp, xs, gys):
        gy = gys[0]
        d = self.pos.astype(gy.dtype)
        d *= 1 - self.slope
        d += self.slope  # 1 where x >= 0, slope elsewhere
        d *= gy
        return (d,)


def _flat_parts(xp, fn, out, *ins, min_bytes=None):
    """``fn(xp, out_part, *in_parts)`` over flat pieces of same-shaped C-contiguous arrays.

    On numpy, outputs of ``min_bytes`` and more (default 4 MiB) are split over the BLAS threads
    (numpy releases the GIL inside its loops, and a chain of passes over a piece stays in that
    core's cache): sigmoid on 16 MiB took 0.7 of one thread's time; below about 2 MiB the threads'
    hand-off ate the gain of a one-pass function. Sigmoid's four passes gain from 1 MiB (LeNet5's
    first, 1.9 MB: 0.25 ms on one thread, 0.18 on two).
    """
    if xp is not numpy or not all(a.flags.c_contiguous for a in (out,) + ins):
        fn(xp, out, *ins)
        return out
    flat_out = out.reshape(-1)
    flat_ins = [a.reshape(-1) for a in ins]

    def part(lo, hi):
        fn(xp, flat_out[lo:hi], *(a[lo:hi] for a in flat_ins))

    _buffers.split_run(part, flat_out.size, out.nbytes, _buffers._PARALLEL_MIN_BYTES * 4 if min_bytes is None
                       else min_bytes)
    return out


# Sigmoid (four passes) is split over the threads from this many bytes on (see _flat_parts).
SIGMOID_SPLIT_BYTES = 1 << 20


def _sigmoid(xp, y, x):
    # 1 / (1 + exp(-x)): exp is about twice as fast as tanh on the CPU. For x below about
    # -88 (float32) exp(-x) overflows to inf and y becomes exactly 0, the correctly rounded
    # limit, so the overflow is expected and silenced; NaN still propagates.
    xp.negative(x, out=y)
    with numpy.errstate(over="ignore"):
        xp.exp(y, out=y)
    y += 1
    xp.divide(1, y, out=y)


def sigmoid_into(xp, y, x):
    """``y = sigmoid(x)`` (``y`` may be ``x``): one compiled pass where the compiled kernels apply
    (``cpu_activation.sigmoid``), else numpy's four passes (split over the threads from
    :data:`SIGMOID_SPLIT_BYTES`)."""
    if x.dtype == y.dtype and cpu_compiled.usable(x, y):
        from ..kernels import cpu_activation

        return cpu_activation.sigmoid(x, y)
    return _flat_parts(xp, _sigmoid, y, x, min_bytes=SIGMOID_SPLIT_BYTES)


def _sigmoid_grad(xp, gx, y, gy):
    xp.subtract(1, y, out=gx)  # gy * y * (1 - y) in three passes
    gx *= y
    gx *= gy


class Sigmoid(Function):
    def forward(self, xp, xs):
        x = xs[0]
        if kernels.fusable(x):
            from ..kernels import cuda_activation

            self.y = cuda_activation.sigmoid(x)
            return (self.y,)
        self.y = sigmoid_into(xp, xp.empty(x.shape, dtype=x.dtype), x)
        return (self.y,)

    def backward(self, xp, xs, gys):
        y, gy = self.y, gys[0]
        if gy.shape == y.shape and gy.dtype == y.dtype and kernels.fusable(y, gy):
            from ..kernels import cuda_activation

            return (cuda_activation.sigmoid_grad(y, gy),)
        if _compiled(y, gy):
            from ..kernels import cpu_activation

            return (cpu_activation.sigmoid_grad(y, gy),)
        return (_flat_parts(xp, _sigmoid_grad, xp.empty(y.shape, dtype=y.dtype), y, gy),)


class Tanh(Function):
    def forward(self, xp, xs):
        self.y = xp.tanh(xs[0])
        return (self.y,)

    def backward(self, xp, xs, gys):
        y = self.y
        if gys[0].shape == y.shape and gys[0].dtype == y.dtype and kernels.fusable(y, gys[0]):
            from ..kernels import cuda_activation

            return (cuda_activation.tanh_grad(y, gys[0]),)
        if _compiled(y, gys[0]):
            from ..kernels import cpu_activation

            return (cpu_activation.tanh_grad(y, gys[0]),)
        return (gys[0] * (1 - y * y),)


class Softmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, xp, xs):
        x = xs[0]
        y = x - x.max(axis=self.axis, keepdims=True)
        xp.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        self.y = y
        return (y,)

    def backward(self, xp, xs, gys):
        y = self.y
        gx = y * gys[0]
        gx -= y * gx.sum(axis=self.axis, keepdims=True)
        return (gx,)


class LogSoftmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, xp, xs):
        x = xs[0]
        y = x - x.max(axis=self.axis, keepdims=True)
        y -= xp.log(xp.exp(y).sum(axis=self.axis, keepdims=True))
        self.y = y
        return (y,)

    def backward(self, xp, xs, gys):
        gy = gys[0]
        return (gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True),)


def relu(x):
    """Rectified linear unit, ``max(x, 0)`` (gradient 0 at 0).

    Args:
        x: Variable or float array.

    Returns:
        Variable of ``x``'s shape and dtype.
    """
    check_float("relu", "x", x)
    return ReLU().apply((x,))[0]


def leaky_relu(x, slope=0.2):
    """Leaky ReLU: ``x`` where ``x >= 0``, ``slope * x`` elsewhere.

    Args:
        x: Variable or float array.
        slope: the slope for negative inputs.

    Returns:
        Variable of ``x``'s shape and dtype.
    """
    check_float("leaky_relu", "x", x)
    if isinstance(slope, bool) or not isinstance(slope, (int, float, numpy.floating, numpy.integer)):
        raise TypeError(f"leaky_relu: slope must be a number, got {type(slope).__name__}")
    return LeakyReLU(float(slope)).apply((x,))[0]


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, stable for large ``|x|``.

    Args:
        x: Variable or float array.

    Returns:
        Variable of ``x``'s shape and dtype.
    """
    check_float("sigmoid", "x", x)
    return Sigmoid().apply((x,))[0]


def tanh(x):
    """Hyperbolic tangent.

    Args:
        x: Variable or float array.

    Returns:
        Variable of ``x``'s shape and dtype.
    """
    check_float("tanh", "x", x)
    return Tanh().apply((x,))[0]


def softmax(x, axis=1):
    """Softmax over ``axis`` (the max is subtracted first, so large inputs do not overflow).

    Args:
        x: Variable or float array.
        axis: the axis that sums to one.

    Returns:
        Variable of ``x``'s shape and dtype.

    Example:
        >>> p = softmax(logits)   # logits (N, C): each row sums to 1
    """
    check_float("softmax", "x", x)
    return Softmax(_check_axis("softmax", x, axis)).apply((x,))[0]


def log_softmax(x, axis=1):
    """Logarithm of the softmax over ``axis``, computed as ``x - logsumexp(x)`` (stable).

    Args:
        x: Variable or float array.
        axis: the axis normalised over.

    Returns:
        Variable of ``x``'s shape and dtype.
    """
    check_float("log_softmax", "x", x)
    return LogSoftmax(_check_axis("log_softmax", x, axis)).apply((x,))[0]
