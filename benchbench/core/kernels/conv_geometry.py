"""Convolution geometry shared by convolution and pooling: argument pairs, output sizes, padding,
strided windows, im2col and col2im, and the NCHW <-> CNHW layout copies.

Every work array comes from the host buffer pool (``buffers``) and goes back to it when its
caller releases it; on cupy the pool hands out plain device arrays.
"""
from __future__ import annotations

import math

import numpy

from . import buffers as _buffers

__all__ = ["pair", "conv_outsize", "padded", "release_padded", "window", "im2col", "work", "col2im", "carve",
           "nchw", "cnhw"]

def pair(fname, argname, value, minimum):
    """Normalise an int or a pair of ints to a tuple and check each is >= ``minimum``."""
    if isinstance(value, (tuple, list)):
        pair = tuple(value)
    else:
        pair = (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, numpy.integer)) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{fname}: {argname} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{fname}: {argname} must be {what}, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_outsize(size, k, s, p, cover_all=False, d=1):
    """Chainer's output size: floor rounding, or ceil-like with ``cover_all``."""
    dk = k + (k - 1) * (d - 1)
    if cover_all:
        return (size + 2 * p - dk + s - 1) // s + 1
    return (size + 2 * p - dk) // s + 1


def padded(xp, x, ph, pw, oh, ow, kh, kw, sy, sx, dy=1, dx=1, fill=0.0):
    """The 4-D ``x`` (any strides) padded on its last two axes so every output window lies inside it.

    ``x`` itself is returned when no padding is needed; otherwise a C-contiguous work array
    from ``_buffers.acquire`` (only the border is filled), which the caller releases.
    """
    n, c, h, w = x.shape
    hp = max(h + 2 * ph, (oh - 1) * sy + (kh - 1) * dy + 1)
    wp = max(w + 2 * pw, (ow - 1) * sx + (kw - 1) * dx + 1)
    if hp == h and wp == w and ph == 0 and pw == 0:
        return x
    out = _buffers.acquire(xp, (n, c, hp, wp), x.dtype)
    out[:, :, :ph] = fill
    out[:, :, ph + h:] = fill
    out[:, :, ph:ph + h, :pw] = fill
    out[:, :, ph:ph + h, pw + w:] = fill
    _buffers.copy(xp, out[:, :, ph:ph + h, pw:pw + w], x)
    return out


def release_padded(xp, padded, x):
    """Give back what ``padded`` took (nothing when it returned ``x`` itself)."""
    if padded is not x:
        _buffers.release(xp, padded)


def window(xp, a, i, j, oh, ow, sy, sx, dy=1, dx=1):
    """The (A, B, oh, ow) strided view of the kernel offset (i, j) over the 4-D ``a``."""
    y0, x0 = i * dy, j * dx
    return a[:, :, y0:y0 + sy * (oh - 1) + 1:sy, x0:x0 + sx * (ow - 1) + 1:sx]


def im2col(xp, a, kh, kw, oh, ow, sy, sx, dy, dx, capacity=None):
    """Copy the windows of ``a`` (C, N, Hp, Wp), any strides, into a (C*kh*kw, N*oh*ow) work array.

    The result comes from ``_buffers.acquire`` (the front of a flat array of ``capacity``
    elements when given): the caller releases it.
    """
    c, n = a.shape[:2]
    s_c, s_n, s_h, s_w = a.strides
    view = xp.lib.stride_tricks.as_strided(
        a, (c, kh, kw, n, oh, ow), (s_c, s_h * dy, s_w * dx, s_n, s_h * sy, s_w * sx)
    )
    col = work(xp, view.shape, a.dtype, capacity)
    _buffers.copy(xp, col, view)
    return col.reshape(c * kh * kw, n * oh * ow)


def work(xp, shape, dtype, capacity=None):
    """A work array of ``shape`` from the pool, the front of a flat one of ``capacity`` elements when given."""
    if capacity is None:
        return _buffers.acquire(xp, shape, dtype)
    size = math.prod(shape)
    assert size <= capacity
    return _buffers.acquire(xp, (capacity,), dtype)[:size].reshape(shape)


def col2im(xp, gcol, c, n, kh, kw, oh, ow, sy, sx, hp, wp, dy, dx, out=None):
    """Sum the (C*kh*kw, N*oh*ow) column gradient onto a padded (C, N, hp, wp) work array (or ``out``)."""
    gcol = gcol.reshape(c, kh, kw, n, oh, ow)
    gpad = _buffers.acquire(xp, (c, n, hp, wp), gcol.dtype) if out is None else out
    gpad.fill(0)
    for i in range(kh):
        for j in range(kw):
            window(xp, gpad, i, j, oh, ow, sy, sx, dy, dx)[...] += gcol[:, i, j]
    return gpad


def carve(xp, capacity, dtype, shapes):
    """Arrays of ``shapes`` side by side in one flat work array of ``capacity`` elements (from the
    pool; release any of them to give it back), or separate new arrays when ``capacity`` is None."""
    if capacity is None:
        return [xp.empty(shape, dtype=dtype) for shape in shapes]
    flat = _buffers.acquire(xp, (capacity,), dtype)
    out, at = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(flat[at:at + size].reshape(shape))
        at += size
    assert at <= capacity
    return out


def nchw(xp, a):
    """New contiguous (N, C, H, W) copy of a (C, N, H, W) array."""
    c, n, h, w = a.shape
    out = xp.empty((n, c, h, w), dtype=a.dtype)
    return _buffers.copy(xp, out, a.transpose(1, 0, 2, 3))


def cnhw(xp, a):
    """Contiguous (C, N, H, W) work array (from ``_buffers.acquire``) holding the (N, C, H, W) ``a``."""
    n, c, h, w = a.shape
    out = _buffers.acquire(xp, (c, n, h, w), a.dtype)
    return _buffers.copy(xp, out, a.transpose(1, 0, 2, 3))
