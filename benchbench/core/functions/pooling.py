"""Spatial pooling: ``max_pooling_2d``, ``average_pooling_2d``, ``global_average_pooling_2d``.

Both poolings walk the ``kh*kw`` kernel offsets; each offset is one strided
(N, C, out_h, out_w) view of the (padded) input, so a pass is a handful of
vectorised operations whatever the stride, overlapping windows (ksize 2,
stride 1) included. Max pooling records, per output, the index of the first
maximum in its window (an int8/int16 array); its backward adds ``gy`` where
that index equals the offset, one strided slice per offset: no ``add.at``, no
fancy-index scatter, no loop over elements.
"""
from __future__ import annotations

import numpy

from ..function import Function
from ._checks import check_float
from .connection import _conv_outsize, _pair, _padded, _release_padded, _window

__all__ = ["max_pooling_2d", "average_pooling_2d", "global_average_pooling_2d"]


def _pool_args(fname, x, ksize, stride, pad, cover_all):
    """Validate the pooling arguments; return the geometry as plain ints."""
    xa = check_float(fname, "x", x)
    if xa.ndim != 4:
        raise ValueError(f"{fname}: x must be 4-D (N, C, H, W), got shape {xa.shape}")
    kh, kw = _pair(fname, "ksize", ksize, 1)
    sy, sx = (kh, kw) if stride is None else _pair(fname, "stride", stride, 1)
    ph, pw = _pair(fname, "pad", pad, 0)
    h, w = xa.shape[2:]
    oh = _conv_outsize(h, kh, sy, ph, cover_all)
    ow = _conv_outsize(w, kw, sx, pw, cover_all)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{fname}: output would be empty ({oh}x{ow}) for x {xa.shape}, ksize {(kh, kw)}, "
            f"stride {(sy, sx)}, pad {(ph, pw)}"
        )
    return (kh, kw, sy, sx, ph, pw, oh, ow)


def _unpad(g, h, w, ph, pw):
    if g.shape[2] == h and g.shape[3] == w:
        return g
    return g[:, :, ph:ph + h, pw:pw + w]


