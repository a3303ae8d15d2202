"""The sample-lane kernels of the direct convolutions (``cpu_conv``, whose docstring tells how they
work and when they run): one vector lane per sample, ``lanes`` samples a block laid out (C, Hp, Wp,
lanes), a forward tile of 4 output channels x 4 pixels and a weight-gradient tile of 4 output
channels x 4 taps kept in registers (``cpu_simd``), the layout passes in and out, and the bias
gradient.
"""
from __future__ import annotations

import numba
import numpy
from numba import prange

from . import cpu_simd
from .cpu_compiled import kernel
from .cpu_simd import vadd, vfma, vlanes, vload, vsplat, vstore, vsum, vzero

__all__ = ["to_lanes"]


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


@kernel("void(A, A, I, I, I, I, I, I, I)", parallel=True)
def _bias_grad_lanes(gt, parts, o4, gh, gw, qh, qw, oh, ow):
    """``parts`` (B*O4,): per sample block, the sums of ``gt`` (B, O4, gh, gw, lanes: the output
    gradient at offset (qh, qw)) over its samples and pixels."""
    l_ = vlanes(gt)
    gs = gh * gw * l_
    b_ = gt.shape[0] // (o4 * gs)
    g_ = o4 // 4
    for item in prange(b_ * g_):
        blk, o0 = item // g_, 4 * (item % g_)
        gb = (blk * o4 + o0) * gs
        a0 = a1 = a2 = a3 = vzero(gt)
        for r in range(oh):
            gr = gb + ((qh + r) * gw + qw) * l_
            for q in range(ow):
                g = gr + q * l_
                a0, a1 = vadd(a0, vload(gt, g)), vadd(a1, vload(gt, g + gs))
                a2, a3 = vadd(a2, vload(gt, g + 2 * gs)), vadd(a3, vload(gt, g + 3 * gs))
        p = blk * o4 + o0
        parts[p], parts[p + 1], parts[p + 2], parts[p + 3] = vsum(a0), vsum(a1), vsum(a2), vsum(a3)


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


def to_lanes(x, channels, pad, hp, wp):
    """The NCHW ``x`` as zero-padded sample-lane blocks: a flat (B, channels, hp, wp, lanes) array,
    ``channels >= C`` (the extra ones zero), the samples past N zero."""
    n, c = x.shape[:2]
    lanes = cpu_simd.lanes(x.dtype)
    xt = numpy.empty(-(-n // lanes) * channels * hp * wp * lanes, x.dtype)
    _to_lanes(numpy.ascontiguousarray(x), xt, channels, hp, wp, pad[0], pad[1])
    return xt
