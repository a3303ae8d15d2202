"""Connections with weights: ``linear`` (from ``functions.linear``) and ``convolution_2d`` (Chainer's argument orders).

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
padded row width, then ``kh*kw`` contiguous adds. 3x3 and 5x5 stride-1 layers with many channels
run as Winograd on the CPU instead (``winograd``, ``cpu_winograd``), and stride-1 layers of up to 64
channels as direct compiled kernels that build no columns (``cpu_conv``). The
geometry, the passes and the choice of algorithm live in ``core/kernels`` (``conv_geometry``,
``im2col``, ``winograd``, ``conv_algorithm``).
"""
from __future__ import annotations

import numpy

from .. import kernels
from ..function import Function
from ..kernels import buffers as _buffers
from ..kernels import cpu_compiled
from ..kernels import im2col as im2col_passes
from ..kernels import winograd
from ..kernels.conv_algorithm import use_dense, use_direct, use_winograd
from ..kernels.conv_chunks import column_capacity, holds_columns, sample_chunks
from ..kernels.conv_geometry import cnhw, col2im, conv_outsize, im2col, nchw, pair, padded, release_padded, work
from ._checks import check_float

from .linear import LinearActivation, LinearFunction, linear  # noqa: F401 - the connections' public names

__all__ = ["linear", "convolution_2d"]


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
        self.direct = False
        self.kept = None  # what the direct forward keeps for the backward (the input's lane blocks)
        self.dense = False

    def _geometry(self, x, W):
        n, c, h, w = x.shape
        o, _, kh, kw = W.shape
        oh = conv_outsize(h, kh, self.sy, self.ph, self.cover_all, self.dy)
        ow = conv_outsize(w, kw, self.sx, self.pw, self.cover_all, self.dx)
        return n, c, h, w, o, kh, kw, oh, ow

    def _is_pointwise(self, kh, kw):
        return kh == 1 and kw == 1 and self.sy == 1 and self.sx == 1 and self.ph == 0 and self.pw == 0

    def forward(self, xp, xs):
        x, W = xs[0], xs[1]
        n, c, h, w, o, kh, kw, oh, ow = self._geometry(x, W)
        self.dense = use_dense(xp, x.shape, kh, kw, (self.ph, self.pw), (self.dy, self.dx))
        if self.dense:  # the kernel covers the input: a fully connected layer, oh = ow = 1
            y = xp.matmul(x.reshape(n, -1), W.reshape(o, -1).T).astype(x.dtype, copy=False)
            if len(xs) == 3:
                y += xs[2]
            return (y.reshape(n, o, 1, 1),)
        # chosen once: backward follows forward's algorithm whatever the environment says meanwhile
        self.winograd = use_winograd(xp, c, o, kh, kw, (self.sy, self.sx), (self.ph, self.pw), (self.dy, self.dx),
                                     arrays=xs)
        if self.winograd:
            self.winograd = "compiled" if winograd.compiled_applies(xp, xs) else "numpy"  # backward takes the same path
            return (winograd.forward(xp, x, W, xs[2] if len(xs) == 3 else None, (self.ph, self.pw), oh, ow,
                                     compiled=self.winograd == "compiled"),)
        self.direct = use_direct(xs, c, o, kh, kw, (self.sy, self.sx), (self.ph, self.pw), (self.dy, self.dx))
        if self.direct:
            from ..kernels import cpu_conv

            self.kept = {} if self.needs_input_grad[1] else None
            return (cpu_conv.direct_forward(x, W, xs[2] if len(xs) == 3 else None, (self.ph, self.pw), oh, ow,
                                            keep=self.kept),)
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
            xpad = padded(xp, x_cnhw, self.ph, self.pw, oh, ow, kh, kw, self.sy, self.sx, self.dy, self.dx)
        m = oh * ow
        for lo, hi in chunks:
            if xpad is None:
                col = cnhw(xp, x).reshape(c, n * h * w)
            else:
                col = im2col(xp, xpad[:, lo:hi], kh, kw, oh, ow, self.sy, self.sx, self.dy, self.dx, cap)
            xp.matmul(W.reshape(o, -1), col, out=y[:, lo * m:hi * m])
            if hold:
                self.col = col
            else:
                _buffers.release(xp, col)
        if xpad is not None:
            release_padded(xp, xpad, x_cnhw)
        if len(xs) == 3:
            y += xs[2].reshape(o, 1)
        out = nchw(xp, y.reshape(o, n, oh, ow))
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
        if self.dense:
            gy = gys[0].reshape(n, o)
            gW = xp.matmul(gy.T, x.reshape(n, -1)).reshape(W.shape).astype(W.dtype, copy=False) if need[1] else None
            gx = xp.matmul(gy, W.reshape(o, -1)).reshape(x.shape).astype(x.dtype, copy=False) if need[0] else None
            if len(xs) == 2:
                return gx, gW
            return gx, gW, gy.sum(axis=0).astype(xs[2].dtype, copy=False) if need[2] else None
        if self.winograd:
            return winograd.backward(xp, xs, gys[0], (self.ph, self.pw), oh, ow, self.needs_input_grad,
                                     compiled=self.winograd == "compiled")
        if self.direct:
            from ..kernels import cpu_conv

            kept, self.kept = self.kept or {}, None  # read once: a second backward lays x out again
            return cpu_conv.direct_backward(xs, gys[0], (self.ph, self.pw), need, kept.get("x_lanes"))
        if self.fused:
            return self._backward_fused(xp, xs, gys[0], kh, kw, oh, ow)
        gy_cnhw = cnhw(xp, gys[0])
        gy = gy_cnhw.reshape(o, n * oh * ow)
        gx = gW = gb = None
        if need[1]:
            if self.col is None:
                gW = im2col_passes.weight_grad_by_chunks(xp, x, W, gy, (self.sy, self.sx), (self.ph, self.pw),
                                                          (self.dy, self.dx), self.cover_all)
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
                gx = nchw(xp, gx_cnhw.reshape(c, n, h, w))
            elif ((self.sy, self.sx, self.dy, self.dx) == (1, 1, 1, 1) and self.ph < kh and self.pw < kw
                  and o * h * w <= c * oh * ow):  # gy's im2col is no bigger than x's
                gx_cnhw = im2col_passes.input_grad_by_full_convolution(xp, gy, W, x.shape, oh, ow, (self.ph, self.pw))
                gx = nchw(xp, gx_cnhw)
            elif (self.sy, self.sx, self.dy, self.dx) == (1, 1, 1, 1):
                gx_cnhw = im2col_passes.input_grad_by_wide_col2im(xp, gy, W, x.shape, oh, ow, (self.ph, self.pw))
                gx = nchw(xp, gx_cnhw[:, :, self.ph:self.ph + h, self.pw:self.pw + w])
            else:
                hp = max(h + 2 * self.ph, (oh - 1) * self.sy + (kh - 1) * self.dy + 1)
                wp = max(w + 2 * self.pw, (ow - 1) * self.sx + (kw - 1) * self.dx + 1)
                gx_cnhw = _buffers.acquire(xp, (c, n, hp, wp), gy.dtype)
                m = oh * ow
                chunks = sample_chunks(xp, n, c * kh * kw * m * gy.itemsize)
                cap = column_capacity(xp, chunks, c * kh * kw * m, gy.itemsize)
                for lo, hi in chunks:
                    gcol = work(xp, (c * kh * kw, (hi - lo) * m), gy.dtype, cap)
                    xp.matmul(W.reshape(o, -1).T, gy[:, lo * m:hi * m], out=gcol)
                    if xp is numpy and kh * kw > 1 and cpu_compiled.usable(gx_cnhw, gcol):  # 1x1: one strided add
                        from ..kernels import cpu_col2im

                        cpu_col2im.col2im(gcol, gx_cnhw, lo, kh, kw, oh, ow, self.sy, self.sx, self.dy, self.dx)
                    else:
                        col2im(xp, gcol, c, hi - lo, kh, kw, oh, ow, self.sy, self.sx, hp, wp, self.dy, self.dx,
                                out=gx_cnhw[:, lo:hi])
                    _buffers.release(xp, gcol)
                gx = nchw(xp, gx_cnhw[:, :, self.ph:self.ph + h, self.pw:self.pw + w])
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
    stride = pair(fname, "stride", stride, 1)
    pad = pair(fname, "pad", pad, 0)
    dilate = pair(fname, "dilate", dilate, 1)
    inputs = [x, W]
    if b is not None:
        ba = check_float(fname, "b", b)
        if ba.shape != (Wa.shape[0],):
            raise ValueError(f"{fname}: b must have shape ({Wa.shape[0]},) to match W {Wa.shape}, got {ba.shape}")
        inputs.append(b)
    kh, kw = Wa.shape[2:]
    oh = conv_outsize(xa.shape[2], kh, stride[0], pad[0], cover_all, dilate[0])
    ow = conv_outsize(xa.shape[3], kw, stride[1], pad[1], cover_all, dilate[1])
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{fname}: output would be empty ({oh}x{ow}) for x {xa.shape}, kernel {kh}x{kw}, "
            f"stride {stride}, pad {pad}, dilate {dilate}"
        )
    return Convolution2DFunction(stride, pad, bool(cover_all), dilate).apply(tuple(inputs))[0]
