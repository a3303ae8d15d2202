"""Compiled CPU convolution kernels: direct stride-1 convolution for thin layers, no im2col columns.

The direct kernels (``direct_forward``, ``direct_input_grad``, ``direct_weight_grad``) are for
layers whose GEMM is thin (few channels in or out: LeNet5's 3->6 and 6->16, CNN's 1->32, a stem's
3->64), where writing and reading the columns (9 to 25 times the input) costs more than the
multiplications. Each sample is copied once into a thread-private padded plane stack; with stride
1 the kernel offset ``(i, j)`` is then a shift of ``i*Wp + j`` in the flat plane, so every tap is
one contiguous multiply-add over the sample's whole output (in rows of the padded width ``Wp``;
the ``Wp - ow`` columns past each row are computed and never read). Output channels go four at a
time, so one load of the input feeds four accumulators. The input gradient is the same kernel run
as a full convolution of the output gradient with the flipped, transposed filters. Samples run in
parallel (``prange``): each writes only its own output or input gradient, and its thread's part of
the weight gradient (the parts are summed at the end), so no two threads write one element.

The weight gradient's dot products are compiled with ``reassoc`` (they vectorise only then), so
they agree with the GEMM path to float32 rounding, not bit for bit; everything else adds in a fixed
order.
"""
from __future__ import annotations

import numba
import numpy
from numba import prange

from .cpu_compiled import kernel

__all__ = ["direct_forward", "direct_input_grad", "direct_weight_grad", "direct_backward"]


@numba.njit(inline="always")
def _load_padded(x, n, buf, ph, pw):
    """Copy sample ``n`` of the NCHW ``x`` into the zeroed (C, Hp, Wp) ``buf`` at offset (ph, pw)."""
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    for c in range(c_):
        for r in range(h):
            for q in range(w):
                buf[c, ph + r, pw + q] = x[n, c, r, q]


# The inner passes take 1-d row views: indexing a 2-d array inside the loop kept LLVM from
# vectorising it (10x slower).
@numba.njit(cache=True)
def _row5(r0, r1, r2, r3, xc, w, s, span):
    """``r_k[p] += sum_j w[k, j] * xc[s + j + p]`` for 4 output channels and 5 taps."""
    a0, a1, a2, a3, a4 = w[0, 0], w[0, 1], w[0, 2], w[0, 3], w[0, 4]
    b0, b1, b2, b3, b4 = w[1, 0], w[1, 1], w[1, 2], w[1, 3], w[1, 4]
    c0, c1, c2, c3, c4 = w[2, 0], w[2, 1], w[2, 2], w[2, 3], w[2, 4]
    d0, d1, d2, d3, d4 = w[3, 0], w[3, 1], w[3, 2], w[3, 3], w[3, 4]
    x0, x1, x2 = xc[s:s + span], xc[s + 1:s + 1 + span], xc[s + 2:s + 2 + span]
    x3, x4 = xc[s + 3:s + 3 + span], xc[s + 4:s + 4 + span]
    for p in range(span):
        v0, v1, v2, v3, v4 = x0[p], x1[p], x2[p], x3[p], x4[p]
        r0[p] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4
        r1[p] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3 + b4 * v4
        r2[p] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4
        r3[p] += d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3 + d4 * v4


@numba.njit(cache=True)
def _row3(r0, r1, r2, r3, xc, w, s, span):
    """``r_k[p] += sum_j w[k, j] * xc[s + j + p]`` for 4 output channels and 3 taps."""
    a0, a1, a2 = w[0, 0], w[0, 1], w[0, 2]
    b0, b1, b2 = w[1, 0], w[1, 1], w[1, 2]
    c0, c1, c2 = w[2, 0], w[2, 1], w[2, 2]
    d0, d1, d2 = w[3, 0], w[3, 1], w[3, 2]
    x0, x1, x2 = xc[s:s + span], xc[s + 1:s + 1 + span], xc[s + 2:s + 2 + span]
    for p in range(span):
        v0, v1, v2 = x0[p], x1[p], x2[p]
        r0[p] += a0 * v0 + a1 * v1 + a2 * v2
        r1[p] += b0 * v0 + b1 * v1 + b2 * v2
        r2[p] += c0 * v0 + c1 * v1 + c2 * v2
        r3[p] += d0 * v0 + d1 * v1 + d2 * v2


@numba.njit(cache=True)
def _tap(r, xc, wk, s, span):
    """``r[p] += wk * xc[s + p]``: one output channel, one tap."""
    xs = xc[s:s + span]
    for p in range(span):
        r[p] += wk * xs[p]


