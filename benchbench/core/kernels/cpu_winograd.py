"""Compiled Winograd convolutions on the CPU, F(4x4, 3x3) and F(4x4, 5x5): each transform one pass, from and to NCHW.

The algorithm is ``winograd``'s (Lavin and Gray 2016), for output tiles of ``m`` x ``m`` computed
from ``a`` x ``a`` input patches (``a = m + r - 1`` for r x r filters; the matrices come from
``winograd_algebra``)::

    Y = A^T [ (G g G^T) * (B^T d B) ] A

F(2x2, 3x3) costs 16 multiplications per 4 outputs (2.25 times fewer than im2col), F(4x4, 3x3)
36 per 16 (4 times fewer) and F(4x4, 5x5) 64 per 16 (6.25 times fewer); the transformed arrays of
F(4x4, 3x3) are 2.25 times the input instead of 4 times: less GEMM and less memory. Their larger
coefficients (interpolation points 0, +-1, +-2, +-1/2) make float32 results differ from im2col's
by about 1e-5 of the largest term (F(2x2, 3x3): about 1e-6); the tests hold them to that.

What the numpy path does in a dozen strided passes over an (H, W, N, C) copy, three compiled
kernels do here, each in one pass over a chunk of samples:

- ``_input``: the chunk's samples to (Hp, Wp, C) planes, channels innermost and zero-padded
  (one transposing copy, in cache), then ``V = B^T d B`` for every tile;
- ``_output``: ``Y = A^T M A`` per tile into (oh, ow, O) planes, then to the NCHW output with
  the bias added;
- ``_grad_tiles``: ``Z = A gy A^T`` per tile of the output gradient (zero past its edges).

The transformed arrays are laid out for the GEMMs, tiles ordered (sample, tile row, tile column)::

    V (a*a, tiles, C)   U (a*a, O, C)   M[xi] = V[xi] @ U[xi]^T   (a*a, tiles, O)

With channels innermost, every transform is a combination of whole rows of the padded planes
(a tile row at once), then of runs of ``C`` channels: long contiguous loops over 1-d slices,
which LLVM vectorises (indexing by a computed offset instead keeps a wraparound check per
element and does not vectorise).

A chunk of samples is transformed, multiplied and transformed back while its arrays are still
in cache (``CHUNK_BYTES`` of V and M together): at ResNet-18's 64-channel stage a whole batch's
would be some 150 MB, written to memory and read back twice. The chunks are split between as many
worker threads as BLAS has (``_in_parallel``), each running the kernels and its GEMMs
single-threaded, so no core waits on another between a transform and a GEMM.

Backward:

- the input gradient is the forward pass run on the output gradient with the flipped,
  transposed filters (a full convolution: padding ``r - 1 - pad``);
- the filter gradient is ``dU[xi] = Z[xi]^T @ V[xi]`` summed over the chunks (each worker its
  own sum, added at the end in a fixed order), then ``dg = G^T dU G``.

Every sum is in a fixed order (no reassociation, no contraction into fused multiply-adds), so
results do not depend on the number of threads beyond the split of the filter gradient's sum.
"""
from __future__ import annotations

import numba
import numpy

from . import buffers as _buffers
from . import cpu_compiled
from .. import backend
from .conv_chunks import sample_chunks
from .cpu_compiled import kernel
from .winograd_algebra import TILE, filter_grad, filter_transform, matrices, tile_size, tiles

# TILE, matrices, tiles, filter_transform and filter_grad come from ``winograd_algebra``
__all__ = ["CHUNK_BYTES", "TILE", "matrices", "tile_size", "tiles", "filter_transform", "filter_grad", "forward",
           "backward", "input_tiles", "output_tiles", "grad_tiles"]

# Bytes of V and M (or V and Z) per chunk of samples: a few MiB stay in the last-level cache
# between the transform, the GEMMs and the transform back (at ResNet-18's shapes 8 MiB is a few
# per cent faster than 2 MiB and than 32 MiB; a whole batch at once is a third slower).
CHUNK_BYTES = 8 << 20
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


@kernel("void(A4, A3, A4, A2, I, I, I, I, I, I)", parallel=False)
def _input(x, V, xt, BT, lo, ph, pw, th, tw, m):
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
            base = s * t + ty * tw
            for i in range(a):  # ... then (.) B over each tile's columns, C channels at once
                e = ra[i]
                for tx in range(tw):
                    for j in range(a):
                        _combine(Vf, ((i * a + j) * T + base + tx) * c_, BT, j, e, m * tx * c_, c_, c_)


@kernel("void(A3, A2, A, A4, A4, I, I, I)", parallel=False)
def _output(M, AT, b, out, yt, lo, th, tw):
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
            at = (s * t + ty * tw) * o_
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


@kernel("void(A4, A3, A4, A2, I, I, I)", parallel=False)
def _grad_tiles(gy, Z, gt, AT, lo, th, tw):
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
            base = s * t + ty * tw
            for i in range(a):  # ... then over each tile's columns
                e = qa[i]
                for tx in range(tw):
                    for j in range(a):
                        _combine(Zf, ((i * a + j) * T + base + tx) * o_, A, j, e, m * tx * o_, o_, o_)


