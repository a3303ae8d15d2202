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
from .cpu_simd import vfma, vlanes, vload, vsplat, vstore, vsum, vzero

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


# -- the sample-lane kernels: one vector lane per sample (see the module docstring) ---------


@kernel("void(A4, A, I, I, I, I, I)", parallel=True)
def _to_lanes(x, xt, c4, hp, wp, ph, pw):
    """``x`` (N, C, H, W) into ``xt`` (B, c4, hp, wp, lanes) at offset (ph, pw), every other element
    (padding, channels past C, samples past N) zero. One item is a block's channel: zeroed first
    where it has such elements, then each sample's rows read in order and written a lane apart
    (7 to 12 times faster than gathering a vector's lanes from the samples)."""
    n_, c_, h, w = x.shape
    l_ = vlanes(xt)
    b_ = -(-n_ // l_)
    size = hp * wp * l_
    for item in prange(b_ * c4):
        blk, c = item // c4, item % c4
        n0, nl = blk * l_, min(l_, n_ - blk * l_)
        block = xt[item * size:(item + 1) * size]
        if c >= c_ or nl < l_ or ph > 0 or pw > 0 or hp > h or wp > w:
            block[:] = 0
        if c < c_:
            for r in range(h):
                for l in range(nl):
                    row = x[n0 + l, c, r]
                    o = ((r + ph) * wp + pw) * l_ + l
                    for q in range(w):
                        block[o + q * l_] = row[q]


@numba.njit(inline="always")
def _offsets4(t, count, cols, wp, l_):
    """Offsets in a lane block with rows of ``wp`` of the flat positions ``t .. t+3`` of a grid of
    ``count`` positions in rows of ``cols`` (a tile's pixels, or taps); those past the grid repeat
    its last."""
    t1, t2, t3 = min(t + 1, count - 1), min(t + 2, count - 1), min(t + 3, count - 1)
    return (((t // cols) * wp + t % cols) * l_, ((t1 // cols) * wp + t1 % cols) * l_,
            ((t2 // cols) * wp + t2 % cols) * l_, ((t3 // cols) * wp + t3 % cols) * l_)


@kernel("void(A, A3, I, I)", parallel=True)
def _from_lanes(out, y, o4, p4):
    """``out`` (B, o4, p4, lanes) into ``y`` (N, O, P)."""
    n_, o_, p_ = y.shape
    l_ = vlanes(out)
    for item in prange(n_ * o_):
        n, o = item // o_, item % o_
        base = ((n // l_) * o4 + o) * p4 * l_ + n % l_
        for p in range(p_):
            y[n, o, p] = out[base + p * l_]


@kernel("void(A, A4, A, A, I, I, I, I, I, I)", parallel=True)
def _forward_lanes(xt, W, b, out, cs, hp, wp, oh, ow, p4):
    """``out`` (B, O4, p4, lanes): the stride-1 correlation of the lane blocks ``xt`` (B, cs, hp,
    wp, lanes) with ``W`` (O4, C, kh, kw), C <= cs, plus ``b``; pixels past ``oh*ow`` repeat the last."""
    o4, c_, kh, kw = W.shape
    l_ = vlanes(xt)
    b_ = xt.shape[0] // (cs * hp * wp * l_)
    g_ = o4 // 4
    p_ = oh * ow
    for item in prange(b_ * g_):
        blk, o0 = item // g_, 4 * (item % g_)
        xb = blk * cs * hp * wp * l_
        for t in range(0, p_, 4):
            s0, s1, s2, s3 = _offsets4(t, p_, ow, wp, l_)
            a00 = a01 = a02 = a03 = vsplat(b[o0])
            a10 = a11 = a12 = a13 = vsplat(b[o0 + 1])
            a20 = a21 = a22 = a23 = vsplat(b[o0 + 2])
            a30 = a31 = a32 = a33 = vsplat(b[o0 + 3])
            for c in range(c_):
                for i in range(kh):
                    row = xb + (c * hp + i) * wp * l_
                    for j in range(kw):
                        off = row + j * l_
                        x0, x1 = vload(xt, off + s0), vload(xt, off + s1)
                        x2, x3 = vload(xt, off + s2), vload(xt, off + s3)
                        w = vsplat(W[o0, c, i, j])
                        a00, a01, a02, a03 = vfma(w, x0, a00), vfma(w, x1, a01), vfma(w, x2, a02), vfma(w, x3, a03)
                        w = vsplat(W[o0 + 1, c, i, j])
                        a10, a11, a12, a13 = vfma(w, x0, a10), vfma(w, x1, a11), vfma(w, x2, a12), vfma(w, x3, a13)
                        w = vsplat(W[o0 + 2, c, i, j])
                        a20, a21, a22, a23 = vfma(w, x0, a20), vfma(w, x1, a21), vfma(w, x2, a22), vfma(w, x3, a23)
                        w = vsplat(W[o0 + 3, c, i, j])
                        a30, a31, a32, a33 = vfma(w, x0, a30), vfma(w, x1, a31), vfma(w, x2, a32), vfma(w, x3, a33)
            ob = ((blk * o4 + o0) * p4 + t) * l_
            st = p4 * l_
            vstore(out, ob, a00), vstore(out, ob + l_, a01), vstore(out, ob + 2 * l_, a02), vstore(out, ob + 3 * l_, a03)
            ob += st
            vstore(out, ob, a10), vstore(out, ob + l_, a11), vstore(out, ob + 2 * l_, a12), vstore(out, ob + 3 * l_, a13)
            ob += st
            vstore(out, ob, a20), vstore(out, ob + l_, a21), vstore(out, ob + 2 * l_, a22), vstore(out, ob + 3 * l_, a23)
            ob += st
            vstore(out, ob, a30), vstore(out, ob + l_, a31), vstore(out, ob + 2 * l_, a32), vstore(out, ob + 3 * l_, a33)


@kernel("void(A, A, A4, I, I, I, I, I, I, I, I, I, I)", parallel=True)
def _weight_grad_lanes(xt, gt, parts, c_, hp, wp, o4, gh, gw, qh, qw, oh, ow):
    """``parts`` (B*O4, C, kh, kw): per sample block, the sums over its samples and pixels of ``gt``
    (B, O4, gh, gw, lanes: the output gradient at offset (qh, qw)) times the lane blocks ``xt``
    (B, C, hp, wp, lanes). One item is a block and 4 output channels, whose data stay in cache
    while its taps go four at a time."""
    kw = parts.shape[3]
    kk = parts.shape[2] * kw
    l_ = vlanes(xt)
    b_ = xt.shape[0] // (c_ * hp * wp * l_)
    g_ = o4 // 4
    gs = gh * gw * l_
    for item in prange(b_ * g_):
        blk, o0 = item // g_, 4 * (item % g_)
        gb = (blk * o4 + o0) * gs
        po = blk * o4 + o0
        for c in range(c_):
            xb = (blk * c_ + c) * hp * wp * l_
            for tt in range(0, kk, 4):
                d0, d1, d2, d3 = _offsets4(tt, kk, kw, wp, l_)
                z = vzero(xt)
                a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = z
                a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = z
                for r in range(oh):
                    xr = xb + r * wp * l_
                    gr = gb + ((qh + r) * gw + qw) * l_
                    for q in range(ow):
                        s = xr + q * l_
                        x0, x1, x2, x3 = vload(xt, s + d0), vload(xt, s + d1), vload(xt, s + d2), vload(xt, s + d3)
                        g = gr + q * l_
                        u = vload(gt, g)
                        a00, a01, a02, a03 = vfma(u, x0, a00), vfma(u, x1, a01), vfma(u, x2, a02), vfma(u, x3, a03)
                        u = vload(gt, g + gs)
                        a10, a11, a12, a13 = vfma(u, x0, a10), vfma(u, x1, a11), vfma(u, x2, a12), vfma(u, x3, a13)
                        u = vload(gt, g + 2 * gs)
                        a20, a21, a22, a23 = vfma(u, x0, a20), vfma(u, x1, a21), vfma(u, x2, a22), vfma(u, x3, a23)
                        u = vload(gt, g + 3 * gs)
                        a30, a31, a32, a33 = vfma(u, x0, a30), vfma(u, x1, a31), vfma(u, x2, a32), vfma(u, x3, a33)
                _put4(parts, po, c, tt, kk, vsum(a00), vsum(a01), vsum(a02), vsum(a03))
                _put4(parts, po + 1, c, tt, kk, vsum(a10), vsum(a11), vsum(a12), vsum(a13))
                _put4(parts, po + 2, c, tt, kk, vsum(a20), vsum(a21), vsum(a22), vsum(a23))
                _put4(parts, po + 3, c, tt, kk, vsum(a30), vsum(a31), vsum(a32), vsum(a33))


@numba.njit(inline="always")
def _put4(gW, o, c, tt, kk, e0, e1, e2, e3):
    """Taps ``tt .. tt+3`` (flat over kh*kw) of ``gW[o, c]``; those past ``kk`` repeat the last and are not written."""
    kw = gW.shape[3]
    gW[o, c, tt // kw, tt % kw] = e0
    if tt + 1 < kk:
        gW[o, c, (tt + 1) // kw, (tt + 1) % kw] = e1
    if tt + 2 < kk:
        gW[o, c, (tt + 2) // kw, (tt + 2) % kw] = e2
    if tt + 3 < kk:
        gW[o, c, (tt + 3) // kw, (tt + 3) % kw] = e3


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


def to_lanes(x, channels, pad, hp, wp):
    """The NCHW ``x`` as zero-padded sample-lane blocks: a flat (B, channels, hp, wp, lanes) array,
    ``channels >= C`` (the extra ones zero), the samples past N zero."""
    n, c = x.shape[:2]
    lanes = cpu_simd.lanes(x.dtype)
    xt = numpy.empty(-(-n // lanes) * channels * hp * wp * lanes, x.dtype)
    _to_lanes(numpy.ascontiguousarray(x), xt, channels, hp, wp, pad[0], pad[1])
    return xt


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


def _threads(n):
    return max(1, min(numba.get_num_threads(), n))


def direct_forward(x, W, b, pad, oh, ow):
    """Stride-1 convolution of the NCHW ``x`` (any strides) with ``W`` (+ ``b``): a new (N, O, oh, ow) array.

    ``pad`` is ``(ph, pw)``; ``oh, ow`` the output size (no dilation; Chainer's ``cover_all`` may
    make it larger than the floor size: the padded plane grows to cover it). From
    :data:`LANES_MIN_TAPS` taps per output by the sample-lane kernel, else by the flat one.
    """
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    hp, wp = _padded_size(h, w, pad, oh, ow, kh, kw)
    if _by_lanes(n, c, hp, wp, c * kh * kw, x.dtype):
        return _forward_by_lanes(to_lanes(x, c, pad, hp, wp), c, hp, wp, W, b, n, oh, ow)
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
    n, c, h, w = x_shape
    o, _, kh, kw = W.shape
    oh, ow = gy.shape[2:]
    full = (kh - 1 - pad[0], kw - 1 - pad[1])
    if lanes is not None or _input_grad_by_lanes(gy, W.shape, x_shape, pad):
        gt, channels, hp, wp, _ = lanes if lanes is not None else _gy_lanes(gy, W.shape, x_shape, pad, o)
        return _forward_by_lanes(gt, channels, hp, wp, _flipped(W), None, n, h, w)
    gx = numpy.empty(x_shape, gy.dtype)
    _forward(gy, *_by_fours(_flipped(W), None, gy.dtype), gx, full[0], full[1])
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


def direct_weight_grad(x, gy, w_shape, pad, lanes=None):
    """Weight gradient (O, C, kh, kw) of a stride-1 convolution, by the sample-lane kernel: every
    element summed by one thread over all samples and pixels. ``lanes``: ``gy`` already as lane
    blocks with at least O rounded up to 4 channels (``_gy_lanes``)."""
    n, c, h, w = x.shape
    o, _, kh, kw = w_shape
    oh, ow = gy.shape[2:]
    o4 = -(-o // 4) * 4
    if lanes is None:
        lanes = to_lanes(gy, o4, (0, 0), oh, ow), o4, oh, ow, (0, 0)
    gt, channels, gh, gw, (qh, qw) = lanes
    hp, wp = _padded_size(h, w, pad, oh, ow, kh, kw)
    blocks = -(-n // cpu_simd.lanes(gy.dtype))
    parts = numpy.empty((blocks * o4, c, kh, kw), gy.dtype)
    _weight_grad_lanes(to_lanes(x, c, pad, hp, wp), gt, parts, c, hp, wp, channels, gh, gw, qh, qw, oh, ow)
    return parts.reshape(blocks, o4, c, kh, kw)[:, :o].sum(axis=0)


def direct_backward(xs, gy, pad, need):
    """``(gx, gW[, gb])`` of a stride-1 convolution with inputs ``xs`` (x, W[, b]) from ``gy``;
    a gradient ``need`` does not ask for is None. ``gy`` goes into lane blocks once for both."""
    x, W = xs[0], xs[1]
    gy = numpy.ascontiguousarray(gy, dtype=x.dtype)
    o, _, kh, kw = W.shape
    lanes = None
    if need[0] and _input_grad_by_lanes(gy, W.shape, x.shape, pad):  # gy's lane blocks, padded for the input gradient, serve both
        lanes = _gy_lanes(gy, W.shape, x.shape, pad, -(-o // 4) * 4)
    gx = direct_input_grad(gy, W, x.shape, pad, lanes) if need[0] else None
    gW = direct_weight_grad(x, gy, W.shape, pad, lanes) if need[1] else None
    if len(xs) == 2:
        return gx, gW
    gb = gy.sum(axis=(0, 2, 3)).astype(xs[2].dtype, copy=False) if need[2] else None
    return gx, gW, gb
