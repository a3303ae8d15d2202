"""Connections with weights: ``linear`` and ``convolution_2d`` (Chainer's argument orders).

Convolution runs as single large GEMMs, which keep every BLAS thread busy (many small
per-sample GEMMs do not, least of all on a loaded machine). The im2col is one copy of
a strided view of the (padded) input laid out channel-major, ``(C*kh*kw, N*out_h*out_w)``,
so ``W.reshape(O, -1) @ col`` is one GEMM; its ``(O, N, ...)`` result is transposed to
NCHW by one copy of the output. Backward: ``gW`` is one GEMM; ``gx`` (only when the
input needs a gradient) is, for stride 1, a convolution of the padded ``gy`` with the
flipped kernel (one im2col + one GEMM), otherwise a GEMM and a col2im that adds
``kh*kw`` strided slices, never ``add.at``. A 1x1 convolution with stride 1 and no
padding skips im2col. On the CPU every internal array (padded input, columns, GEMM
results before the NCHW copy) comes from the ``_buffers`` pool and goes back to it as
soon as nothing reads it (the columns after the weight gradient), and the large layout
copies run on the BLAS thread count. Only small columns are kept for the weight gradient;
larger ones are built again from the retained input, and very large ones a few samples at a
time, each GEMM writing (or, for ``gW``, adding) its chunk's part (see ``_conv_chunks``).
A stride-1 ``gx`` whose full convolution would be larger is a GEMM on ``gy`` widened to the
padded row width, then ``kh*kw`` contiguous adds. 3x3 stride-1 layers with many channels run
as Winograd F(2x2, 3x3) on the CPU instead (``_winograd``, chosen by :func:`use_winograd`).
"""
from __future__ import annotations

import math
import os

import numpy

from .. import kernels
from ..function import Function
from . import _buffers
from ._checks import check_float
from ._conv_chunks import column_capacity, holds_columns, sample_chunks
from . import _winograd

__all__ = ["linear", "convolution_2d", "conv_algorithm", "use_winograd", "winograd_applies"]


# -- shared geometry helpers (also used by pooling) ---------------------------------
def _pair(fname, argname, value, minimum):
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


def _conv_outsize(size, k, s, p, cover_all=False, d=1):
    """Chainer's output size: floor rounding, or ceil-like with ``cover_all``."""
    dk = k + (k - 1) * (d - 1)
    if cover_all:
        return (size + 2 * p - dk + s - 1) // s + 1
    return (size + 2 * p - dk) // s + 1


def _padded(xp, x, ph, pw, oh, ow, kh, kw, sy, sx, dy=1, dx=1, fill=0.0):
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


def _release_padded(xp, padded, x):
    """Give back what ``_padded`` took (nothing when it returned ``x`` itself)."""
    if padded is not x:
        _buffers.release(xp, padded)


def _window(xp, a, i, j, oh, ow, sy, sx, dy=1, dx=1):
    """The (A, B, oh, ow) strided view of the kernel offset (i, j) over the 4-D ``a``."""
    y0, x0 = i * dy, j * dx
    return a[:, :, y0:y0 + sy * (oh - 1) + 1:sy, x0:x0 + sx * (ow - 1) + 1:sx]


def _im2col(xp, a, kh, kw, oh, ow, sy, sx, dy, dx, capacity=None):
    """Copy the windows of ``a`` (C, N, Hp, Wp), any strides, into a (C*kh*kw, N*oh*ow) work array.

    The result comes from ``_buffers.acquire`` (the front of a flat array of ``capacity``
    elements when given): the caller releases it.
    """
    c, n = a.shape[:2]
    s_c, s_n, s_h, s_w = a.strides
    view = xp.lib.stride_tricks.as_strided(
        a, (c, kh, kw, n, oh, ow), (s_c, s_h * dy, s_w * dx, s_n, s_h * sy, s_w * sx)
    )
    col = _work(xp, view.shape, a.dtype, capacity)
    _buffers.copy(xp, col, view)
    return col.reshape(c * kh * kw, n * oh * ow)