class MaxPooling2D(Function):
    """Max pooling; remembers the offset of each window's first maximum."""

    def __init__(self, geometry):
        self.geometry = geometry
        self.indices = None

    def forward(self, xp, xs):
        x = xs[0]
        kh, kw, sy, sx, ph, pw, oh, ow = self.geometry
        xpad = _padded(xp, x, ph, pw, oh, ow, kh, kw, sy, sx, fill=-numpy.inf)
        y = xp.array(_window(xp, xpad, 0, 0, oh, ow, sy, sx), copy=True, order="C")
        idx = xp.zeros(y.shape, dtype=numpy.int8 if kh * kw <= 127 else numpy.int32)
        mask = xp.empty(y.shape, dtype=bool)
        step = xp.empty(y.shape, dtype=idx.dtype)
        for k in range(1, kh * kw):
            v = _window(xp, xpad, k // kw, k % kw, oh, ow, sy, sx)
            xp.greater(v, y, out=mask)
            # offsets come in increasing order, so "idx = k where v beats y" is max(idx, k * mask)
            xp.multiply(mask, idx.dtype.type(k), out=step)
            xp.maximum(idx, step, out=idx)
            xp.maximum(y, v, out=y)
        _release_padded(xp, xpad, x)
        if self.needs_input_grad[0]:
            self.indices = idx
        return (y,)

    def backward(self, xp, xs, gys):
        x = xs[0]
        gy = gys[0]
        kh, kw, sy, sx, ph, pw, oh, ow = self.geometry
        n, c, h, w = x.shape
        hp = max(h + 2 * ph, (oh - 1) * sy + kh)
        wp = max(w + 2 * pw, (ow - 1) * sx + kw)
        idx = self.indices
        gpad = xp.zeros((n, c, hp, wp), dtype=x.dtype)
        overlapping = sy < kh or sx < kw
        hit = xp.empty(gy.shape, dtype=bool)
        part = xp.empty(gy.shape, dtype=x.dtype) if overlapping else None
        for k in range(kh * kw):
            target = _window(xp, gpad, k // kw, k % kw, oh, ow, sy, sx)
            xp.equal(idx, k, out=hit)
            if k == 0 or not overlapping:  # target still all zeros: write instead of add
                xp.multiply(gy, hit, out=target)
            else:
                xp.multiply(gy, hit, out=part)
                target += part
        self.indices = None
        return (_unpad(gpad, h, w, ph, pw),)


def max_pooling_2d(x, ksize, stride=None, pad=0, cover_all=True):
    """Spatial max pooling (Chainer semantics).

    Args:
        x: input, shape ``(N, C, H, W)``.
        ksize: int or (kh, kw), >= 1.
        stride: int or (sy, sx), >= 1; ``None`` means ``ksize``.
        pad: int or (ph, pw), >= 0; padded cells hold ``-inf``.
        cover_all: True (Chainer's default) rounds the output size up so every input
            pixel lies in a window; False gives the floor size other frameworks use.

    Returns:
        Variable of shape ``(N, C, out_h, out_w)``. In the backward pass each window's
        gradient goes to its first maximum.

    Raises:
        TypeError: non-float ``x`` or malformed ksize/stride/pad.
        ValueError: ``x`` not 4-D, a non-positive ksize/stride, a negative pad, or an empty output.

    Example:
        >>> y = max_pooling_2d(x, 2, stride=1)   # (100, 32, 24, 24) -> (100, 32, 23, 23)
    """
    geometry = _pool_args("max_pooling_2d", x, ksize, stride, pad, bool(cover_all))
    return MaxPooling2D(geometry).apply((x,))[0]


class AveragePooling2D(Function):
    """Average pooling; padded zeros count in the average (Chainer's rule)."""

    def __init__(self, geometry):
        self.geometry = geometry

    def forward(self, xp, xs):
        x = xs[0]
        kh, kw, sy, sx, ph, pw, oh, ow = self.geometry
        xpad = _padded(xp, x, ph, pw, oh, ow, kh, kw, sy, sx)
        y = xp.array(_window(xp, xpad, 0, 0, oh, ow, sy, sx), copy=True, order="C")
        for k in range(1, kh * kw):
            y += _window(xp, xpad, k // kw, k % kw, oh, ow, sy, sx)
        _release_padded(xp, xpad, x)
        y *= x.dtype.type(1.0 / (kh * kw))
        return (y,)

    def backward(self, xp, xs, gys):
        x = xs[0]
        kh, kw, sy, sx, ph, pw, oh, ow = self.geometry
        n, c, h, w = x.shape
        hp = max(h + 2 * ph, (oh - 1) * sy + kh)
        wp = max(w + 2 * pw, (ow - 1) * sx + kw)
        g = gys[0] * x.dtype.type(1.0 / (kh * kw))
        gpad = xp.zeros((n, c, hp, wp), dtype=x.dtype)
        for k in range(kh * kw):
            _window(xp, gpad, k // kw, k % kw, oh, ow, sy, sx)[...] += g
        return (_unpad(gpad, h, w, ph, pw),)


def average_pooling_2d(x, ksize, stride=None, pad=0):
    """Spatial average pooling (Chainer semantics: padded zeros count, floor-rounded output size).

    Args:
        x: input, shape ``(N, C, H, W)``.
        ksize: int or (kh, kw), >= 1.
        stride: int or (sy, sx), >= 1; ``None`` means ``ksize``.
        pad: int or (ph, pw), >= 0; zero padding, included in every average.

    Returns:
        Variable of shape ``(N, C, out_h, out_w)``, ``out_h = (H + 2 ph - kh) // sy + 1``.

    Raises:
        TypeError: non-float ``x`` or malformed ksize/stride/pad.
        ValueError: ``x`` not 4-D, a non-positive ksize/stride, a negative pad, or an empty output.

    Example:
        >>> y = average_pooling_2d(x, 4)   # (64, 512, 4, 4) -> (64, 512, 1, 1)
    """
    geometry = _pool_args("average_pooling_2d", x, ksize, stride, pad, False)
    return AveragePooling2D(geometry).apply((x,))[0]


class GlobalAveragePooling2D(Function):
    """Mean over the spatial axes: (N, C, H, W) -> (N, C)."""

    def forward(self, xp, xs):
        x = xs[0]
        return (x.mean(axis=(2, 3)).astype(x.dtype, copy=False),)

    def backward(self, xp, xs, gys):
        x = xs[0]
        n, c, h, w = x.shape
        g = gys[0] * x.dtype.type(1.0 / (h * w))
        return (xp.broadcast_to(g[:, :, None, None], x.shape).copy(),)


def global_average_pooling_2d(x):
    """Average over the spatial axes, (N, C, H, W) -> (N, C), as ResNet heads use it.

    Args:
        x: input, shape ``(N, C, H, W)`` with ``H, W >= 1``.

    Returns:
        Variable of shape ``(N, C)``.

    Raises:
        TypeError: non-float ``x``.
        ValueError: ``x`` not 4-D or with an empty spatial extent.
    """
    xa = check_float("global_average_pooling_2d", "x", x)
    if xa.ndim != 4:
        raise ValueError(f"global_average_pooling_2d: x must be 4-D (N, C, H, W), got shape {xa.shape}")
    if xa.shape[2] < 1 or xa.shape[3] < 1:
        raise ValueError(f"global_average_pooling_2d: x has an empty spatial extent, shape {xa.shape}")
    return GlobalAveragePooling2D().apply((x,))[0]
