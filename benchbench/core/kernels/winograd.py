"""Winograd F(2x2, 3x3): 3x3 stride-1 convolutions with 2.25 times fewer multiplications than im2col.

Lavin and Gray (2016), "Fast Algorithms for Convolutional Neural Networks". Each 2x2 block of
outputs (a *tile*) is computed from the 4x4 input patch above it::

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* is the elementwise product of 4x4 arrays)

The 16 positions ``xi`` of the 4x4 transformed domain are independent, so the sum over input
channels becomes 16 GEMMs, ``M[xi] = V[xi] @ U[xi]^T`` with ``V`` the transformed input patches
(16, tiles, C) and ``U`` the transformed filters (16, O, C): 16 * C * O multiply-adds per tile
of 4 outputs instead of 9 * C * O per output.

The transforms are additions and subtractions (coefficients 0 and +-1) of strided views. They
run on (H, W, N, C) arrays, channels and samples innermost, so every numpy pass streams over
long contiguous runs (on (N, C, H, W) arrays the runs are a tile row long and the same passes
take several times longer); one threaded copy brings the input to that layout and one brings
the result back. The GEMMs then take their (tiles, C) operands as they lie. Transforms are
split over the BLAS threads by tile rows.

Backward uses the same pieces:

- the input gradient of a stride-1 convolution is the full convolution of ``gy`` with the
  flipped, transposed filters, which is again a 3x3 stride-1 convolution;
- the filter gradient follows from ``M = V @ U^T``: ``dU[xi] = Z[xi]^T @ V[xi]`` with
  ``Z = A gy A^T`` per output tile, and ``dg = G^T dU G``.

On the CPU with the compiled kernels on, :func:`forward` and :func:`backward` hand the layer to
``cpu_winograd`` (F(4x4, 3x3), and F(4x4, 5x5) for 5x5 filters; each transform one compiled pass
from and to NCHW); this module's numpy passes are the numpy path and cupy's.

Rounding: the transforms add at most four terms with coefficients +-1 and +-1/2, so float32
results differ from im2col's by a few units in the last place of the largest term.
"""
from __future__ import annotations

import numpy

from . import buffers as _buffers
from .conv_chunks import column_capacity, sample_chunks
from .conv_geometry import carve

__all__ = ["compiled_applies", "tiles", "filter_transform", "filter_grad", "to_hwnc", "input_transform",
           "output_transform", "output_grad_transform", "multiply", "weight_product"]

# G, the filter transform; U = G g G^T for each 3x3 filter g
_G = numpy.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# (9, 16): row (i, j), column (a, b) holds G[a, i] * G[b, j], so U[ab] = sum_ij g[ij] * K[ij, ab]
_K = numpy.einsum("ai,bj->ijab", _G, _G).reshape(9, 16)