@kernel("void(A4, A4, A, A4, I, I)")
def _forward(x, W, b, y, ph, pw):
    n_, c_, h, w = x.shape
    o_, _, kh, kw = W.shape  # o_: a multiple of 4 (zero filters past y's channels)
    oy, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    hp, wp = max(h + 2 * ph, oh + kh - 1), max(w + 2 * pw, ow + kw - 1)
    span = (oh - 1) * wp + ow
    for n in prange(n_):
        buf = numpy.zeros((c_, hp, wp), x.dtype)
        _load_padded(x, n, buf, ph, pw)
        flat = buf.reshape(c_, hp * wp)
        acc = numpy.empty((4, span), y.dtype)
        r0, r1, r2, r3 = acc[0], acc[1], acc[2], acc[3]
        for o0 in range(0, o_, 4):
            for k in range(4):
                acc[k, :] = b[o0 + k]
            for c in range(c_):
                xc = flat[c]
                for i in range(kh):
                    if kw == 5:  # a row of five taps per pass: 5 loads feed 20 multiply-adds
                        _row5(r0, r1, r2, r3, xc, W[o0:o0 + 4, c, i], i * wp, span)
                    elif kw == 3:
                        _row3(r0, r1, r2, r3, xc, W[o0:o0 + 4, c, i], i * wp, span)
                    else:
                        for j in range(kw):
                            for k in range(4):
                                _tap(acc[k], xc, W[o0 + k, c, i, j], i * wp + j, span)
            for k in range(min(4, oy - o0)):
                for r in range(oh):
                    y[n, o0 + k, r, :] = acc[k, r * wp:r * wp + ow]


@numba.njit(inline="always")
def _load_wide(gy, n, gw, wp):
    """Sample ``n`` of gy (O, oh, ow) into ``gw`` (O, oh*wp) rows of width ``wp``, zeros past ``ow``."""
    o_, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    for o in range(o_):
        for r in range(oh):
            for q in range(ow):
                gw[o, r * wp + q] = gy[n, o, r, q]
            for q in range(ow, wp):
                gw[o, r * wp + q] = 0


_REASSOC = {"reassoc", "contract", "nsz"}


@numba.njit(cache=True, fastmath=_REASSOC)
def _dots5(ga, gb, xc, s, span):
    """The 10 sums ``sum_p g[p] * xc[s + j + p]`` for 2 output channels ``ga``, ``gb`` and 5 taps."""
    x0, x1, x2 = xc[s:s + span], xc[s + 1:s + 1 + span], xc[s + 2:s + 2 + span]
    x3, x4 = xc[s + 3:s + 3 + span], xc[s + 4:s + 4 + span]
    a0 = a1 = a2 = a3 = a4 = b0 = b1 = b2 = b3 = b4 = xc[0] * 0
    for p in range(span):
        u, v = ga[p], gb[p]
        y0, y1, y2, y3, y4 = x0[p], x1[p], x2[p], x3[p], x4[p]
        a0 += u * y0
        a1 += u * y1
        a2 += u * y2
        a3 += u * y3
        a4 += u * y4
        b0 += v * y0
        b1 += v * y1
        b2 += v * y2
        b3 += v * y3
        b4 += v * y4
    return a0, a1, a2, a3, a4, b0, b1, b2, b3, b4


@numba.njit(cache=True, fastmath=_REASSOC)
def _dots4(g0, g1, g2, g3, xs, span):
    """The 4 sums ``sum_p g_k[p] * xs[p]``."""
    e0 = e1 = e2 = e3 = xs[0] * 0
    for p in range(span):
        v = xs[p]
        e0 += g0[p] * v
        e1 += g1[p] * v
        e2 += g2[p] * v
        e3 += g3[p] * v
    return e0, e1, e2, e3


@numba.njit(cache=True, fastmath=_REASSOC)
def _dot(g, xs, span):
    e = xs[0] * 0
    for p in range(span):
        e += g[p] * xs[p]
    return e


