"""Variable and Parameter: arrays that remember the Function that made them.

The graph is recorded at call time (define-by-run). ``backward()`` walks it
iteratively, highest rank first, with a heap: no recursion, so a sequence
unrolled over thousands of steps works.
"""
from __future__ import annotations

import heapq

import numpy

from . import backend
from .config import config


class Variable:
    """An array in the graph.

    Args:
        data: a numpy or cupy array (or None for a Parameter still to be initialised).
        name: optional name, shown in errors and profiles.
        requires_grad: whether gradients flow to this variable.

    Attributes:
        array (alias ``data``): the value.
        grad: the gradient, an array of the same shape, or None.
        creator: the Function that produced it, or None for a leaf.
    """

    __slots__ = ("array", "grad", "creator", "name", "requires_grad", "rank", "__weakref__")
    __array_priority__ = 200

    def __init__(self, data=None, name=None, requires_grad=True):
        if isinstance(data, numpy.generic):
            data = numpy.asarray(data)
        elif data is not None and not backend.is_array(data):
            raise TypeError(
                f"Variable: data must be a numpy or cupy array, got {type(data).__name__}"
            )
        self.array = data
        self.grad = None
        self.creator = None
        self.name = name
        self.requires_grad = requires_grad
        self.rank = 0

    # -- array-like views -------------------------------------------------
    @property
    def data(self):
        return self.array

    @data.setter
    def data(self, value):
        self.array = value

    @property
    def shape(self):
        return self.array.shape

    @property
    def ndim(self):
        return self.array.ndim

    @property
    def size(self):
        return self.array.size

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def xp(self):
        return backend.get_array_module(self.array)

    def __len__(self):
        return len(self.array)

    def __repr__(self):
        name = f" {self.name!r}" if self.name else ""
        return f"variable{name}({self.array!r})"

    # -- graph ----------------------------------------------------------------
    def set_creator(self, func):
        self.creator = func
        self.rank = func.rank + 1

    def cleargrad(self):
        """Forget the gradient (sets ``grad`` to None)."""
        self.grad = None

    def unchain(self):
        """Cut this variable from its creator (it becomes a leaf)."""
        self.creator = None

    def unchain_backward(self):
        """Cut the whole graph that leads to this variable (truncated BPTT)."""
        stack = [self.creator] if self.creator is not None else []
        seen = set()
        self.creator = None
        while stack:
            f = stack.pop()
            if id(f) in seen:
                continue
            seen.add(id(f))
            for x in f.inputs or ():
                if x.creator is not None:
                    stack.append(x.creator)
                    x.creator = None
            f.inputs = None

    def backward(self, retain_grad=False, retain_graph=False):
        """Compute gradients of this variable with respect to every leaf that needs one.

        A scalar (size 1) seeds its gradient with 1; a non-scalar uses ``self.grad``,
        which must then be set.

        Args:
            retain_grad: keep gradients of intermediate variables too (leaves always keep theirs).
            retain_graph: keep the graph, so that backward can be called again.
        """
        if self.creator is None:
            return
        xp = backend.get_array_module(self.array)
        if self.grad is None:
            if self.array.size != 1:
                raise ValueError(
                    f"backward: the variable has shape {self.array.shape}, not a scalar; "
                    "set its .grad to the upstream gradient before calling backward()"
                )
            seed = self.creator.unit_seed
            ok = seed is not None and seed.shape == self.array.shape and seed.dtype == self.array.dtype
            self.grad = seed if ok else xp.ones_like(self.array)

        # Outputs waiting for their creator's turn are held in ``pending`` so that releasing a
        # consumer (which drops its inputs) cannot free an output whose gradient is still due.
        f0 = self.creator
        pending = {f0: [self]}
        heap = [(-f0.rank, 0, f0)]
        counter = 0
        push = heapq.heappush
        pop = heapq.heappop
        # Gradients this backward made by adding two contributions, which one Variable alone holds
        # (id -> array): a function may add its next contribution into one in place (see
        # ``Function.accumulate_into``), e.g. a weight shared by every step of an unrolled sequence.
        owned = {}
        while heap:
            f = pop(heap)[2]
            held = pending.pop(f)  # noqa: F841 - keeps the outputs alive while f runs
            outputs = [o() for o in f.outputs]
            gys = tuple([None if o is None else o.grad for o in outputs])
            acc = None
            if all([g is None for g in gys]):
                gxs = (None,) * len(f.inputs)
            else:
                if owned:
                    acc = _accumulators(f.inputs, owned)
                    f.accumulate_into = acc or ()
                gxs = f._backward(gys)
                f.accumulate_into = ()
            if not retain_grad:
                for o in outputs:
                    if o is not None and o is not self:
                        if owned and o.grad is not None:
                            owned.pop(id(o.grad), None)
                        o.grad = None
            for k, (x, gx) in enumerate(zip(f.inputs, gxs)):
                if gx is None or not x.requires_grad:
                    continue
                g = x.grad
                if g is None:
                    x.grad = gx
                    if f.grads_are_fresh:
                        owned[id(gx)] = gx
                    else:
                        owned.pop(id(gx), None)  # it may be another Variable's gradient too
                elif acc is not None and gx is acc[k] and gx is g:
                    pass  # f added its contribution into x.grad in place
                else:
                    x.grad = g + gx
                    owned.pop(id(g), None)
                    owned[id(x.grad)] = x.grad
                c = x.creator
                if c is not None:
                    h = pending.get(c)
                    if h is None:
                        pending[c] = [x]
                        counter += 1
                        push(heap, (-c.rank, counter, c))
                    else:
                        h.append(x)
            if not retain_graph:
                for o in outputs:
                    if o is not None:
                        o.creator = None
                f.release()
        if not retain_graph:
            self.creator = None

    # -- operators (implemented in functions.math) --------------------------
    def __add__(self, other):
        M = _math()
        return M.add(self, other)

    def __radd__(self, other):
        M = _math()
        return M.add(other, self)

    def __sub__(self, other):
        M = _math()
        return M.sub(self, other)

    def __rsub__(self, other):
        M = _math()
        return M.sub(other, self)

    def __mul__(self, other):
        M = _math()
        return M.mul(self, other)

    def __rmul__(self, other):
        M = _math()
        return M.mul(other, self)

    def __truediv__(self, other):
        M = _math()
        return M.div(self, other)

    def __rtruediv__(self, other):
        M = _math()
        return M.div(other, self)

    def __neg__(self):
        M = _math()
        return M.neg(self)

    def __pow__(self, p):
        M = _math()
        return M.pow(self, p)

    def __matmul__(self, other):
        M = _math()
        return M.matmul(self, other)

    def __rmatmul__(self, other):
        M = _math()
        return M.matmul(other, self)

    def __getitem__(self, key):
        A = _array()
        return A.get_item(self, key)

    def reshape(self, *shape):
        A = _array()
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return A.reshape(self, shape)

    @property
    def T(self):
        A = _array()
        return A.transpose(self)

    __hash__ = object.__hash__


