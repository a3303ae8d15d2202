"""Argument checks shared by the functions: one helper per check, one wording per error.

Every message names the function, the argument and what was received, e.g.
``linear: x must be a float array, got dtype int64``.
"""
from __future__ import annotations

from .. import backend
from ..variable import Variable

__all__ = ["ARRAY_TYPES", "OPERAND_TYPES", "array_of", "check_operand", "check_float"]

#: numpy and cupy arrays.
ARRAY_TYPES = backend.ARRAY_TYPES
#: What a function accepts as an input: a Variable or an array of either backend.
OPERAND_TYPES = (Variable,) + ARRAY_TYPES


def array_of(v):
    """Return the array a Variable holds, or ``v`` itself when it is not a Variable."""
    return v.array if isinstance(v, Variable) else v


def check_operand(fname: str, argname: str, v):
    """Check that ``v`` is a Variable or an array.

    Args:
        fname: the calling function's name, for the message.
        argname: the argument's name, for the message.
        v: the value passed.

    Returns:
        ``v`` unchanged.

    Raises:
        TypeError: ``v`` is neither a Variable nor a numpy/cupy array.
    """
    if not isinstance(v, OPERAND_TYPES):
        raise TypeError(f"{fname}: {argname} must be a Variable or an array, got {type(v).__name__}")
    return v


def check_float(fname: str, argname: str, v, ndim: int | None = None):
    """Check that ``v`` is a Variable or an array of a floating-point dtype (and of ``ndim`` axes).

    Args:
        fname: the calling function's name, for the message.
        argname: the argument's name, for the message.
        v: the value passed.
        ndim: the number of axes required, or None for any.

    Returns:
        The array (``v.array`` for a Variable, else ``v``).

    Raises:
        TypeError: ``v`` is not a Variable or an array, or its dtype is not floating-point.
        ValueError: ``ndim`` is given and ``v`` has another number of axes.
    """
    a = array_of(check_operand(fname, argname, v))
    if a.dtype.kind != "f":
        raise TypeError(f"{fname}: {argname} must be a float array, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{fname}: {argname} must have {ndim} axes, got shape {a.shape}")
    return a