@kernel("void(A4, A4, A4, I, I, I)", fastmath=_REASSOC)
def _weight_grad(x, gy, parts, t_, ph, pw):
    n_, c_, h, w = x.shape
    o_, kh, kw = parts.shape[0] // t_, parts.shape[2], parts.shape[3]
    oh, ow = gy.shape[2], gy.shape[3]
    hp, wp = max(h + 2 * ph, oh + kh - 1), max(w + 2 * pw, ow + kw - 1)
    span = (oh - 1) * wp + ow
    for t in prange(t_):
        part = parts[t * o_:(t + 1) * o_]
        part[...] = 0
        buf = numpy.zeros((c_, hp, wp), x.dtype)
        flat = buf.reshape(c_, hp * wp)
        gw = numpy.empty((o_, oh * wp), gy.dtype)
        for n in range(n_ * t // t_, n_ * (t + 1) // t_):
            _load_padded(x, n, buf, ph, pw)
            _load_wide(gy, n, gw, wp)
            for c in range(c_):
                xc = flat[c]
                for o in range(0, o_ - 3, 4):
                    g0, g1, g2, g3 = gw[o], gw[o + 1], gw[o + 2], gw[o + 3]
                    for i in range(kh):
                        if kw == 5:  # a row of five taps, two channels at a time: 7 loads feed 10 multiply-adds
                            for k in range(0, 4, 2):
                                e = _dots5(gw[o + k], gw[o + k + 1], xc, i * wp, span)
                                for j in range(5):
                                    part[o + k, c, i, j] += e[j]
                                part[o + k + 1, c, i, 0] += e[5]
                                part[o + k + 1, c, i, 1] += e[6]
                                part[o + k + 1, c, i, 2] += e[7]
                                part[o + k + 1, c, i, 3] += e[8]
                                part[o + k + 1, c, i, 4] += e[9]
                            continue
                        for j in range(kw):
                            e0, e1, e2, e3 = _dots4(g0, g1, g2, g3, xc[i * wp + j:], span)
                            part[o, c, i, j] += e0
                            part[o + 1, c, i, j] += e1
                            part[o + 2, c, i, j] += e2
                            part[o + 3, c, i, j] += e3
                for o in range(o_ - o_ % 4, o_):
                    for i in range(kh):
                        for j in range(kw):
                            part[o, c, i, j] += _dot(gw[o], xc[i * wp + j:], span)


def _threads(n):
    return max(1, min(numba.get_num_threads(), n))


def direct_forward(x, W, b, pad, oh, ow):
    """Stride-1 convolution of the NCHW ``x`` (any strides) with ``W`` (+ ``b``): a new (N, O, oh, ow) array.

    ``pad`` is ``(ph, pw)``; ``oh, ow`` the output size (no dilation; Chainer's ``cover_all`` may
    make it larger than the floor size: the padded plane grows to cover it).
    """
    n, o = x.shape[0], W.shape[0]
    y = numpy.empty((n, o, oh, ow), x.dtype)
    _forward(x, *_by_fours(W, b, x.dtype), y, pad[0], pad[1])
    return y


def _by_fours(W, b, dtype):
    """``W`` and the bias (zeros when None) as contiguous arrays of ``dtype``, with zero filters
    appended up to a multiple of 4 output channels (the kernel computes four at a time)."""
    o = W.shape[0]
    o4 = -(-o // 4) * 4
    Wp = numpy.zeros((o4,) + W.shape[1:], dtype)
    Wp[:o] = W
    bp = numpy.zeros(o4, dtype)
    if b is not None:
        bp[:o] = b
    return Wp, bp


def direct_input_grad(gy, W, x_shape, pad):
    """Input gradient (N, C, H, W) of a stride-1 convolution from its (N, O, oh, ow) output gradient:
    the full convolution of ``gy`` (padded by ``k - 1 - pad``) with the flipped, transposed kernel,
    by the forward kernel (``pad < k``)."""
    kh, kw = W.shape[2:]
    gx = numpy.empty(x_shape, gy.dtype)
    _forward(gy, *_by_fours(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), None, gy.dtype), gx, kh - 1 - pad[0],
             kw - 1 - pad[1])
    return gx


def direct_weight_grad(x, gy, w_shape, pad):
    """Weight gradient (O, C, kh, kw) of a stride-1 convolution: per-thread parts, summed."""
    t = _threads(x.shape[0])
    o = w_shape[0]
    parts = numpy.empty((t * o,) + tuple(w_shape[1:]), gy.dtype)
    _weight_grad(x, gy, parts, t, pad[0], pad[1])
    return parts.reshape((t,) + tuple(w_shape)).sum(axis=0) if t > 1 else parts


def direct_backward(xs, gy, pad, need):
    """``(gx, gW[, gb])`` of a stride-1 convolution with inputs ``xs`` (x, W[, b]) from ``gy``;
    a gradient ``need`` does not ask for is None."""
    x, W = xs[0], xs[1]
    gy = numpy.ascontiguousarray(gy, dtype=x.dtype)
    gx = direct_input_grad(gy, W, x.shape, pad) if need[0] else None
    gW = direct_weight_grad(x, gy, W.shape, pad) if need[1] else None
    if len(xs) == 2:
        return gx, gW
    gb = gy.sum(axis=(0, 2, 3)).astype(xs[2].dtype, copy=False) if need[2] else None
    return gx, gW, gb