def _work(xp, shape, dtype, capacity=None):
    """A work array of ``shape`` from the pool, the front of a flat one of ``capacity`` elements when given."""
    if capacity is None:
        return _buffers.acquire(xp, shape, dtype)
    size = math.prod(shape)
    assert size <= capacity
    return _buffers.acquire(xp, (capacity,), dtype)[:size].reshape(shape)


def _col2im(xp, gcol, c, n, kh, kw, oh, ow, sy, sx, hp, wp, dy, dx, out=None):
    """Sum the (C*kh*kw, N*oh*ow) column gradient onto a padded (C, N, hp, wp) work array (or ``out``)."""
    gcol = gcol.reshape(c, kh, kw, n, oh, ow)
    gpad = _buffers.acquire(xp, (c, n, hp, wp), gcol.dtype) if out is None else out
    gpad.fill(0)
    for i in range(kh):
        for j in range(kw):
            _window(xp, gpad, i, j, oh, ow, sy, sx, dy, dx)[...] += gcol[:, i, j]
    return gpad


def _carve(xp, capacity, dtype, shapes):
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


def _nchw(xp, a):
    """New contiguous (N, C, H, W) copy of a (C, N, H, W) array."""
    c, n, h, w = a.shape
    out = xp.empty((n, c, h, w), dtype=a.dtype)
    return _buffers.copy(xp, out, a.transpose(1, 0, 2, 3))


def _cnhw(xp, a):
    """Contiguous (C, N, H, W) work array (from ``_buffers.acquire``) holding the (N, C, H, W) ``a``."""
    n, c, h, w = a.shape
    out = _buffers.acquire(xp, (c, n, h, w), a.dtype)
    return _buffers.copy(xp, out, a.transpose(1, 0, 2, 3))


# -- linear ---------------------------------------------------------------------------
class LinearFunction(Function):
    """``y = x W^T + b``; ``x`` is flattened to (batch, in_size) after ``n_batch_axes`` axes."""

    def __init__(self, n_batch_axes=1):
        self.n_batch_axes = n_batch_axes

    def forward(self, xp, xs):
        x, W = xs[0], xs[1]
        batch_shape = x.shape[:self.n_batch_axes]
        y = xp.matmul(x.reshape(-1, W.shape[1]), W.T)
        if len(xs) == 3:
            y += xs[2]
        return (y.reshape(batch_shape + (W.shape[0],)),)

    def flops(self, xs, ys):
        """Forward FLOPs (2 per multiply-add), for the profiler."""
        return 2.0 * ys[0].size * xs[1].shape[1]

    def backward_flops(self, xs, gys):
        """Backward FLOPs: the weight gradient, plus the input gradient where one is needed."""
        per_gemm = 2.0 * gys[0].size * xs[1].shape[1]
        return per_gemm * (int(self.needs_input_grad[0]) + int(self.needs_input_grad[1]))

    def backward(self, xp, xs, gys):
        x, W = xs[0], xs[1]
        gy = gys[0].reshape(-1, W.shape[0])
        need = self.needs_input_grad
        gx = gW = None
        if need[0]:
            gx = xp.matmul(gy, W).astype(x.dtype, copy=False).reshape(x.shape)
        if need[1]:
            gW = xp.matmul(gy.T, x.reshape(-1, W.shape[1])).astype(W.dtype, copy=False)
        if len(xs) == 3:
            gb = gy.sum(axis=0).astype(xs[2].dtype, copy=False) if need[2] else None
            return gx, gW, gb
        return gx, gW


