"""Batch normalization: training (batch statistics) and inference (given statistics).

Statistics are taken over every axis but the channel axis 1 (or over ``axis``);
``gamma``/``beta`` have the shape of the remaining axes. The training backward is
the one-pass closed form
``gx = gamma / std * (gy - (sum(gy) + x_hat * sum(gy * x_hat)) / m)``, computed
with whole-array operations (no loop over channels).
"""
from __future__ import annotations

from .. import kernels
from ..kernels import cpu_compiled
from ..function import Function
from ._checks import check_float

__all__ = ["batch_normalization", "fixed_batch_normalization"]


def _reduce_axes(fname, x_ndim, axis):
    """The axes statistics are taken over, as a sorted tuple."""
    if axis is None:
        if x_ndim < 2:
            raise ValueError(f"{fname}: x must have at least 2 axes (N, C, ...), got {x_ndim}")
        return (0,) + tuple(range(2, x_ndim))
    if isinstance(axis, int):
        axis = (axis,)
    bad = ValueError(f"{fname}: axis must name distinct axes of x ({x_ndim}-D) and leave at least one, got {axis!r}")
    if not isinstance(axis, (tuple, list)) or not all(isinstance(a, int) and -x_ndim <= a < x_ndim for a in axis):
        raise bad
    axes = tuple(sorted(a % x_ndim for a in axis))
    if len(set(axes)) != len(axes) or len(axes) == 0 or len(axes) == x_ndim:
        raise bad
    return axes


def _param_shape(x_shape, axes):
    """Broadcast shape of a per-channel parameter, and its expected (squeezed) shape."""
    bshape = tuple(1 if i in axes else s for i, s in enumerate(x_shape))
    pshape = tuple(s for i, s in enumerate(x_shape) if i not in axes)
    return bshape, pshape


def _check_param(fname, name, v, pshape):
    a = check_float(fname, name, v)
    if a.shape != pshape:
        raise ValueError(f"{fname}: {name} must have shape {pshape} to match x, got {a.shape}")
    return a


def _channel_dot(xp, a, b, axes):
    """``sum(a * b)`` over ``axes`` without an ``a * b`` temporary (one einsum pass)."""
    letters = "abcdefghijklmnopqrstuvwxyz"[:a.ndim]
    kept = "".join(c for i, c in enumerate(letters) if i not in axes)
    return xp.einsum(f"{letters},{letters}->{kept}", a, b)


def _compiled(x, axes, *others) -> bool:
    """The compiled CPU kernels apply: numpy arrays of one float dtype, normalised over all but axis 1."""
    return (x.ndim >= 2 and tuple(axes) == (0,) + tuple(range(2, x.ndim)) and cpu_compiled.usable(x, *others)
            and all(a.dtype == x.dtype for a in others))


