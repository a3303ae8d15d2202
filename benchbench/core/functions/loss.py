"""Losses: softmax_cross_entropy (fused, stable), mean_squared_error, sigmoid_cross_entropy."""
from __future__ import annotations

import numpy

from .. import backend, kernels
from ..kernels import cpu_compiled
from ..function import Function
from ..variable import Variable
from ._checks import ARRAY_TYPES, check_float

__all__ = ["softmax_cross_entropy", "mean_squared_error", "sigmoid_cross_entropy"]

def _check_labels(name, t, shape):
    """Integer labels ``t`` of ``shape``; returns the array."""
    if isinstance(t, Variable):
        t = t.array
    if not isinstance(t, ARRAY_TYPES):
        raise TypeError(f"{name}: t must be an integer array, got {type(t).__name__}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: t must be an integer array (int32 or int64), got dtype {t.dtype}")
    if t.shape != shape:
        raise ValueError(f"{name}: t must have shape (N,)={shape}, got {t.shape}")
    return t


def _check_reduce(name, reduce):
    if reduce not in ("mean", "no"):
        raise ValueError(f"{name}: reduce must be 'mean' or 'no', got {reduce!r}")


class SoftmaxCrossEntropy(Function):
    """Cross entropy of ``softmax(x)`` against labels, in one pass each way."""

    def __init__(self, t, ignore_label, normalize, class_weight, reduce):
        self.t = t
        self.ignore_label = ignore_label
        self.compiled = False
        self.normalize = normalize
        self.class_weight = class_weight
        self.reduce = reduce

    def forward(self, xp, xs):
        x = xs[0]
        t = self.t
        n = x.shape[0]
        self.fused = self.class_weight is None and self.reduce == "mean" and n > 0 and kernels.fusable(x)
        if self.fused:
            from ..kernels import cuda_loss

            loss, self.y, self.w, self.coeff = cuda_loss.forward(xp, x, t, self.ignore_label, self.normalize)
            self.t_safe = t
            return (loss,)
        self.compiled = (self.class_weight is None and self.reduce == "mean" and n > 0 and x.ndim == 2
                         and cpu_compiled.usable(x))
        if self.compiled:
            from ..kernels import cpu_loss

            loss, self.y, self.w, self.coeff = cpu_loss.forward(x, t, self.ignore_label, self.normalize)
            return (loss,)
        rows = xp.arange(n)
        valid = t != self.ignore_label
        self.t_safe = t_safe = xp.where(valid, t, 0)
        # log softmax = z - log(sum(exp(z))) with z = x - max(x): no overflow for large logits.
        z = x - x.max(axis=1, keepdims=True)
        z_t = z[rows, t_safe]
        e = xp.exp(z, out=z)
        s = e.sum(axis=1, keepdims=True)
        e /= s
        self.y = e  # the softmax, kept for backward
        nll = xp.log(s[:, 0])
        nll -= z_t  # -log p(t), one value per sample
        w = valid.astype(x.dtype)
        if self.class_weight is not None:
            w *= self.class_weight[t_safe]
        self.w = w  # per-sample weight: 0 for ignored samples
        nll *= w
        if self.reduce == "no":
            return (nll,)
        # The count stays an array: no device-to-host synchronisation on a GPU.
        coeff = 1.0 / xp.maximum(valid.sum(), 1) if self.normalize else 1.0 / max(n, 1)
        self.coeff = xp.asarray(coeff, dtype=x.dtype)
        return (xp.asarray(nll.sum() * self.coeff, dtype=x.dtype),)

    def backward(self, xp, xs, gys):
        gy = gys[0]
        if self.fused:
            from ..kernels import cuda_loss

            return (cuda_loss.backward(self.y, self.t, self.w, gy, self.coeff),)
        if self.compiled:
            from ..kernels import cpu_loss

            return (cpu_loss.backward(self.y, self.t, self.ignore_label, self.w, gy, self.coeff),)
        if self.reduce == "no":
            scale = self.w * gy
        else:
            scale = self.w * (gy * self.coeff)
        # (softmax - onehot(t)) * scale, the one-hot applied as one indexed subtraction.
        gx = self.y * scale[:, None]
        gx[xp.arange(gx.shape[0]), self.t_safe] -= scale
        return (gx,)


