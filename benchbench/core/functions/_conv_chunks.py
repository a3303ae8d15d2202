"""How a convolution splits its batch so that no whole-batch im2col is ever built on the CPU.

The columns of a whole batch are ``kh*kw`` times the input: for a ResNet-18 step at batch 64
they were about a gigabyte when every layer kept its own for the weight gradient. Instead the
convolution builds the columns of a few samples at a time (a chunk of at most
``COL_CHUNK_BYTES``), multiplies them at once and gives the buffer back; the weight gradient
builds them again, chunk by chunk, from the retained input. One chunk's columns are small
enough to stay in the last-level cache between the copy that writes them and the GEMM that
reads them, which is what pays for copying them twice. The chunks of every layer are views
of flat work arrays of one size (``chunk_capacity``), so all the layers of a network share the
same one or two pooled buffers instead of each shape keeping its own.

On cupy a convolution is one chunk: GPU memory holds a whole batch's columns and one large
GEMM keeps the device busy.
"""
from __future__ import annotations

import numpy

__all__ = ["COL_CHUNK_BYTES", "sample_chunks", "chunk_capacity"]

# Columns of one chunk: large enough for GEMMs with thousands of columns, small enough to stay cached.
COL_CHUNK_BYTES = 16 << 20


def sample_chunks(xp, n, col_bytes_per_sample, budget=None):
    """Split ``range(n)`` samples into ``(lo, hi)`` chunks of at most ``budget`` bytes of columns each.

    Args:
        xp: the array module (numpy or cupy); cupy gets a single chunk.
        n: the batch size (>= 1).
        col_bytes_per_sample: bytes of im2col columns one sample needs.
        budget: bytes per chunk (default :data:`COL_CHUNK_BYTES`); a chunk holds at least one sample.

    Returns:
        A list of ``(lo, hi)`` pairs, in order, covering ``0 .. n`` with sizes that differ by at most one.
    """
    assert n >= 1 and col_bytes_per_sample >= 0
    if xp is not numpy:
        return [(0, n)]
    budget = COL_CHUNK_BYTES if budget is None else budget
    per = max(1, int(budget // max(col_bytes_per_sample, 1)))
    count = -(-n // per)
    return [(n * k // count, n * (k + 1) // count) for k in range(count)]


def chunk_capacity(chunks, elems_per_sample, itemsize):
    """Elements of the flat work array that holds any chunk's columns, or None for a single chunk.

    Every split layer asks for the same size (:data:`COL_CHUNK_BYTES`, or more when one sample
    alone is larger), so the buffer pool hands the same arrays to all of them.

    Args:
        chunks: the ``(lo, hi)`` pairs of :func:`sample_chunks`.
        elems_per_sample: column elements one sample needs.
        itemsize: bytes per element.

    Returns:
        The element count, or None when ``chunks`` is the whole batch (columns then have their exact shape).
    """
    if len(chunks) == 1:
        return None
    largest = max(hi - lo for lo, hi in chunks) * elems_per_sample
    return max(largest, COL_CHUNK_BYTES // itemsize)