class BatchNormalization(Function):
    """Normalises with the batch statistics; updates running averages in place when given.

    Forward keeps only the per-channel mean and 1/std; backward rebuilds what it needs
    from the retained input ``x`` with per-channel reductions and three whole-array passes:
    ``gx = gy * a + x * b + c`` with per-channel ``a``, ``b``, ``c``.
    """

    def __init__(self, eps, running_mean, running_var, decay, axes, relu=False):
        self.eps = eps
        self.running_mean = running_mean
        self.running_var = running_var
        self.decay = decay
        self.axes = axes
        self.mean = None
        self.inv_std = None
        # A ReLU on the output, fused (``batch_normalization(..., activation=relu)``: only where the
        # compiled CPU kernels take the arrays); backward then needs the output ``z``.
        self.relu = relu
        self.z = None

    @property
    def label(self):
        return "BatchNormalization+relu" if self.relu else "BatchNormalization"

    def _fusable(self, *arrays):
        stats = [a for a in (self.running_mean, self.running_var) if a is not None]
        return (kernels.fusable(*arrays, *stats) and len({a.dtype for a in arrays + tuple(stats)}) == 1
                and len(stats) in (0, 2))

    def forward(self, xp, xs):
        x, gamma, beta = xs
        axes = self.axes
        bshape, _ = _param_shape(x.shape, axes)
        self.fused = self._fusable(x, gamma, beta)
        if self.fused:
            from ..kernels import cuda_normalization

            y, mean, var = cuda_normalization.forward(x, gamma, beta, self.eps, axes, bshape, self.running_mean,
                                                      self.running_var, self.decay)
            if any(self.needs_input_grad):
                self.mean, self.inv_std = mean, var  # the fused backward takes the variance
            return (y,)
        m = x.size // gamma.size
        if _compiled(x, axes, gamma, beta):
            from ..kernels import cpu_normalization

            y, mean, var, inv_std = (a.reshape(bshape) if a.ndim == 1 else a
                                     for a in cpu_normalization.forward(x, gamma, beta, self.eps, self.relu))
            if self.relu and any(self.needs_input_grad):
                self.z = y
        else:
            assert not self.relu, "a fused ReLU only where the compiled kernels take the arrays"
            mean = x.mean(axis=axes, keepdims=True)
            y = x - mean
            var = _channel_dot(xp, y, y, axes).reshape(bshape) / m
            inv_std = 1.0 / xp.sqrt(var + self.eps)
            y *= (gamma.reshape(bshape) * inv_std).astype(y.dtype, copy=False)
            y += beta.reshape(bshape).astype(y.dtype, copy=False)
        if self.running_mean is not None:
            rm = self.running_mean
            rm *= self.decay
            rm += ((1.0 - self.decay) * mean).reshape(rm.shape).astype(rm.dtype, copy=False)
        if self.running_var is not None:
            rv = self.running_var
            adjust = m / max(m - 1.0, 1.0)
            rv *= self.decay
            rv += ((1.0 - self.decay) * adjust * var).reshape(rv.shape).astype(rv.dtype, copy=False)
        if any(self.needs_input_grad):
            self.mean, self.inv_std = mean, inv_std
        return (y,)

    def backward(self, xp, xs, gys):
        x, gamma, _ = xs
        gy = gys[0]
        axes = self.axes
        bshape, pshape = _param_shape(x.shape, axes)
        mean, inv_std = self.mean, self.inv_std
        self.mean = self.inv_std = None
        if self.fused and gy.dtype == x.dtype and kernels.fusable(gy):
            from ..kernels import cuda_normalization

            gx, ggamma, gbeta = cuda_normalization.backward(x, gy, gamma, mean, inv_std, self.eps, axes, bshape)
            return (gx if self.needs_input_grad[0] else None, ggamma.reshape(pshape), gbeta.reshape(pshape))
        if self.fused:  # an upstream gradient of another type: the statistics are recomputed below
            inv_std = 1.0 / xp.sqrt(inv_std + self.eps)
        z, self.z = self.z, None
        if z is not None and not _compiled(x, axes, gy, gamma, mean, inv_std):
            # an upstream gradient the kernel does not take: through the ReLU first, as ReLU does
            from .activation import ReLU

            relu = ReLU()
            relu.y, z = z, None
            gy = relu.backward(xp, (None,), (gy,))[0]
        if not self.fused and _compiled(x, axes, gy, gamma, mean, inv_std):
            from ..kernels import cpu_normalization

            gx, ggamma, gbeta = cpu_normalization.backward(x, gy, gamma, mean, inv_std, self.needs_input_grad[0], z)
            return gx, ggamma.reshape(pshape), gbeta.reshape(pshape)
        m = x.size // gamma.size
        gbeta = gy.sum(axis=axes).reshape(bshape)
        # sum(gy * x_hat) = inv_std * (sum(gy * x) - mean * sum(gy))
        ggamma = (_channel_dot(xp, gy, x, axes).reshape(bshape) - mean * gbeta) * inv_std
        gx = None
        if self.needs_input_grad[0]:
            # gx = gamma*inv_std * (gy - (gbeta + x_hat * ggamma) / m), x_hat = (x - mean) * inv_std
            scale = gamma.reshape(bshape) * inv_std
            coef_x = -scale * ggamma * inv_std / m
            const = -scale * gbeta / m - coef_x * mean
            gx = x * coef_x.astype(x.dtype, copy=False)
            gx += const.astype(x.dtype, copy=False)
            part = gy * scale.astype(x.dtype, copy=False)
            gx += part
        return (gx, ggamma.reshape(pshape).astype(gamma.dtype, copy=False),
                gbeta.reshape(pshape).astype(gamma.dtype, copy=False))


