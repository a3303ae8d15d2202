"""Arithmetic: the functions behind ``Variable``'s operators (add, sub, mul, div, neg, pow) and matmul.

Binary operations broadcast like numpy; in backward each input's gradient is summed back to
that input's own shape. The other operand may be a Variable, an array or a Python number.
These run once per operator in every model, so the wrappers stay thin.
"""
from __future__ import annotations

import numbers

import numpy

from ..function import Function
from ._checks import OPERAND_TYPES, check_operand

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "matmul"]



def _sum_to(g, shape, dtype=None):
    """Sum ``g`` over the axes that broadcasting added or stretched, so it takes ``shape``
    (and ``dtype``, where mixed operand dtypes promoted it)."""
    if g.shape != shape:
        lead = g.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
        )
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        g = g.reshape(shape)
    if dtype is not None and g.dtype != dtype:
        g = g.astype(dtype)
    return g


def _scalar(name, value):
    """A Python number for ``value`` (numpy scalars too), so that float32 stays float32."""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return value.item() if isinstance(value, numpy.generic) else value
    raise TypeError(
        f"{name}: operands must be Variables, arrays or numbers, got {type(value).__name__}"
    )


def _shape(v):
    return v.shape if isinstance(v, OPERAND_TYPES) else ()


def _binary(name, fn, const_fn, rconst_fn, x, y):
    """Dispatch to the array-array Function or to the one with a constant operand."""
    if isinstance(y, OPERAND_TYPES):
        if isinstance(x, OPERAND_TYPES):
            try:
                return fn().apply((x, y))[0]
            except ValueError as e:
                if "broadcast" not in str(e):
                    raise
                raise ValueError(
                    f"{name}: shapes {_shape(x)} and {_shape(y)} do not broadcast"
                ) from None
        return rconst_fn(_scalar(name, x)).apply((y,))[0]
    if isinstance(x, OPERAND_TYPES):
        return const_fn(_scalar(name, y)).apply((x,))[0]
    raise TypeError(
        f"{name}: at least one operand must be a Variable or an array, "
        f"got {type(x).__name__} and {type(y).__name__}"
    )


# -- add / sub ---------------------------------------------------------------------------------
class Add(Function):
    def forward(self, xp, xs):
        return (xs[0] + xs[1],)

    def backward(self, xp, xs, gys):
        gy = gys[0]
        need = self.needs_input_grad
        return (
            _sum_to(gy, xs[0].shape, xs[0].dtype) if need[0] else None,
            _sum_to(gy, xs[1].shape, xs[1].dtype) if need[1] else None,
        )


class AddConstant(Function):
    def __init__(self, c):
        self.c = c

    def forward(self, xp, xs):
        return (xs[0] + self.c,)

    def backward(self, xp, xs, gys):
        return gys


class Sub(Function):
    def forward(self, xp, xs):
        return (xs[0] - xs[1],)

    def backward(self, xp, xs, gys):
        gy = gys[0]
        need = self.needs_input_grad
        return (
            _sum_to(gy, xs[0].shape, xs[0].dtype) if need[0] else None,
            _sum_to(-gy, xs[1].shape, xs[1].dtype) if need[1] else None,
        )


class SubFromConstant(Function):
    """``c - x``."""

    def __init__(self, c):
        self.c = c

    def forward(self, xp, xs):
        return (self.c - xs[0],)

    def backward(self, xp, xs, gys):
        return (-gys[0],)


def add(x, y):
    """Elementwise ``x + y`` with numpy broadcasting.

    Args:
        x, y: Variables, arrays or numbers (at least one not a number).

    Returns:
        Variable: the sum.

    Example:
        >>> z = add(x, 1.0)   # also ``x + 1.0``
    """
    return _binary("add", Add, AddConstant, AddConstant, x, y)


def sub(x, y):
    """Elementwise ``x - y`` with numpy broadcasting (see ``add``)."""
    return _binary("sub", Sub, _sub_constant, SubFromConstant, x, y)


def _sub_constant(c):
    return AddConstant(-c)


# -- mul / div ---------------------------------------------------------------------------------
class Mul(Function):
    def forward(self, xp, xs):
        return (xs[0] * xs[1],)

    def backward(self, xp, xs, gys):
        x0, x1 = xs
        gy = gys[0]
        need = self.needs_input_grad
        return (
            _sum_to(gy * x1, x0.shape, x0.dtype) if need[0] else None,
            _sum_to(gy * x0, x1.shape, x1.dtype) if need[1] else None,
        )


class MulConstant(Function):
    def __init__(self, c):
        self.c = c

    def forward(self, xp, xs):
        return (xs[0] * self.c,)

    def backward(self, xp, xs, gys):
        return (gys[0] * self.c,)


class Div(Function):
    def forward(self, xp, xs):
        return (xs[0] / xs[1],)

    def backward(self, xp, xs, gys):
        x0, x1 = xs
        need = self.needs_input_grad
        gx0 = gys[0] / x1
        gx1 = None
        if need[1]:
            gx1 = _sum_to(-gx0 * x0 / x1, x1.shape, x1.dtype)
        return (_sum_to(gx0, x0.shape, x0.dtype) if need[0] else None, gx1)


class DivFromConstant(Function):
    """``c / x``."""

    def __init__(self, c):
        self.c = c

    def forward(self, xp, xs):
        return (self.c / xs[0],)

    def backward(self, xp, xs, gys):
        x = xs[0]
        return (gys[0] * (-self.c) / (x * x),)


