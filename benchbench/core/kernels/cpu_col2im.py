"""Compiled col2im: the im2col convolution's column gradient summed onto the input planes, in parallel.

numpy's col2im is ``kh*kw`` read-modify-write passes, each over the whole (C, N, Hp, Wp) gradient
(several MiB, out of cache), and numpy runs each on one core. Here each (channel, sample) plane is
one task of a ``prange``: the plane (a few KiB) is zeroed and receives all ``kh*kw`` offsets while
it stays in the L1 cache, and the planes are spread over the threads. No two tasks write one
element, and each element receives its terms in numpy's order (offset by offset), so the results
are bit for bit numpy's.

- :func:`wide_col2im`: stride 1 with the column gradient in rows of the padded width ``Wp``
  (``im2col.input_grad_by_wide_col2im``): offset ``(i, j)`` is one contiguous add at the shift
  ``i*Wp + j`` of the flat plane.
- :func:`col2im`: any stride and dilation (``conv_geometry.col2im``), one output row at a time.
"""
from __future__ import annotations

from numba import prange

from .cpu_compiled import kernel

__all__ = ["wide_col2im", "col2im"]


@kernel("void(A2, A3, I, I, I, I, I)")
def _wide(gcol, gx, lo, kh, kw, wp, span):
    c_, nn = gcol.shape[0] // (kh * kw), gcol.shape[1] // span
    size = gx.shape[2]
    for t in prange(c_ * nn):
        ci, s = t // nn, t % nn
        plane = gx[ci, lo + s]
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                shift = i * wp + j
                count = min(span, size - shift)  # what is cut off lies past ow: zeros
                src = gcol[(ci * kh + i) * kw + j, s * span:s * span + count]
                dst = plane[shift:shift + count]
                for p in range(count):
                    dst[p] += src[p]


@kernel("void(A2, A3, I, I, I, I, I, I, I, I, I, I)")
def _general(gcol, gx, lo, kh, kw, oh, ow, sy, sx, dy, dx, wp):
    c_, nn = gcol.shape[0] // (kh * kw), gcol.shape[1] // (oh * ow)
    m = oh * ow
    for t in prange(c_ * nn):
        ci, s = t // nn, t % nn
        plane = gx[ci, lo + s]
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                row = gcol[(ci * kh + i) * kw + j]
                for r in range(oh):
                    src = row[s * m + r * ow:s * m + (r + 1) * ow]
                    at = (i * dy + r * sy) * wp + j * dx
                    if sx == 1:
                        dst = plane[at:at + ow]
                        for q in range(ow):
                            dst[q] += src[q]
                    else:
                        for q in range(ow):
                            plane[at + q * sx] += src[q]


def wide_col2im(gcol, gx, lo, kh, kw, wp, span):
    """Zero the planes of samples ``lo..`` of ``gx`` ((C, N, Hp, Wp), C-contiguous) and add the
    (C*kh*kw, n*span) stride-1 column gradient ``gcol`` onto them, offset ``(i, j)`` at ``i*Wp + j``."""
    c, n = gx.shape[:2]
    _wide(gcol, gx.reshape(c, n, -1), lo, kh, kw, wp, span)


def col2im(gcol, gx, lo, kh, kw, oh, ow, sy, sx, dy, dx):
    """Zero the planes of samples ``lo..`` of ``gx`` ((C, N, Hp, Wp), C-contiguous) and sum the
    (C*kh*kw, n*oh*ow) column gradient ``gcol`` onto them, as ``conv_geometry.col2im`` does."""
    c, n, _, wp = gx.shape
    _general(gcol, gx.reshape(c, n, -1), lo, kh, kw, oh, ow, sy, sx, dy, dx, wp)
