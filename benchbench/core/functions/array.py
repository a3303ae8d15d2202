"""Array manipulation: reshape, transpose, indexing, concatenation, splitting, broadcasting."""
from __future__ import annotations

import numpy

from .. import backend
from ..config import config, deterministic_paths
from ..function import Function
from ._scatter import scatter_add
from ._checks import ARRAY_TYPES, check_operand
from .math import _sum_to
from ..variable import Variable

__all__ = [
    "reshape", "flatten", "transpose", "swapaxes", "expand_dims", "squeeze", "get_item",
    "concat", "stack", "split_axis", "broadcast_to", "where", "cast",
]

def _axis(name, axis, ndim, arg="axis"):
    if isinstance(axis, bool) or not isinstance(axis, (int, numpy.integer)):
        raise TypeError(f"{name}: {arg} must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: {arg} {axis} is out of range for {ndim} dimensions")
    return int(axis) % ndim


# -- shape changes -----------------------------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, xp, xs):
        return (xs[0].reshape(self.shape),)

    def backward(self, xp, xs, gys):
        return (gys[0].reshape(xs[0].shape),)


def reshape(x, shape):
    """Reshape ``x`` (one entry of ``shape`` may be -1).

    Args:
        x: Variable or array.
        shape: tuple of ints (or an int).

    Returns:
        Variable of the new shape, sharing memory with ``x`` where possible.
    """
    check_operand("reshape", "x", x)
    if isinstance(shape, (int, numpy.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    try:
        return Reshape(shape).apply((x,))[0]
    except (ValueError, TypeError):
        raise ValueError(
            f"reshape: cannot reshape x of shape {x.shape} ({x.size} elements) to {shape}"
        ) from None


def flatten(x):
    """Flatten ``x`` to one dimension (Chainer's ``F.flatten``).

    Args:
        x: Variable or array.

    Returns:
        Variable of shape ``(x.size,)``.
    """
    check_operand("flatten", "x", x)
    return Reshape((x.size,)).apply((x,))[0]


class Transpose(Function):
    def __init__(self, axes):
        self.axes = axes

    def forward(self, xp, xs):
        return (xs[0].transpose(self.axes),)

    def backward(self, xp, xs, gys):
        axes = self.axes
        if axes is None:
            return (gys[0].transpose(),)
        return (gys[0].transpose(tuple(numpy.argsort(axes))),)


def transpose(x, axes=None):
    """Permute the axes of ``x`` (reverse them when ``axes`` is None).

    Args:
        x: Variable or array.
        axes: a permutation of ``range(x.ndim)``, or None.

    Returns:
        Variable (a view of ``x``).
    """
    check_operand("transpose", "x", x)
    if axes is not None:
        axes = tuple(int(a) % x.ndim if -x.ndim <= a < x.ndim else a for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} is not a permutation of the {x.ndim} axes of x {x.shape}")
    return Transpose(axes).apply((x,))[0]


def swapaxes(x, axis1, axis2):
    """Swap two axes of ``x``.

    Args:
        x: Variable or array.
        axis1, axis2: the axes to swap.

    Returns:
        Variable (a view of ``x``).
    """
    check_operand("swapaxes", "x", x)
    a1 = _axis("swapaxes", axis1, x.ndim, "axis1")
    a2 = _axis("swapaxes", axis2, x.ndim, "axis2")
    axes = list(range(x.ndim))
    axes[a1], axes[a2] = axes[a2], axes[a1]
    return Transpose(tuple(axes)).apply((x,))[0]


def expand_dims(x, axis):
    """Insert an axis of length 1 at ``axis`` (``-x.ndim - 1 <= axis <= x.ndim``)."""
    check_operand("expand_dims", "x", x)
    a = _axis("expand_dims", axis, x.ndim + 1)
    return Reshape(x.shape[:a] + (1,) + x.shape[a:]).apply((x,))[0]


def squeeze(x, axis=None):
    """Remove axes of length 1 (all of them, or those in ``axis``: an int or a tuple of ints)."""
    check_operand("squeeze", "x", x)
    if axis is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = (axis,) if isinstance(axis, (int, numpy.integer)) else tuple(axis)
        axes = {_axis("squeeze", a, x.ndim) for a in axes}
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of x {x.shape} has length {x.shape[a]}, not 1")
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return Reshape(shape).apply((x,))[0]


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, xp, xs):
        return (xp.broadcast_to(xs[0], self.shape),)

    def backward(self, xp, xs, gys):
        return (_sum_to(gys[0], xs[0].shape),)


def broadcast_to(x, shape):
    """Broadcast ``x`` to ``shape`` (numpy rules); the gradient is summed back to ``x.shape``."""
    check_operand("broadcast_to", "x", x)
    shape = (int(shape),) if isinstance(shape, (int, numpy.integer)) else tuple(shape)
    ok = len(shape) >= x.ndim and all(
        n == m or n == 1 for n, m in zip(x.shape[::-1], shape[::-1])
    )
    if not ok:
        raise ValueError(f"broadcast_to: x of shape {x.shape} cannot be broadcast to {shape}")
    return BroadcastTo(shape).apply((x,))[0]


# -- indexing ----------------------------------------------------------------------------------
class GetItem(Function):
    def __init__(self, key, advanced, boolean_only):
        self.key = key
        self.advanced = advanced
        self.boolean_only = boolean_only

    def forward(self, xp, xs):
        return (xs[0][self.key],)

    def backward(self, xp, xs, gys):
        x = xs[0]
        gx = xp.zeros(x.shape, dtype=gys[0].dtype)
        if self.advanced and not self.boolean_only:
            if xp is not numpy and config.deterministic:
                # add.at on a GPU accumulates with atomics, in an order that changes from run to run.
                deterministic_paths["get_item backward: sorted segment sum instead of atomic add.at"] += 1
                return (scatter_add(xp, x.shape, gys[0].dtype, self.key, gys[0]),)
            xp.add.at(gx, self.key, gys[0])  # integer indices may repeat: accumulate (numpy: in order)
        else:
            gx[self.key] = gys[0]
        return (gx,)


def get_item(x, slices):
    """``x[slices]``: basic indexing (ints, slices, None, Ellipsis) and integer/boolean arrays.

    Args:
        x: Variable or array.
        slices: anything numpy accepts as an index; lists become arrays.

    Returns:
        Variable. Its gradient is scattered back into zeros of ``x``'s shape, accumulating
        over repeated integer indices.
    """
    check_operand("get_item", "x", x)
    key = slices if isinstance(slices, tuple) else (slices,)
    xp = backend.get_array_module(x)
    advanced = False
    boolean_only = True
    items = []
    for k in key:
        if isinstance(k, Variable):
            k = k.array
        if isinstance(k, list):
            k = xp.asarray(k)
            if k.dtype.kind == "f" and k.size == 0:
                k = k.astype(numpy.intp)
        if isinstance(k, ARRAY_TYPES):
            if xp is not numpy:
                k = xp.asarray(k)
            if k.dtype.kind not in "biu":
                raise TypeError(f"get_item: index arrays must be integer or boolean, got dtype {k.dtype}")
            advanced = True
            boolean_only = boolean_only and k.dtype.kind == "b"
        items.append(k)
    key = tuple(items)
    try:
        return GetItem(key, advanced, boolean_only).apply((x,))[0]
    except IndexError as e:
        raise IndexError(f"get_item: index {slices!r} is invalid for x of shape {x.shape}: {e}") from None


# -- joining and splitting ---------------------------------------------------------------------
class Concat(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, xp, xs):
        return (xp.concatenate(xs, axis=self.axis),)

    def backward(self, xp, xs, gys):
        bounds = numpy.cumsum([x.shape[self.axis] for x in xs[:-1]]).tolist()
        return tuple(xp.split(gys[0], bounds, axis=self.axis))


def _check_sequence(name, xs):
    if isinstance(xs, (Variable,) + ARRAY_TYPES) or not isinstance(xs, (list, tuple)):
        raise TypeError(f"{name}: xs must be a list or tuple of Variables/arrays, got {type(xs).__name__}")
    if not xs:
        raise ValueError(f"{name}: xs is empty")
    for i, x in enumerate(xs):
        check_operand(name, f"xs[{i}]", x)


def concat(xs, axis=1):
    """Concatenate Variables along ``axis``.

    Args:
        xs: list or tuple of Variables/arrays with equal shapes except along ``axis``.
        axis: the joining axis.

    Returns:
        Variable.
    """
    _check_sequence("concat", xs)
    ndim = xs[0].ndim
    a = _axis("concat", axis, ndim)
    ref = xs[0].shape
    for i, x in enumerate(xs):
        if x.ndim != ndim or x.shape[:a] != ref[:a] or x.shape[a + 1:] != ref[a + 1:]:
            raise ValueError(
                f"concat: xs[{i}] has shape {x.shape}, which does not match xs[0] {ref} "
                f"outside axis {axis}"
            )
    return Concat(a).apply(tuple(xs))[0]


class Stack(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, xp, xs):
        return (xp.stack(xs, axis=self.axis),)

    def backward(self, xp, xs, gys):
        gy = gys[0]
        return tuple(gy.take(i, axis=self.axis) for i in range(len(xs)))


def stack(xs, axis=0):
    """Stack equally shaped Variables along a new ``axis``.

    Args:
        xs: list or tuple of Variables/arrays of one shape.
        axis: where the new axis goes (``-ndim - 1 <= axis <= ndim``).

    Returns:
        Variable with one more dimension.
    """
    _check_sequence("stack", xs)
    ref = xs[0].shape
    for i, x in enumerate(xs):
        if x.shape != ref:
            raise ValueError(f"stack: xs[{i}] has shape {x.shape}, xs[0] has {ref}")
    a = _axis("stack", axis, len(ref) + 1)
    return Stack(a).apply(tuple(xs))[0]


class SplitAxis(Function):
    def __init__(self, indices, axis):
        self.indices = indices
        self.axis = axis

    def forward(self, xp, xs):
        return tuple(xp.split(xs[0], self.indices, axis=self.axis))

    def backward(self, xp, xs, gys):
        return (xp.concatenate(gys, axis=self.axis),)


def split_axis(x, indices_or_sections, axis, force_tuple=True):
    """Split ``x`` along ``axis`` (Chainer's ``F.split_axis``).

    Args:
        x: Variable or array.
        indices_or_sections: an int (that many equal parts; it must divide the axis) or a
            sorted sequence of split points.
        axis: the axis to split.
        force_tuple: return a tuple even when there is one part (otherwise that Variable).

    Returns:
        tuple of Variables.
    """
    check_operand("split_axis", "x", x)
    a = _axis("split_axis", axis, x.ndim)
    n = x.shape[a]
    if isinstance(indices_or_sections, (int, numpy.integer)) and not isinstance(indices_or_sections, bool):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ValueError(
                f"split_axis: indices_or_sections={k} must be a positive divisor of axis {axis} "
                f"of x {x.shape} (length {n})"
            )
        indices = [n // k * i for i in range(1, k)]
    else:
        try:
            indices = [int(i) for i in indices_or_sections]
        except TypeError:
            raise TypeError(
                f"split_axis: indices_or_sections must be an int or a sequence of ints, "
                f"got {indices_or_sections!r}"
            ) from None
    ys = SplitAxis(indices, a).apply((x,))
    if len(ys) == 1 and not force_tuple:
        return ys[0]
    return ys


class Where(Function):
    def __init__(self, condition):
        self.condition = condition

    def forward(self, xp, xs):
        return (xp.where(self.condition, xs[0], xs[1]),)

    def backward(self, xp, xs, gys):
        gy = gys[0]
        need = self.needs_input_grad
        zero = gy.dtype.type(0)
        c = self.condition
        return (
            _sum_to(xp.where(c, gy, zero), xs[0].shape) if need[0] else None,
            _sum_to(xp.where(c, zero, gy), xs[1].shape) if need[1] else None,
        )


def where(condition, x, y):
    """Elementwise ``x`` where ``condition`` is true, else ``y`` (all broadcast together).

    Args:
        condition: boolean array (or a Variable holding one); it gets no gradient.
        x, y: Variables or arrays of one dtype.

    Returns:
        Variable.
    """
    if isinstance(condition, Variable):
        condition = condition.array
    if not isinstance(condition, ARRAY_TYPES) or condition.dtype.kind != "b":
        got = getattr(condition, "dtype", type(condition).__name__)
        raise TypeError(f"where: condition must be a boolean array, got {got}")
    check_operand("where", "x", x)
    check_operand("where", "y", y)
    if x.dtype != y.dtype:
        raise TypeError(f"where: x and y must have one dtype, got {x.dtype} and {y.dtype}")
    try:
        numpy.broadcast_shapes(condition.shape, x.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"where: shapes of condition {condition.shape}, x {x.shape} and y {y.shape} do not broadcast"
        ) from None
    return Where(condition).apply((x, y))[0]


# -- dtype -------------------------------------------------------------------------------------
class Cast(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, xp, xs):
        return (xs[0].astype(self.dtype),)

    def backward(self, xp, xs, gys):
        return (gys[0].astype(xs[0].dtype, copy=False),)


def _float_dtype(name, dtype, arg):
    return backend.float_dtype(dtype, f"{name}: {arg} must be a float dtype")


def cast(x, dtype):
    """Convert ``x`` to ``dtype``; the gradient is converted back to ``x``'s dtype.

    Mixed-precision training casts the float32 master weights to float16 at use with it, so
    their gradients arrive in float32. When ``x`` already has ``dtype`` it is returned
    as is (an array becomes a Variable that needs no gradient), with no graph node.

    Args:
        x: Variable or array of a float dtype.
        dtype: the target float dtype (``numpy.float16``, ``"float32"``, ...).

    Returns:
        Variable of ``dtype``.

    Example:
        >>> W16 = cast(model.fc.W, numpy.float16)
    """
    check_operand("cast", "x", x)
    src = _float_dtype("cast", x.dtype, "x.dtype")
    dt = _float_dtype("cast", dtype, "dtype")
    if src == dt:
        return x if isinstance(x, Variable) else Variable(x, requires_grad=False)
    return Cast(dt).apply((x,))[0]
