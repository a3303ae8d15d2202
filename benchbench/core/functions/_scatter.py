"""Scatter-add without atomics: the deterministic path of ``x[key] += y`` with repeated indices.

On a GPU, ``add.at`` (and ``bincount`` with weights) accumulate with atomic adds whose order
changes from run to run, so float sums differ in their last bits. Under
``config.deterministic`` the gradient of advanced indexing goes through :func:`scatter_add`:
each element's target is a flat index; a stable sort groups equal targets in a fixed order;
the sums of the groups are differences of a float64 cumulative sum; one plain assignment writes
each target once. Every step is deterministic on numpy and cupy alike.
"""
from __future__ import annotations

import numpy


def scatter_add(xp, shape, dtype, key, values):
    """``zeros(shape); out[key] += values`` accumulating repeated indices, deterministically.

    Args:
        xp: numpy or cupy.
        shape: the shape of the result.
        dtype: its dtype.
        key: an index ``out[key]`` accepts (advanced integer indices may repeat).
        values: an array broadcastable to ``out[key]``'s shape.

    Returns:
        The accumulated array of ``shape`` and ``dtype``.

    Example:
        >>> scatter_add(numpy, (3,), numpy.float32, numpy.array([0, 2, 0]), numpy.ones(3, numpy.float32))
        array([2., 0., 1.], dtype=float32)
    """
    size = int(numpy.prod(shape, dtype=numpy.int64))
    flat = xp.arange(size, dtype=xp.int64).reshape(shape)[key]
    vals = xp.broadcast_to(values, flat.shape).reshape(-1).astype(xp.float64)
    flat = flat.reshape(-1)
    out = xp.zeros(size, dtype=dtype)
    if flat.size == 0:
        return out.reshape(shape)
    order = xp.argsort(flat, kind="stable")
    idx, vals = flat[order], vals[order]
    last = xp.flatnonzero(idx[1:] != idx[:-1])
    last = xp.concatenate([last, xp.asarray([idx.size - 1], dtype=last.dtype)])
    sums = xp.cumsum(vals)[last]
    sums = xp.concatenate([sums[:1], sums[1:] - sums[:-1]])
    out[idx[last]] = sums.astype(dtype)
    return out.reshape(shape)
