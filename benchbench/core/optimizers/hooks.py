"""Optimizer hooks: callables ``hook(optimizer)`` that act on the packed gradients.

A hook runs before the update rule (``timing = 'pre'``, the default) or after it
(``'post'``); it reaches the flat buffers through ``optimizer.packed_groups()``.
"""
from __future__ import annotations

import math


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
        groups = optimizer.packed_groups()
        sq = sum(float(g.xp.dot(g.grad, g.grad)) for g in groups)
        norm = math.sqrt(sq)
        if norm == 0.0:
            return
        rate = self.threshold / norm
        if rate < 1.0:
            for g in groups:
                g.grad *= rate


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
