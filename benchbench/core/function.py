"""Function: one differentiable operation, a forward/backward pair on arrays.

A subclass writes ``forward(self, xp, xs)`` and ``backward(self, xp, xs, gys)``
on plain numpy/cupy arrays (``xp`` is the array module). ``apply`` wraps the
inputs, records the graph when a gradient is needed and returns Variables.
``self.needs_input_grad`` (a tuple of bools) is set before ``forward`` so both
halves can skip work for inputs that need no gradient (the data fed to the
first layer, for instance).
"""
from __future__ import annotations

import weakref

import numpy

from . import backend
from .config import config
from .variable import Variable

_new_variable = Variable.__new__


class Function:
    """Base class of differentiable operations. See the module docstring."""

    inputs = None
    outputs = ()
    rank = 0
    needs_input_grad = ()
    _out_meta = ()
    # A 0-d array of ones that forward's own kernels wrote for a scalar output, which
    # ``Variable.backward`` then seeds with instead of launching a fill; None when there is none.
    unit_seed = None
    # Set by ``Variable.backward`` just for the call of ``backward``: per input, the gradient array
    # accumulated so far where ``backward`` may add its own contribution into it in place (an array
    # that backward made and that one Variable alone holds), else None; () when there is none. A
    # ``backward`` that adds into it returns that same array for that input.
    accumulate_into = ()
    # True when every gradient ``backward`` returns is a new array that nothing else holds (or one
    # of ``accumulate_into``): ``Variable.backward`` may then let later contributions add into it.
    grads_are_fresh = False
    # True when ``backward`` takes None for an output's gradient (the output got none) instead of zeros.
    none_grads_ok = False

    @property
    def label(self):
        return type(self).__name__

    def forward(self, xp, xs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, xp, xs, gys):  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, inputs):
        """Run forward on ``inputs`` (Variables or arrays) and return a tuple of Variables."""
        vs = []
        xs = []
        need = []
        any_need = False
        rank = 0
        for x in inputs:
            if not isinstance(x, Variable):
                if isinstance(x, backend.ARRAY_TYPES):
                    x = Variable(x, requires_grad=False)
                else:
                    raise TypeError(
                        f"{self.label}: inputs must be Variables or arrays, got {type(x).__name__}"
                    )
            vs.append(x)
            xs.append(x.array)
            r = x.requires_grad
            need.append(r)
            if r:
                any_need = True
            if x.rank > rank:
                rank = x.rank
        xs = tuple(xs)
        xp = backend.get_array_module(xs[0]) if xs else numpy
        record = any_need and config.enable_backprop
        self.needs_input_grad = tuple(need) if record else (False,) * len(vs)
        hook = _profile_hook
        ys = self.forward(xp, xs) if hook is None else hook.forward(self, xp, xs)
        outs = []
        for y in ys:
            if not isinstance(y, backend.ARRAY_TYPES):
                y = xp.asarray(y)
            v = _new_variable(Variable)
            v.array = y
            v.grad = None
            v.creator = None
            v.name = None
            v.requires_grad = record
            v.rank = 0
            outs.append(v)
        if record:
            self.rank = rank
            self.inputs = tuple(vs)
            self.outputs = [weakref.ref(o) for o in outs]
            self._out_meta = [(o.array.shape, o.array.dtype) for o in outs]
            rank += 1
            for o in outs:
                o.creator = self
                o.rank = rank
        return tuple(outs)

    def _backward(self, gys):
        xs = tuple([v.array for v in self.inputs])
        xp = backend.get_array_module(xs[0]) if xs else numpy
        for g in () if self.none_grads_ok else gys:
            if g is None:
                gys = tuple([
                    xp.zeros(shape, dtype) if g is None else g
                    for g, (shape, dtype) in zip(gys, self._out_meta)
                ])
                break
        hook = _profile_hook
        gxs = self.backward(xp, xs, gys) if hook is None else hook.backward(self, xp, xs, gys)
        assert len(gxs) == len(xs), f"{self.label}.backward returned {len(gxs)} gradients for {len(xs)} inputs"
        return gxs

    def release(self):
        """Drop references held for backward (called once backward has passed)."""
        self.inputs = None
        self.outputs = ()


# Set by core.profiler while profiling: an object with forward(f, xp, xs) and backward(f, xp, xs, gys).
_profile_hook = None


def set_profile_hook(hook):
    """Install (or with None remove) the hook that times every forward and backward call."""
    global _profile_hook
    _profile_hook = hook
