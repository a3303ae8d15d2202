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
kernels do here, each in one pass over a run of samples (``cpu_winograd_tiles``: the input
transform ``V = B^T d B``, the output transform ``Y = A^T M A`` with the bias, and the output
gradient's ``Z = A gy A^T``). The a*a GEMMs ``M[xi] = V[xi] @ U[xi]^T`` run between them.

A layer runs one of two ways, split between as many worker threads as BLAS has
(``_in_parallel``), each running its kernels and GEMMs single-threaded, so no core waits on
another between a transform and a GEMM:

- **by chunks** (large layers): a chunk of samples is transformed, multiplied and transformed
  back while its arrays are still in cache (``CHUNK_BYTES`` of V and M together): at ResNet-18's
  64-channel stage a whole batch's would be some 150 MB, written to memory and read back twice.
  Each worker takes every other chunk.
- **by tile positions** (layers whose whole batch of V and M is at most ``WHOLE_BATCH_BYTES``:
  ResNet-18's 512-channel stage, 4x4 planes, one tile per sample): the workers transform halves
  of the batch into one V, then each runs the GEMMs of its own share of the a*a tile positions
  over the whole batch, then they transform halves of M back. Split by samples, each worker's
  GEMMs had 32 rows and packed every one of the 36 filter matrices (1 MB each) again; split by
  positions they have 64 rows and each packs its own; the filter gradient needs no partial sums.

Backward:

- the input gradient is the forward pass run on the output gradient with the flipped,
  transposed filters (a full convolution: padding ``r - 1 - pad``);
- the filter gradient is ``dU[xi] = Z[xi]^T @ V[xi]`` summed over the chunks (each worker its
  own sum, added at the end in a fixed order; by tile positions, one GEMM per position over the
  whole batch), then ``dg = G^T dU G``.

Every sum is in a fixed order (no reassociation, no contraction into fused multiply-adds), so
results do not depend on the number of threads beyond the split of the filter gradient's sum
by chunks (by tile positions, not at all).
"""
from __future__ import annotations

import contextlib

import numpy

from . import buffers as _buffers
from . import cpu_compiled
from .. import backend
from .conv_chunks import sample_chunks
from .cpu_winograd_tiles import grad_tiles, input_tiles, output_tiles
from .winograd_algebra import TILE, filter_grad, filter_transform, matrices, tile_size, tiles

# TILE, matrices, tiles, filter_transform and filter_grad come from ``winograd_algebra``
__all__ = ["CHUNK_BYTES", "WHOLE_BATCH_BYTES", "TILE", "matrices", "tile_size", "tiles", "filter_transform", "filter_grad", "forward",
           "backward", "input_tiles", "output_tiles", "grad_tiles"]

# Bytes of V and M (or V and Z) per chunk of samples: a few MiB stay in the last-level cache
# between the transform, the GEMMs and the transform back (at ResNet-18's shapes 8 MiB is a few
# per cent faster than 2 MiB and than 32 MiB; a whole batch at once is a third slower).
CHUNK_BYTES = 8 << 20
# A layer whose whole batch of V and M (or V and Z) takes at most this many bytes runs by tile
# positions (see the module docstring): at ResNet-18's 512-channel stage, 9.4 MB.
WHOLE_BATCH_BYTES = 12 << 20
# Filters (O*C) from which the filter transforms run on every BLAS thread (see _filter_threads).
FILTER_THREADS_MIN = 128 * 128


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


def _by_positions(n, per_sample_elems, itemsize):
    """Whether a layer runs by tile positions: its whole batch's transformed arrays are at most
    :data:`WHOLE_BATCH_BYTES`."""
    return n * per_sample_elems * itemsize <= WHOLE_BATCH_BYTES


def _shares(count, workers):
    """``range(count)`` in ``workers`` contiguous ``(lo, hi)`` shares whose sizes differ by at most one."""
    return [(count * i // workers, count * (i + 1) // workers) for i in range(workers)]


def _carve(work, k, t):
    """The C-contiguous (a*a, k*t, channels) front of a work array made by :func:`_work`."""
    aa, ch = work.shape[0], work.shape[2]
    return work.reshape(-1)[:aa * ch * k * t].reshape(aa, k * t, ch)


def _layout(x, o, oh, ow, m, r):
    """``(n, c, a, th, tw, t, workers, planes)`` of a layer: batch and input channels, the patch size,
    the tile rows, columns and count per sample, the worker threads, and the elements of a
    sample's padded input or output planes (whichever is larger) in channels-last scratch."""
    n, c = x.shape[:2]
    a = m + r - 1
    th, tw = tiles(oh, ow, m)
    t = th * tw
    planes = max((m * th + r - 1) * (m * tw + r - 1) * c, m * m * t * o)
    return n, c, a, th, tw, t, _workers(n), planes


def _whole_batch(n, t, a, channels, dtype, workers):
    """For a layer run by tile positions: one (a*a, n*t, ch) array per channel count in ``channels``,
    then the workers' shares of the samples and of the a*a positions."""
    return [numpy.empty((a * a, n * t, ch), dtype) for ch in channels] + [_shares(n, workers), _shares(a * a, workers)]


def _conv(x, U, transposed, b, pad, oh, ow, m, r):
    """The (N, O, oh, ow) stride-1 r x r convolution of ``x`` padded by ``pad`` with the transformed
    filters ``U``: (a*a, O, C), or (a*a, C, O) used as it lies when ``transposed``."""
    o = U.shape[2] if transposed else U.shape[1]
    n, c, a, th, tw, t, workers, planes = _layout(x, o, oh, ow, m, r)
    out = numpy.empty((n, o, oh, ow), x.dtype)
    bias = numpy.zeros(o, x.dtype) if b is None else b
    Ut = U if transposed else U.transpose(0, 2, 1)  # (a*a, C, O): each a transposed view BLAS takes as it lies
    if _by_positions(n, a * a * t * (c + o), x.itemsize):
        V, M, samples, positions = _whole_batch(n, t, a, (c, o), x.dtype, workers)

        def transform(i):
            lo, hi = samples[i]
            input_tiles(x, lo, hi, pad, th, tw, m, r, out=V, scratch=numpy.empty((hi - lo) * planes, x.dtype),
                        v0=lo * t)

        def multiply(i):
            lo, hi = positions[i]
            numpy.matmul(V[lo:hi], Ut[lo:hi], out=M[lo:hi])

        def transform_back(i):
            lo, hi = samples[i]
            output_tiles(M, bias, out, lo, th, tw, m, r, scratch=numpy.empty((hi - lo) * planes, x.dtype),
                         k=hi - lo, v0=lo * t)

        for step in (transform, multiply, transform_back):
            _in_parallel(workers, step)
        return out
    chunks = _chunks(n, a * a * t * (c + o), x.itemsize, workers)
    most = max(hi - lo for lo, hi in chunks)

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


def _filter_threads(W):
    """The BLAS threads for a filter transform or its gradient (one GEMM of r*r by a*a over every
    filter): all of them from :data:`FILTER_THREADS_MIN` filters (O*C) on, where the GEMM streams
    tens of MB (at 512 channels the three transforms of a layer took 15 ms on one thread of a
    2-core machine and 7 ms on two); one below, where waking the library's threads costs more."""
    o, c = W.shape[:2]
    return contextlib.nullcontext() if o * c >= FILTER_THREADS_MIN else backend.blas_limit(1)


def forward(x, W, b, pad, oh, ow, m=None):
    """The (N, O, oh, ow) output of an r x r (3 or 5) stride-1 convolution of ``x`` (C-contiguous
    NCHW) padded by ``pad`` (at most r - 1), with ``W`` (O, C, r, r) and the bias ``b`` (or None),
    as F(m x m, r x r) (``m``: :data:`TILE`'s by default)."""
    r = W.shape[2]
    m = tile_size(r) if m is None else m
    with _filter_threads(W):
        U = filter_transform(W, m)
    return _conv(x, U, False, b, pad, oh, ow, m, r)


def _weight_grad(x, gy, pad, oh, ow, m, r):
    """``dU``, the (a*a, O, C) gradient of the transformed filters, summed over the batch."""
    o = gy.shape[1]
    n, c, a, th, tw, t, workers, planes = _layout(x, o, oh, ow, m, r)
    if _by_positions(n, a * a * t * (c + o), x.itemsize):
        V, Z, samples, positions = _whole_batch(n, t, a, (c, o), x.dtype, workers)
        dU = numpy.empty((a * a, o, c), x.dtype)

        def transform(i):
            lo, hi = samples[i]
            scratch = numpy.empty((hi - lo) * planes, x.dtype)
            input_tiles(x, lo, hi, pad, th, tw, m, r, out=V, scratch=scratch, v0=lo * t)
            grad_tiles(gy, lo, hi, th, tw, m, r, out=Z, scratch=scratch, v0=lo * t)

        def multiply(i):
            lo, hi = positions[i]
            numpy.matmul(Z[lo:hi].transpose(0, 2, 1), V[lo:hi], out=dU[lo:hi])

        for step in (transform, multiply):
            _in_parallel(workers, step)
        return dU
    chunks = _chunks(n, a * a * t * (c + o), x.itemsize, workers)
    most = max(hi - lo for lo, hi in chunks)

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
        with _filter_threads(W):
            gW = filter_grad(dU, m, r, W.dtype)
    if len(xs) == 3 and need[2]:
        gb = gy.sum(axis=(0, 2, 3)).astype(xs[2].dtype, copy=False)
    if need[0]:
        with _filter_threads(W):
            U = filter_transform(W, m, flip=True)
        gx = _conv(gy, U, True, None, (r - 1 - pad[0], r - 1 - pad[1]), h, w, m, r)
    return (gx, gW, gb) if len(xs) == 3 else (gx, gW)
