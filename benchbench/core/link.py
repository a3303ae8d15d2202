"""Link, Chain, ChainList, Sequential: objects that hold Parameters and other Links.

Assigning a :class:`~benchbench.core.variable.Parameter` or a :class:`Link` to an
attribute registers it (Chainer's ``with self.init_scope():`` is accepted and
changes nothing). Every parameter and persistent buffer has a full name such as
``/l1/W``; ``params()`` and ``namedparams()`` yield them sorted by that name, so
every process (and every data-parallel rank) sees them in the same order.
"""
from __future__ import annotations

import contextlib

import numpy

from . import function as _function
from . import backend
from .variable import Parameter


class Link:
    """A module with Parameters, persistent buffers and child Links.

    Attributes:
        name: the name under which the parent registered this link (None for a root).
        device: the :class:`~benchbench.core.backend.Device` its arrays live on.

    Example:
        >>> class Affine(Link):
        ...     def __init__(self):
        ...         super().__init__()
        ...         with self.init_scope():
        ...             self.W = Parameter(initializers.LeCunNormal(), (3, 2))
        ...     def forward(self, x):
        ...         return F.linear(x, self.W)
    """

    def __init__(self):
        d = self.__dict__
        d["_params"] = set()
        d["_persistent"] = set()
        d["_children"] = set()
        d["name"] = None
        d["_device"] = backend.Device("cpu")

    # -- registration -------------------------------------------------------
    def __setattr__(self, name, value):
        if "_params" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attribute {name!r}"
            )
        self._params.discard(name)
        self._children.discard(name)
        if isinstance(value, (Parameter, Link)):
            self._persistent.discard(name)
        if isinstance(value, Parameter):
            value.name = name
            self._params.add(name)
        elif isinstance(value, Link):
            if value is self:
                raise ValueError(f"{type(self).__name__}: a link cannot be its own child ({name!r})")
            value.__dict__["name"] = name
            self._children.add(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name):
        self._params.discard(name)
        self._children.discard(name)
        self._persistent.discard(name)

    @contextlib.contextmanager
    def init_scope(self):
        """Chainer compatibility: attributes are registered with or without this block."""
        yield

    def add_param(self, name, shape=None, dtype=numpy.float32, initializer=None):
        """Register a new Parameter ``name`` (lazily initialised when ``shape`` is None)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Link.add_param: name must be an identifier, got {name!r}")
        if name in self.__dict__:
            raise AttributeError(f"Link.add_param: {type(self).__name__} already has an attribute {name!r}")
        p = Parameter(initializer, name=name)
        if shape is not None:
            p.initialize(shape, self._device.xp)
            if p.array.dtype != dtype:
                p.array = p.array.astype(dtype)
        setattr(self, name, p)

    def add_persistent(self, name, value):
        """Register ``value`` (an array or a scalar) as state that is saved and moved but not trained.

        Example:
            >>> self.add_persistent("avg_mean", numpy.zeros(16, numpy.float32))
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Link.add_persistent: name must be an identifier, got {name!r}")
        if name in self.__dict__:
            raise AttributeError(f"Link.add_persistent: {type(self).__name__} already has an attribute {name!r}")
        if not (backend.is_array(value) or isinstance(value, (int, float, numpy.number)) or value is None):
            raise TypeError(
                f"Link.add_persistent: value of {name!r} must be an array, a scalar or None, got {type(value).__name__}"
            )
        if backend.is_array(value):
            value = backend.to_device(value, self._device)
        object.__setattr__(self, name, value)
        self._persistent.add(name)

    # -- traversal -----------------------------------------------------------
    def children(self):
        """The direct child links, sorted by name."""
        for name in sorted(self._children):
            yield getattr(self, name)

    def namedlinks(self, skipself=False):
        """``(full_name, link)`` for this link (as ``/``) and every descendant, sorted by name."""
        if not skipself:
            yield "/", self
        for name in sorted(self._children):
            child = getattr(self, name)
            prefix = "/" + name
            yield prefix, child
            for sub, link in child.namedlinks(skipself=True):
                yield prefix + sub, link

    def links(self, skipself=False):
        """Every link of the tree (this one first unless ``skipself``)."""
        for _, link in self.namedlinks(skipself):
            yield link

    def namedparams(self, include_uninit=True):
        """``(full_name, Parameter)`` pairs, e.g. ``('/l1/W', W)``, sorted by full name."""
        items = []
        for prefix, link in self.namedlinks():
            base = "" if prefix == "/" else prefix
            for pname in link._params:
                p = link.__dict__[pname]
                if include_uninit or p.array is not None:
                    items.append((f"{base}/{pname}", p))
        items.sort(key=lambda kv: kv[0])
        return iter(items)

    def params(self, include_uninit=True):
        """The Parameters of this link and its descendants, in the order of ``namedparams``."""
        for _, p in self.namedparams(include_uninit):
            yield p

    def namedpersistents(self):
        """``(full_name, (link, attribute))`` for every persistent buffer, sorted by full name."""
        items = []
        for prefix, link in self.namedlinks():
            base = "" if prefix == "/" else prefix
            for name in link._persistent:
                items.append((f"{base}/{name}", (link, name)))
        items.sort(key=lambda kv: kv[0])
        return iter(items)

    def count_params(self):
        """Number of scalars held by initialised Parameters."""
        return sum(int(p.array.size) for p in self.params(include_uninit=False))

    def cleargrads(self):
        """Set every parameter's gradient to None (call before each backward)."""
        for p in self.params():
            p.grad = None

    def zerograds(self):
        """Fill every initialised parameter's gradient with zeros."""
        for p in self.params(include_uninit=False):
            p.grad = backend.get_array_module(p.array).zeros_like(p.array)

    # -- devices -------------------------------------------------------------
    @property
    def device(self):
        return self._device

    @property
    def xp(self):
        """The array module of this link's device (numpy or cupy)."""
        return self._device.xp

    def to_device(self, device):
        """Move every parameter, gradient and persistent array of the tree to ``device``.

        Args:
            device: ``"cpu"``, ``"gpu:N"`` or a Device.

        Returns:
            self.

        Raises:
            RuntimeError: a GPU was asked for and cupy or the GPU is missing.
            ValueError: a malformed device spec.
        """
        device = backend.Device(device)
        for link in self.links():
            link._move_own_arrays(device)
        return self

    def _move_own_arrays(self, device):
        """Move this link's own parameters, gradients and persistents (not its children's)."""
        d = self.__dict__
        d["_device"] = device
        for pname in self._params:
            p = d[pname]
            if p.array is not None:
                p.array = backend.to_device(p.array, device)
            if p.grad is not None:
                p.grad = backend.to_device(p.grad, device)
        for name in self._persistent:
            v = d[name]
            if backend.is_array(v):
                d[name] = backend.to_device(v, device)

    def to_cpu(self):
        """Same as ``to_device('cpu')``."""
        return self.to_device("cpu")

    def to_gpu(self, device=0):
        """Same as ``to_device(f'gpu:{device}')``."""
        return self.to_device(device if isinstance(device, str) else backend.Device(device))

    # -- calling -------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if _function._profile_hook is None:
            return self.forward(*args, **kwargs)
        # Profiling: name the functions that run inside this link after it ('/res2/conv1').
        from .profiler import scope

        with scope(getattr(self, "name", None) or type(self).__name__):
            return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def copyparams(self, other):
        """Copy the values of ``other``'s parameters and persistents (same structure) into this link."""
        mine = dict(self.namedparams())
        for name, p in other.namedparams():
            if name not in mine:
                raise ValueError(f"Link.copyparams: {type(self).__name__} has no parameter {name!r}")
            q = mine[name]
            if q.array is None or q.array.shape != p.array.shape:
                q.array = backend.to_device(p.array.copy(), self._device)
            else:
                q.array[...] = backend.to_device(p.array, self._device)
        mine_pers = dict(self.namedpersistents())
        for name, (link, attr) in other.namedpersistents():
            if name not in mine_pers:
                raise ValueError(f"Link.copyparams: {type(self).__name__} has no persistent {name!r}")
            dst_link, dst_attr = mine_pers[name]
            v = getattr(link, attr)
            if backend.is_array(v):
                v = backend.to_device(v.copy(), dst_link._device)
            dst_link.__dict__[dst_attr] = v

    def __repr__(self):
        return f"{type(self).__name__}()"


