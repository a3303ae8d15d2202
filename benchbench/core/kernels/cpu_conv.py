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


@kernel("void(A4, A4, A, A4, I, I)")
def _forward(x, W, b, y, ph, pw):
    n_, c_, h, w = x.shape
    o_, _, kh, kw = W.shape
    oh, ow = y.shape[2], y.shape[3]
    hp, wp = max(h + 2 * ph, oh + kh - 1), max(w + 2 * pw, ow + kw - 1)
    span = (oh - 1) * wp + ow
    for n in prange(n_):
        buf = numpy.zeros((c_, hp, wp), x.dtype)
        _load_padded(x, n, buf, ph, pw)
        flat = buf.reshape(c_, hp * wp)
        acc = numpy.empty((4, span), y.dtype)
        for o0 in range(0, o_, 4):
            m = min(4, o_ - o0)
            for k in range(m):
                acc[k, :] = b[o0 + k]
            for c in range(c_):
                xc = flat[c]
                for i in range(kh):
                    for j in range(kw):
                        s = i * wp + j
                        if m == 4:
                            w0, w1 = W[o0, c, i, j], W[o0 + 1, c, i, j]
                            w2, w3 = W[o0 + 2, c, i, j], W[o0 + 3, c, i, j]
                            for p in range(span):
                                v = xc[s + p]
                                acc[0, p] += w0 * v
                                acc[1, p] += w1 * v
                                acc[2, p] += w2 * v
                                acc[3, p] += w3 * v
                        else:
                            for k in range(m):
                                wk = W[o0 + k, c, i, j]
                                for p in range(span):
                                    acc[k, p] += wk * xc[s + p]
            for k in range(m):
                for r in range(oh):
                    for q in range(ow):
                        y[n, o0 + k, r, q] = acc[k, r * wp + q]


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


@kernel("void(A4, A4, A4, I, I, I)", fastmath={"reassoc", "contract", "nsz"})
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
                for i in range(kh):
                    for j in range(kw):
                        s = i * wp + j
                        o = 0
                        while o + 4 <= o_:
                            a0 = a1 = a2 = a3 = 0.0
                            for p in range(span):
                                v = xc[s + p]
                                a0 += gw[o, p] * v
                                a1 += gw[o + 1, p] * v
                                a2 += gw[o + 2, p] * v
                                a3 += gw[o + 3, p] * v
                            part[o, c, i, j] += a0
                            part[o + 1, c, i, j] += a1
                            part[o + 2, c, i, j] += a2
                            part[o + 3, c, i, j] += a3
                            o += 4
                        while o < o_:
                            acc = 0.0
                            for p in range(span):
                                acc += gw[o, p] * xc[s + p]
                            part[o, c, i, j] += acc
                            o += 1


def _threads(n):
    return max(1, min(numba.get_num_threads(), n))


def direct_forward(x, W, b, pad, oh, ow):
    """Stride-1 convolution of the NCHW ``x`` (any strides) with ``W`` (+ ``b``): a new (N, O, oh, ow) array.

    ``pad`` is ``(ph, pw)``; ``oh, ow`` the output size (no dilation; Chainer's ``cover_all`` may
    make it larger than the floor size: the padded plane grows to cover it).
    """
    n, o = x.shape[0], W.shape[0]
    y = numpy.empty((n, o, oh, ow), x.dtype)
    bias = numpy.zeros(o, x.dtype) if b is None else numpy.ascontiguousarray(b, dtype=x.dtype)
    _forward(x, numpy.ascontiguousarray(W), bias, y, pad[0], pad[1])
    return y


def direct_input_grad(gy, W, x_shape, pad):
    """Input gradient (N, C, H, W) of a stride-1 convolution from its (N, O, oh, ow) output gradient:
    the full convolution of ``gy`` (padded by ``k - 1 - pad``) with the flipped, transposed kernel,
    by the forward kernel (``pad < k``)."""
    kh, kw = W.shape[2:]
    w_flip = numpy.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), dtype=gy.dtype)
    gx = numpy.empty(x_shape, gy.dtype)
    _forward(gy, w_flip, numpy.zeros(x_shape[1], gy.dtype), gx, kh - 1 - pad[0], kw - 1 - pad[1])
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
