"""Batch normalization in training mode: two reductions and one pass forward (plus one kernel for
the running averages), two reductions and one pass backward (Chainer's GPU BatchNormalization).

The per-channel statistics are reduced over every axis but the channel axis; the per-channel
arrays broadcast as (1, C, 1, ...) into the elementwise passes, which compute ``1/sqrt(var+eps)``
themselves. The formulas are those of ``functions/normalization.py``.
"""
from __future__ import annotations

from .fusion import get

KERNELS = {
    "bn_mean": ("reduction", ("T x, T m", "T mean", "x", "a + b", "mean = a / m", "0", "benchbench_bn_mean")),
    "bn_var": ("reduction", ("T x, T mean, T m", "T var", "(x - mean) * (x - mean)", "a + b", "var = a / m", "0",
                             "benchbench_bn_var")),
    "bn_forward": ("elementwise", (
        "T x, T mean, T var, T gamma, T beta, T eps", "T y",
        "T inv_std = (T)1 / sqrt(var + eps);\ny = (x - mean) * (gamma * inv_std) + beta", "benchbench_bn_forward")),
    "bn_running": ("elementwise", (
        "T mean, T var, T decay, T one_minus_decay, T var_coeff", "T running_mean, T running_var",
        "running_mean = running_mean * decay + one_minus_decay * mean;\n"
        "running_var = running_var * decay + var_coeff * var", "benchbench_bn_running")),
    "bn_gbeta": ("reduction", ("T gy", "T gbeta", "gy", "a + b", "gbeta = a", "0", "benchbench_bn_gbeta")),
    "bn_ggamma": ("reduction", (
        "T gy, T x, T mean, T var, T eps", "T ggamma", "gy * ((x - mean) * ((T)1 / sqrt(var + eps)))", "a + b",
        "ggamma = a", "0", "benchbench_bn_ggamma")),
    "bn_backward": ("elementwise", (
        "T x, T gy, T mean, T var, T gamma, T gbeta, T ggamma, T eps, T m", "T gx",
        """T inv_std = (T)1 / sqrt(var + eps);
T scale = gamma * inv_std;
T coef_x = -scale * ggamma * inv_std / m;
T c = -scale * gbeta / m - coef_x * mean;
gx = x * coef_x + c + gy * scale""", "benchbench_bn_backward")),
}

# Inputs passed as host scalars (kernel parameters by value: a reduction's post-map reads them).
SCALARS = {"bn_mean": ("m",), "bn_var": ("m",), "bn_ggamma": ("eps",)}


def forward(x, gamma, beta, eps, axes, bshape, running_mean, running_var, decay):
    """``(y, mean, var)``: the normalised output and the batch statistics (shaped ``bshape``)."""
    t = x.dtype.type
    m = t(x.size // gamma.size)
    mean = get(*KERNELS["bn_mean"])(x, m, axis=axes).reshape(bshape)
    var = get(*KERNELS["bn_var"])(x, mean, m, axis=axes).reshape(bshape)
    y = get(*KERNELS["bn_forward"])(x, mean, var, gamma.reshape(bshape), beta.reshape(bshape), t(eps))
    if running_mean is not None:
        n = x.size // gamma.size
        adjust = n / max(n - 1.0, 1.0)
        get(*KERNELS["bn_running"])(mean.reshape(running_mean.shape), var.reshape(running_var.shape), t(decay),
                                    t(1.0 - decay), t((1.0 - decay) * adjust), running_mean, running_var)
    return y, mean, var


def backward(x, gy, gamma, mean, var, eps, axes, bshape):
    """``(gx, ggamma, gbeta)``, the parameter gradients per channel."""
    t = x.dtype.type
    gbeta = get(*KERNELS["bn_gbeta"])(gy, axis=axes)
    ggamma = get(*KERNELS["bn_ggamma"])(gy, x, mean, var, t(eps), axis=axes)
    gx = get(*KERNELS["bn_backward"])(x, gy, mean, var, gamma.reshape(bshape), gbeta.reshape(bshape),
                                      ggamma.reshape(bshape), t(eps), t(x.size // gamma.size))
    return gx, ggamma, gbeta
