"""Spatial pooling: ``max_pooling_2d``, ``average_pooling_2d``, ``global_average_pooling_2d``.

Both poolings walk the ``kh*kw`` kernel offsets; each offset is one strided
(N, C, out_h, out_w) view of the (padded) input, so a pass is a handful of
vectorised operations whatever the stride, overlapping windows (ksize 2,
stride 1) included. Max pooling records, per output, the index of the first
maximum in its window (an int8/int16 array); its backward adds ``gy`` where
that index equals the offset, one strided slice per offset: no ``add.at``, no
fancy-index scatter, no loop over elements. With the compiled CPU kernels on
(``BENCHBENCH_CPU_KERNELS``), stride-1 max pooling (overlapping windows, where those passes are
many) runs instead as one compiled pass each way over the planes (``kernels.cpu_pooling``), with
the same first-maximum rule.
"""
from __future__ import annotations

import numpy

from .. import kernels
from ..function import Function
from ..kernels import buffers as _buffers
from ..kernels import cpu_compiled
from ._checks import check_float
from ..kernels.conv_geometry import conv_outsize as _conv_outsize, pair as _pair, padded as _padded
from ..kernels.conv_geometry import release_padded as _release_padded, window as _window

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
        if kernels.fusable(x):
            from ..kernels import cuda_pooling

            y, idx = cuda_pooling.max_forward(xp, x, self.geometry)
            self.indices = ("fused", idx) if self.needs_input_grad[0] else None
            return (y,)
        kh, kw, sy, sx, ph, pw, oh, ow = self.geometry
        tiled = (kh, kw) == (sy, sx) and ph == pw == 0 and (oh, ow) == (x.shape[2] // kh, x.shape[3] // kw)
        if ((sy, sx) == (1, 1) or tiled) and cpu_compiled.usable(x):
            from ..kernels import cpu_pooling

            y, idx = cpu_pooling.max_forward(x, self.geometry)
            self.indices = ("compiled", idx) if self.needs_input_grad[0] else None
            return (y,)
        kh, kw, sy, sx, ph, pw, oh, ow = self.geometry
        xpad = _padded(xp, x, ph, pw, oh, ow, kh, kw, sy, sx, fill=-numpy.inf)
        if (sy, sx) == (1, 1):
            return (self._forward_flat(xp, x, xpad),)
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

    # -- stride 1: every pass runs over the flat padded array -------------------------
    # With stride 1 the window offset (i, j) is the padded input shifted by i*Wp + j elements
    # in its flat form, so each pass is one contiguous numpy loop over the whole batch rather
    # than a loop per output row (short rows made the strided passes several times slower).
    # Positions near the right and bottom edges compute values no output uses; they are cropped.
    def _forward_flat(self, xp, x, xpad):
        kh, kw, _, _, ph, pw, oh, ow = self.geometry
        if not xpad.flags.c_contiguous:
            xpad = xp.ascontiguousarray(xpad)
        n, c, hp, wp = xpad.shape
        f = xpad.reshape(-1)
        total = f.size
        itype = numpy.int8 if kh * kw <= 127 else numpy.int32
        # along each row: the maximum of kw neighbours and the first column offset that has it
        l1 = total - (kw - 1)
        # work arrays from the pool: fresh ones would cost a page fault per 4 KiB on every step
        r = _buffers.acquire(xp, (l1,), x.dtype)
        r[...] = f[:l1]
        ridx = _buffers.acquire(xp, (l1,), itype)
        ridx.fill(0)
        mask = _buffers.acquire(xp, (l1,), bool)
        step = _buffers.acquire(xp, (l1,), itype)
        for j in range(1, kw):
            v = f[j:j + l1]
            xp.greater(v, r, out=mask)  # strictly: the first maximum wins ties
            # offsets come in increasing order: "ridx = j where v beats r" is max(ridx, j * mask)
            # (arithmetic on the 0/1 mask; a boolean-mask assignment is several times slower)
            xp.multiply(mask, itype(j), out=step)
            xp.maximum(ridx, step, out=ridx)
            xp.maximum(r, v, out=r)
        # down the columns: the maximum of kh row results, offset i*kw + j of the first one
        l2 = l1 - (kh - 1) * wp
        y = _buffers.acquire(xp, (total,), x.dtype)
        idx = _buffers.acquire(xp, (total,), itype)
        y[:l2] = r[:l2]
        y[l2:] = 0  # never an output; defined for the crop below
        idx[:l2] = ridx[:l2]
        idx[l2:] = 0
        m, d = mask[:l2], step[:l2]
        for i in range(1, kh):
            v = r[i * wp:i * wp + l2]
            xp.greater(v, y[:l2], out=m)
            # idx = i*kw + ridx(row i) where row i beats the rows above: idx += m * (that - idx)
            xp.add(ridx[i * wp:i * wp + l2], itype(i * kw), out=d)
            xp.subtract(d, idx[:l2], out=d)
            xp.multiply(d, m, out=d)
            xp.add(idx[:l2], d, out=idx[:l2])
            xp.maximum(y[:l2], v, out=y[:l2])
        _release_padded(xp, xpad, x)
        for a in (r, ridx, mask, step):
            _buffers.release(xp, a)
        out = xp.ascontiguousarray(y.reshape(n, c, hp, wp)[:, :, :oh, :ow])
        _buffers.release(xp, y)
        if self.needs_input_grad[0]:
            self.indices = idx  # on the padded grid; backward reads only the cropped outputs' entries
        else:
            _buffers.release(xp, idx)
        return out

    def _backward_flat(self, xp, x, gy):
        kh, kw, _, _, ph, pw, oh, ow = self.geometry
        n, c, h, w = x.shape
        hp, wp = max(h + 2 * ph, oh + kh - 1), max(w + 2 * pw, ow + kw - 1)
        total = n * c * hp * wp
        g = _buffers.acquire(xp, (n, c, hp, wp), x.dtype)  # gy on the padded grid, zero where no output is
        g.fill(0)
        g[:, :, :oh, :ow] = gy
        g = g.reshape(-1)
        idx = self.indices
        self.indices = None
        span = total - (kw - 1) - (kh - 1) * wp
        padded = (hp, wp) != (h, w)
        gpad = (_buffers.acquire(xp, (total,), x.dtype) if padded else xp.empty(total, dtype=x.dtype))
        gpad.fill(0)
        hit = _buffers.acquire(xp, (span,), bool)
        hitf = _buffers.acquire(xp, (span,), x.dtype)
        part = _buffers.acquire(xp, (span,), x.dtype)
        for k in range(kh * kw):
            shift = (k // kw) * wp + k % kw
            xp.equal(idx[:span], k, out=hit)
            xp.copyto(hitf, hit)  # the 0/1 mask as floats: float * float runs faster than float * bool
            xp.multiply(g[:span], hitf, out=part)
            gpad[shift:shift + span] += part
        for a in (g, idx, hit, hitf, part):
            _buffers.release(xp, a)
        gx = gpad.reshape(n, c, hp, wp)
        if not padded:
            return gx
        gx = xp.ascontiguousarray(_unpad(gx, h, w, ph, pw))
        _buffers.release(xp, gpad)
        return gx

    def backward(self, xp, xs, gys):
        x = xs[0]
        gy = gys[0]
        if isinstance(self.indices, tuple) and self.indices[0] == "compiled":
            from ..kernels import cpu_pooling

            idx, self.indices = self.indices[1], None
            g = numpy.ascontiguousarray(gy, dtype=x.dtype)
            return (cpu_pooling.max_backward(g, idx, x.shape, self.geometry),)
        if isinstance(self.indices, tuple):  # the forward ran the fused kernel
            from ..kernels import cuda_pooling

            idx, self.indices = self.indices[1], None
            return (cuda_pooling.max_backward(xp, x.shape, x.dtype, gy.astype(x.dtype, copy=False), idx,
                                              self.geometry),)
        kh, kw, sy, sx, ph, pw, oh, ow = self.geometry
        if (sy, sx) == (1, 1):
            return (self._backward_flat(xp, x, gy),)
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
        if kernels.fusable(x):
            from ..kernels import cuda_pooling

            return (cuda_pooling.average_forward(xp, x, self.geometry),)
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
        if kernels.fusable(x, gys[0]) and gys[0].dtype == x.dtype:
            from ..kernels import cuda_pooling

            return (cuda_pooling.average_backward(xp, x.shape, x.dtype, gys[0], self.geometry),)
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
