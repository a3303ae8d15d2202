"""Where a convolution's im2col columns live on the CPU: kept, rebuilt, or split over the batch.

The columns of a whole batch are ``kh*kw`` times the input: for a ResNet-18 step at batch 64
they came to about a gigabyte when every layer kept its own from forward to the weight
gradient. Now a layer keeps its columns only when they are small (``HOLD_COL_BYTES``);
otherwise the weight gradient builds them again from the retained input (one more strided
copy, a few per cent of the layer's time), and no layer's columns outlive its own forward or
backward. Columns larger than ``COL_CHUNK_BYTES`` are built a few samples at a time and
multiplied chunk by chunk, which bounds a layer's transient memory at large batch sizes
(smaller GEMMs are slower on a 2-core machine, so the bound is set above what the workloads
need at their default batch sizes).

Columns that are not kept are views of one flat work array per dtype, as large as the largest
columns asked for so far (``column_capacity``), so all the layers of a network share one
pooled buffer instead of each shape keeping its own.

On cupy a convolution is one chunk that keeps its columns, as before: one large GEMM keeps
the device busy, and nothing here adds a host synchronisation.
"""
from __future__ import annotations

import numpy

__all__ = ["COL_CHUNK_BYTES", "HOLD_COL_BYTES", "sample_chunks", "holds_columns", "column_capacity"]

# Columns above this many bytes are built and multiplied a few samples at a time.
COL_CHUNK_BYTES = 192 << 20
# Columns up to this many bytes are kept from forward to the weight gradient; larger ones are rebuilt.
HOLD_COL_BYTES = 16 << 20

_largest = {}  # itemsize -> elements of the largest unkept columns so far (numpy only)


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


def holds_columns(xp, nbytes):
    """Whether whole-batch columns of ``nbytes`` are kept from forward to the weight gradient (always on cupy)."""
    return xp is not numpy or nbytes <= HOLD_COL_BYTES


def column_capacity(xp, chunks, elems_per_sample, itemsize):
    """Elements of the shared flat work array for columns that are not kept (None on cupy).

    Args:
        xp: the array module.
        chunks: the ``(lo, hi)`` pairs of :func:`sample_chunks`.
        elems_per_sample: column elements one sample needs.
        itemsize: bytes per element.

    Returns:
        The largest of this layer's chunk and every earlier one, so that every layer asks the
        buffer pool for the same size; None on cupy (exact shapes from its own pool).
    """
    if xp is not numpy:
        return None
    need = max(hi - lo for lo, hi in chunks) * elems_per_sample
    cap = max(need, _largest.get(itemsize, 0))
    _largest[itemsize] = cap
    return cap
