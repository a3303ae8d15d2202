"""Numerical gradients and ``check_backward``: every Function's backward is tested with these."""
from __future__ import annotations

import numpy

from . import backend
from .function import Function
from .variable import Variable


def numerical_grad(f, inputs, grad_outputs, eps=1e-3):
    """Central-difference gradients of ``sum_i <f(inputs)_i, grad_outputs_i>``.

    Args:
        f: callable taking no arguments and returning a tuple of arrays; it reads ``inputs``,
            which this function perturbs in place.
        inputs: arrays to differentiate with respect to (float64 recommended).
        grad_outputs: upstream gradients, one per output of ``f``.
        eps: step size.

    Returns:
        A list of arrays, the gradient with respect to each input.
    """
    grads = []
    for x in inputs:
        xp = backend.get_array_module(x)
        g = xp.zeros_like(x)
        flat_x = x.reshape(-1)
        flat_g = g.reshape(-1)
        for i in range(flat_x.size):
            orig = flat_x[i].copy()
            flat_x[i] = orig + eps
            ys_plus = [y.copy() for y in f()]
            flat_x[i] = orig - eps
            ys_minus = [y.copy() for y in f()]
            flat_x[i] = orig
            total = 0.0
            for yp, ym, gy in zip(ys_plus, ys_minus, grad_outputs):
                if gy is None:
                    continue
                total += float(((yp - ym) * gy).sum())
            flat_g[i] = total / (2 * eps)
        grads.append(g)
    return grads


def check_backward(func, x_data, y_grad=None, eps=1e-3, atol=1e-5, rtol=1e-4, params=(), no_grads=None,
                   dtype=numpy.float64):
    """Compare ``func``'s backward with numerical gradients.

    Args:
        func: callable taking Variables (one per array in ``x_data``) and returning a Variable
            or a tuple of Variables.
        x_data: an array or a tuple of arrays (cast to ``dtype`` for the check, float inputs only).
        y_grad: upstream gradient(s); random when None.
        eps, atol, rtol: step size and tolerances.
        params: extra Variables (e.g. Parameters of a Link called inside ``func``) to check too.
        no_grads: tuple of bools, True for inputs that must not be checked (integer labels, say).
        dtype: float type for the check (float64 by default).

    Raises:
        AssertionError: with the inputs, and both gradients, when they disagree.
    """
    if not isinstance(x_data, (tuple, list)):
        x_data = (x_data,)
    xp = backend.get_array_module(*x_data)
    if no_grads is None:
        no_grads = tuple(x.dtype.kind != "f" for x in x_data)
    x_data = tuple(x if ng else x.astype(dtype) for x, ng in zip(x_data, no_grads))
    for p in params:
        p.array = p.array.astype(dtype)
    xs = [Variable(x.copy(), requires_grad=not ng) for x, ng in zip(x_data, no_grads)]

    ys = func(*xs)
    if not isinstance(ys, (tuple, list)):
        ys = (ys,)
    if y_grad is None:
        rng = numpy.random.default_rng(0)
        y_grad = tuple(
            None if y is None else xp.asarray(rng.standard_normal(y.shape)).astype(y.dtype) for y in ys
        )
    elif not isinstance(y_grad, (tuple, list)):
        y_grad = (y_grad,)

    for p in params:
        p.grad = None
    pairs = [(y, gy) for y, gy in zip(ys, y_grad) if y is not None and gy is not None]
    _Seed(tuple(gy for _, gy in pairs)).apply(tuple(y for y, _ in pairs))[0].backward()

    def f():
        with_vars = [Variable(x.array, requires_grad=False) for x in xs]
        from .config import no_backprop_mode

        with no_backprop_mode():
            out = func(*with_vars)
        if not isinstance(out, (tuple, list)):
            out = (out,)
        return tuple(o.array for o in out)

    targets = [x.array for x, ng in zip(xs, no_grads) if not ng] + [p.array for p in params]
    analytic = [x.grad for x, ng in zip(xs, no_grads) if not ng] + [p.grad for p in params]
    numeric = numerical_grad(f, targets, y_grad, eps=eps)
    names = [f"input {i}" for i, ng in enumerate(no_grads) if not ng] + [
        f"param {p.name or i}" for i, p in enumerate(params)
    ]
    for name, a, n, x in zip(names, analytic, numeric, targets):
        if a is None:
            a = xp.zeros_like(n)
        if a.shape != n.shape:
            raise AssertionError(f"check_backward: {name}: gradient shape {a.shape} != input shape {n.shape}")
        if not xp.allclose(a, n, atol=atol, rtol=rtol):
            err = float(abs(backend.as_numpy(a) - backend.as_numpy(n)).max())
            raise AssertionError(
                f"check_backward: {name} (shape {x.shape}) gradients differ, max abs error {err:g}\n"
                f"input:\n{x}\nanalytic:\n{a}\nnumerical:\n{n}"
            )


class _Seed(Function):
    """Joins several outputs into one scalar whose backward hands each its given gradient."""

    def __init__(self, gys):
        self.gys = gys

    def forward(self, xp, xs):
        return (xp.zeros((), dtype=xs[0].dtype),)

    def backward(self, xp, xs, gys):
        return self.gys
