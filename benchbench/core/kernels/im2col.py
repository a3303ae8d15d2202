"""The im2col convolution's gradient passes that need more than one GEMM: the input gradient of a
stride-1 layer (a full convolution of the padded output gradient, or a GEMM on it widened to the
padded row width followed by contiguous adds) and the weight gradient with its columns built again
from the input a few samples at a time (see ``conv_chunks``)."""
from __future__ import annotations

import numpy

from . import buffers as _buffers
from . import cpu_compiled
from .conv_chunks import column_capacity, sample_chunks
from .conv_geometry import conv_outsize, im2col, padded, release_padded, work

__all__ = ["input_grad_by_wide_col2im", "input_grad_by_full_convolution", "weight_grad_by_chunks"]


def input_grad_by_wide_col2im(xp, gy, W, x_shape, oh, ow, pad):
    """Padded (C, N, Hp, Wp) ``gx`` work array for stride 1: a GEMM, then ``kh*kw`` contiguous adds.

    ``gy`` is first widened to rows of the padded width ``Wp`` (zeros past ``ow``), so the
    column gradient of kernel offset (i, j) lands on the padded input shifted by ``i*Wp + j``
    elements: each add runs over whole rows of every sample at once instead of over rows of
    ``ow`` (short rows made col2im's adds several times slower). The GEMM grows by
    ``Wp / ow``; the zeros it adds past ``ow`` fall on padding or on nothing.
    """
    n, c, h, w = x_shape
    o, _, kh, kw = W.shape
    hp, wp = max(h + 2 * pad[0], oh + kh - 1), max(w + 2 * pad[1], ow + kw - 1)
    wide = _buffers.acquire(xp, (o, n, oh, wp), gy.dtype)
    wide[..., ow:] = 0
    _buffers.copy(xp, wide[..., :ow], gy.reshape(o, n, oh, ow))
    gx = _buffers.acquire(xp, (c, n, hp, wp), gy.dtype)
    compiled = xp is numpy and cpu_compiled.usable(gx)
    if not compiled:
        gx.fill(0)
    span = oh * wp
    chunks = sample_chunks(xp, n, c * kh * kw * span * gy.itemsize)
    cap = column_capacity(xp, chunks, c * kh * kw * span, gy.itemsize)
    for lo, hi in chunks:
        gcol = work(xp, (c * kh * kw, (hi - lo) * span), gy.dtype, cap)
        xp.matmul(W.reshape(o, -1).T, wide[:, lo:hi].reshape(o, -1), out=gcol)
        if compiled:  # every plane zeroed and summed in cache, the planes over the threads
            from . import cpu_col2im

            cpu_col2im.wide_col2im(gcol, gx, lo, kh, kw, wp, span)
            _buffers.release(xp, gcol)
            continue
        g = gcol.reshape(c, kh, kw, hi - lo, span)
        target = gx[:, lo:hi].reshape(c, hi - lo, hp * wp)
        for i in range(kh):
            for j in range(kw):
                shift = i * wp + j
                count = min(span, hp * wp - shift)  # what is cut off lies past ow: zeros
                target[:, :, shift:shift + count] += g[:, i, j, :, :count]
        _buffers.release(xp, gcol)
    _buffers.release(xp, wide)
    return gx

def input_grad_by_full_convolution(xp, gy, W, x_shape, oh, ow, pad):
    """(C, N, H, W) ``gx`` work array for stride 1: the zero-padded ``gy`` convolved with the flipped kernel.

    One im2col copy and one GEMM instead of a GEMM and ``kh*kw`` read-modify-write passes.
    """
    n, c, h, w = x_shape
    o, _, kh, kw = W.shape
    qh, qw = kh - 1 - pad[0], kw - 1 - pad[1]
    gy4 = gy.reshape(o, n, oh, ow)
    gpad = padded(xp, gy4, qh, qw, h, w, kh, kw, 1, 1)
    w_flip = xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(c, -1)
    gx = _buffers.acquire(xp, (c, n * h * w), gy.dtype)
    m = h * w
    chunks = sample_chunks(xp, n, o * kh * kw * m * gy.itemsize)
    cap = column_capacity(xp, chunks, o * kh * kw * m, gy.itemsize)
    for lo, hi in chunks:
        gcol = im2col(xp, gpad[:, lo:hi], kh, kw, h, w, 1, 1, 1, 1, cap)
        xp.matmul(w_flip, gcol, out=gx[:, lo * m:hi * m])
        _buffers.release(xp, gcol)
    release_padded(xp, gpad, gy4)
    return gx.reshape(c, n, h, w)

def weight_grad_by_chunks(xp, x, W, gy, stride, pad, dilate, cover_all):
    """``gy @ col.T`` as an (O, C*kh*kw) array (a transposed view), the columns built again from ``x``
    a chunk at a time."""
    (sy, sx), (ph, pw), (dy, dx) = stride, pad, dilate
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    oh = conv_outsize(h, kh, sy, ph, cover_all, dy)
    ow = conv_outsize(w, kw, sx, pw, cover_all, dx)
    x_cnhw = x.transpose(1, 0, 2, 3)
    xpad = padded(xp, x_cnhw, ph, pw, oh, ow, kh, kw, sy, sx, dy, dx)
    m = oh * ow
    gW = None
    chunks = sample_chunks(xp, n, c * kh * kw * m * x.itemsize)
    cap = column_capacity(xp, chunks, c * kh * kw * m, x.itemsize)
    for lo, hi in chunks:
        col = im2col(xp, xpad[:, lo:hi], kh, kw, oh, ow, sy, sx, dy, dx, cap)
        # (col gy^T)^T, not gy col^T: the same product, which OpenBLAS runs about 20 % faster at
        # ResNet's shapes (the long dimension is the one both operands are contiguous along)
        part = xp.matmul(col, gy[:, lo * m:hi * m].T)
        _buffers.release(xp, col)
        if gW is None:
            gW = part
        else:
            gW += part
    release_padded(xp, xpad, x_cnhw)
    return gW.T
