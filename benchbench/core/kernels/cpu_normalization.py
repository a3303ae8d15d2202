"""Batch normalisation over the channel axis (axis 1 of N, C, ...) as one compiled kernel each way.

Each channel is one task: a statistics pass over its ``N x S`` values, then the normalising pass
over the same values while they are still in cache. The sums are accumulated in float64 (one pass
for the sum and the sum of squares; float64 keeps the variance exact to float32 rounding), and the
per-channel coefficients are rounded to the data's dtype before they are applied, as the numpy path
of ``functions.normalization`` does; the results agree with it to float32 rounding.

With ``relu`` set, the normalising pass writes ``maximum(y, 0)`` (numpy's, NaN kept) and the
backward takes the gradient through that ReLU from its output ``z`` on the fly
(``(1 if z > 0 else 0) * gz``, the ReLU gradient's own formula): a batch normalisation followed by
a ReLU in the passes of the batch normalisation alone, with the unfused path's bits.
"""
from __future__ import annotations

import numba
import numpy
from numba import prange

from .cpu_compiled import kernel, reduction


@reduction
def _sums(x, ch):
    """``(sum x, sum x^2)`` of channel ``ch``, in float64."""
    total = 0.0
    squares = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[2]):
            v = numpy.float64(x[i, ch, j])
            total += v
            squares += v * v
    return total, squares


@numba.njit(inline="always")
def _through_relu(g, z, relu, one):
    """The gradient ``g`` through a ReLU whose output was ``z`` when ``relu``, else ``g``: ``(1 or 0)
    * g`` in the data's dtype (``one``), as the ReLU gradient computes it (so NaN or inf times 0 is NaN)."""
    if relu:
        zero = one - one
        return (one if z > zero else zero) * g
    return g


@reduction
def _grad_sums(gy, x, ch, z, relu, one):
    """``(sum gy, sum gy x)`` of channel ``ch``, in float64 (``gy`` through the ReLU of output ``z``
    when ``relu``)."""
    sum_gy = 0.0
    sum_gyx = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[2]):
            g = numpy.float64(_through_relu(gy[i, ch, j], z[i, ch, j], relu, one))
            sum_gy += g
            sum_gyx += g * numpy.float64(x[i, ch, j])
    return sum_gy, sum_gyx


@kernel("void(A3, A, A, A3, A, A, A, S, S, I)")
def _forward(x, gamma, beta, y, mean, var, inv_std, eps, one, relu):
    n, c, s = x.shape
    m = n * s
    for ch in prange(c):
        total, squares = _sums(x, ch)
        mu = total / m
        var64 = max(squares / m - mu * mu, 0.0)
        mean[ch] = mu  # stored in the data's dtype, and used as such below
        var[ch] = var64
        mu_t = mean[ch]
        inv = one / numpy.sqrt(var[ch] + eps)
        inv_std[ch] = inv
        scale = gamma[ch] * inv
        shift = beta[ch]
        if relu:  # numpy's maximum(v, 0): v where v > 0 or v is NaN, else 0 (so -0.0 gives +0.0)
            zero = one - one
            for i in range(n):
                for j in range(s):
                    v = (x[i, ch, j] - mu_t) * scale + shift
                    y[i, ch, j] = v if (v > zero or v != v) else zero
            continue
        for i in range(n):
            for j in range(s):
                y[i, ch, j] = (x[i, ch, j] - mu_t) * scale + shift


@kernel("void(A3, A3, A, A, A, A3, A, A, A2, A3, I, S)")
def _backward(x, gy, gamma, mean, inv_std, gx, ggamma, gbeta, coef, z, relu, one):
    n, c, s = x.shape
    m = n * s
    for ch in prange(c):
        sum_gy, sum_gyx = _grad_sums(gy, x, ch, z, relu, one)
        inv = numpy.float64(inv_std[ch])
        mu = numpy.float64(mean[ch])
        gg = (sum_gyx - mu * sum_gy) * inv
        scale = numpy.float64(gamma[ch]) * inv
        coef_x = -scale * gg * inv / m
        const = -scale * sum_gy / m - coef_x * mu
        gbeta[ch] = sum_gy
        ggamma[ch] = gg
        if gx.shape[0] == 0:
            continue
        coef[ch, 0] = coef_x  # rounded to the data's dtype, as the numpy path applies them
        coef[ch, 1] = const
        coef[ch, 2] = scale
        cx = coef[ch, 0]
        cc = coef[ch, 1]
        sc = coef[ch, 2]
        for i in range(n):
            for j in range(s):
                gx[i, ch, j] = x[i, ch, j] * cx + cc + _through_relu(gy[i, ch, j], z[i, ch, j], relu, one) * sc


def _three(a):
    return a.reshape(a.shape[0], a.shape[1], -1)


def forward(x, gamma, beta, eps, relu=False):
    """``(y, mean, var, inv_std)``: ``y`` shaped as ``x`` (``maximum(y, 0)`` when ``relu``), the
    statistics flat per channel."""
    t = x.dtype.type
    c = x.shape[1]
    y = numpy.empty_like(x)
    mean, var, inv_std = (numpy.empty(c, x.dtype) for _ in range(3))
    _forward(_three(x), gamma.reshape(-1), beta.reshape(-1), _three(y), mean, var, inv_std, t(eps), t(1.0),
             int(relu))
    return y, mean, var, inv_std


def backward(x, gy, gamma, mean, inv_std, need_gx, z=None):
    """``(gx or None, ggamma, gbeta)``, the parameter gradients flat per channel; with ``z`` (the
    output of a forward with ``relu``), through that ReLU."""
    c = x.shape[1]
    gx = numpy.empty_like(x) if need_gx else None
    ggamma, gbeta = numpy.empty(c, x.dtype), numpy.empty(c, x.dtype)
    _backward(_three(x), _three(gy), gamma.reshape(-1), mean.reshape(-1), inv_std.reshape(-1),
              _three(gx) if need_gx else numpy.empty((0, c, 1), x.dtype), ggamma, gbeta, numpy.empty((c, 3), x.dtype),
              _three(gy if z is None else z), int(z is not None), x.dtype.type(1.0))
    return (gx if need_gx else None), ggamma, gbeta
