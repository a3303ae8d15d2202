"""Activations and their gradients as one compiled pass each (the numpy paths take two to four).

The formulas are those of ``functions/activation.py``'s numpy path, operation by operation in the
data's dtype (``exp`` and ``tanh`` from the C library may differ from numpy's vectorised ones in
the last place).
"""
from __future__ import annotations

import numpy
from numba import prange

from .cpu_compiled import kernel


@kernel("void(A, A, A, S, S)")
def _relu_grad(y, gy, gx, zero, one):
    for i in prange(y.size):
        gx[i] = (one if y[i] > zero else zero) * gy[i]


@kernel("void(A, A, S)")
def _sigmoid(x, y, one):
    for i in prange(x.size):
        y[i] = one / (numpy.exp(-x[i]) + one)


@kernel("void(A, A, A, S)")
def _sigmoid_grad(y, gy, gx, one):
    for i in prange(y.size):
        gx[i] = (one - y[i]) * y[i] * gy[i]


@kernel("void(A, A, A, S)")
def _tanh_grad(y, gy, gx, one):
    for i in prange(y.size):
        gx[i] = gy[i] * (one - y[i] * y[i])


def relu_grad(y, gy):
    gx = numpy.empty_like(y)
    t = y.dtype.type
    _relu_grad(y.reshape(-1), gy.reshape(-1), gx.reshape(-1), t(0.0), t(1.0))
    return gx


def sigmoid(x):
    y = numpy.empty_like(x)
    _sigmoid(x.reshape(-1), y.reshape(-1), x.dtype.type(1.0))
    return y


def sigmoid_grad(y, gy):
    gx = numpy.empty_like(y)
    _sigmoid_grad(y.reshape(-1), gy.reshape(-1), gx.reshape(-1), y.dtype.type(1.0))
    return gx


def tanh_grad(y, gy):
    gx = numpy.empty_like(y)
    _tanh_grad(y.reshape(-1), gy.reshape(-1), gx.reshape(-1), y.dtype.type(1.0))
    return gx
