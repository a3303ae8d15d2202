"""The simulated device array and the rules every operation on it obeys.

A device array wraps a numpy array that stands for device memory, with the device that holds it
and the block it lives in. The rules are cupy's, strictly:
- no implicit conversion to the host: ``numpy.asarray(a)`` raises ``TypeError`` (numpy functions and
  ufuncs on device arrays dispatch to cupy's, as cupy's NEP 13/18 hooks do); ``.get()``, ``cupy.asnumpy``, ``float()``, ``int()``, ``bool()``,
  ``.item()`` and ``.tolist()`` are the ways back, and each is counted;
- no host array in a device operation (``TypeError``), no two devices in one operation, and no
  operation on an array that is not on the current device (``ValueError``: no peer access);
- reductions return 0-d device arrays, not host scalars.
"""
from __future__ import annotations

import numbers

import numpy

from . import _capture, _launches, _state
from . import _strict  # the rules beyond the plain wrapper (see the package docstring)
from .cuda import memory as _memory

_ERR_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
                 "Please use `.get()` to construct a NumPy array explicitly.")
_OK_KINDS = set("biufc")


def _host_scalar(x) -> bool:
    return isinstance(x, (numbers.Number, numpy.generic)) and not isinstance(x, numpy.ndarray)


def _check_dtype(a: numpy.ndarray, what: str) -> None:
    if a.dtype.kind not in _OK_KINDS:
        raise TypeError(f"{what}: dtype {a.dtype} is not supported on the GPU")


class _Ctx:
    """What the operands of one operation say about where it runs."""

    __slots__ = ("name", "device", "blocks")

    def __init__(self, name):
        self.name = name
        self.device = None
        self.blocks = []  # (numpy array, Memory) of the device operands

    def take(self, x, host_ok=False):
        """``x`` with device arrays unwrapped (recursing into lists and tuples)."""
        if isinstance(x, ndarray):
            if self.device is None:
                self.device = x._dev
            elif x._dev != self.device:
                raise ValueError(f"{self.name}: arrays on GPU {self.device} and GPU {x._dev} in one operation; "
                                 "copy one of them to the other device first")
            self.blocks.append((x._a, x._mem))
            return x._a
        if isinstance(x, numpy.ndarray):
            if host_ok:
                return x
            raise TypeError(f"{self.name}: Unsupported type {type(x)} (a host numpy array in a GPU operation; "
                            "move it with cupy.asarray first)")
        if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):  # not into named tuples
            return type(x)(self.take(v, host_ok) for v in x)
        return x

    def check_current(self):
        if self.device is not None and self.device != _state.local.device:
            raise ValueError(f"{self.name}: the device where the array resides ({self.device}) is different from "
                             f"the current device ({_state.local.device}). Peer access is unavailable between "
                             "these devices.")

    def wrap(self, r):
        """Device arrays for the numpy results of the operation (views keep their operand's block)."""
        if isinstance(r, numpy.ndarray):
            for a, mem in self.blocks:
                if numpy.may_share_memory(r, a):
                    return ndarray._view(r, mem)
            dev = self.device if self.device is not None else _state.local.device
            return ndarray._adopt(r, dev, self.name)
        if isinstance(r, numpy.generic) or isinstance(r, (bool, int, float, complex)) and not isinstance(r, type):
            return ndarray._adopt(numpy.asarray(r), self.device if self.device is not None else _state.local.device,
                                  self.name)
        if isinstance(r, (list, tuple)):
            return type(r)(self.wrap(v) for v in r)
        return r


def apply(name, fn, args, kwargs, check_current=True, host_ok=False):
    """Run numpy ``fn`` on the unwrapped operands under cupy's rules; device arrays out."""
    ctx = _Ctx(name)
    out = kwargs.get("out")
    a = ctx.take(args, host_ok)
    k = {key: ctx.take(v, host_ok) for key, v in kwargs.items()}
    if out is not None and not isinstance(out, ndarray):
        raise TypeError(f"{name}: out must be a device array, got {type(out).__name__}")
    if check_current:
        ctx.check_current()
    dev = ctx.device if ctx.device is not None else _state.local.device
    op = _capture.op(dev)
    if op is not None:
        op.touch(*[b[1] for b in ctx.blocks])
    r = fn(*a, **k)
    res = out if out is not None else ctx.wrap(r)
    if _launches.kernel_ran(name, r, [b[0] for b in ctx.blocks], out is not None):
        if op is None or not op.issued(name, _replay_apply(fn, a, k, None if out is not None else ghost(res))):
            _launches.launch(dev, 1, name)
    return res


