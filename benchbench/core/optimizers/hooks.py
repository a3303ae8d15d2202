"""Optimizer hooks: callables ``hook(optimizer)`` that act on the packed gradients.

A hook runs before the update rule (``timing = 'pre'``, the default) or after it
(``'post'``); it reaches the flat buffers through ``optimizer.packed_groups()``.
"""
from __future__ import annotations


import numpy

from .. import backend
from ..kernels import cpu_compiled


def _same_device(a, ref):
    """``a`` on the device of ``ref`` (itself when it is there already)."""
    return backend.to_device(a, backend.get_device_from_array(ref))


class WeightDecay:
    """L2 regularisation: ``grad += rate * param`` before the update.

    Args:
        rate: the decay coefficient (>= 0).
    """

    name = "WeightDecay"
    timing = "pre"

    def __init__(self, rate):
        if not float(rate) >= 0:
            raise ValueError(f"WeightDecay: rate must be >= 0, got {rate!r}")
        self.rate = float(rate)

    def __call__(self, optimizer):
        for g in optimizer.packed_groups():
            if cpu_compiled.usable(g.data):
                from ..kernels import cpu_update

                cpu_update.weight_decay(g, self.rate)
                continue
            g.xp.multiply(g.data, self.rate, out=g.work)
            g.grad += g.work


class GradientClipping:
    """Rescale the gradients so that their global L2 norm is at most ``threshold``.

    Args:
        threshold: the largest norm allowed (> 0).
    """

    name = "GradientClipping"
    timing = "pre"

    def __init__(self, threshold):
        if not float(threshold) > 0:
            raise ValueError(f"GradientClipping: threshold must be > 0, got {threshold!r}")
        self.threshold = float(threshold)

    def __call__(self, optimizer):
        # Computed on the device, without reading the norm back: the gradients are multiplied
        # by min(1, threshold / norm) (1 for a zero norm), a 0-d array of their own device.
        groups = optimizer.packed_groups()
        if not groups:
            return
        sq = None
        for g in groups:
            part = g.xp.dot(g.grad, g.grad).astype(numpy.float64)
            sq = part if sq is None else sq + _same_device(part, sq)
        norm = groups[0].xp.sqrt(sq)
        rate = groups[0].xp.minimum(self.threshold / groups[0].xp.maximum(norm, numpy.finfo(numpy.float64).tiny), 1.0)
        for g in groups:
            g.grad *= _same_device(rate, g.grad).astype(g.grad.dtype)


class GradientHardClipping:
    """Clip every gradient element into ``[lower_bound, upper_bound]``."""

    name = "GradientHardClipping"
    timing = "pre"

    def __init__(self, lower_bound, upper_bound):
        if not float(lower_bound) <= float(upper_bound):
            raise ValueError(
                f"GradientHardClipping: lower_bound must be <= upper_bound, got {lower_bound!r} > {upper_bound!r}"
            )
        self.lower_bound = float(lower_bound)
        self.upper_bound = float(upper_bound)

    def __call__(self, optimizer):
        for g in optimizer.packed_groups():
            g.xp.clip(g.grad, self.lower_bound, self.upper_bound, out=g.grad)
