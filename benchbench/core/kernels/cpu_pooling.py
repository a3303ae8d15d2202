"""Compiled max pooling, forward and backward, one pass each over NCHW arrays.

Used for stride-1 max pooling (CNN/MNIST's 2x2 windows at stride 1), where the numpy path needs
about a dozen passes forward and four per window offset backward, and for windows that tile the
plane (stride equal to the window, no padding: LeNet5's 2x2 at stride 2), where a kernel of their
own reads each window once (numpy's few passes run on one core; the compiled ones on all the BLAS
threads). Other strided windows and average pooling stay numpy's (the general kernel was slower).

Each ``(sample, channel)`` plane is one parallel iteration (``prange``): forward reads only its
plane and writes only its outputs; backward zeroes its plane of the input gradient and adds into
it only from its own outputs, so overlapping windows never make two threads write one element.
Padding is never materialised: windows are clipped to the plane, and padded cells count as
``-inf`` (a window wholly in the padding, which Chainer's ``cover_all`` can make, keeps ``-inf``
and offset 0, as the numpy path does). Each output keeps the offset ``i*kw + j`` of its window's
first maximum in row-major order (a later equal value does not win), the numpy path's rule.
"""
from __future__ import annotations

import numba
import numpy
from numba import prange

from .cpu_compiled import kernel

__all__ = ["max_forward", "max_backward"]

_IDX = "int32[:, :, :, ::1]"
_GEOM = ", I, I, I, I, I, I"