def linear(x, W, b=None, n_batch_axes=1):
    """Fully connected layer: ``y = x W^T + b``.

    Every axis of ``x`` after the first ``n_batch_axes`` is flattened into the input size.

    Args:
        x: input Variable or array, shape ``(N, ...)`` (batch axes first).
        W: weight, shape ``(out_size, in_size)``.
        b: optional bias, shape ``(out_size,)``.
        n_batch_axes: number of leading axes treated as batch axes.

    Returns:
        Variable of shape ``x.shape[:n_batch_axes] + (out_size,)``.

    Raises:
        TypeError: a non-float input.
        ValueError: shapes that do not fit together.

    Example:
        >>> y = linear(x, W, b)   # x (100, 784), W (1000, 784) -> y (100, 1000)
    """
    xa = check_float("linear", "x", x)
    Wa = check_float("linear", "W", W)
    if not isinstance(n_batch_axes, int) or isinstance(n_batch_axes, bool) or n_batch_axes < 1:
        raise ValueError(f"linear: n_batch_axes must be a positive int, got {n_batch_axes!r}")
    if xa.ndim < n_batch_axes:
        raise ValueError(f"linear: x has {xa.ndim} axes, fewer than n_batch_axes={n_batch_axes}")
    if Wa.ndim != 2:
        raise ValueError(f"linear: W must be 2-D (out_size, in_size), got shape {Wa.shape}")
    in_size = 1
    for s in xa.shape[n_batch_axes:]:
        in_size *= s
    if in_size != Wa.shape[1]:
        raise ValueError(
            f"linear: x of shape {xa.shape} has in_size {in_size} (axes after {n_batch_axes} batch axes), "
            f"but W of shape {Wa.shape} expects {Wa.shape[1]}"
        )
    inputs = [x, W]
    if b is not None:
        ba = check_float("linear", "b", b)
        if ba.shape != (Wa.shape[0],):
            raise ValueError(f"linear: b must have shape ({Wa.shape[0]},) to match W {Wa.shape}, got {ba.shape}")
        inputs.append(b)
    return LinearFunction(n_batch_axes).apply(tuple(inputs))[0]


