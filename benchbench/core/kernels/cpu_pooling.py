"""Compiled max and average pooling, forward and backward, one pass each over NCHW arrays.

Each ``(sample, channel)`` plane is one parallel iteration (``prange``): forward reads only its
plane and writes only its outputs; backward zeroes its plane of the input gradient and adds into
it only from its own outputs, so overlapping windows (stride below the window) never make two
threads write one element. Padding is never materialised: windows are clipped to the plane, and
max pooling treats the padded cells as ``-inf`` (so a window that lies wholly in the padding,
which Chainer's ``cover_all`` can make, keeps ``-inf`` and offset 0, as the numpy path does).

Max pooling keeps, per output, the offset ``i*kw + j`` of its window's first maximum in
row-major order (a later equal value does not win), the same rule as the numpy path.
"""
from __future__ import annotations

import numpy
from numba import prange

from .cpu_compiled import kernel

__all__ = ["max_forward", "max_backward", "average_forward", "average_backward"]

_IDX = "int32[:, :, :, ::1]"
_GEOM = ", I, I, I, I, I, I"


@kernel("void(A4, A4, " + _IDX + _GEOM + ")")
def _max_forward(x, y, idx, kh, kw, sy, sx, ph, pw):
    n_, c_, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for task in prange(n_ * c_):
        n, c = task // c_, task % c_
        for r in range(oh):
            y0 = r * sy - ph
            for q in range(ow):
                x0 = q * sx - pw
                best = -numpy.inf
                at = 0
                for i in range(kh):
                    iy = y0 + i
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = x0 + j
                        if ix < 0 or ix >= w:
                            continue
                        v = x[n, c, iy, ix]
                        if v > best:
                            best = v
                            at = i * kw + j
                y[n, c, r, q] = best
                idx[n, c, r, q] = at


@kernel("void(A4, " + _IDX + ", A4" + _GEOM + ")")
def _max_backward(gy, idx, gx, kh, kw, sy, sx, ph, pw):
    n_, c_, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for task in prange(n_ * c_):
        n, c = task // c_, task % c_
        g = gx[n, c]
        g[...] = 0
        for r in range(oh):
            for q in range(ow):
                k = idx[n, c, r, q]
                iy = r * sy - ph + k // kw
                ix = q * sx - pw + k % kw
                if 0 <= iy < h and 0 <= ix < w:
                    g[iy, ix] += gy[n, c, r, q]


@kernel("void(A4, A4, S" + _GEOM + ")")
def _average_forward(x, y, scale, kh, kw, sy, sx, ph, pw):
    n_, c_, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for task in prange(n_ * c_):
        n, c = task // c_, task % c_
        for r in range(oh):
            y0 = r * sy - ph
            for q in range(ow):
                x0 = q * sx - pw
                s = scale * 0
                for i in range(max(0, -y0), min(kh, h - y0)):
                    for j in range(max(0, -x0), min(kw, w - x0)):
                        s += x[n, c, y0 + i, x0 + j]
                y[n, c, r, q] = s * scale


@kernel("void(A4, A4, S" + _GEOM + ")")
def _average_backward(gy, gx, scale, kh, kw, sy, sx, ph, pw):
    n_, c_, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for task in prange(n_ * c_):
        n, c = task // c_, task % c_
        g = gx[n, c]
        g[...] = 0
        for r in range(oh):
            y0 = r * sy - ph
            for q in range(ow):
                x0 = q * sx - pw
                v = gy[n, c, r, q] * scale
                for i in range(max(0, -y0), min(kh, h - y0)):
                    for j in range(max(0, -x0), min(kw, w - x0)):
                        g[y0 + i, x0 + j] += v


def max_forward(x, geometry):
    """``(y, idx)``: the (N, C, oh, ow) maxima of the C-contiguous ``x`` and their window offsets (int32)."""
    kh, kw, sy, sx, ph, pw, oh, ow = geometry
    n, c = x.shape[:2]
    y = numpy.empty((n, c, oh, ow), x.dtype)
    idx = numpy.empty((n, c, oh, ow), numpy.int32)
    _max_forward(x, y, idx, kh, kw, sy, sx, ph, pw)
    return y, idx


def max_backward(gy, idx, x_shape, geometry):
    """The input gradient: each output's ``gy`` added at its window's first maximum."""
    kh, kw, sy, sx, ph, pw, _, _ = geometry
    gx = numpy.empty(x_shape, gy.dtype)
    _max_backward(gy, idx, gx, kh, kw, sy, sx, ph, pw)
    return gx


def average_forward(x, geometry):
    """The (N, C, oh, ow) window means (padded zeros count in each mean)."""
    kh, kw, sy, sx, ph, pw, oh, ow = geometry
    y = numpy.empty(x.shape[:2] + (oh, ow), x.dtype)
    _average_forward(x, y, x.dtype.type(1.0 / (kh * kw)), kh, kw, sy, sx, ph, pw)
    return y


def average_backward(gy, x_shape, geometry):
    """The input gradient: each output's ``gy / (kh*kw)`` added over its window."""
    kh, kw, sy, sx, ph, pw, _, _ = geometry
    gx = numpy.empty(x_shape, gy.dtype)
    _average_backward(gy, gx, gy.dtype.type(1.0 / (kh * kw)), kh, kw, sy, sx, ph, pw)
    return gx
