"""Optimizer updates as one kernel per packed buffer and step (Chainer's ``update_core_gpu``).

The formulas are those of the unfused array code in ``core/optimizers`` (Chainer's), in the same
order of operations, so the fused and unfused updates agree to the last bit on float32 data.

Graph mode (a step captured once as a CUDA graph and replayed) cannot take its learning rate or
Adam's bias-corrected step as kernel arguments: those would be frozen into the graph at capture.
The ``*_device`` twins read them from a small device vector ``h`` that the host rewrites before
every replay, and do nothing where the one-element flag ``skip`` is non-zero (mixed precision's
overflow check, computed on the device in the same graph). Their arithmetic is the eager kernels',
expression for expression, so a replay and an eager step agree to the last bit.
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

# Graph mode's twins: hyper-parameters from ``h`` (the order of ``Optimizer.kernel_scalars``), skipped on ``skip[0]``.
KERNELS.update({
    "sgd_device": ("elementwise", (
        "T grad, raw T h, raw T skip", "T param",
        "if (skip[0] == (T)0) { param -= grad * h[0]; }", "benchbench_sgd_device")),
    "momentum_sgd_device": ("elementwise", (
        "T grad, raw T h, raw T skip", "T param, T v",
        "if (skip[0] == (T)0) {\nv = v * h[1] - grad * h[0];\nparam += v;\n}", "benchbench_momentum_sgd_device")),
    "adam_device": ("elementwise", (
        "T grad, raw T h, raw T skip", "T param, T m, T v",
        "if (skip[0] == (T)0) {\nm += (grad - m) * h[1];\n"
        "v += (grad * grad - v) * h[2];\n"
        "param -= m / (sqrt(v) + h[3]) * h[0];\n}", "benchbench_adam_device")),
})
_STATE = {"sgd": (), "momentum_sgd": ("v",), "adam": ("m", "v")}


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


def device_update(name, group, h, skip) -> None:
    """Graph mode: the update ``name`` (``sgd``, ``momentum_sgd``, ``adam``) with its hyper-parameters
    read from the device vector ``h`` and skipped where ``skip[0]`` is non-zero, one launch."""
    get(*KERNELS[name + "_device"])(group.grad, h, skip, group.data, *(group.state[k] for k in _STATE[name]))
