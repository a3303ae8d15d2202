"""Activation gradients as one compiled pass each (the numpy paths take two or three), and a
linear layer's bias add with its ReLU as one pass over the GEMM's result.

The formulas are those of ``functions/activation.py``'s numpy path, operation by operation in the
data's dtype. The other forward passes stay numpy's: one pass already, and numpy's ``exp``/``tanh``
are vectorised where the compiled loop calls the C library's one value at a time (sigmoid forward
compiled took 2.5 times numpy's time).
"""
from __future__ import annotations

import numpy
from numba import prange

from .cpu_compiled import kernel


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
