"""Optimizer updates and the weight-decay hook as one compiled pass over the packed buffers.

Each kernel is the formula of the numpy path in ``core/optimizers`` in the same order of
operations and in the buffers' dtype (scalars cast to it, as numpy casts a Python float), so the
compiled and numpy updates agree to the last bit.
"""
from __future__ import annotations

import numpy
from numba import prange

from .cpu_compiled import kernel


@kernel("void(A, A, S)")
def _sgd(data, grad, lr):
    for i in prange(data.size):
        data[i] -= grad[i] * lr


@kernel("void(A, A, A, S, S)")
def _momentum_sgd(data, grad, v, lr, momentum):
    for i in prange(data.size):
        vi = v[i] * momentum - grad[i] * lr
        v[i] = vi
        data[i] += vi


@kernel("void(A, A, A, A, S, S, S, S)")
def _adam(data, grad, m, v, alpha_t, one_minus_beta1, one_minus_beta2, eps):
    for i in prange(data.size):
        g = grad[i]
        mi = m[i] + (g - m[i]) * one_minus_beta1
        vi = v[i] + (g * g - v[i]) * one_minus_beta2
        m[i] = mi
        v[i] = vi
        data[i] -= mi / (numpy.sqrt(vi) + eps) * alpha_t


@kernel("void(A, A, S, S)")
def _sgd_decay(data, grad, lr, rate):
    for i in prange(data.size):
        g = grad[i] + data[i] * rate
        grad[i] = g
        data[i] -= g * lr


@kernel("void(A, A, A, S, S, S)")
def _momentum_sgd_decay(data, grad, v, lr, momentum, rate):
    for i in prange(data.size):
        g = grad[i] + data[i] * rate
        grad[i] = g
        vi = v[i] * momentum - g * lr
        v[i] = vi
        data[i] += vi


@kernel("void(A, A, A, A, S, S, S, S, S)")
def _adam_decay(data, grad, m, v, alpha_t, one_minus_beta1, one_minus_beta2, eps, rate):
    for i in prange(data.size):
        g = grad[i] + data[i] * rate
        grad[i] = g
        mi = m[i] + (g - m[i]) * one_minus_beta1
        vi = v[i] + (g * g - v[i]) * one_minus_beta2
        m[i] = mi
        v[i] = vi
        data[i] -= mi / (numpy.sqrt(vi) + eps) * alpha_t


@kernel("void(A, A, S)")
def _weight_decay(grad, data, rate):
    for i in prange(data.size):
        grad[i] += data[i] * rate


# Each update below takes the weight decay the optimizer folded into it (``group.decay``, see
# ``Optimizer.update_packed``): ``grad += rate * param`` in the same pass, before the rule. It runs
# over the packed buffers in one call, or parameter by parameter from each one's own gradient when
# ``group.param_grads`` holds them (``Optimizer.update``: no copy of every gradient into the flat
# buffer first); the arithmetic per element is the same either way.

def _parts(group, *state):
    """``(data, grad, *state)`` for each call: the packed buffers, or each parameter's slices with its gradient."""
    if group.param_grads is None:
        return [(group.data, group.grad) + tuple(group.state[k] for k in state)]
    return [(group.data[lo:hi], g) + tuple(group.state[k][lo:hi] for k in state)
            for g, lo, hi in zip(group.param_grads, group.offsets, group.offsets[1:])]


def sgd(group, lr) -> None:
    """``param -= lr * grad``, one pass."""
    t = group.data.dtype.type
    for data, grad in _parts(group):
        if group.decay is not None:
            _sgd_decay(data, grad, t(lr), t(group.decay))
        else:
            _sgd(data, grad, t(lr))


def momentum_sgd(group, lr, momentum) -> None:
    """``v = momentum * v - lr * grad; param += v``, one pass."""
    t = group.data.dtype.type
    for data, grad, v in _parts(group, "v"):
        if group.decay is not None:
            _momentum_sgd_decay(data, grad, v, t(lr), t(momentum), t(group.decay))
        else:
            _momentum_sgd(data, grad, v, t(lr), t(momentum))


def adam(group, alpha_t, beta1, beta2, eps) -> None:
    """Adam with the bias-corrected step ``alpha_t`` (Chainer's formulation), one pass."""
    t = group.data.dtype.type
    scalars = (t(alpha_t), t(1.0 - beta1), t(1.0 - beta2), t(eps))
    for data, grad, m, v in _parts(group, "m", "v"):
        if group.decay is not None:
            _adam_decay(data, grad, m, v, *scalars, t(group.decay))
        else:
            _adam(data, grad, m, v, *scalars)


def weight_decay(group, rate) -> None:
    """``grad += rate * param``, one pass."""
    _weight_decay(group.grad, group.data, group.data.dtype.type(rate))