# -- convolution_2d -------------------------------------------------------------------
class Convolution2DFunction(Function):
    """2-D convolution (cross-correlation) as im2col + one GEMM (see the module docstring)."""

    def __init__(self, stride, pad, cover_all, dilate):
        self.sy, self.sx = stride
        self.ph, self.pw = pad
        self.cover_all = cover_all
        self.dy, self.dx = dilate
        self.col = None
        self.fused = False
        self.winograd = False

    def _geometry(self, x, W):
        n, c, h, w = x.shape
        o, _, kh, kw = W.shape
        oh = _conv_outsize(h, kh, self.sy, self.ph, self.cover_all, self.dy)
        ow = _conv_outsize(w, kw, self.sx, self.pw, self.cover_all, self.dx)
        return n, c, h, w, o, kh, kw, oh, ow

    def _is_pointwise(self, kh, kw):
        return kh == 1 and kw == 1 and self.sy == 1 and self.sx == 1 and self.ph == 0 and self.pw == 0

    def forward(self, xp, xs):
        x, W = xs[0], xs[1]
        n, c, h, w, o, kh, kw, oh, ow = self._geometry(x, W)
        # chosen once: backward follows forward's algorithm whatever the environment says meanwhile
        self.winograd = use_winograd(xp, c, o, kh, kw, (self.sy, self.sx), (self.ph, self.pw), (self.dy, self.dx))
        if self.winograd:
            return (self._winograd_forward(xp, x, W, xs[2] if len(xs) == 3 else None, oh, ow),)
        self.fused = kernels.fusable(*xs) and len({a.dtype for a in xs}) == 1
        if self.fused:
            return (self._forward_fused(xp, xs, kh, kw, oh, ow),)
        y = _buffers.acquire(xp, (o, n * oh * ow), x.dtype)
        if self._is_pointwise(kh, kw):
            chunks = [(0, n)]
            xpad = None
            hold = self.needs_input_grad[1]  # the input's transposed copy, 1x the input
        else:
            chunks = sample_chunks(xp, n, c * kh * kw * oh * ow * x.itemsize)
            hold = (self.needs_input_grad[1] and len(chunks) == 1
                    and holds_columns(xp, c * kh * kw * n * oh * ow * x.itemsize))
            cap = None if hold else column_capacity(xp, chunks, c * kh * kw * oh * ow, x.itemsize)
            x_cnhw = x.transpose(1, 0, 2, 3)
            xpad = _padded(xp, x_cnhw, self.ph, self.pw, oh, ow, kh, kw, self.sy, self.sx, self.dy, self.dx)
        m = oh * ow
        for lo, hi in chunks:
            if xpad is None:
                col = _cnhw(xp, x).reshape(c, n * h * w)
            else:
                col = _im2col(xp, xpad[:, lo:hi], kh, kw, oh, ow, self.sy, self.sx, self.dy, self.dx, cap)
            xp.matmul(W.reshape(o, -1), col, out=y[:, lo * m:hi * m])
            if hold:
                self.col = col
            else:
                _buffers.release(xp, col)
        if xpad is not None:
            _release_padded(xp, xpad, x_cnhw)
        if len(xs) == 3:
            y += xs[2].reshape(o, 1)
        out = _nchw(xp, y.reshape(o, n, oh, ow))
        _buffers.release(xp, y)
        return (out,)

    def flops(self, xs, ys):
        """Forward FLOPs (2 per multiply-add), for the profiler."""
        W = xs[1]
        return 2.0 * ys[0].size * W.shape[1] * W.shape[2] * W.shape[3]

    def backward_flops(self, xs, gys):
        """Backward FLOPs: the weight gradient, plus the input gradient where one is needed."""
        W = xs[1]
        per_gemm = 2.0 * gys[0].size * W.shape[1] * W.shape[2] * W.shape[3]
        return per_gemm * (int(self.needs_input_grad[0]) + int(self.needs_input_grad[1]))

    def backward(self, xp, xs, gys):
        x, W = xs[0], xs[1]
        n, c, h, w, o, kh, kw, oh, ow = self._geometry(x, W)
        need = self.needs_input_grad
        if self.winograd:
            return self._winograd_backward(xp, xs, gys[0], oh, ow)
        if self.fused:
            return self._backward_fused(xp, xs, gys[0], kh, kw, oh, ow)
        gy_cnhw = _cnhw(xp, gys[0])
        gy = gy_cnhw.reshape(o, n * oh * ow)
        gx = gW = gb = None
        if need[1]:
            if self.col is None:
                gW = self._weight_grad_by_chunks(xp, x, W, gy)
            else:
                gW = xp.matmul(self.col, gy.T).T  # (col gy^T)^T: OpenBLAS runs this orientation faster
                _buffers.release(xp, self.col)
                self.col = None
            gW = gW.reshape(W.shape).astype(W.dtype, copy=False)
        if len(xs) == 3 and need[2]:
            gb = gy.sum(axis=1).astype(xs[2].dtype, copy=False)
        if need[0]:
            if self._is_pointwise(kh, kw):
                gx_cnhw = _buffers.acquire(xp, (c, n * h * w), gy.dtype)
                xp.matmul(W.reshape(o, c).T, gy, out=gx_cnhw)
                gx = _nchw(xp, gx_cnhw.reshape(c, n, h, w))
            elif ((self.sy, self.sx, self.dy, self.dx) == (1, 1, 1, 1) and self.ph < kh and self.pw < kw
                  and o * h * w <= c * oh * ow):  # gy's im2col is no bigger than x's
                gx_cnhw = self._input_grad_by_full_convolution(xp, gy, W, x.shape, oh, ow)
                gx = _nchw(xp, gx_cnhw)
            elif (self.sy, self.sx, self.dy, self.dx) == (1, 1, 1, 1):
                gx_cnhw = self._input_grad_by_wide_col2im(xp, gy, W, x.shape, oh, ow)
                gx = _nchw(xp, gx_cnhw[:, :, self.ph:self.ph + h, self.pw:self.pw + w])
            else:
                hp = max(h + 2 * self.ph, (oh - 1) * self.sy + (kh - 1) * self.dy + 1)
                wp = max(w + 2 * self.pw, (ow - 1) * self.sx + (kw - 1) * self.dx + 1)
                gx_cnhw = _buffers.acquire(xp, (c, n, hp, wp), gy.dtype)
                m = oh * ow
                chunks = sample_chunks(xp, n, c * kh * kw * m * gy.itemsize)
                cap = column_capacity(xp, chunks, c * kh * kw * m, gy.itemsize)
                for lo, hi in chunks:
                    gcol = _work(xp, (c * kh * kw, (hi - lo) * m), gy.dtype, cap)
                    xp.matmul(W.reshape(o, -1).T, gy[:, lo * m:hi * m], out=gcol)
                    _col2im(xp, gcol, c, hi - lo, kh, kw, oh, ow, self.sy, self.sx, hp, wp, self.dy, self.dx,
                            out=gx_cnhw[:, lo:hi])
                    _buffers.release(xp, gcol)
                gx = _nchw(xp, gx_cnhw[:, :, self.ph:self.ph + h, self.pw:self.pw + w])
            _buffers.release(xp, gx_cnhw)
            gx = gx.astype(x.dtype, copy=False)
        _buffers.release(xp, gy_cnhw)
        if len(xs) == 3:
            return gx, gW, gb
        return gx, gW

    # -- fused GPU kernels (``kernels.cuda_conv``) --------------------------------------
    def _geometry_args(self, kh, kw, oh, ow):
        return kh, kw, oh, ow, self.sy, self.sx, self.ph, self.pw, self.dy, self.dx

    def _forward_fused(self, xp, xs, kh, kw, oh, ow):
        from ..kernels import cuda_conv

        x, W = xs[0], xs[1]
        o = W.shape[0]
        col = cuda_conv.im2col(xp, x, *self._geometry_args(kh, kw, oh, ow))
        y = xp.matmul(W.reshape(o, -1), col)
        self.col = col if self.needs_input_grad[1] else None  # kept for the weight gradient
        return cuda_conv.to_nchw(xp, y, xs[2] if len(xs) == 3 else None, o, x.shape[0], oh, ow)

    def _backward_fused(self, xp, xs, gy, kh, kw, oh, ow):
        from ..kernels import cuda_conv

        x, W = xs[0], xs[1]
        o = W.shape[0]
        need = self.needs_input_grad
        gy2 = xp.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(o, -1)
        gx = gW = gb = None
        if need[1]:
            gW = xp.matmul(gy2, self.col.T).reshape(W.shape)
        self.col = None
        if len(xs) == 3 and need[2]:
            gb = gy2.sum(axis=1)
        if need[0]:
            gcol = xp.matmul(W.reshape(o, -1).T, gy2)
            gx = cuda_conv.col2im(xp, gcol, x.shape, *self._geometry_args(kh, kw, oh, ow))
        return (gx, gW, gb) if len(xs) == 3 else (gx, gW)

    # -- Winograd F(2x2, 3x3) (see ``_winograd``) -------------------------------------
    @staticmethod
    def _winograd_conv(xp, d, U, transposed, out):
        """Stride-1 3x3 convolution of ``d``, a padded (Hp, Wp, n, C) array, with the transformed
        filters ``U`` ((16, O, C) when ``transposed``, else (16, C, O)), written into ``out``
        (n, O, oh, ow), a few samples at a time.

        ``V``, ``M`` and the (oh, ow, n, O) result of each chunk are carved from the flat work array
        that im2col columns use (``_carve``), so Winograd layers add little memory of their own;
        nothing is kept for backward (the weight gradient transforms the input again, which costs
        a few per cent of the layer).
        """
        n, c = d.shape[2:]
        o = U.shape[1] if transposed else U.shape[2]
        oh, ow = out.shape[2:]
        th, tw = _winograd.tiles(oh, ow)
        sizes = (16 * th * tw * c, 16 * th * tw * o, oh * ow * o)  # V, M, Y per sample
        chunks = sample_chunks(xp, n, sum(sizes) * d.itemsize)
        cap = column_capacity(xp, chunks, sum(sizes), d.itemsize)
        for lo, hi in chunks:
            k = hi - lo
            V, M, Y = _carve(xp, cap, d.dtype, ((16, th, tw, k, c), (16, th, tw, k, o), (oh, ow, k, o)))
            _winograd.input_transform(xp, d[:, :, lo:hi], th, tw, V)
            _winograd.multiply(xp, V, U, M, transposed)
            _winograd.output_transform(xp, M, Y)
            _buffers.copy(xp, out[lo:hi], Y.transpose(2, 3, 0, 1))
            _buffers.release(xp, M)
            del V, M, Y

    def _winograd_padded(self, xp, x, pad, oh, ow):
        """``x`` (N, C, H, W) as the padded (Hp, Wp, N, C) input of an (oh, ow) Winograd output."""
        h, w = x.shape[2:]
        th, tw = _winograd.tiles(oh, ow)
        size = (max(h + 2 * pad[0], 2 * th + 2), max(w + 2 * pad[1], 2 * tw + 2))
        return _winograd.to_hwnc(xp, x, pad, size)

    def _winograd_forward(self, xp, x, W, b, oh, ow):
        n, c = x.shape[:2]
        o = W.shape[0]
        out = xp.empty((n, o, oh, ow), dtype=x.dtype)
        d = self._winograd_padded(xp, x, (self.ph, self.pw), oh, ow)
        self._winograd_conv(xp, d, _winograd.filter_transform(xp, W), True, out)
        del d
        if b is not None:
            out += b.reshape(1, o, 1, 1)
        return out

    def _winograd_backward(self, xp, xs, gy, oh, ow):
        x, W = xs[0], xs[1]
        need = self.needs_input_grad
        n, c, h, w = x.shape
        o = W.shape[0]
        gx = gW = gb = None
        # gy padded for the input gradient (a full convolution: padding 2 - pad); its interior serves gW
        qh, qw = 2 - self.ph, 2 - self.pw
        g = self._winograd_padded(xp, gy, (qh, qw), h, w)
        if need[1]:
            th, tw = _winograd.tiles(oh, ow)
            d = self._winograd_padded(xp, x, (self.ph, self.pw), oh, ow)
            sizes = (16 * th * tw * c, 16 * th * tw * o)  # V, Z per sample
            chunks = sample_chunks(xp, n, sum(sizes) * x.itemsize)
            cap = column_capacity(xp, chunks, sum(sizes), x.itemsize)
            dU = None
            for lo, hi in chunks:
                V, Z = _carve(xp, cap, x.dtype, ((16, th, tw, hi - lo, c), (16, th, tw, hi - lo, o)))
                _winograd.input_transform(xp, d[:, :, lo:hi], th, tw, V)
                _winograd.output_grad_transform(xp, g[qh:qh + oh, qw:qw + ow, lo:hi], th, tw, Z)
                part = _winograd.weight_product(xp, V, Z)
                _buffers.release(xp, Z)
                del V, Z
                if dU is None:
                    dU = part
                else:
                    dU += part
                del part
            del d
            gW = _winograd.filter_grad(xp, dU, W.dtype)
            del dU  # before the input gradient's transformed filters take as much
        if len(xs) == 3 and need[2]:
            gb = gy.sum(axis=(0, 2, 3)).astype(xs[2].dtype, copy=False)
        if need[0]:
            gx = xp.empty((n, c, h, w), dtype=x.dtype)
            self._winograd_conv(xp, g, _winograd.filter_transform(xp, W, flip=True), False, gx)
        if len(xs) == 3:
            return gx, gW, gb
        return gx, gW

    def _input_grad_by_wide_col2im(self, xp, gy, W, x_shape, oh, ow):
        """Padded (C, N, Hp, Wp) ``gx`` work array for stride 1: a GEMM, then ``kh*kw`` contiguous adds.

        ``gy`` is first widened to rows of the padded width ``Wp`` (zeros past ``ow``), so the
        column gradient of kernel offset (i, j) lands on the padded input shifted by ``i*Wp + j``
        elements: each add runs over whole rows of every sample at once instead of over rows of
        ``ow`` (short rows made col2im's adds several times slower). The GEMM grows by
        ``Wp / ow``; the zeros it adds past ``ow`` fall on padding or on nothing.
        """
        n, c, h, w = x_shape
        o, _, kh, kw = W.shape
        hp, wp = max(h + 2 * self.ph, oh + kh - 1), max(w + 2 * self.pw, ow + kw - 1)
        wide = _buffers.acquire(xp, (o, n, oh, wp), gy.dtype)
        wide[..., ow:] = 0
        _buffers.copy(xp, wide[..., :ow], gy.reshape(o, n, oh, ow))
        gx = _buffers.acquire(xp, (c, n, hp, wp), gy.dtype)
        gx.fill(0)
        span = oh * wp
        chunks = sample_chunks(xp, n, c * kh * kw * span * gy.itemsize)
        cap = column_capacity(xp, chunks, c * kh * kw * span, gy.itemsize)
        for lo, hi in chunks:
            gcol = _work(xp, (c * kh * kw, (hi - lo) * span), gy.dtype, cap)
            xp.matmul(W.reshape(o, -1).T, wide[:, lo:hi].reshape(o, -1), out=gcol)
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

    def _input_grad_by_full_convolution(self, xp, gy, W, x_shape, oh, ow):
        """(C, N, H, W) ``gx`` work array for stride 1: the zero-padded ``gy`` convolved with the flipped kernel.

        One im2col copy and one GEMM instead of a GEMM and ``kh*kw`` read-modify-write passes.
        """
        n, c, h, w = x_shape
        o, _, kh, kw = W.shape
        qh, qw = kh - 1 - self.ph, kw - 1 - self.pw
        gy4 = gy.reshape(o, n, oh, ow)
        gpad = _padded(xp, gy4, qh, qw, h, w, kh, kw, 1, 1)
        w_flip = xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(c, -1)
        gx = _buffers.acquire(xp, (c, n * h * w), gy.dtype)
        m = h * w
        chunks = sample_chunks(xp, n, o * kh * kw * m * gy.itemsize)
        cap = column_capacity(xp, chunks, o * kh * kw * m, gy.itemsize)
        for lo, hi in chunks:
            gcol = _im2col(xp, gpad[:, lo:hi], kh, kw, h, w, 1, 1, 1, 1, cap)
            xp.matmul(w_flip, gcol, out=gx[:, lo * m:hi * m])
            _buffers.release(xp, gcol)
        _release_padded(xp, gpad, gy4)
        return gx.reshape(c, n, h, w)

    def _weight_grad_by_chunks(self, xp, x, W, gy):
        """``gy @ col.T`` as an (O, C*kh*kw) array (a transposed view), the columns built again from ``x``
        a chunk at a time."""
        n, c, h, w, o, kh, kw, oh, ow = self._geometry(x, W)
        x_cnhw = x.transpose(1, 0, 2, 3)
        xpad = _padded(xp, x_cnhw, self.ph, self.pw, oh, ow, kh, kw, self.sy, self.sx, self.dy, self.dx)
        m = oh * ow
        gW = None
        chunks = sample_chunks(xp, n, c * kh * kw * m * x.itemsize)
        cap = column_capacity(xp, chunks, c * kh * kw * m, x.itemsize)
        for lo, hi in chunks:
            col = _im2col(xp, xpad[:, lo:hi], kh, kw, oh, ow, self.sy, self.sx, self.dy, self.dx, cap)
            # (col gy^T)^T, not gy col^T: the same product, which OpenBLAS runs about 20 % faster at
            # ResNet's shapes (the long dimension is the one both operands are contiguous along)
            part = xp.matmul(col, gy[:, lo * m:hi * m].T)
            _buffers.release(xp, col)
            if gW is None:
                gW = part
            else:
                gW += part
        _release_padded(xp, xpad, x_cnhw)
        return gW.T


