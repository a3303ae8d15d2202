"""The compiled Winograd transforms of ``cpu_winograd``, each one pass from and to NCHW over a run of samples.

- ``_input``: the samples to (Hp, Wp, C) planes, channels innermost and zero-padded (one
  transposing copy, in cache), then ``V = B^T d B`` for every tile;
- ``_output``: ``Y = A^T M A`` per tile into (oh, ow, O) planes, then to the NCHW output with
  the bias added;
- ``_grad_tiles``: ``Z = A gy A^T`` per tile of the output gradient (zero past its edges).

The transformed arrays are laid out for the GEMMs, tiles ordered (sample, tile row, tile column)::

    V (a*a, tiles, C)   U (a*a, O, C)   M[xi] = V[xi] @ U[xi]^T   (a*a, tiles, O)

A call writes (or reads) the tiles of its samples from tile ``v0`` on: a chunk's own arrays from
0, or its part of a whole batch's.

With channels innermost, every transform is a combination of whole rows of the padded planes
(a tile row at once), then of runs of ``C`` channels: long contiguous loops over 1-d slices,
which LLVM vectorises (indexing by a computed offset instead keeps a wraparound check per
element and does not vectorise). Every sum is in a fixed order (no reassociation, no contraction
into fused multiply-adds).
"""
from __future__ import annotations

import numba
import numpy

from .cpu_compiled import kernel
from .winograd_algebra import matrices

__all__ = ["input_tiles", "output_tiles", "grad_tiles"]

# Channels per block of the transposing copies: a block's values at one position are one short
# contiguous run on the channels-last side (a stride of C floats per element instead ran into
# cache-set conflicts: 6x slower at 128 channels on 16x16 planes).
_CB = 8


@numba.njit(inline="always")
def _to_hwc(x, n, p, ph, pw):
    """Sample ``n`` of the NCHW ``x`` into the (Hp, Wp, C) ``p`` at offset (ph, pw), zeros around it."""
    c_, h, w = x.shape[1], x.shape[2], x.shape[3]
    hp, wp = p.shape[0], p.shape[1]
    rows, cols = min(h, hp - ph), min(w, wp - pw)
    p[:ph] = 0
    p[ph + rows:] = 0
    for r in range(ph, ph + rows):
        p[r, :pw] = 0
        p[r, pw + cols:] = 0
    pf = p.reshape(-1)
    xf = x[n].reshape(-1)
    hw = h * w
    for c0 in range(0, c_, _CB):
        cb = min(_CB, c_ - c0)
        for r in range(rows):
            d0 = ((ph + r) * wp + pw) * c_ + c0
            for col in range(cols):
                d = pf[d0 + col * c_:d0 + col * c_ + cb]
                for k in range(cb):
                    d[k] = xf[(c0 + k) * hw + r * w + col]


@numba.njit(inline="always")
def _from_hwc(y, b, out, n, c0):
    """Channels ``c0 .. c0+_CB`` of the (Hy, Wy, C) ``y`` (its first oh x ow positions) plus the bias
    ``b`` into sample ``n`` of the NCHW ``out``."""
    c_, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    wy = y.shape[1]
    cb = min(_CB, c_ - c0)
    yf = y.reshape(-1)
    of = out[n].reshape(-1)
    hw = oh * ow
    bias = b[c0:c0 + cb]
    for r in range(oh):
        for col in range(ow):
            at = (r * wy + col) * c_ + c0
            src = yf[at:at + cb]
            for k in range(cb):
                of[(c0 + k) * hw + r * ow + col] = src[k] + bias[k]


