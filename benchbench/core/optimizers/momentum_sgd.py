"""Stochastic gradient descent with (heavy-ball) momentum."""
from __future__ import annotations

from .. import kernels
from ..kernels import cpu_compiled, cuda_update
from .optimizer import Optimizer, check_hyper


class MomentumSGD(Optimizer):
    """``v = momentum * v - lr * grad; param += v`` (Chainer's ``optimizers.MomentumSGD``).

    Args:
        lr: learning rate (> 0).
        momentum: momentum coefficient in [0, 1).

    Example:
        >>> opt = MomentumSGD(lr=0.1, momentum=0.9).setup(model)
    """

    state_names = ("v",)

    folds_decay = True  # the compiled update applies a last WeightDecay in its own pass
    reads_param_grads = True  # the compiled update can read each parameter's own gradient

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(
            lr=check_hyper("MomentumSGD", "lr", lr, 0.0, low_open=True),
            momentum=check_hyper("MomentumSGD", "momentum", momentum, 0.0, 1.0),
        )

    def kernel_scalars(self, t):
        """The fused update's scalars at step ``t`` (graph mode reads them from the device)."""
        return (self.hyperparam.lr, self.hyperparam.momentum)

    def update_group(self, group):
        xp, hp = group.xp, self.hyperparam
        momentum, lr = hp.momentum, hp.lr
        if kernels.fusable(group.data):
            if self._device is not None:
                return self._device.update("momentum_sgd", group)
            return cuda_update.momentum_sgd(group, lr, momentum)
        if cpu_compiled.usable(group.data):
            from ..kernels import cpu_update

            return cpu_update.momentum_sgd(group, lr, momentum)

        def update(data, g, w, state):
            v = state["v"]
            v *= momentum
            xp.multiply(g, lr, out=w)
            v -= w
            data += v

        group.run_blocked(update)