def input_tiles(x, lo, hi, pad, th, tw, m, r=3, out=None, scratch=None):
    """``V = B^T d B`` of samples ``lo..hi`` of ``x`` (N, C, H, W), zero-padded by ``pad`` = (ph, pw),
    for F(m x m, r x r): an (a*a, (hi-lo)*th*tw, C) array (into ``out`` when given). ``scratch``: a
    flat array of at least ``(hi-lo) * (m*th+r-1) * (m*tw+r-1) * C`` elements for the padded planes
    (else a new one)."""
    c, a = x.shape[1], m + r - 1
    V = numpy.empty((a * a, (hi - lo) * th * tw, c), x.dtype) if out is None else out
    xt = _scratch(scratch, (hi - lo, m * th + r - 1, m * tw + r - 1, c), x.dtype)
    _input(x, V, xt, matrices(m, x.dtype, r)[0], lo, pad[0], pad[1], th, tw, m)
    return V


def output_tiles(M, b, out, lo, th, tw, m, r=3, scratch=None):
    """``Y = A^T M A`` (+ ``b``) of the (a*a, k*th*tw, O) ``M`` into samples ``lo..lo+k`` of ``out``
    (N, O, oh, ow). ``scratch``: a flat array of at least ``k * m*th * m*tw * O`` elements (else a new one)."""
    k = M.shape[1] // (th * tw)
    yt = _scratch(scratch, (k, m * th, m * tw, out.shape[1]), M.dtype)
    _output(M, matrices(m, M.dtype, r)[2], b, out, yt, lo, th, tw)


def grad_tiles(gy, lo, hi, th, tw, m, r=3, out=None, scratch=None):
    """``Z = A gy A^T`` per m x m tile of samples ``lo..hi`` of ``gy`` (N, O, oh, ow), zero past its
    edges: an (a*a, (hi-lo)*th*tw, O) array (into ``out`` when given). ``scratch``: a flat array of
    at least ``(hi-lo) * m*th * m*tw * O`` elements (else a new one)."""
    o, a = gy.shape[1], m + r - 1
    Z = numpy.empty((a * a, (hi - lo) * th * tw, o), gy.dtype) if out is None else out
    gt = _scratch(scratch, (hi - lo, m * th, m * tw, o), gy.dtype)
    _grad_tiles(gy, Z, gt, matrices(m, gy.dtype, r)[2], lo, th, tw)
    return Z


def _scratch(flat, shape, dtype):
    """A C-contiguous array of ``shape``: the front of ``flat`` when given, else a new one."""
    if flat is None:
        return numpy.empty(shape, dtype)
    return flat[:int(numpy.prod(shape))].reshape(shape)