@numba.njit(inline="always")
def _axpy(out, at, coef, src, at_src, length, first):
    """``out[at:at+length] (=, or += when not first) coef * src[at_src:at_src+length]``.

    The loops index 1-d slices by the loop counter: numba then knows no index is negative and
    LLVM vectorises them."""
    o, s = out[at:at + length], src[at_src:at_src + length]
    # most coefficients are +-1: a copy, an add or a subtract (the same bits as the product)
    if first:
        if coef == 1:
            for i in range(length):
                o[i] = s[i]
        elif coef == -1:
            for i in range(length):
                o[i] = -s[i]
        else:
            for i in range(length):
                o[i] = coef * s[i]
    elif coef == 1:
        for i in range(length):
            o[i] += s[i]
    elif coef == -1:
        for i in range(length):
            o[i] -= s[i]
    else:
        for i in range(length):
            o[i] += coef * s[i]


@numba.njit(inline="always")
def _combine(out, at, coefs, row, src, starts, step, length):
    """``out[at:at+length] = sum_j coefs[row, j] * src[starts + j*step : ... + length]``, zero
    coefficients skipped, the terms added in the order of ``j``."""
    first = True
    for j in range(coefs.shape[1]):
        c = coefs[row, j]
        if c != 0:
            _axpy(out, at, c, src, starts + j * step, length, first)
            first = False


@kernel("void(A4, A3, A4, A2, I, I, I, I, I, I, I)", parallel=False)
def _input(x, V, xt, BT, lo, v0, ph, pw, th, tw, m):
    k_, hp, wp, c_ = xt.shape
    a = BT.shape[0]
    t = th * tw
    T = V.shape[1]
    Vf = V.reshape(-1)
    L = wp * c_
    ra = numpy.empty((a, L), x.dtype)  # B^T d for the a rows of a tile row
    for s in range(k_):
        _to_hwc(x, lo + s, xt[s], ph, pw)
        p = xt[s].reshape(-1)
        for ty in range(th):
            for i in range(a):  # B^T over the rows, a whole row of the padded plane at once ...
                _combine(ra[i], 0, BT, i, p, m * ty * L, L, L)
            base = v0 + s * t + ty * tw
            for i in range(a):  # ... then (.) B over each tile's columns, C channels at once
                e = ra[i]
                for tx in range(tw):
                    for j in range(a):
                        _combine(Vf, ((i * a + j) * T + base + tx) * c_, BT, j, e, m * tx * c_, c_, c_)


@kernel("void(A3, A2, A, A4, A4, I, I, I, I)", parallel=False)
def _output(M, AT, b, out, yt, lo, v0, th, tw):
    o_ = out.shape[1]
    k_ = yt.shape[0]  # yt: (k, m*th, m*tw, O), the chunk's outputs channels last
    m, a = AT.shape
    t = th * tw
    T = M.shape[1]
    Mf = M.reshape(-1)
    L = tw * o_
    sa = numpy.empty((m * a, L), M.dtype)  # A^T M for each output row r and column j of the tiles
    nb = (o_ + _CB - 1) // _CB
    for s in range(k_):
        for ty in range(th):
            at = (v0 + s * t + ty * tw) * o_
            for r in range(m):  # A^T over the rows of M (a tile row at once) ...
                for j in range(a):
                    _combine(sa[r * a + j], 0, AT, r, Mf, j * T * o_ + at, a * T * o_, L)
            for r in range(m):  # ... then over each tile's columns
                y = yt[s, m * ty + r].reshape(-1)
                for tx in range(tw):
                    for e in range(m):
                        first = True
                        for j in range(a):
                            cf = AT[e, j]
                            if cf != 0:
                                _axpy(y, (m * tx + e) * o_, cf, sa[r * a + j], tx * o_, o_, first)
                                first = False
        for blk in range(nb):
            _from_hwc(yt[s], b, out, lo + s, blk * _CB)