class DivConstant(Function):
    def __init__(self, c):
        self.c = c

    def forward(self, xp, xs):
        return (xs[0] / self.c,)

    def backward(self, xp, xs, gys):
        return (gys[0] / self.c,)


def mul(x, y):
    """Elementwise ``x * y`` with numpy broadcasting (see ``add``)."""
    return _binary("mul", Mul, MulConstant, MulConstant, x, y)


def div(x, y):
    """Elementwise ``x / y`` with numpy broadcasting (see ``add``)."""
    return _binary("div", Div, DivConstant, DivFromConstant, x, y)


# -- unary -------------------------------------------------------------------------------------
class Neg(Function):
    def forward(self, xp, xs):
        return (-xs[0],)

    def backward(self, xp, xs, gys):
        return (-gys[0],)


class PowConstant(Function):
    def __init__(self, p):
        self.p = p

    def forward(self, xp, xs):
        return (xs[0] ** self.p,)

    def backward(self, xp, xs, gys):
        p = self.p
        x = xs[0]
        if p == 2:
            return (gys[0] * (2 * x),)
        return (gys[0] * (p * x ** (p - 1)),)


class Pow(Function):
    def forward(self, xp, xs):
        self.y = xs[0] ** xs[1]
        return (self.y,)

    def backward(self, xp, xs, gys):
        x, p = xs
        gy = gys[0]
        need = self.needs_input_grad
        gx = _sum_to(gy * p * x ** (p - 1), x.shape, x.dtype) if need[0] else None
        gp = _sum_to(gy * self.y * xp.log(x), p.shape, p.dtype) if need[1] else None
        return (gx, gp)


def neg(x):
    """Elementwise ``-x``."""
    check_operand("neg", "x", x)
    return Neg().apply((x,))[0]


def pow(x, p):
    """Elementwise ``x ** p``; ``p`` is a number, or a Variable/array broadcast against ``x``.

    Args:
        x: Variable or array.
        p: exponent.

    Returns:
        Variable: ``x ** p``.
    """
    check_operand("pow", "x", x)
    if isinstance(p, OPERAND_TYPES):
        return _binary("pow", Pow, None, None, x, p)
    return PowConstant(_scalar("pow", p)).apply((x,))[0]


# -- matmul ------------------------------------------------------------------------------------
class MatMul(Function):
    """``a @ b`` for 2-D or batched (broadcast) operands, with optional transposes."""

    def __init__(self, transa, transb):
        self.transa = transa
        self.transb = transb

    def forward(self, xp, xs):
        a, b = xs
        if self.transa:
            a = a.swapaxes(-1, -2)
        if self.transb:
            b = b.swapaxes(-1, -2)
        return (xp.matmul(a, b),)

    def backward(self, xp, xs, gys):
        a, b = xs
        gy = gys[0]
        need = self.needs_input_grad
        ga = gb = None
        if need[0]:
            # y = A @ B with A = a or a^T, B = b or b^T; dA = gy @ B^T.
            if self.transa:  # da = dA^T = B @ gy^T
                ga = xp.matmul(b if not self.transb else b.swapaxes(-1, -2), gy.swapaxes(-1, -2))
            else:
                ga = xp.matmul(gy, b if self.transb else b.swapaxes(-1, -2))
            ga = _sum_to(ga, a.shape, a.dtype)
        if need[1]:
            # dB = A^T @ gy.
            if self.transb:  # db = dB^T = gy^T @ A
                gb = xp.matmul(gy.swapaxes(-1, -2), a.swapaxes(-1, -2) if self.transa else a)
            else:
                gb = xp.matmul(a if self.transa else a.swapaxes(-1, -2), gy)
            gb = _sum_to(gb, b.shape, b.dtype)
        return (ga, gb)


def matmul(a, b, transa=False, transb=False):
    """Matrix product ``a @ b`` (Chainer's ``F.matmul``).

    Both operands have at least two dimensions; with more, the leading ones are batch
    dimensions that broadcast like ``numpy.matmul``.

    Args:
        a: Variable or array of shape (..., M, K) (or (..., K, M) with ``transa``).
        b: Variable or array of shape (..., K, N) (or (..., N, K) with ``transb``).
        transa: transpose the last two axes of ``a`` first.
        transb: transpose the last two axes of ``b`` first.

    Returns:
        Variable of shape (..., M, N).

    Example:
        >>> y = matmul(x, W, transb=True)   # x @ W.T, as in a linear layer
    """
    for arg, v in (("a", a), ("b", b)):
        check_operand("matmul", arg, v)
        if v.ndim < 2:
            raise ValueError(f"matmul: {arg} must have at least 2 dimensions, got shape {v.shape}")
    ka = a.shape[-2] if transa else a.shape[-1]
    kb = b.shape[-1] if transb else b.shape[-2]
    if ka != kb:
        raise ValueError(
            f"matmul: inner dimensions differ: a {a.shape} (transa={transa}) gives {ka}, "
            f"b {b.shape} (transb={transb}) gives {kb}"
        )
    try:
        return MatMul(transa, transb).apply((a, b))[0]
    except ValueError as e:
        raise ValueError(
            f"matmul: batch dimensions of a {a.shape} and b {b.shape} do not broadcast"
        ) from e
