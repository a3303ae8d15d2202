"""Plain stochastic gradient descent."""
from __future__ import annotations

from .. import kernels
from ..kernels import cpu_compiled, cuda_update
from .optimizer import Optimizer, check_hyper


class SGD(Optimizer):
    """``param -= lr * grad`` (Chainer's ``optimizers.SGD``).

    Args:
        lr: learning rate (> 0).

    Example:
        >>> opt = SGD(lr=0.01).setup(model)
    """

    folds_decay = True  # the compiled update applies a last WeightDecay in its own pass
    reads_param_grads = True  # the compiled update can read each parameter's own gradient

    def __init__(self, lr=0.01):
        super().__init__(lr=check_hyper("SGD", "lr", lr, 0.0, low_open=True))

    def kernel_scalars(self, t):
        """The fused update's scalars at step ``t`` (graph mode reads them from the device)."""
        return (self.hyperparam.lr,)

    def update_group(self, group):
        if kernels.fusable(group.data):
            if self._device is not None:
                return self._device.update("sgd", group)
            return cuda_update.sgd(group, self.hyperparam.lr)
        if cpu_compiled.usable(group.data):
            from ..kernels import cpu_update

            return cpu_update.sgd(group, self.hyperparam.lr)
        xp, w = group.xp, group.work
        xp.multiply(group.grad, self.hyperparam.lr, out=w)
        group.data -= w