@kernel("void(A4, A3, A4, A2, I, I, I, I)", parallel=False)
def _grad_tiles(gy, Z, gt, AT, lo, v0, th, tw):
    k_, o_ = gt.shape[0], gt.shape[3]  # gt: (k, m*th, m*tw, O), the chunk's gradient channels last
    m, a = AT.shape
    t = th * tw
    T = Z.shape[1]
    Zf = Z.reshape(-1)
    A = AT.T.copy()  # (a, m)
    L = m * tw * o_
    qa = numpy.empty((a, L), gy.dtype)  # A g for the a rows of the transformed tile row
    for s in range(k_):
        _to_hwc(gy, lo + s, gt[s], 0, 0)
        g = gt[s].reshape(-1)
        for ty in range(th):
            for i in range(a):  # A over the tile row's m rows ...
                _combine(qa[i], 0, A, i, g, m * ty * L, L, L)
            base = v0 + s * t + ty * tw
            for i in range(a):  # ... then over each tile's columns
                e = qa[i]
                for tx in range(tw):
                    for j in range(a):
                        _combine(Zf, ((i * a + j) * T + base + tx) * o_, A, j, e, m * tx * o_, o_, o_)


def input_tiles(x, lo, hi, pad, th, tw, m, r=3, out=None, scratch=None, v0=0):
    """``V = B^T d B`` of samples ``lo..hi`` of ``x`` (N, C, H, W), zero-padded by ``pad`` = (ph, pw),
    for F(m x m, r x r): an (a*a, (hi-lo)*th*tw, C) array, or written into ``out`` from tile ``v0``
    on (an (a*a, T, C) array with room for them). ``scratch``: a flat array of at least
    ``(hi-lo) * (m*th+r-1) * (m*tw+r-1) * C`` elements for the padded planes (else a new one)."""
    c, a = x.shape[1], m + r - 1
    V = numpy.empty((a * a, (hi - lo) * th * tw, c), x.dtype) if out is None else out
    assert v0 + (hi - lo) * th * tw <= V.shape[1]
    xt = _scratch(scratch, (hi - lo, m * th + r - 1, m * tw + r - 1, c), x.dtype)
    _input(x, V, xt, matrices(m, x.dtype, r)[0], lo, v0, pad[0], pad[1], th, tw, m)
    return V


def output_tiles(M, b, out, lo, th, tw, m, r=3, scratch=None, k=None, v0=0):
    """``Y = A^T M A`` (+ ``b``) of the (a*a, T, O) ``M``, from tile ``v0`` on, into samples
    ``lo..lo+k`` of ``out`` (N, O, oh, ow); ``k`` is all of M's samples when None. ``scratch``: a
    flat array of at least ``k * m*th * m*tw * O`` elements (else a new one)."""
    k = (M.shape[1] - v0) // (th * tw) if k is None else k
    assert v0 + k * th * tw <= M.shape[1]
    yt = _scratch(scratch, (k, m * th, m * tw, out.shape[1]), M.dtype)
    _output(M, matrices(m, M.dtype, r)[2], b, out, yt, lo, v0, th, tw)


def grad_tiles(gy, lo, hi, th, tw, m, r=3, out=None, scratch=None, v0=0):
    """``Z = A gy A^T`` per m x m tile of samples ``lo..hi`` of ``gy`` (N, O, oh, ow), zero past its
    edges: an (a*a, (hi-lo)*th*tw, O) array, or written into ``out`` from tile ``v0`` on.
    ``scratch``: a flat array of at least ``(hi-lo) * m*th * m*tw * O`` elements (else a new one)."""
    o, a = gy.shape[1], m + r - 1
    Z = numpy.empty((a * a, (hi - lo) * th * tw, o), gy.dtype) if out is None else out
    assert v0 + (hi - lo) * th * tw <= Z.shape[1]
    gt = _scratch(scratch, (hi - lo, m * th, m * tw, o), gy.dtype)
    _grad_tiles(gy, Z, gt, matrices(m, gy.dtype, r)[2], lo, v0, th, tw)
    return Z


def _scratch(flat, shape, dtype):
    """A C-contiguous array of ``shape``: the front of ``flat`` when given, else a new one."""
    if flat is None:
        return numpy.empty(shape, dtype)
    return flat[:int(numpy.prod(shape))].reshape(shape)
