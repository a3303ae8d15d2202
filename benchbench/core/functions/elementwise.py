"""Elementwise functions: exp, log, sqrt, square, absolute, and maximum/minimum of two operands."""
from __future__ import annotations

from ..function import Function
from ._checks import check_operand
from .math import _binary, _sum_to

__all__ = ["exp", "log", "sqrt", "square", "absolute", "maximum", "minimum"]


class Exp(Function):
    def forward(self, xp, xs):
        self.y = xp.exp(xs[0])
        return (self.y,)

    def backward(self, xp, xs, gys):
        return (gys[0] * self.y,)


class Log(Function):
    def forward(self, xp, xs):
        return (xp.log(xs[0]),)

    def backward(self, xp, xs, gys):
        return (gys[0] / xs[0],)


class Sqrt(Function):
    def forward(self, xp, xs):
        self.y = xp.sqrt(xs[0])
        return (self.y,)

    def backward(self, xp, xs, gys):
        return (gys[0] / (2 * self.y),)


class Square(Function):
    def forward(self, xp, xs):
        return (xs[0] * xs[0],)

    def backward(self, xp, xs, gys):
        return (gys[0] * (2 * xs[0]),)


class Absolute(Function):
    def forward(self, xp, xs):
        return (xp.abs(xs[0]),)

    def backward(self, xp, xs, gys):
        return (gys[0] * xp.sign(xs[0]),)


def exp(x):
    """Elementwise ``e ** x``."""
    check_operand("exp", "x", x)
    return Exp().apply((x,))[0]


def log(x):
    """Elementwise natural logarithm."""
    check_operand("log", "x", x)
    return Log().apply((x,))[0]


def sqrt(x):
    """Elementwise square root."""
    check_operand("sqrt", "x", x)
    return Sqrt().apply((x,))[0]


def square(x):
    """Elementwise ``x * x``."""
    check_operand("square", "x", x)
    return Square().apply((x,))[0]


def absolute(x):
    """Elementwise ``|x|`` (gradient 0 at 0)."""
    check_operand("absolute", "x", x)
    return Absolute().apply((x,))[0]


class _Select(Function):
    """maximum (``take_first`` where x0 >= x1) or minimum (where x0 <= x1); ties go to x0."""

    def __init__(self, is_max):
        self.is_max = is_max

    def forward(self, xp, xs):
        x0, x1 = xs
        self.first = (x0 >= x1) if self.is_max else (x0 <= x1)
        return (xp.where(self.first, x0, x1),)

    def backward(self, xp, xs, gys):
        gy = gys[0]
        need = self.needs_input_grad
        zero = gy.dtype.type(0)
        return (
            _sum_to(xp.where(self.first, gy, zero), xs[0].shape, xs[0].dtype) if need[0] else None,
            _sum_to(xp.where(self.first, zero, gy), xs[1].shape, xs[1].dtype) if need[1] else None,
        )


def _select(name, is_max, x0, x1):
    for arg, v in (("x1", x0), ("x2", x1)):
        check_operand(name, arg, v)
    return _binary(name, lambda: _Select(is_max), None, None, x0, x1)


def maximum(x1, x2):
    """Elementwise maximum of two Variables/arrays (broadcasting); ties send the gradient to ``x1``."""
    return _select("maximum", True, x1, x2)


def minimum(x1, x2):
    """Elementwise minimum of two Variables/arrays (broadcasting); ties send the gradient to ``x1``."""
    return _select("minimum", False, x1, x2)
