"""The fully connected layer ``linear`` (Chainer's argument order), with its fused bias + activation.

``y = x W^T + b`` is one GEMM and a bias add; ``linear(..., activation=...)`` adds the bias and
applies ReLU, sigmoid or tanh over the GEMM's result in place (:class:`LinearActivation`): one
kernel on a GPU, one compiled pass for ReLU and for sigmoid on the CPU. On a GPU the gradients can
be added into the arrays ``Function.accumulate_into`` names.
"""
from __future__ import annotations

import numpy

from .. import kernels
from ..function import Function
from ..kernels import cpu_compiled
from ._checks import check_float

__all__ = ["linear", "LinearFunction", "LinearActivation"]


# -- linear ---------------------------------------------------------------------------
class LinearFunction(Function):
    """``y = x W^T + b``; ``x`` is flattened to (batch, in_size) after ``n_batch_axes`` axes."""

    grads_are_fresh = True  # backward's gradients: new arrays, or those of accumulate_into

    def __init__(self, n_batch_axes=1):
        self.n_batch_axes = n_batch_axes

    def forward(self, xp, xs):
        x, W = xs[0], xs[1]
        batch_shape = x.shape[:self.n_batch_axes]
        y = xp.matmul(x.reshape(-1, W.shape[1]), W.T)
        if len(xs) == 3:
            y += xs[2]
        return (y.reshape(batch_shape + (W.shape[0],)),)

    def flops(self, xs, ys):
        """Forward FLOPs (2 per multiply-add), for the profiler."""
        return 2.0 * ys[0].size * xs[1].shape[1]

    def backward_flops(self, xs, gys):
        """Backward FLOPs: the weight gradient, plus the input gradient where one is needed."""
        per_gemm = 2.0 * gys[0].size * xs[1].shape[1]
        return per_gemm * (int(self.needs_input_grad[0]) + int(self.needs_input_grad[1]))

    def backward(self, xp, xs, gys):
        x, W = xs[0], xs[1]
        gy = gys[0].reshape(-1, W.shape[0])
        need = self.needs_input_grad
        gx = gW = None
        acc = self.accumulate_into or (None, None, None)  # gradients to add into (see Function)
        if need[0] and xp is not numpy and _can_add_into(acc[0], gy, W):
            gx = acc[0]
            _cuda_linear().input_grad_add(gy, W, gx.reshape(gy.shape[0], W.shape[1]))
        elif need[0]:
            gx = xp.matmul(gy, W).astype(x.dtype, copy=False).reshape(x.shape)
        if need[1]:
            x2 = x.reshape(-1, W.shape[1])
            if xp is not numpy and _can_add_into(acc[1], gy, x2):
                gW = acc[1]
                _cuda_linear().weight_grad_add(gy, x2, gW)
            else:
                gW = xp.matmul(gy.T, x2).astype(W.dtype, copy=False)
        if len(xs) == 3:
            gb = None
            if need[2] and xp is not numpy and _can_add_into(acc[2], gy):
                gb = acc[2]
                _cuda_linear().bias_grad_add(gy, gb)
            elif need[2]:
                gb = gy.sum(axis=0).astype(xs[2].dtype, copy=False)
            return gx, gW, gb
        return gx, gW


def _can_add_into(into, *arrays) -> bool:
    """True when the GPU kernels can add a gradient into ``into`` (see ``Function.accumulate_into``)."""
    return (into is not None and kernels.fusable(into, *arrays) and into.flags.c_contiguous
            and all(a.dtype == into.dtype for a in arrays))


def _cuda_linear():
    from ..kernels import cuda_linear

    return cuda_linear


class LinearActivation(LinearFunction):
    """``activation(x W^T + b)`` with the bias add and the activation over the GEMM's result in place.

    On a GPU one kernel adds the bias and applies the activation, and one kernel its gradient. On
    the CPU with the compiled kernels (``BENCHBENCH_CPU_KERNELS``), ReLU and the bias add are one
    compiled pass (``cpu_activation.bias_relu``); sigmoid and tanh add the bias in place, then
    sigmoid's one compiled pass (``cpu_activation.sigmoid``, as the unfused ``sigmoid``) or numpy's
    ``tanh``, in place too; the activation's gradient is one compiled pass. Either way the results
    are the unfused path's bit for bit; backward then goes on as ``linear``'s."""

    def __init__(self, activation, n_batch_axes=1):
        super().__init__(n_batch_axes)
        self.activation = activation
        self.y = None

    @property
    def label(self):
        return f"Linear+{self.activation}"

    def forward(self, xp, xs):
        x, W, b = xs
        y = xp.matmul(x.reshape(-1, W.shape[1]), W.T)
        if xp is numpy:
            self.y = _cpu_bias_activation(self.activation, y, b)
        else:
            from ..kernels import cuda_activation

            self.y = cuda_activation.bias_activation(self.activation, y, b)
        return (y.reshape(x.shape[:self.n_batch_axes] + (W.shape[0],)),)

    def backward(self, xp, xs, gys):
        y, self.y = self.y, None
        gy = gys[0].reshape(y.shape).astype(y.dtype, copy=False)
        if xp is numpy:
            from ..kernels import cpu_activation

            grad = getattr(cpu_activation, self.activation + "_grad")(y, numpy.ascontiguousarray(gy))
        else:
            from ..kernels import cuda_activation

            grad = cuda_activation.activation_grad(self.activation, y, gy)
        return super().backward(xp, xs, (grad,))