def batch_normalization(x, gamma, beta, eps=2e-5, running_mean=None, running_var=None, decay=0.9, axis=None,
                        activation=None):
    """Batch normalization in training mode: normalise with the batch's own statistics.

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with mean and biased variance
    over every axis but axis 1. When ``running_mean``/``running_var`` arrays are given
    they are updated in place: ``running = decay * running + (1 - decay) * batch``,
    using the unbiased variance for ``running_var`` (Chainer's rule).

    Args:
        x: input, shape ``(N, C)`` or ``(N, C, H, W)`` (any rank >= 2).
        gamma: scale, shape ``(C,)`` (the shape of the axes not reduced).
        beta: shift, same shape as ``gamma``.
        eps: added to the variance.
        running_mean, running_var: optional arrays of ``gamma``'s shape, updated in place.
        decay: weight of the old running value.
        axis: axes to take the statistics over; default all but axis 1.
        activation: None, or a function of one Variable applied to the result. ``relu`` is fused
            into the normalisation where the compiled CPU kernels take the arrays (its forward
            writes ``maximum(y, 0)``, its backward takes the gradient through it on the fly: two
            passes over the activations fewer each way, the same bits); any other, or another
            device, is applied after, as ``activation(batch_normalization(...))``.

    Returns:
        Variable of ``x``'s shape.

    Raises:
        TypeError: non-float inputs.
        ValueError: mismatched shapes or a bad ``axis``/``eps``/``decay``.

    Example:
        >>> y = batch_normalization(x, gamma, beta, running_mean=rm, running_var=rv)
    """
    fname = "batch_normalization"
    xa = check_float(fname, "x", x)
    axes = _reduce_axes(fname, xa.ndim, axis)
    _, pshape = _param_shape(xa.shape, axes)
    _check_param(fname, "gamma", gamma, pshape)
    _check_param(fname, "beta", beta, pshape)
    for name, r in (("running_mean", running_mean), ("running_var", running_var)):
        if r is not None:
            if getattr(r, "dtype", None) is None or hasattr(r, "creator"):
                raise TypeError(f"{fname}: {name} must be an array updated in place, got {type(r).__name__}")
            _check_param(fname, name, r, pshape)
    if not eps > 0:
        raise ValueError(f"{fname}: eps must be positive, got {eps!r}")
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"{fname}: decay must be in [0, 1], got {decay!r}")
    if activation is not None and not callable(activation):
        raise TypeError(f"{fname}: activation must be None or a function, got {type(activation).__name__}")
    from . import activation as A

    relu = activation is A.relu and _compiled(xa, axes, *(getattr(a, "array", a) for a in (gamma, beta)))
    y = BatchNormalization(eps, running_mean, running_var, decay, axes, relu=relu).apply((x, gamma, beta))[0]
    return y if activation is None or relu else activation(y)


class FixedBatchNormalization(Function):
    """Normalises with given statistics: ``y = x * scale + shift``."""

    def __init__(self, eps, axes):
        self.eps = eps
        self.axes = axes

    def forward(self, xp, xs):
        x, gamma, beta, mean, var = xs
        bshape, _ = _param_shape(x.shape, self.axes)
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        scale = (gamma * inv_std).astype(x.dtype, copy=False)
        shift = (beta - mean * scale).astype(x.dtype, copy=False)
        y = x * scale.reshape(bshape)
        y += shift.reshape(bshape)
        return (y,)

    def backward(self, xp, xs, gys):
        x, gamma, beta, mean, var = xs
        gy = gys[0]
        axes = self.axes
        bshape, pshape = _param_shape(x.shape, axes)
        need = self.needs_input_grad
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        gx = ggamma = gbeta = gmean = gvar = None
        if need[0]:
            gx = (gy * (gamma * inv_std).reshape(bshape)).astype(x.dtype, copy=False)
        gbeta_full = gy.sum(axis=axes)
        if need[2]:
            gbeta = gbeta_full.astype(beta.dtype, copy=False)
        if need[1] or need[4]:
            # sum(gy * (x - mean)) without an x_hat temporary: sum(gy * x) - mean * sum(gy)
            gyx = _channel_dot(xp, gy, x, axes) - mean * gbeta_full
            if need[1]:
                ggamma = (gyx * inv_std).astype(gamma.dtype, copy=False)
            if need[4]:
                gvar = (-0.5 * gamma * gyx * inv_std ** 3).astype(var.dtype, copy=False)
        if need[3]:
            gmean = (-gamma * inv_std * gbeta_full).astype(mean.dtype, copy=False)
        return gx, ggamma, gbeta, gmean, gvar


def fixed_batch_normalization(x, gamma, beta, mean, var, eps=2e-5, axis=None):
    """Batch normalization with given statistics (inference mode).

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta``; differentiable in every input.

    Args:
        x: input, shape ``(N, C)`` or ``(N, C, H, W)`` (any rank >= 2).
        gamma, beta: scale and shift, shape ``(C,)``.
        mean, var: the statistics to use (running averages, typically), shape ``(C,)``.
        eps: added to the variance.
        axis: axes the statistics were taken over; default all but axis 1.

    Returns:
        Variable of ``x``'s shape.

    Raises:
        TypeError: non-float inputs.
        ValueError: mismatched shapes or a bad ``axis``/``eps``.

    Example:
        >>> y = fixed_batch_normalization(x, gamma, beta, running_mean, running_var)
    """
    fname = "fixed_batch_normalization"
    xa = check_float(fname, "x", x)
    axes = _reduce_axes(fname, xa.ndim, axis)
    _, pshape = _param_shape(xa.shape, axes)
    for name, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        _check_param(fname, name, v, pshape)
    if not eps > 0:
        raise ValueError(f"{fname}: eps must be positive, got {eps!r}")
    return FixedBatchNormalization(eps, axes).apply((x, gamma, beta, mean, var))[0]
