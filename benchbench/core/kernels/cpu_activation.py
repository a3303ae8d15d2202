"""Activation gradients as one compiled pass each (the numpy paths take two or three), sigmoid's
forward as one pass (numpy's takes four), and a linear layer's bias add with its ReLU as one pass
over the GEMM's result.

The formulas are those of ``functions/activation.py``'s numpy path, operation by operation in the
data's dtype. Sigmoid's ``1 / (1 + exp(-x))`` runs on explicit vectors (``cpu_simd``) with their
``exp`` (within 1 ulp in float32, where numpy's is within 2.4; a compiled loop would call the C
library's one value at a time, 2.5 times numpy's time). The other forward passes stay numpy's:
one pass already (ReLU's ``maximum``, ``tanh``).
"""
from __future__ import annotations

import numba
import numpy
from numba import prange

from .cpu_compiled import kernel
from .cpu_simd import vadd, vdiv, vexp, vlanes, vload, vsplat, vstore, vsub, vzero


@kernel("void(A, A, A, S, S)")
def _relu_grad(y, gy, gx, zero, one):
    for i in prange(y.size):
        gx[i] = (one if y[i] > zero else zero) * gy[i]


@kernel("void(A2, A, S)")
def _bias_relu(y, b, zero):
    for i in prange(y.shape[0]):
        for j in range(y.shape[1]):
            z = y[i, j] + b[j]
            # numpy's maximum(z, 0): z where z > 0 or z is NaN, else 0 (so -0.0 gives +0.0)
            y[i, j] = z if (z > zero or z != z) else zero


@kernel("void(A, A, A, S)")
def _sigmoid_grad(y, gy, gx, one):
    for i in prange(y.size):
        gx[i] = (one - y[i]) * y[i] * gy[i]


@kernel("void(A, A, A, S)")
def _tanh_grad(y, gy, gx, one):
    for i in prange(y.size):
        gx[i] = gy[i] * (one - y[i] * y[i])


_SIGMOID_TASK = 256  # vectors per parallel task


@numba.njit(inline="always")
def _sigmoid_at(src, i, dst, j, one):
    """``dst[j:j+lanes] = 1 / (1 + exp(-src[i:i+lanes]))``, numpy's operations in its order."""
    vstore(dst, j, vdiv(one, vadd(one, vexp(vsub(vzero(src), vload(src, i))))))


@kernel("void(A, A, S)")
def _sigmoid(x, y, one):
    lanes = vlanes(x)
    full = x.size // lanes
    o = vsplat(one)
    for t in prange(-(-full // _SIGMOID_TASK)):
        for v in range(t * _SIGMOID_TASK, min(full, (t + 1) * _SIGMOID_TASK)):
            _sigmoid_at(x, v * lanes, y, v * lanes, o)
    rest = x.size - full * lanes
    if rest:  # the last part-vector through a zeroed vector of its own
        tail = numpy.zeros(lanes, x.dtype)
        tail[:rest] = x[full * lanes:]
        _sigmoid_at(tail, 0, tail, 0, o)
        y[full * lanes:] = tail[:rest]


def sigmoid(x, y):
    """``y = 1 / (1 + exp(-x))`` over C-contiguous ``x`` and ``y`` of one shape and dtype (``y`` may
    be ``x``), in one pass over the threads."""
    _sigmoid(x.reshape(-1), y.reshape(-1), y.dtype.type(1.0))
    return y


def bias_relu(y, b):
    """``y = maximum(y + b, 0)`` in place on the C-contiguous (N, O) ``y``, ``b`` (O,): the bits of
    ``y += b`` followed by numpy's ReLU, in one pass."""
    _bias_relu(y, b, y.dtype.type(0.0))
    return y


def relu_grad(y, gy):
    gx = numpy.empty_like(y)
    t = y.dtype.type
    _relu_grad(y.reshape(-1), gy.reshape(-1), gx.reshape(-1), t(0.0), t(1.0))
    return gx


def sigmoid_grad(y, gy):
    gx = numpy.empty_like(y)
    _sigmoid_grad(y.reshape(-1), gy.reshape(-1), gx.reshape(-1), y.dtype.type(1.0))
    return gx


def tanh_grad(y, gy):
    gx = numpy.empty_like(y)
    _tanh_grad(y.reshape(-1), gy.reshape(-1), gx.reshape(-1), y.dtype.type(1.0))
    return gx