class Parameter(Variable):
    """A trainable leaf Variable owned by a Link; may be initialised lazily.

    Args:
        initializer: an array (used as is), a callable ``init(shape, xp, dtype) -> array``
            from ``core.initializers``, or a scalar (constant fill).
        shape: the shape, or None to initialise later with ``initialize(shape)``.
        name: the parameter's name inside its Link.
    """

    __slots__ = ("initializer", "update_rule")

    def __init__(self, initializer=None, shape=None, name=None):
        self.initializer = initializer
        self.update_rule = None
        data = None
        if backend.is_array(initializer):
            data = initializer
        super().__init__(data, name=name, requires_grad=True)
        if data is None and shape is not None:
            self.initialize(shape)

    @property
    def is_initialized(self):
        return self.array is not None

    def initialize(self, shape, xp=numpy):
        """Create the array of ``shape`` with the initializer (drawn from the seeded generator)."""
        from . import initializers

        init = self.initializer
        if init is None:
            init = initializers.LeCunNormal()
        elif numpy.isscalar(init):
            init = initializers.Constant(init)
        self.array = init(tuple(shape), xp=xp, dtype=numpy.float32)
        self.grad = None

    def __repr__(self):
        shape = None if self.array is None else self.array.shape
        return f"Parameter({self.name!r}, shape={shape})"


def _accumulators(inputs, owned):
    """Per input, its gradient so far where this backward owns it and the input appears once; else None.
    None when there is none at all."""
    out = [None] * len(inputs)
    found = False
    for k, x in enumerate(inputs):
        g = x.grad
        if g is not None and id(g) in owned and sum(y is x for y in inputs) == 1:
            out[k] = g
            found = True
    return tuple(out) if found else None


_modules = {}


def _math():
    m = _modules.get("math")
    if m is None:
        from .functions import math as m

        _modules["math"] = m
    return m


def _array():
    m = _modules.get("array")
    if m is None:
        from .functions import array as m

        _modules["array"] = m
    return m


def as_variable(x):
    """Wrap an array as a Variable that needs no gradient; return Variables unchanged."""
    if isinstance(x, Variable):
        return x
    return Variable(x, requires_grad=False)
