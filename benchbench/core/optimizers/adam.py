"""Adam (Kingma & Ba), in Chainer's formulation."""
from __future__ import annotations

import math

from .. import kernels
from ..kernels import cpu_compiled, cuda_update
from .optimizer import Optimizer, check_hyper


class Adam(Optimizer):
    """Adam as Chainer's ``optimizers.Adam`` computes it::

        m += (1 - beta1) * (grad - m)
        v += (1 - beta2) * (grad * grad - v)
        param -= alpha_t * m / (sqrt(v) + eps),   alpha_t = alpha * sqrt(1 - beta2^t) / (1 - beta1^t)

    with ``t`` the number of updates so far, this one included.

    Args:
        alpha: step size (> 0).
        beta1, beta2: decay rates of the first and second moment estimates, in [0, 1).
        eps: added to the denominator (> 0).

    Example:
        >>> opt = Adam().setup(model)
    """

    state_names = ("m", "v")

    folds_decay = True  # the compiled update applies a last WeightDecay in its own pass
    reads_param_grads = True  # the compiled update can read each parameter's own gradient

    def __init__(self, alpha=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(
            alpha=check_hyper("Adam", "alpha", alpha, 0.0, low_open=True),
            beta1=check_hyper("Adam", "beta1", beta1, 0.0, 1.0),
            beta2=check_hyper("Adam", "beta2", beta2, 0.0, 1.0),
            eps=check_hyper("Adam", "eps", eps, 0.0, low_open=True),
        )

    @property
    def alpha_t(self):
        """The bias-corrected step size of the current step ``t`` (``t >= 1``)."""
        return self._alpha_at(max(self.t, 1))

    def _alpha_at(self, t):
        hp = self.hyperparam
        return hp.alpha * math.sqrt(1.0 - hp.beta2 ** t) / (1.0 - hp.beta1 ** t)

    def kernel_scalars(self, t):
        """The fused update's scalars at step ``t`` (graph mode reads them from the device: the
        bias-corrected step changes every step)."""
        hp = self.hyperparam
        return (self._alpha_at(max(t, 1)), 1.0 - hp.beta1, 1.0 - hp.beta2, hp.eps)

    @property
    def lr(self):
        """Chainer's name for ``alpha_t``."""
        return self.alpha_t

    def update_group(self, group):
        xp, hp = group.xp, self.hyperparam
        b1, b2, eps, alpha_t = 1.0 - hp.beta1, 1.0 - hp.beta2, hp.eps, self.alpha_t
        if kernels.fusable(group.data):
            if self._device is not None:
                return self._device.update("adam", group)
            return cuda_update.adam(group, alpha_t, hp.beta1, hp.beta2, eps)
        if cpu_compiled.usable(group.data):
            from ..kernels import cpu_update

            return cpu_update.adam(group, alpha_t, hp.beta1, hp.beta2, eps)

        def update(data, g, w, state):
            m, v = state["m"], state["v"]
            xp.subtract(g, m, out=w)
            w *= b1
            m += w
            xp.multiply(g, g, out=w)
            w -= v
            w *= b2
            v += w
            xp.sqrt(v, out=w)
            w += eps
            xp.divide(m, w, out=w)
            w *= alpha_t
            data -= w

        group.run_blocked(update)
