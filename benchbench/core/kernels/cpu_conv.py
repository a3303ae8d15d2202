"""Compiled CPU convolution kernels: direct stride-1 convolution, no im2col columns.

The direct kernels (``direct_forward``, ``direct_input_grad``, ``direct_weight_grad``) are for
stride-1 layers of up to 64 channels (LeNet5's 3->6 and 6->16, CNN's 1->32, a stem's 3->64),
where writing and reading im2col's columns (9 to 25 times the input) costs more than the
multiplications. Two kinds:

- **Sample lanes** (the weight gradient always; the forward and the input gradient from
  :data:`LANES_MIN_TAPS` taps per output). A block of ``lanes`` samples (16 float32 with
  AVX-512: one machine vector, ``cpu_simd``) is laid out (C, Hp, Wp, lanes), so every pixel of
  every channel is one vector over the block's samples. A forward tile keeps 4 output channels x 4
  output pixels (16 vectors) in registers over all ``C*kh*kw`` taps: each tap loads 4 input
  vectors and 4 weights for 16 fused multiply-adds, and the tile is stored once. A weight-gradient
  tile is 4 output channels x 4 taps, summed over a block's pixels: one part per block, the parts
  summed in block order. No junk positions, no partial sums shared between threads, and the
  results do not depend on the thread count.
- **Flat** (a forward with few taps: ResNet's stem, CNN's first layer). Each sample is copied
  into a thread-private padded plane stack; with stride 1 the kernel offset ``(i, j)`` is a shift
  of ``i*Wp + j`` in the flat plane, so every tap is one contiguous multiply-add over the sample's
  whole output (the ``Wp - ow`` columns past each row are computed and never read), four output
  channels at a time.

The input gradient is the forward run as a full convolution of the output gradient with the
flipped, transposed filters. Sums are in a fixed order (the lanes' with fused multiply-adds), so
they agree with the GEMM path to float32 rounding, not bit for bit.
"""
from __future__ import annotations

import numba
import numpy
from numba import prange

from . import cpu_simd
from .cpu_compiled import kernel
from .cpu_conv_lanes import _bias_grad_lanes, _forward_lanes, _from_lanes, _weight_grad_lanes, to_lanes

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


# The forward (and input gradient) by sample lanes from this many taps per output (C*kh*kw): below,
# the tile's store and the layout passes weigh more than its multiply-adds (ResNet's 3->64 stem,
# 27 taps, ran 5.2 ms by lanes as by the flat kernel at 1 thread, its input gradient, 576 taps
# over 64 planes of 34x34, 12.7 against 7.7)...
LANES_MIN_TAPS = 64
# ... while a sample block's input planes fit in a core's cache (the 3->64 input gradient's take
# 4.7 MB; LeNet5's 16 -> 6, 330 KB)...
LANES_MAX_BLOCK_BYTES = 1 << 20
# ... and a block of lanes holds at least half of them (a batch of 8 wastes half a block).


def _by_lanes(n, channels, hp, wp, taps, dtype):
    """Whether a forward of ``taps`` taps per output over ``n`` samples of ``channels`` planes of
    hp x wp runs by sample lanes (else the flat kernel)."""
    lanes = cpu_simd.lanes(dtype)
    return (taps >= LANES_MIN_TAPS and 2 * n >= lanes
            and channels * hp * wp * lanes * numpy.dtype(dtype).itemsize <= LANES_MAX_BLOCK_BYTES)


def _padded_size(h, w, pad, oh, ow, kh, kw):
    return max(h + 2 * pad[0], oh + kh - 1), max(w + 2 * pad[1], ow + kw - 1)


