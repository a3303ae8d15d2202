"""Activations and their gradients, each one kernel (the unfused paths take two to four passes).

The formulas follow the array code of ``functions/activation.py`` operation by operation, so the
results agree bit for bit on float32.
"""
from __future__ import annotations

from .fusion import get

KERNELS = {
    "relu_grad": ("elementwise", ("T y, T gy", "T gx", "gx = (y > (T)0 ? (T)1 : (T)0) * gy",
                                  "benchbench_relu_grad")),
    "sigmoid": ("elementwise", ("T x", "T y", "y = (T)1 / (exp(-x) + (T)1)", "benchbench_sigmoid")),
    "sigmoid_grad": ("elementwise", ("T y, T gy", "T gx", "gx = ((T)1 - y) * y * gy", "benchbench_sigmoid_grad")),
    "tanh_grad": ("elementwise", ("T y, T gy", "T gx", "gx = gy * ((T)1 - y * y)", "benchbench_tanh_grad")),
}


def relu_grad(y, gy):
    return get(*KERNELS["relu_grad"])(y, gy)


def sigmoid(x):
    return get(*KERNELS["sigmoid"])(x)


def sigmoid_grad(y, gy):
    return get(*KERNELS["sigmoid_grad"])(y, gy)


def tanh_grad(y, gy):
    return get(*KERNELS["tanh_grad"])(y, gy)
