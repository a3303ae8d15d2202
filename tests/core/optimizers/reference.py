"""Shared helpers of the optimizer tests: a small model and per-parameter reference updates."""
import numpy

from benchbench.core import links as L
from benchbench.core.link import Chain


class Net(Chain):
    def __init__(self):
        super().__init__()
        self.a = L.Linear(3, 4)
        self.b = L.Linear(4, 2, nobias=True)

    def forward(self, x):
        return self.b(self.a(x))


def grads_for(model, step):
    """Deterministic gradients for step ``step`` (None for one parameter on odd steps)."""
    rng = numpy.random.default_rng(100 + step)
    out = {}
    for name, p in model.namedparams():
        g = rng.standard_normal(p.shape).astype(numpy.float32)
        out[name] = None if (name == "/a/b" and step % 2 == 1) else g
    return out


def run(model, opt, steps):
    """Apply ``steps`` updates with the deterministic gradients; returns the final params."""
    opt.setup(model)
    for step in range(steps):
        for name, g in grads_for(model, step).items():
            dict(model.namedparams())[name].grad = g
        opt.update()
    return {n: p.array.copy() for n, p in model.namedparams()}


def reference(model, steps, rule):
    """The same updates with ``rule(param_array, grad, state, t)`` applied parameter by parameter.

    A parameter whose gradient is None is skipped: its value and its state stay as they are
    (Chainer's rule); ``t`` is the optimizer's step count, the same for every parameter.
    """
    params = {n: p.array.copy() for n, p in model.namedparams()}
    states = {n: {} for n in params}
    for step in range(steps):
        for name, g in grads_for(model, step).items():
            if g is None:
                continue
            rule(params[name], g, states[name], step + 1)
    return params