def softmax_cross_entropy(x, t, normalize=True, cache_score=True, class_weight=None,
                          ignore_label=-1, reduce="mean"):
    """Cross entropy between ``softmax(x)`` and integer labels ``t``, fused and numerically stable.

    Args:
        x: Variable or float array (N, C) of unnormalised scores (logits).
        t: int32/int64 array (N,) of class indices; ``ignore_label`` entries count for nothing.
        normalize: with ``reduce='mean'``, divide by the number of non-ignored samples (True)
            or by N (False).
        cache_score: accepted for compatibility with Chainer; the softmax is always kept
            for backward.
        class_weight: optional float array (C,) scaling each class's loss.
        ignore_label: label value to ignore.
        reduce: ``'mean'`` (a scalar) or ``'no'`` (per-sample losses, 0 where ignored).

    Returns:
        Variable: a 0-d loss (``reduce='mean'``) or (N,) losses, of ``x``'s dtype.

    Example:
        >>> loss = softmax_cross_entropy(model(x), t)
    """
    name = "softmax_cross_entropy"
    check_float(name, "x", x)
    if x.ndim != 2:
        raise ValueError(f"{name}: x must be 2-D (N, C), got shape {x.shape}")
    t = _check_labels(name, t, x.shape[:1])
    _check_reduce(name, reduce)
    xp = backend.get_array_module(x)
    if xp is numpy and t.size:  # cheap on the CPU; on a GPU this check would synchronise
        bad = (t != ignore_label) & ((t < 0) | (t >= x.shape[1]))
        if bad.any():
            raise ValueError(
                f"{name}: labels in t must lie in [0, {x.shape[1]}) or equal ignore_label="
                f"{ignore_label}, got {t[bad][0]}"
            )
    if class_weight is not None:
        if isinstance(class_weight, Variable):
            class_weight = class_weight.array
        if not isinstance(class_weight, ARRAY_TYPES) or class_weight.shape != (x.shape[1],):
            raise ValueError(
                f"{name}: class_weight must be an array of shape (C,)=({x.shape[1]},), "
                f"got {getattr(class_weight, 'shape', type(class_weight).__name__)}"
            )
        class_weight = class_weight.astype(x.dtype, copy=False)
    return SoftmaxCrossEntropy(t, ignore_label, bool(normalize), class_weight, reduce).apply((x,))[0]


class MeanSquaredError(Function):
    def forward(self, xp, xs):
        self.diff = d = xs[0] - xs[1]
        flat = d.reshape(-1)
        return (xp.asarray(flat.dot(flat) / max(d.size, 1), dtype=d.dtype),)

    def backward(self, xp, xs, gys):
        gx0 = self.diff * (gys[0] * (2.0 / max(self.diff.size, 1)))
        need = self.needs_input_grad
        return (gx0 if need[0] else None, -gx0 if need[1] else None)


def mean_squared_error(x0, x1):
    """Mean of the squared differences, ``mean((x0 - x1) ** 2)``.

    Args:
        x0, x1: Variables or float arrays of one shape and dtype.

    Returns:
        Variable: a 0-d array of the inputs' dtype.
    """
    name = "mean_squared_error"
    check_float(name, "x0", x0)
    check_float(name, "x1", x1)
    if x0.shape != x1.shape:
        raise ValueError(f"{name}: x0 and x1 must have one shape, got {x0.shape} and {x1.shape}")
    if x0.dtype != x1.dtype:
        raise TypeError(f"{name}: x0 and x1 must have one dtype, got {x0.dtype} and {x1.dtype}")
    return MeanSquaredError().apply((x0, x1))[0]


class SigmoidCrossEntropy(Function):
    def __init__(self, t, normalize, reduce):
        self.t = t
        self.normalize = normalize
        self.reduce = reduce

    def forward(self, xp, xs):
        x = xs[0]
        self.valid = valid = (self.t != -1).astype(x.dtype)
        self.tf = tf = self.t.astype(x.dtype)
        # -(t log s(x) + (1 - t) log(1 - s(x))) = log(1 + exp(-|x|)) + max(x, 0) - x t
        loss = xp.log1p(xp.exp(-xp.abs(x)))
        loss += xp.maximum(x, 0)
        loss -= x * tf
        loss *= valid
        if self.reduce == "no":
            return (loss,)
        n = x.shape[0]
        coeff = 1.0 / xp.maximum(valid.sum(), 1) if self.normalize else 1.0 / max(n, 1)
        self.coeff = xp.asarray(coeff, dtype=x.dtype)
        return (xp.asarray(loss.sum() * self.coeff, dtype=x.dtype),)

    def backward(self, xp, xs, gys):
        x = xs[0]
        y = xp.tanh(x * 0.5)
        y *= 0.5
        y += 0.5
        y -= self.tf
        y *= self.valid
        gy = gys[0] if self.reduce == "no" else gys[0] * self.coeff
        return (y * gy,)


def sigmoid_cross_entropy(x, t, normalize=True, reduce="mean"):
    """Binary cross entropy of ``sigmoid(x)`` against 0/1 labels (stable for large ``|x|``).

    Args:
        x: Variable or float array (N, ...) of logits.
        t: integer array of ``x``'s shape with 0, 1, or -1 (ignored).
        normalize: with ``reduce='mean'``, divide by the number of non-ignored entries (True)
            or by N (False).
        reduce: ``'mean'`` or ``'no'`` (elementwise losses).

    Returns:
        Variable: the loss, of ``x``'s dtype.
    """
    name = "sigmoid_cross_entropy"
    check_float(name, "x", x)
    if x.ndim < 1:
        raise ValueError(f"{name}: x must have a batch axis, got shape {x.shape}")
    if isinstance(t, Variable):
        t = t.array
    if not isinstance(t, ARRAY_TYPES) or t.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: t must be an integer array, got {getattr(t, 'dtype', type(t).__name__)}"
        )
    if t.shape != x.shape:
        raise ValueError(f"{name}: t must have x's shape {x.shape}, got {t.shape}")
    _check_reduce(name, reduce)
    return SigmoidCrossEntropy(t, bool(normalize), reduce).apply((x,))[0]