def _chunks(n, per_sample_elems, itemsize, workers):
    """Chunks of samples of about ``CHUNK_BYTES`` of transformed arrays, as many as a multiple of
    ``workers`` where the batch allows (so that no worker idles while another does a last chunk)."""
    count = len(sample_chunks(numpy, n, per_sample_elems * itemsize, budget=CHUNK_BYTES))
    count = min(n, -(-count // workers) * workers)
    return [(n * k // count, n * (k + 1) // count) for k in range(count)]


def _workers(n):
    return max(1, min(cpu_compiled.threads(), n))


def _in_parallel(workers, fn):
    """``[fn(0), .., fn(workers - 1)]``, each on its own thread (``fn(0)`` on this one) with the BLAS
    library at one thread meanwhile: each worker transforms, multiplies and transforms back its own
    chunks, so the cores never wait on each other between a transform and a GEMM (with the BLAS
    threads and the compiled kernels' threads taking turns, about 1,200 hand-overs per layer at
    ResNet-18's 64-channel stage left the second core idle for a third of the layer)."""
    if workers == 1:
        return [fn(0)]
    pool = _buffers.thread_pool()
    with backend.blas_limit(1):
        futures = [pool.submit(fn, i) for i in range(1, workers)]
        try:
            first = fn(0)
        finally:
            rest = [f.result() for f in futures]
    return [first] + rest


def _work(most, a, t, channels, dtype, planes):
    """A worker's arrays for a chunk of ``most`` samples: one transformed array per channel count in
    ``channels``, then one flat scratch array of ``most * planes`` elements for the channels-last
    planes the transforms pass through."""
    return [numpy.empty((a * a, most * t, ch), dtype) for ch in channels] + [numpy.empty(most * planes, dtype)]


def _carve(work, k, t):
    """The C-contiguous (a*a, k*t, channels) front of a work array made by :func:`_work`."""
    aa, ch = work.shape[0], work.shape[2]
    return work.reshape(-1)[:aa * ch * k * t].reshape(aa, k * t, ch)


def _conv(x, U, transposed, b, pad, oh, ow, m, r):
    """The (N, O, oh, ow) stride-1 r x r convolution of ``x`` padded by ``pad`` with the transformed
    filters ``U``: (a*a, O, C), or (a*a, C, O) used as it lies when ``transposed``."""
    n, c = x.shape[:2]
    o = U.shape[2] if transposed else U.shape[1]
    a = m + r - 1
    th, tw = tiles(oh, ow, m)
    t = th * tw
    out = numpy.empty((n, o, oh, ow), x.dtype)
    bias = numpy.zeros(o, x.dtype) if b is None else b
    workers = _workers(n)
    chunks = _chunks(n, a * a * t * (c + o), x.itemsize, workers)
    most = max(hi - lo for lo, hi in chunks)
    planes = max((m * th + r - 1) * (m * tw + r - 1) * c, m * m * t * o)  # padded input or output planes, a sample

    Ut = U if transposed else U.transpose(0, 2, 1)  # (a*a, C, O): each a transposed view BLAS takes as it lies

    def run(i):
        V_all, M_all, scratch = _work(most, a, t, (c, o), x.dtype, planes)
        for lo, hi in chunks[i::workers]:
            V, M = _carve(V_all, hi - lo, t), _carve(M_all, hi - lo, t)
            input_tiles(x, lo, hi, pad, th, tw, m, r, out=V, scratch=scratch)
            # the a*a GEMMs in one call: numpy loops over them in C without the GIL (one Python
            # call each held the GIL some 1,000 times per layer, which the other worker waited on)
            numpy.matmul(V, Ut, out=M)
            output_tiles(M, bias, out, lo, th, tw, m, r, scratch=scratch)

    _in_parallel(workers, run)
    return out


def forward(x, W, b, pad, oh, ow, m=None):
    """The (N, O, oh, ow) output of an r x r (3 or 5) stride-1 convolution of ``x`` (C-contiguous
    NCHW) padded by ``pad`` (at most r - 1), with ``W`` (O, C, r, r) and the bias ``b`` (or None),
    as F(m x m, r x r) (``m``: :data:`TILE`'s by default)."""
    r = W.shape[2]
    m = tile_size(r) if m is None else m
    with backend.blas_limit(1):  # a small GEMM: no thread of the BLAS library woken for it (see _in_parallel)
        U = filter_transform(W, m)
    return _conv(x, U, False, b, pad, oh, ow, m, r)


def _weight_grad(x, gy, pad, oh, ow, m, r):
    """``dU``, the (a*a, O, C) gradient of the transformed filters, summed over the batch."""
    n, c = x.shape[:2]
    o = gy.shape[1]
    a = m + r - 1
    th, tw = tiles(oh, ow, m)
    t = th * tw
    workers = _workers(n)
    chunks = _chunks(n, a * a * t * (c + o), x.itemsize, workers)
    most = max(hi - lo for lo, hi in chunks)
    planes = max((m * th + r - 1) * (m * tw + r - 1) * c, m * m * t * o)  # padded input or output planes, a sample

    def run(i):
        V_all, Z_all, scratch = _work(most, a, t, (c, o), x.dtype, planes)
        dU = part = None  # the first chunk's GEMMs write the sum itself (at 512 channels dU is 38 MB)
        for lo, hi in chunks[i::workers]:
            V = input_tiles(x, lo, hi, pad, th, tw, m, r, out=_carve(V_all, hi - lo, t), scratch=scratch)
            Z = grad_tiles(gy, lo, hi, th, tw, m, r, out=_carve(Z_all, hi - lo, t), scratch=scratch)
            if dU is None:
                dU = numpy.matmul(Z.transpose(0, 2, 1), V)  # the a*a GEMMs in one call (see _conv)
                continue
            part = numpy.matmul(Z.transpose(0, 2, 1), V, out=part)
            dU += part
        return numpy.zeros((a * a, o, c), x.dtype) if dU is None else dU

    parts = _in_parallel(workers, run)
    for more in parts[1:]:
        parts[0] += more
    return parts[0]


def backward(xs, gy, pad, oh, ow, need, m=None):
    """``(gx, gW[, gb])`` of :func:`forward` for the output gradient ``gy``; a gradient ``need``
    does not ask for is None."""
    x, W = xs[0], xs[1]
    r = W.shape[2]
    m = tile_size(r) if m is None else m
    gy = numpy.ascontiguousarray(gy, dtype=x.dtype)
    h, w = x.shape[2:]
    gx = gW = gb = None
    if need[1]:
        dU = _weight_grad(x, gy, pad, oh, ow, m, r)
        with backend.blas_limit(1):
            gW = filter_grad(dU, m, r, W.dtype)
    if len(xs) == 3 and need[2]:
        gb = gy.sum(axis=(0, 2, 3)).astype(xs[2].dtype, copy=False)
    if need[0]:
        with backend.blas_limit(1):
            U = filter_transform(W, m, flip=True)
        gx = _conv(gy, U, True, None, (r - 1 - pad[0], r - 1 - pad[1]), h, w, m, r)
    return (gx, gW, gb) if len(xs) == 3 else (gx, gW)
