"""Activations and their gradients, each one kernel (the unfused paths take two to four passes).

The formulas follow the array code of ``functions/activation.py`` operation by operation, so the
results agree bit for bit on float32. ``bias_activation`` adds a layer's bias and applies its
activation in the one pass that writes the GEMM's result in place (``functions.connection``'s
``LinearActivation``); its backward is the activation's gradient kernel.
"""
from __future__ import annotations

from .fusion import get

KERNELS = {
    "relu_grad": ("elementwise", ("T y, T gy", "T gx", "gx = (y > (T)0 ? (T)1 : (T)0) * gy",
                                  "benchbench_relu_grad")),
    "sigmoid": ("elementwise", ("T x", "T y", "y = (T)1 / (exp(-x) + (T)1)", "benchbench_sigmoid")),
    "sigmoid_grad": ("elementwise", ("T y, T gy", "T gx", "gx = ((T)1 - y) * y * gy", "benchbench_sigmoid_grad")),
    "tanh_grad": ("elementwise", ("T y, T gy", "T gx", "gx = gy * ((T)1 - y * y)", "benchbench_tanh_grad")),
    # y (N, O) holds the GEMM's x W^T; b (O,) is broadcast over the rows. ``z < 0 ? 0 : z`` keeps NaN,
    # as the unfused maximum(z, 0) does.
    "bias_relu": ("elementwise", ("T b", "T y", "T z = y + b;\ny = z < (T)0 ? (T)0 : z", "benchbench_bias_relu")),
    "bias_sigmoid": ("elementwise", ("T b", "T y", "y = (T)1 / (exp(-(y + b)) + (T)1)", "benchbench_bias_sigmoid")),
    "bias_tanh": ("elementwise", ("T b", "T y", "y = tanh(y + b)", "benchbench_bias_tanh")),
}

ACTIVATIONS = ("relu", "sigmoid", "tanh")


def bias_activation(kind, y, b):
    """``y = activation(y + b)`` in place, one launch (``kind``: one of ``ACTIVATIONS``)."""
    get(*KERNELS["bias_" + kind])(b, y)
    return y


def activation_grad(kind, y, gy):
    """The gradient through the activation ``kind`` from its output ``y``, one launch."""
    return get(*KERNELS[kind + "_grad"])(y, gy)


def relu_grad(y, gy):
    return get(*KERNELS["relu_grad"])(y, gy)


def sigmoid(x):
    return get(*KERNELS["sigmoid"])(x)


def sigmoid_grad(y, gy):
    return get(*KERNELS["sigmoid_grad"])(y, gy)


def tanh_grad(y, gy):
    return get(*KERNELS["tanh_grad"])(y, gy)