def _replay_apply(fn, a, k, res):
    """The replay of one generic operation: ``fn`` again on the same buffers, its new results written
    into the arrays the capture allocated for them."""
    def replay():
        r = fn(*a, **k)
        if res is not None:
            _assign(res, r)
    return replay


def ghost(x):
    """``x`` for a replay: device arrays as arrays over the same buffers that do not keep their blocks
    allocated (a graph refers to memory; it does not own it)."""
    if isinstance(x, ndarray):
        g = object.__new__(ndarray)
        g._a, g._dev, g._mem = x._a, x._dev, None
        return g
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return type(x)(ghost(v) for v in x)
    return x


def _assign(res, r):
    if isinstance(res, ndarray):
        res._a[...] = r
    elif isinstance(res, (list, tuple)):
        for x, y in zip(res, r):
            _assign(x, y)


def _binary(name, fn, reflected=False):
    def op(self, other):
        if isinstance(other, numpy.ndarray):
            raise TypeError(f"Unsupported type {type(other)}: a host numpy array in a GPU operation ({name})")
        if not isinstance(other, ndarray) and not _host_scalar(other):
            return NotImplemented
        args = (other, self) if reflected else (self, other)
        return apply(f"ndarray.{name}", fn, args, {})
    op.__name__ = name
    return op


def _inplace(name, fn):
    def op(self, other):
        if isinstance(other, numpy.ndarray):
            raise TypeError(f"Unsupported type {type(other)}: a host numpy array in a GPU operation ({name})")
        apply(f"ndarray.{name}", fn, (self, other), {"out": self})
        return self
    op.__name__ = name
    return op


# Methods that compute (a kernel on the current device) and methods that only make views or copies.
_COMPUTE_METHODS = ("sum mean max min argmax argmin prod var std cumsum cumprod any all dot clip round "
                    "nonzero argsort sort take repeat conj trace diagonal fill ptp").split()
_VIEW_METHODS = "reshape transpose ravel squeeze swapaxes view flatten copy astype".split()


