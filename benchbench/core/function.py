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

_ndarray_types = (numpy.ndarray, backend.ndarray)


class Function:
    """Base class of differentiable operations. See the module docstring."""

    inputs = None
    outputs = ()
    rank = 0
    needs_input_grad = ()
    _out_meta = ()

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
        for x in inputs:
            if isinstance(x, Variable):
                vs.append(x)
            elif isinstance(x, _ndarray_types):
                vs.append(Variable(x, requires_grad=False))
            else:
                raise TypeError(
                    f"{self.label}: inputs must be Variables or arrays, got {type(x).__name__}"
                )
        xs = tuple(v.array for v in vs)
        xp = backend.get_array_module(xs[0]) if xs else numpy
        need = tuple(v.requires_grad for v in vs)
        record = config.enable_backprop and any(need)
        self.needs_input_grad = need if record else (False,) * len(vs)
        hook = _profile_hook
        if hook is None:
            ys = self.forward(xp, xs)
        else:
            ys = hook.forward(self, xp, xs)
        outs = tuple(
            Variable(y if isinstance(y, _ndarray_types) else xp.asarray(y), requires_grad=record) for y in ys
        )
        if record:
            self.rank = max(v.rank for v in vs)
            self.inputs = tuple(vs)
            self.outputs = tuple(weakref.ref(o) for o in outs)
            self._out_meta = tuple((y.shape, y.dtype) for y in ys)
            for o in outs:
                o.creator = self
                o.rank = self.rank + 1
        return outs

    def _backward(self, gys):
        xs = tuple(v.array for v in self.inputs)
        xp = backend.get_array_module(xs[0]) if xs else numpy
        if any(g is None for g in gys):
            gys = tuple(
                xp.zeros(shape, dtype) if g is None else g
                for g, (shape, dtype) in zip(gys, self._out_meta)
            )
        hook = _profile_hook
        if hook is None:
            gxs = self.backward(xp, xs, gys)
        else:
            gxs = hook.backward(self, xp, xs, gys)
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