def _forward_by_lanes(xt, channels, hp, wp, W, b, n, oh, ow):
    """(N, O, oh, ow): the lane blocks ``xt`` correlated with ``W`` (+ ``b``), by ``_forward_lanes``."""
    dtype = xt.dtype
    Wp, bp = _by_fours(W, b, dtype)
    o, o4 = W.shape[0], Wp.shape[0]
    lanes = cpu_simd.lanes(dtype)
    p4 = -(-(oh * ow) // 4) * 4
    out = numpy.empty(-(-n // lanes) * o4 * p4 * lanes, dtype)
    _forward_lanes(xt, Wp, bp, out, channels, hp, wp, oh, ow, p4)
    y = numpy.empty((n, o, oh, ow), dtype)
    _from_lanes(out, y.reshape(n, o, oh * ow), o4, p4)
    return y


def direct_forward(x, W, b, pad, oh, ow, keep=None):
    """Stride-1 convolution of the NCHW ``x`` (any strides) with ``W`` (+ ``b``): a new (N, O, oh, ow) array.

    ``pad`` is ``(ph, pw)``; ``oh, ow`` the output size (no dilation; Chainer's ``cover_all`` may
    make it larger than the floor size: the padded plane grows to cover it). From
    :data:`LANES_MIN_TAPS` taps per output by the sample-lane kernel, else by the flat one.
    ``keep``: a dict that receives ``x_lanes``, the input's lane blocks, where the lanes ran (the
    weight gradient reads them: ``direct_backward``'s ``x_lanes``).
    """
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    hp, wp = _padded_size(h, w, pad, oh, ow, kh, kw)
    if _by_lanes(n, c, hp, wp, c * kh * kw, x.dtype):
        xt = to_lanes(x, c, pad, hp, wp)
        if keep is not None:
            keep["x_lanes"] = xt
        return _forward_by_lanes(xt, c, hp, wp, W, b, n, oh, ow)
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


def _flipped(W):
    """The filters of a stride-1 convolution's input gradient: (C, O, kh, kw), flipped."""
    return W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


def direct_input_grad(gy, W, x_shape, pad, lanes=None):
    """Input gradient (N, C, H, W) of a stride-1 convolution from its (N, O, oh, ow) output gradient:
    the full convolution of ``gy`` (padded by ``k - 1 - pad``) with the flipped, transposed kernel,
    by the forward kernels (``pad < k``). ``lanes``: ``gy`` already as lane blocks (``_gy_lanes``)."""
    n, _, h, w = x_shape
    o, _, kh, kw = W.shape
    if lanes is not None or _input_grad_by_lanes(gy, W.shape, x_shape, pad):
        gt, channels, hp, wp, _ = lanes if lanes is not None else _gy_lanes(gy, W.shape, x_shape, pad, o)
        return _forward_by_lanes(gt, channels, hp, wp, _flipped(W), None, n, h, w)
    gx = numpy.empty(x_shape, gy.dtype)
    _forward(gy, *_by_fours(_flipped(W), None, gy.dtype), gx, kh - 1 - pad[0], kw - 1 - pad[1])
    return gx


def _input_grad_by_lanes(gy, w_shape, x_shape, pad):
    o, _, kh, kw = w_shape
    hp, wp = _padded_size(gy.shape[2], gy.shape[3], (kh - 1 - pad[0], kw - 1 - pad[1]), x_shape[2], x_shape[3], kh, kw)
    return _by_lanes(gy.shape[0], -(-o // 4) * 4, hp, wp, o * kh * kw, gy.dtype)


def _gy_lanes(gy, w_shape, x_shape, pad, channels):
    """``(gt, channels, hp, wp, offset)``: ``gy`` as lane blocks padded by ``k - 1 - pad`` for the input
    gradient's full convolution (the weight gradient reads it at that offset)."""
    o, _, kh, kw = w_shape
    h, w = x_shape[2:]
    oh, ow = gy.shape[2:]
    full = (kh - 1 - pad[0], kw - 1 - pad[1])
    hp, wp = _padded_size(oh, ow, full, h, w, kh, kw)
    return to_lanes(gy, channels, full, hp, wp), channels, hp, wp, full


def _plain_gy_lanes(gy, channels):
    """``gy`` as lane blocks with no padding, in the form of ``_gy_lanes``."""
    oh, ow = gy.shape[2:]
    return to_lanes(gy, channels, (0, 0), oh, ow), channels, oh, ow, (0, 0)


def direct_weight_grad(x, gy, w_shape, pad, lanes=None, x_lanes=None):
    """Weight gradient (O, C, kh, kw) of a stride-1 convolution, by the sample-lane kernel: every
    element summed by one thread over all samples and pixels. ``lanes``: ``gy`` already as lane
    blocks with at least O rounded up to 4 channels (``_gy_lanes``); ``x_lanes``: ``x``'s, as the
    forward made them."""
    n, c, h, w = x.shape
    o, _, kh, kw = w_shape
    oh, ow = gy.shape[2:]
    o4 = -(-o // 4) * 4
    gt, channels, gh, gw, (qh, qw) = lanes if lanes is not None else _plain_gy_lanes(gy, o4)
    hp, wp = _padded_size(h, w, pad, oh, ow, kh, kw)
    blocks = -(-n // cpu_simd.lanes(gy.dtype))
    parts = numpy.empty((blocks * o4, c, kh, kw), gy.dtype)
    xt = x_lanes if x_lanes is not None else to_lanes(x, c, pad, hp, wp)
    _weight_grad_lanes(xt, gt, parts, c, hp, wp, channels, gh, gw, qh, qw, oh, ow)
    return parts.reshape(blocks, o4, c, kh, kw)[:, :o].sum(axis=0)


def _bias_grad(gy, o, lanes):
    """The bias gradient (O,) from ``gy``'s lane blocks: per block and 4 channels one thread's
    vector sums, then the blocks in order."""
    gt, channels, gh, gw, (qh, qw) = lanes
    oh, ow = gy.shape[2:]
    blocks = -(-gy.shape[0] // cpu_simd.lanes(gy.dtype))
    parts = numpy.empty(blocks * channels, gy.dtype)
    _bias_grad_lanes(gt, parts, channels, gh, gw, qh, qw, oh, ow)
    return parts.reshape(blocks, channels)[:, :o].sum(axis=0)


def direct_backward(xs, gy, pad, need, x_lanes=None):
    """``(gx, gW[, gb])`` of a stride-1 convolution with inputs ``xs`` (x, W[, b]) from ``gy``;
    a gradient ``need`` does not ask for is None. ``gy`` goes into lane blocks once for all three;
    ``x_lanes``: the input's, kept by ``direct_forward``."""
    x, W = xs[0], xs[1]
    gy = numpy.ascontiguousarray(gy, dtype=x.dtype)
    o, _, kh, kw = W.shape
    o4 = -(-o // 4) * 4
    bias = len(xs) == 3 and need[2]
    lanes = padded = None
    if need[0] and _input_grad_by_lanes(gy, W.shape, x.shape, pad):  # padded for the input gradient
        lanes = padded = _gy_lanes(gy, W.shape, x.shape, pad, o4)
    elif need[1] or bias:
        lanes = _plain_gy_lanes(gy, o4)
    gx = direct_input_grad(gy, W, x.shape, pad, padded) if need[0] else None
    gW = direct_weight_grad(x, gy, W.shape, pad, lanes, x_lanes) if need[1] else None
    if len(xs) == 2:
        return gx, gW
    return gx, gW, _bias_grad(gy, o, lanes).astype(xs[2].dtype, copy=False) if bias else None