# Which algorithm 3x3 stride-1 convolutions use: "auto", "im2col" or "winograd" (see use_winograd).
CONV_ALGORITHM_ENV = "BENCHBENCH_CONV_ALGORITHM"
CONV_ALGORITHMS = ("auto", "im2col", "winograd")
# With fewer channels than this (in or out), Winograd's transforms cost more than its GEMMs save.
WINOGRAD_MIN_CHANNELS = 128


def conv_algorithm():
    """The convolution algorithm chosen by ``BENCHBENCH_CONV_ALGORITHM`` (``auto`` when unset).

    Raises:
        ValueError: the variable holds something else than ``auto``, ``im2col`` or ``winograd``.
    """
    choice = os.environ.get(CONV_ALGORITHM_ENV, "").strip().lower() or "auto"
    if choice not in CONV_ALGORITHMS:
        raise ValueError(f"{CONV_ALGORITHM_ENV}={choice}: must be one of {', '.join(CONV_ALGORITHMS)}")
    return choice


def winograd_applies(kh, kw, stride, pad, dilate):
    """Whether Winograd F(2x2, 3x3) can compute a convolution of this geometry (3x3, stride 1,
    no dilation, padding of at most 2)."""
    return (kh, kw) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilate) == (1, 1) and max(pad) <= 2