def _cpu_bias_activation(kind, y, b):
    """``y = activation(y + b)`` in place on the CPU (see :class:`LinearActivation`)."""
    from . import activation as A

    if kind == "relu":
        from ..kernels import cpu_activation

        return cpu_activation.bias_relu(y, b)
    y += b
    if kind == "sigmoid":
        return A.sigmoid_into(numpy, y, y)
    return numpy.tanh(y, out=y)


def _fused_activation(activation, x, W, b):
    """The name of ``activation``'s bias-and-activation kernel when ``LinearActivation`` applies, else None."""
    from . import activation as A

    kind = {A.relu: "relu", A.sigmoid: "sigmoid", A.tanh: "tanh"}.get(activation)
    if kind is None or b is None or not x.dtype == W.dtype == b.dtype:
        return None
    if kernels.fusable(x, W, b) or cpu_compiled.usable(x, W, b):
        return kind
    return None


def linear(x, W, b=None, n_batch_axes=1, activation=None):
    """Fully connected layer: ``y = x W^T + b``, or ``activation(x W^T + b)``.

    Every axis of ``x`` after the first ``n_batch_axes`` is flattened into the input size.
    With ``activation`` one of ``relu``, ``sigmoid`` and ``tanh`` (the functions of this package),
    a bias and float32/float64 arrays on a GPU, the bias add and the activation run as one kernel
    (forward) and the activation's gradient as one kernel (backward); on the CPU with the compiled
    kernels, in place over the GEMM's result (:class:`LinearActivation`); otherwise ``activation``
    is applied to the linear layer's output, as ``activation(linear(x, W, b))``.

    Args:
        x: input Variable or array, shape ``(N, ...)`` (batch axes first).
        W: weight, shape ``(out_size, in_size)``.
        b: optional bias, shape ``(out_size,)``.
        n_batch_axes: number of leading axes treated as batch axes.
        activation: None, or a function of one Variable applied to the result.

    Returns:
        Variable of shape ``x.shape[:n_batch_axes] + (out_size,)``.

    Raises:
        TypeError: a non-float input.
        ValueError: shapes that do not fit together.

    Example:
        >>> y = linear(x, W, b)   # x (100, 784), W (1000, 784) -> y (100, 1000)
    """
    xa = check_float("linear", "x", x)
    Wa = check_float("linear", "W", W)
    if not isinstance(n_batch_axes, int) or isinstance(n_batch_axes, bool) or n_batch_axes < 1:
        raise ValueError(f"linear: n_batch_axes must be a positive int, got {n_batch_axes!r}")
    if xa.ndim < n_batch_axes:
        raise ValueError(f"linear: x has {xa.ndim} axes, fewer than n_batch_axes={n_batch_axes}")
    if Wa.ndim != 2:
        raise ValueError(f"linear: W must be 2-D (out_size, in_size), got shape {Wa.shape}")
    in_size = 1
    for s in xa.shape[n_batch_axes:]:
        in_size *= s
    if in_size != Wa.shape[1]:
        raise ValueError(
            f"linear: x of shape {xa.shape} has in_size {in_size} (axes after {n_batch_axes} batch axes), "
            f"but W of shape {Wa.shape} expects {Wa.shape[1]}"
        )
    inputs = [x, W]
    if b is not None:
        ba = check_float("linear", "b", b)
        if ba.shape != (Wa.shape[0],):
            raise ValueError(f"linear: b must have shape ({Wa.shape[0]},) to match W {Wa.shape}, got {ba.shape}")
        inputs.append(b)
    if activation is None:
        return LinearFunction(n_batch_axes).apply(tuple(inputs))[0]
    if not callable(activation):
        raise TypeError(f"linear: activation must be None or a function, got {type(activation).__name__}")
    kind = _fused_activation(activation, xa, Wa, ba if b is not None else None)
    if kind is not None:
        return LinearActivation(kind, n_batch_axes).apply(tuple(inputs))[0]
    return activation(LinearFunction(n_batch_axes).apply(tuple(inputs))[0])