def tiles(oh, ow):
    """Tile rows and columns covering an (oh, ow) output with 2x2 tiles."""
    return -(-oh // 2), -(-ow // 2)


def filter_transform(xp, W, flip=False):
    """``U = G g G^T`` for (O, C, 3, 3) filters: a (16, O, C) array (one GEMM, no copy of ``W``).

    With ``flip``, the transform of every filter rotated by 180 degrees (the taps in reverse
    order), which the input gradient convolves with.
    """
    o, c = W.shape[:2]
    k = _K[::-1] if flip else _K
    return xp.matmul(xp.asarray(k.T, dtype=W.dtype), W.reshape(o * c, 9).T).reshape(16, o, c)


def filter_grad(xp, dU, dtype):
    """``dg = G^T dU G`` for the (16, O, C) gradient of ``U``: the (O, C, 3, 3) filter gradient."""
    o, c = dU.shape[1:]
    flat = xp.matmul(dU.reshape(16, o * c).T, xp.asarray(_K.T, dtype=dtype))  # (O*C, 9)
    return flat.astype(dtype, copy=False).reshape(o, c, 3, 3)


def to_hwnc(xp, x, pad, size):
    """``x`` (N, C, H, W), any strides, as a new zero-padded (Hp, Wp, N, C) array.

    Args:
        pad: (ph, pw) rows and columns of zeros before the data (and as many after at least).
        size: (Hp, Wp), at least the data plus both paddings.
    """
    n, c, h, w = x.shape
    ph, pw = pad
    hp, wp = size
    out = xp.empty((hp, wp, n, c), dtype=x.dtype)
    out[:ph] = 0
    out[ph + h:] = 0
    out[ph:ph + h, :pw] = 0
    out[ph:ph + h, pw + w:] = 0
    inner = out[ph:ph + h, pw:pw + w]
    if xp is not numpy:
        xp.copyto(inner, x.transpose(2, 3, 0, 1))
        return out

    def part(lo, hi):
        # one sample at a time: its (C, H*W) plane transposed fits in cache, where a copy of the
        # whole 4-D transpose reads a new cache line (and page) for every element it writes
        for i in range(lo, hi):
            inner[:, :, i, :] = x[i].transpose(1, 2, 0)

    _buffers.split_run(part, n, x.nbytes)
    return out


def input_transform(xp, d, th, tw, out):
    """``V = B^T d B`` for every 4x4 patch (stride 2) of the padded ``d`` (Hp, Wp, n, C).

    Args:
        d: at least ``2*th + 2`` rows and ``2*tw + 2`` columns; the last two axes may be a slice.
        out: a (16, th, tw, n, C) C-contiguous array to write into.
    """

    def part(lo, hi):
        rows = d[2 * lo:2 * hi + 2]
        r0, r1, r2, r3 = (rows[k:k + 2 * (hi - lo) - 1:2] for k in range(4))
        # B^T rows: [1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]
        t = (xp.subtract(r0, r2), xp.add(r1, r2), xp.subtract(r2, r1), xp.subtract(r1, r3))
        for a in range(4):
            c0, c1, c2, c3 = (t[a][:, k:k + 2 * tw - 1:2] for k in range(4))
            dst = out[4 * a:4 * a + 4, lo:hi]
            xp.subtract(c0, c2, out=dst[0])
            xp.add(c1, c2, out=dst[1])
            xp.subtract(c2, c1, out=dst[2])
            xp.subtract(c1, c3, out=dst[3])

    _run(xp, part, th, out.nbytes)
    return out


def output_transform(xp, M, out):
    """``Y = A^T M A`` per tile: the (16, th, tw, n, O) ``M`` into ``out`` (oh, ow, n, O), any strides.

    ``oh`` and ``ow`` may be one less than ``2*th`` and ``2*tw`` (odd outputs): the last tile row
    or column then writes only its first row or column.
    """
    th, tw = M.shape[1:3]
    oh, ow = out.shape[:2]

    def part(lo, hi):
        m = M[:, lo:hi]
        # A^T rows: [1, 1, 1, 0], [0, 1, -1, -1]
        s0 = [xp.add(m[b], m[4 + b]) for b in range(4)]
        s1 = [xp.subtract(m[4 + b], m[8 + b]) for b in range(4)]
        for b in range(4):
            xp.add(s0[b], m[8 + b], out=s0[b])
            xp.subtract(s1[b], m[12 + b], out=s1[b])
        for a, s in enumerate((s0, s1)):
            rows = min(hi, (oh - a + 1) // 2) - lo  # output rows 2*ty + a that exist
            if rows <= 0:
                continue
            for e in range(2):
                cols = (ow - e + 1) // 2
                dst = out[2 * lo + a:2 * (lo + rows) + a - 1:2, e:2 * cols + e - 1:2]
                if e == 0:
                    v = xp.add(s[0], s[1])
                    xp.add(v, s[2], out=v)
                else:
                    v = xp.subtract(s[1], s[2])
                    xp.subtract(v, s[3], out=v)
                dst[...] = v[:rows, :cols]

    _run(xp, part, th, M.nbytes)
    return out


def output_grad_transform(xp, gy, th, tw, out):
    """``Z = A gy A^T`` per 2x2 tile of ``gy`` (oh, ow, n, O), any strides: (16, th, tw, n, O) into ``out``.

    An odd ``oh`` or ``ow`` is treated as zero-padded to ``2*th`` by ``2*tw``.
    """
    oh, ow = gy.shape[:2]
    if (oh, ow) != (2 * th, 2 * tw):
        full = xp.zeros((2 * th, 2 * tw) + gy.shape[2:], dtype=gy.dtype)
        full[:oh, :ow] = gy
        gy = full

    def part(lo, hi):
        g = gy[2 * lo:2 * hi]
        g0, g1 = g[0::2], g[1::2]
        # A rows: [1, 0], [1, 1], [1, -1], [0, -1]
        q = (g0, xp.add(g0, g1), xp.subtract(g0, g1), xp.negative(g1))
        for a in range(4):
            c0, c1 = q[a][:, 0::2], q[a][:, 1::2]
            dst = out[4 * a:4 * a + 4, lo:hi]
            dst[0][...] = c0
            xp.add(c0, c1, out=dst[1])
            xp.subtract(c0, c1, out=dst[2])
            xp.negative(c1, out=dst[3])

    _run(xp, part, th, out.nbytes)
    return out


def multiply(xp, V, U, out, transposed):
    """``M[xi] = V[xi] @ U[xi]`` (or ``@ U[xi]^T`` when ``transposed``) into ``out`` (16, th, tw, n, O).

    ``V`` is (16, th, tw, n, C); ``U`` is (16, C, O), or (16, O, C) when ``transposed``.
    """
    v = V.reshape(16, -1, V.shape[-1])
    m = out.reshape(16, -1, out.shape[-1])
    for k in range(16):  # 2-D products: BLAS takes a transposed operand as it lies
        xp.matmul(v[k], U[k].T if transposed else U[k], out=m[k])
    return out


def weight_product(xp, V, Z):
    """``dU[xi] = Z[xi]^T @ V[xi]``: (16, O, C) from (16, ..., C) and (16, ..., O) sharing the tiles."""
    c, o = V.shape[-1], Z.shape[-1]
    v = V.reshape(16, -1, c)
    z = Z.reshape(16, -1, o)
    dU = xp.empty((16, o, c), dtype=V.dtype)
    for k in range(16):
        xp.matmul(z[k].T, v[k], out=dU[k])
    return dU


def _run(xp, part, extent, nbytes):
    """``part(lo, hi)`` over ranges of tile rows: split over the BLAS threads on numpy, whole on cupy."""
    if xp is numpy:
        _buffers.split_run(part, extent, nbytes)
    else:
        part(0, extent)


# -- the convolution passes -----------------------------------------------------------
def conv(xp, d, U, transposed, out):
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
    th, tw = tiles(oh, ow)
    sizes = (16 * th * tw * c, 16 * th * tw * o, oh * ow * o)  # V, M, Y per sample
    chunks = sample_chunks(xp, n, sum(sizes) * d.itemsize)
    cap = column_capacity(xp, chunks, sum(sizes), d.itemsize)
    for lo, hi in chunks:
        k = hi - lo
        V, M, Y = carve(xp, cap, d.dtype, ((16, th, tw, k, c), (16, th, tw, k, o), (oh, ow, k, o)))
        input_transform(xp, d[:, :, lo:hi], th, tw, V)
        multiply(xp, V, U, M, transposed)
        output_transform(xp, M, Y)
        _buffers.copy(xp, out[lo:hi], Y.transpose(2, 3, 0, 1))
        _buffers.release(xp, M)
        del V, M, Y

def padded_hwnc(xp, x, pad, oh, ow):
    """``x`` (N, C, H, W) as the padded (Hp, Wp, N, C) input of an (oh, ow) Winograd output."""
    h, w = x.shape[2:]
    th, tw = tiles(oh, ow)
    size = (max(h + 2 * pad[0], 2 * th + 2), max(w + 2 * pad[1], 2 * tw + 2))
    return to_hwnc(xp, x, pad, size)

def compiled_applies(xp, arrays) -> bool:
    """Whether the compiled transforms (``cpu_winograd``) run this convolution: numpy arrays the
    compiled CPU kernels take (``cpu_compiled.usable``), all of one dtype."""
    from . import cpu_compiled

    return xp is numpy and len({a.dtype for a in arrays}) == 1 and cpu_compiled.usable(*arrays)


def forward(xp, x, W, b, pad, oh, ow, compiled=None):
    """The (N, O, oh, ow) output of a 3x3 stride-1 convolution of ``x`` padded by ``pad``, as Winograd
    (``compiled``: by ``cpu_winograd``, which takes 5x5 too; None: where :func:`compiled_applies` says so)."""
    if compiled is None:
        compiled = compiled_applies(xp, (x, W) if b is None else (x, W, b))
    if compiled:
        from . import cpu_winograd

        return cpu_winograd.forward(x, W, b, pad, oh, ow)
    n, c = x.shape[:2]
    o = W.shape[0]
    out = xp.empty((n, o, oh, ow), dtype=x.dtype)
    d = padded_hwnc(xp, x, pad, oh, ow)
    conv(xp, d, filter_transform(xp, W), True, out)
    del d
    if b is not None:
        out += b.reshape(1, o, 1, 1)
    return out

def backward(xp, xs, gy, pad, oh, ow, need, compiled=None):
    """``(gx, gW[, gb])`` of :func:`forward` for the output gradient ``gy`` (``need``: which inputs
    want one; ``compiled`` as for :func:`forward`)."""
    if compiled is None:
        compiled = compiled_applies(xp, xs)
    if compiled:
        from . import cpu_winograd

        return cpu_winograd.backward(xs, gy, pad, oh, ow, need)
    x, W = xs[0], xs[1]
    n, c, h, w = x.shape
    o = W.shape[0]
    gx = gW = gb = None
    # gy padded for the input gradient (a full convolution: padding 2 - pad); its interior serves gW
    qh, qw = 2 - pad[0], 2 - pad[1]
    g = padded_hwnc(xp, gy, (qh, qw), h, w)
    if need[1]:
        th, tw = tiles(oh, ow)
        d = padded_hwnc(xp, x, pad, oh, ow)
        sizes = (16 * th * tw * c, 16 * th * tw * o)  # V, Z per sample
        chunks = sample_chunks(xp, n, sum(sizes) * x.itemsize)
        cap = column_capacity(xp, chunks, sum(sizes), x.itemsize)
        dU = None
        for lo, hi in chunks:
            V, Z = carve(xp, cap, x.dtype, ((16, th, tw, hi - lo, c), (16, th, tw, hi - lo, o)))
            input_transform(xp, d[:, :, lo:hi], th, tw, V)
            output_grad_transform(xp, g[qh:qh + oh, qw:qw + ow, lo:hi], th, tw, Z)
            part = weight_product(xp, V, Z)
            _buffers.release(xp, Z)
            del V, Z
            if dU is None:
                dU = part
            else:
                dU += part
            del part
        del d
        gW = filter_grad(xp, dU, W.dtype)
        del dU  # before the input gradient's transformed filters take as much
    if len(xs) == 3 and need[2]:
        gb = gy.sum(axis=(0, 2, 3)).astype(xs[2].dtype, copy=False)
    if need[0]:
        gx = xp.empty((n, c, h, w), dtype=x.dtype)
        conv(xp, g, filter_transform(xp, W, flip=True), False, gx)
    if len(xs) == 3:
        return gx, gW, gb
    return gx, gW