@numba.njit(inline="always")
def _cols(j, pw, sx, w, ow):
    """``(off, lo, hi)``: output columns ``lo <= q < hi`` read input column ``q*sx + off`` inside ``0 .. w-1``."""
    off = j - pw
    lo = 0 if off >= 0 else (-off + sx - 1) // sx
    hi = min(ow, (w - 1 - off) // sx + 1) if w - 1 - off >= 0 else 0
    return off, lo, max(lo, hi)


# Each task takes flat views of its planes once, and the passes index them with offsets: a view
# made per output row (numba counts references on each) cost more than the pass itself.
@kernel("void(A4, A4, " + _IDX + _GEOM + ")")
def _max_forward(x, y, idx, kh, kw, sy, sx, ph, pw):
    n_, c_, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xf, yf, jf = x.reshape(n_ * c_, h * w), y.reshape(n_ * c_, oh * ow), idx.reshape(n_ * c_, oh * ow)
    inside = sx == 1 and pw == 0 and ow - 1 + kw <= w
    for t in prange(n_ * c_):
        xs, ys, js = xf[t], yf[t], jf[t]
        ys[:] = -numpy.inf
        js[:] = 0
        for r in range(oh):
            at = r * ow
            for i in range(kh):
                iy = r * sy - ph + i
                if iy < 0 or iy >= h:
                    continue
                for j in range(kw):
                    k = i * kw + j
                    if inside:  # every column of the row: a loop from 0 that LLVM vectorises
                        src = iy * w + j
                        for q in range(ow):
                            v = xs[src + q]
                            better = v > ys[at + q]
                            ys[at + q] = v if better else ys[at + q]
                            js[at + q] = k if better else js[at + q]
                        continue
                    off, lo, hi = _cols(j, pw, sx, w, ow)
                    src = iy * w + off
                    for q in range(lo, hi):
                        v = xs[src + q * sx]
                        better = v > ys[at + q]
                        ys[at + q] = v if better else ys[at + q]
                        js[at + q] = k if better else js[at + q]


@kernel("void(A4, " + _IDX + ", A4" + _GEOM + ")")
def _max_backward(gy, idx, gx, kh, kw, sy, sx, ph, pw):
    n_, c_, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    gf, jf, xf = gy.reshape(n_ * c_, oh * ow), idx.reshape(n_ * c_, oh * ow), gx.reshape(n_ * c_, h * w)
    inside = sx == 1 and pw == 0 and ow - 1 + kw <= w
    for t in prange(n_ * c_):
        gs, js, xs = gf[t], jf[t], xf[t]
        xs[:] = 0
        for r in range(oh):
            at = r * ow
            if not inside:
                for q in range(ow):
                    k = js[at + q]
                    iy = r * sy - ph + k // kw
                    ix = q * sx - pw + k % kw
                    if 0 <= iy < h and 0 <= ix < w:
                        xs[iy * w + ix] += gs[at + q]
                continue
            for i in range(kh):  # one vectorised pass per offset: add gy where the offset won
                iy = r * sy - ph + i
                if iy < 0 or iy >= h:
                    continue
                for j in range(kw):
                    k = i * kw + j
                    dst = iy * w + j
                    for q in range(ow):
                        xs[dst + q] += gs[at + q] * (js[at + q] == k)  # a select here ran 2.5x slower


# Windows that tile the plane (stride = window, no padding: LeNet5's and CNN/MNIST's 2x2 at stride
# 2): each output's window is read once into registers, and backward writes every cell of its window
# (the gradient or zero), so only the rows and columns past the last window need zeroing.
@kernel("void(A4, A4, " + _IDX + ", I, I)")
def _tiled_forward(x, y, idx, kh, kw):
    n_, c_, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xf, yf, jf = x.reshape(n_ * c_, h * w), y.reshape(n_ * c_, oh * ow), idx.reshape(n_ * c_, oh * ow)
    for t in prange(n_ * c_):
        xs, ys, js = xf[t], yf[t], jf[t]
        if kh == 2 and kw == 2:  # the common case, unrolled: four loads, three compares
            for r in range(oh):
                a, b = xs[2 * r * w:(2 * r + 1) * w], xs[(2 * r + 1) * w:(2 * r + 2) * w]
                yr, jr = ys[r * ow:(r + 1) * ow], js[r * ow:(r + 1) * ow]
                for q in range(ow):
                    best, kb = a[2 * q], 0
                    best = -numpy.inf if not best > -numpy.inf else best  # nan and -inf: offset 0, as below
                    v = a[2 * q + 1]
                    if v > best:
                        best, kb = v, 1
                    v = b[2 * q]
                    if v > best:
                        best, kb = v, 2
                    v = b[2 * q + 1]
                    if v > best:
                        best, kb = v, 3
                    yr[q] = best
                    jr[q] = kb
            continue
        for r in range(oh):
            for q in range(ow):
                best = -numpy.inf
                kb = 0
                for i in range(kh):
                    row = (r * kh + i) * w + q * kw
                    for j in range(kw):
                        v = xs[row + j]
                        if v > best:
                            best = v
                            kb = i * kw + j
                ys[r * ow + q] = best
                js[r * ow + q] = kb


@kernel("void(A4, " + _IDX + ", A4, I, I)")
def _tiled_backward(gy, idx, gx, kh, kw):
    n_, c_, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    gf, jf, xf = gy.reshape(n_ * c_, oh * ow), idx.reshape(n_ * c_, oh * ow), gx.reshape(n_ * c_, h * w)
    for t in prange(n_ * c_):
        gs, js, xs = gf[t], jf[t], xf[t]
        if oh * kh < h or ow * kw < w:
            xs[:] = 0
        for r in range(oh):
            for q in range(ow):
                g = gs[r * ow + q]
                kb = js[r * ow + q]
                for i in range(kh):
                    row = (r * kh + i) * w + q * kw
                    for j in range(kw):
                        xs[row + j] = g if i * kw + j == kb else g * 0


def tiles(geometry, shape):
    """Whether the windows tile the plane: stride equal to the window, no padding, outputs of floor size."""
    kh, kw, sy, sx, ph, pw, oh, ow = geometry
    return (kh, kw) == (sy, sx) and ph == pw == 0 and oh == shape[2] // kh and ow == shape[3] // kw


def max_forward(x, geometry):
    """``(y, idx)``: the (N, C, oh, ow) maxima of the C-contiguous ``x`` and their window offsets (int32)."""
    kh, kw, sy, sx, ph, pw, oh, ow = geometry
    n, c = x.shape[:2]
    y = numpy.empty((n, c, oh, ow), x.dtype)
    idx = numpy.empty((n, c, oh, ow), numpy.int32)
    if tiles(geometry, x.shape):
        _tiled_forward(x, y, idx, kh, kw)
        return y, idx
    _max_forward(x, y, idx, kh, kw, sy, sx, ph, pw)
    return y, idx


def max_backward(gy, idx, x_shape, geometry):
    """The input gradient: each output's ``gy`` added at its window's first maximum."""
    kh, kw, sy, sx, ph, pw, _, _ = geometry
    gx = numpy.empty(x_shape, gy.dtype)
    if tiles(geometry, x_shape):
        _tiled_backward(gy, idx, gx, kh, kw)
        return gx
    _max_backward(gy, idx, gx, kh, kw, sy, sx, ph, pw)
    return gx
