"""Noise: dropout, drawn from the framework's seeded generator."""
from __future__ import annotations

import numpy

from ..config import config
from ..function import Function
from ..random import get_xp_rng
from ._checks import check_float
from ..variable import Variable, as_variable

__all__ = ["dropout"]



class Dropout(Function):
    def __init__(self, ratio, mask):
        self.ratio = ratio
        self.mask = mask

    def forward(self, xp, xs):
        x = xs[0]
        if self.mask is None:
            keep = get_xp_rng(xp).random(x.shape, dtype=numpy.float32) >= self.ratio
            mask = keep.astype(x.dtype)
            mask *= 1.0 / (1.0 - self.ratio)
            self.mask = mask
        return (x * self.mask,)

    def backward(self, xp, xs, gys):
        return (gys[0] * self.mask,)


def dropout(x, ratio=0.5, *, mask=None, return_mask=False):
    """Zero each element with probability ``ratio`` and scale the rest by ``1 / (1 - ratio)``.

    In evaluation (``config.train`` False) it is the identity. The mask comes from the
    generator that ``benchbench.core.seed`` seeds, so a seed fixes it.

    Args:
        x: Variable or float array.
        ratio: drop probability, ``0 <= ratio < 1``.
        mask: optional array of ``x``'s shape to multiply by instead of drawing one
            (already scaled, as the returned mask is).
        return_mask: also return the mask used (None in evaluation).

    Returns:
        Variable, or ``(Variable, mask)`` with ``return_mask``.

    Example:
        >>> h = dropout(relu(h), ratio=0.5)
    """
    name = "dropout"
    check_float(name, "x", x)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, numpy.floating)):
        raise TypeError(f"{name}: ratio must be a number, got {type(ratio).__name__}")
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"{name}: ratio must be in [0, 1), got {ratio}")
    if mask is not None:
        if isinstance(mask, Variable):
            mask = mask.array
        if getattr(mask, "shape", None) != x.shape:
            raise ValueError(
                f"{name}: mask must have x's shape {x.shape}, got {getattr(mask, 'shape', type(mask).__name__)}"
            )
    if not config.train:
        y = as_variable(x)
        return (y, None) if return_mask else y
    f = Dropout(float(ratio), mask)
    y = f.apply((x,))[0]
    return (y, f.mask) if return_mask else y
