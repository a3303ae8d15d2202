"""Optimizer updates as one kernel per packed buffer and step (Chainer's ``update_core_gpu``).

The formulas are those of the unfused array code in ``core/optimizers`` (Chainer's), in the same
order of operations, so the fused and unfused updates agree to the last bit on float32 data.
"""
from __future__ import annotations

from .fusion import get

KERNELS = {
    "sgd": ("elementwise", ("T grad, T lr", "T param", "param -= grad * lr;", "benchbench_sgd")),
    "momentum_sgd": ("elementwise", (
        "T grad, T lr, T momentum", "T param, T v",
        "v = v * momentum - grad * lr;\nparam += v;", "benchbench_momentum_sgd")),
    "adam": ("elementwise", (
        "T grad, T alpha_t, T one_minus_beta1, T one_minus_beta2, T eps", "T param, T m, T v",
        "m += (grad - m) * one_minus_beta1;\n"
        "v += (grad * grad - v) * one_minus_beta2;\n"
        "param -= m / (sqrt(v) + eps) * alpha_t;", "benchbench_adam")),
}


def _scalar(group, value):
    return group.data.dtype.type(value)


def sgd(group, lr) -> None:
    """``param -= lr * grad`` over the packed buffer, one launch."""
    get(*KERNELS["sgd"])(group.grad, _scalar(group, lr), group.data)


def momentum_sgd(group, lr, momentum) -> None:
    """``v = momentum * v - lr * grad; param += v``, one launch."""
    get(*KERNELS["momentum_sgd"])(group.grad, _scalar(group, lr), _scalar(group, momentum), group.data,
                                  group.state["v"])


def adam(group, alpha_t, beta1, beta2, eps) -> None:
    """Adam with the bias-corrected step ``alpha_t`` (Chainer's formulation), one launch."""
    t = group.data.dtype.type
    get(*KERNELS["adam"])(group.grad, t(alpha_t), t(1.0 - beta1), t(1.0 - beta2), t(eps), group.data,
                          group.state["m"], group.state["v"])