class ndarray:
    """A simulated device array (cupy's ``ndarray``)."""

    __slots__ = ("_a", "_dev", "_mem", "__weakref__")
    __array_ufunc__ = None  # replaced by cupy's dispatch (NEP 13) in the package: see _strict
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        a = numpy.empty(shape, dtype=dtype, order=order)
        _check_dtype(a, "cupy.ndarray")
        if memptr is not None:
            raise NotImplementedError("simulated GPUs: ndarray(memptr=...) is not simulated")
        self._init(a, _state.local.device, None)

    def _init(self, a, dev, mem):
        self._a, self._dev = a, dev
        if mem is None:
            dev = _state.check_device(dev)
            mp = _memory.alloc(a.nbytes) if _state.local.device == dev else _alloc_on(dev, a.nbytes)
            mem = mp.mem
            mem.bind(a)
        self._mem = mem

    @classmethod
    def _adopt(cls, a: numpy.ndarray, dev: int, what: str = "cupy") -> ndarray:
        """A new device allocation holding ``a`` (which must not be referenced elsewhere)."""
        _check_dtype(a, what)
        self = object.__new__(cls)
        self._init(a, dev, None)
        return self

    @classmethod
    def _view(cls, a: numpy.ndarray, mem) -> ndarray:
        self = object.__new__(cls)
        self._a, self._dev, self._mem = a, mem.device_id, mem
        return self

    # ---- conversions: the only ways back to the host, all counted
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_ERR_IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented  # replaced by cupy's dispatch (NEP 18) in the package: see _strict

    def get(self, stream=None, order="C", out=None, blocking=True):
        """A host (numpy) copy of the array."""
        _state.count("device_to_host", stream=stream)
        if out is not None:
            if not isinstance(out, numpy.ndarray) or out.shape != self._a.shape:
                raise ValueError("ndarray.get: out must be a numpy array of the same shape")
            numpy.copyto(out, _capture.visible(self))
            return out
        return numpy.array(_capture.visible(self), order=order, copy=True)

    def item(self, *args):
        _state.count("device_to_host")
        return _capture.visible(self).item(*args)

    def tolist(self):
        _state.count("device_to_host")
        return _capture.visible(self).tolist()

    def _scalar(self, kind):
        if self._a.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars ({kind})")
        _state.count("device_to_host")
        return kind(_capture.visible(self).reshape(()).item())

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        return self._scalar(int)

    def __complex__(self):
        return self._scalar(complex)

    def __bool__(self):
        return self._scalar(bool)

    def __index__(self):
        if self._a.ndim != 0 or self._a.dtype.kind not in "iub":
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return self._scalar(int)

    # ---- metadata
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._view(self._a.T, self._mem))

    @property
    def device(self):
        from .cuda import Device

        return Device(self._dev)

    @property
    def data(self):
        """A MemoryPointer to the first element (``.ptr`` is what NCCL takes)."""
        offset = int(self._a.__array_interface__["data"][0]) - self._mem.ptr
        return _memory.MemoryPointer(self._mem, offset)

    @property
    def base(self):
        return None

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield self[i]

    def __repr__(self):
        return f"<simulated cupy array on GPU {self._dev}, shape={self._a.shape}, dtype={self._a.dtype}>"

    __str__ = __repr__

    def __hash__(self):
        raise TypeError("unhashable type: 'cupy.ndarray'")

    def __reduce__(self):
        raise TypeError("simulated device arrays cannot be pickled; .get() them first")

    def __getitem__(self, key):
        ctx = _Ctx("ndarray.__getitem__")
        k = ctx.take(key, host_ok=True)
        if ctx.device is not None and ctx.device != self._dev:
            raise ValueError(f"ndarray.__getitem__: an index on GPU {ctx.device} for an array on GPU {self._dev}")
        _strict.count_index_traffic(key)
        r = self._a[k]
        if not isinstance(r, numpy.ndarray):  # integers only: cupy gives a 0-d view, not a copy
            r = self._a[(k if isinstance(k, tuple) else (k,)) + (Ellipsis,)]
        if isinstance(r, numpy.ndarray) and numpy.may_share_memory(r, self._a):
            return ndarray._view(r, self._mem)  # basic indexing: a view
        op = _capture.op(self._dev)  # advanced indexing: a gather kernel
        if op is not None:
            op.touch(self._mem, *[b[1] for b in ctx.blocks])
        out = ndarray._adopt(numpy.array(r), self._dev, "ndarray.__getitem__")
        src, dst = self._a, out._a
        if op is None or not op.issued("ndarray.__getitem__", lambda: dst.__setitem__(Ellipsis, src[k])):
            _launches.launch(self._dev, 1, "ndarray.__getitem__")
        return out

    def __setitem__(self, key, value):
        ctx = _Ctx("ndarray.__setitem__")
        ctx.take(self)
        k = ctx.take(key, host_ok=True)
        ctx.check_current()
        if not _is_mask(key):  # a mask scatter runs on the device (a cumulative sum), no sync
            _strict.count_index_traffic(key)
        if isinstance(value, numpy.ndarray):  # cupy copies a host value to the device
            _state.count("host_to_device")
            self._a[k] = value
            return
        v = ctx.take(value)
        op = _capture.op(self._dev)  # a copy or fill kernel
        if op is not None:
            op.touch(*[b[1] for b in ctx.blocks])
        dst = self._a
        dst[k] = v
        if op is None or not op.issued("ndarray.__setitem__", lambda: dst.__setitem__(k, v)):
            _launches.launch(self._dev, 1, "ndarray.__setitem__")

    # ---- arithmetic
    __add__ = _binary("__add__", numpy.add)
    __radd__ = _binary("__radd__", numpy.add, True)
    __sub__ = _binary("__sub__", numpy.subtract)
    __rsub__ = _binary("__rsub__", numpy.subtract, True)
    __mul__ = _binary("__mul__", numpy.multiply)
    __rmul__ = _binary("__rmul__", numpy.multiply, True)
    __truediv__ = _binary("__truediv__", numpy.true_divide)
    __rtruediv__ = _binary("__rtruediv__", numpy.true_divide, True)
    __floordiv__ = _binary("__floordiv__", numpy.floor_divide)
    __rfloordiv__ = _binary("__rfloordiv__", numpy.floor_divide, True)
    __mod__ = _binary("__mod__", numpy.remainder)
    __rmod__ = _binary("__rmod__", numpy.remainder, True)
    __pow__ = _binary("__pow__", numpy.power)
    __rpow__ = _binary("__rpow__", numpy.power, True)
    __matmul__ = _binary("__matmul__", numpy.matmul)
    __rmatmul__ = _binary("__rmatmul__", numpy.matmul, True)
    __and__ = _binary("__and__", numpy.bitwise_and)
    __rand__ = _binary("__rand__", numpy.bitwise_and, True)
    __or__ = _binary("__or__", numpy.bitwise_or)
    __ror__ = _binary("__ror__", numpy.bitwise_or, True)
    __xor__ = _binary("__xor__", numpy.bitwise_xor)
    __rxor__ = _binary("__rxor__", numpy.bitwise_xor, True)
    __lt__ = _binary("__lt__", numpy.less)
    __le__ = _binary("__le__", numpy.less_equal)
    __gt__ = _binary("__gt__", numpy.greater)
    __ge__ = _binary("__ge__", numpy.greater_equal)
    __eq__ = _binary("__eq__", numpy.equal)
    __ne__ = _binary("__ne__", numpy.not_equal)
    __iadd__ = _inplace("__iadd__", numpy.add)
    __isub__ = _inplace("__isub__", numpy.subtract)
    __imul__ = _inplace("__imul__", numpy.multiply)
    __itruediv__ = _inplace("__itruediv__", numpy.true_divide)
    __ipow__ = _inplace("__ipow__", numpy.power)
    __iand__ = _inplace("__iand__", numpy.bitwise_and)
    __ior__ = _inplace("__ior__", numpy.bitwise_or)

    def __neg__(self):
        return apply("ndarray.__neg__", numpy.negative, (self,), {})

    def __pos__(self):
        return apply("ndarray.__pos__", numpy.positive, (self,), {})

    def __abs__(self):
        return apply("ndarray.__abs__", numpy.absolute, (self,), {})

    def __invert__(self):
        return apply("ndarray.__invert__", numpy.invert, (self,), {})

    def set(self, arr, stream=None):
        """Copy host array ``arr`` into this device array."""
        if not isinstance(arr, numpy.ndarray) or arr.shape != self._a.shape:
            raise ValueError("ndarray.set: arr must be a numpy array of the same shape")
        _state.count("host_to_device")
        numpy.copyto(self._a, arr)


def _method(name, check_current):
    def m(self, *args, **kwargs):
        fn = getattr(numpy.ndarray, name)
        return apply(f"ndarray.{name}", fn, (self,) + args, kwargs, check_current=check_current)
    m.__name__ = name
    return m


for _n in _COMPUTE_METHODS:
    setattr(ndarray, _n, _method(_n, True))
for _n in _VIEW_METHODS:
    setattr(ndarray, _n, _method(_n, False))


def _is_mask(key) -> bool:
    return any(isinstance(k, ndarray) and k.dtype.kind == "b" for k in (key if isinstance(key, tuple) else (key,)))


def _alloc_on(dev: int, nbytes: int):
    """Allocate on ``dev`` with it made current for the call (cupy allocates on the array's device)."""
    prev = _state.local.device
    _state.local.device = dev
    try:
        return _memory.alloc(nbytes)
    finally:
        _state.local.device = prev