class Chain(Link):
    """A Link whose children are set as attributes (Chainer's Chain)."""


class ChainList(Link):
    """A Link holding an ordered list of child Links, named ``'0'``, ``'1'``, ...

    Args:
        *links: the initial children.
    """

    def __init__(self, *links):
        super().__init__()
        self.__dict__["_list"] = []
        for link in links:
            self.add_link(link)

    def add_link(self, link):
        """Append ``link`` as the next child."""
        if not isinstance(link, Link):
            raise TypeError(f"ChainList.add_link: expected a Link, got {type(link).__name__}")
        name = str(len(self._list))
        link.__dict__["name"] = name
        self._list.append(link)
        self._children.add(name)
        self.__dict__[name] = link

    append = add_link

    def __getitem__(self, i):
        return self._list[i]

    def __iter__(self):
        return iter(self._list)

    def __len__(self):
        return len(self._list)


class Sequential(ChainList):
    """Layers applied in order; a layer is a Link or any callable (``F.relu``).

    Args:
        *layers: Links or callables of one argument.

    Example:
        >>> model = Sequential(L.Linear(None, 100), F.relu, L.Linear(None, 10))
    """

    def __init__(self, *layers):
        super().__init__()
        self.__dict__["_layers"] = []
        for layer in layers:
            self.append(layer)

    def append(self, layer):
        """Append a Link or a callable."""
        if isinstance(layer, Link):
            self.add_link(layer)
        elif not callable(layer):
            raise TypeError(f"Sequential: a layer must be a Link or a callable, got {type(layer).__name__}")
        self._layers.append(layer)

    def forward(self, x):
        for layer in self._layers:
            x = layer(x)
        return x

    def __getitem__(self, i):
        return self._layers[i]

    def __iter__(self):
        return iter(self._layers)

    def __len__(self):
        return len(self._layers)

    def __repr__(self):
        inner = ", ".join(getattr(layer, "__name__", None) or repr(layer) for layer in self._layers)
        return f"Sequential({inner})"