def use_winograd(xp, c, o, kh, kw, stride, pad, dilate):
    """Whether a convolution of this shape runs as Winograd F(2x2, 3x3) rather than im2col + GEMM.

    Winograd applies to 3x3 kernels with stride 1, no dilation and padding of at most 2 (so the
    input gradient is again such a convolution). By default (``auto``) it is used on the CPU when
    both channel counts are at least :data:`WINOGRAD_MIN_CHANNELS`: its transforms cost time in
    proportion to the channels, its GEMMs save in proportion to their product, and with 64
    channels on 32x32 maps it is slower than im2col (with 128 on 16x16 it takes about 0.6 of the
    time; ``benchmarks/conv_algorithms.py``). cupy keeps im2col (one large GEMM per pass) until
    Winograd has been timed on a real GPU. ``BENCHBENCH_CONV_ALGORITHM`` (``im2col``,
    ``winograd``) overrides the choice for comparisons; ``winograd`` still applies only where the
    algorithm does.
    """
    choice = conv_algorithm()
    if choice == "im2col" or not winograd_applies(kh, kw, stride, pad, dilate):
        return False
    if choice == "winograd":
        return True
    return xp is numpy and min(c, o) >= WINOGRAD_MIN_CHANNELS


def convolution_2d(x, W, b=None, stride=1, pad=0, cover_all=False, dilate=1):
    """Two-dimensional convolution (cross-correlation, as in every DL framework).

    Args:
        x: input, shape ``(N, C, H, W)``.
        W: filters, shape ``(out_channels, C, kh, kw)``.
        b: optional bias, shape ``(out_channels,)``.
        stride: int or (sy, sx), >= 1.
        pad: int or (ph, pw), >= 0; zero padding on both sides.
        cover_all: if True, the output grid grows (Chainer's rule) so every input pixel is covered.
        dilate: int or (dy, dx), >= 1; spacing between kernel taps.

    Returns:
        Variable of shape ``(N, out_channels, out_h, out_w)`` with
        ``out_h = (H + 2 ph - (kh - 1) dy - 1) // sy + 1`` (floor rounding without ``cover_all``).

    Raises:
        TypeError: non-float arrays, or malformed stride/pad/dilate.
        ValueError: shapes that do not fit together, or an empty output.

    Example:
        >>> y = convolution_2d(x, W, b, stride=1, pad=1)   # (64, 64, 32, 32) * (64, 64, 3, 3)
    """
    fname = "convolution_2d"
    xa = check_float(fname, "x", x)
    Wa = check_float(fname, "W", W)
    if xa.ndim != 4:
        raise ValueError(f"{fname}: x must be 4-D (N, C, H, W), got shape {xa.shape}")
    if Wa.ndim != 4:
        raise ValueError(f"{fname}: W must be 4-D (out_channels, in_channels, kh, kw), got shape {Wa.shape}")
    if xa.shape[1] != Wa.shape[1]:
        raise ValueError(
            f"{fname}: x has {xa.shape[1]} channels (shape {xa.shape}) but W expects {Wa.shape[1]} "
            f"(shape {Wa.shape})"
        )
    stride = _pair(fname, "stride", stride, 1)
    pad = _pair(fname, "pad", pad, 0)
    dilate = _pair(fname, "dilate", dilate, 1)
    inputs = [x, W]
    if b is not None:
        ba = check_float(fname, "b", b)
        if ba.shape != (Wa.shape[0],):
            raise ValueError(f"{fname}: b must have shape ({Wa.shape[0]},) to match W {Wa.shape}, got {ba.shape}")
        inputs.append(b)
    kh, kw = Wa.shape[2:]
    oh = _conv_outsize(xa.shape[2], kh, stride[0], pad[0], cover_all, dilate[0])
    ow = _conv_outsize(xa.shape[3], kw, stride[1], pad[1], cover_all, dilate[1])
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{fname}: output would be empty ({oh}x{ow}) for x {xa.shape}, kernel {kh}x{kw}, "
            f"stride {stride}, pad {pad}, dilate {dilate}"
        )
    return Convolution2DFunction(stride, pad, bool(cover_all), dilate).apply(tuple(inputs))[0]
