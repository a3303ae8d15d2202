"""Optimizer base with flat, packed parameter storage, and the gradient hooks.

At the first update (and again whenever a parameter's array was replaced: after
``to_device``, a lazy initialisation, or a load that reallocated it) the
optimizer *packs* the target's parameters: all parameters of one dtype on one
device are copied into ONE flat buffer and each ``param.array`` becomes a view
into it. Optimizer state (momentum, Adam's ``m`` and ``v``) lives in flat
buffers of the same layout, carried over parameter by parameter when a repack
happens. Each update copies every gradient into one flat gradient buffer (a
missing gradient counts as zero), runs the hooks on it, and applies the update
rule as a handful of in-place array operations on the flat buffers.

Data-parallel training uses the packed gradient directly::

    g = optimizer.flat_grad()        # gradients of this rank, packed (one array)
    communicator.allreduce(g)        # in place: the sum over ranks
    g /= n_ranks
    optimizer.update_packed()        # hooks + update rule on the packed gradient

``flat_param()`` likewise gives the packed parameters, for a one-off broadcast.
"""
from __future__ import annotations

import numpy

from .. import backend
from ..kernels import buffers as _buffers

# Elements per block of a blocked update (``ParamGroup.run_blocked``): the handful of arrays an
# update reads (1 MiB each in float32) stay in cache while all its passes run over the block.
# Measured on Adam over 10.6M parameters, 2 threads: 2^18 took 18 ms, 2^15 30 ms (more calls
# contend for the GIL), 2^24 37 ms (every pass goes to memory), one pass over all 41 ms.
UPDATE_BLOCK = 1 << 18


def check_hyper(cls, name, value, low, high=None, low_open=False):
    """Validate a hyper-parameter; returns it as a float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{cls}: {name} must be a number, got {type(value).__name__} {value!r}") from None
    if (v <= low if low_open else v < low) or (high is not None and v >= high) or v != v:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and < {high}" if high is not None else "")
        raise ValueError(f"{cls}: {name} must be {bound}, got {value!r}")
    return v


class Hyperparameter:
    """A plain namespace of hyper-parameters (``optimizer.hyperparam.lr``)."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def get_dict(self):
        """The hyper-parameters as a dict."""
        return dict(self.__dict__)

    def __contains__(self, name):
        return name in self.__dict__

    def __repr__(self):
        return "Hyperparameter(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


class PackedGroup:
    """The parameters of one dtype on one device, packed into flat buffers.

    Attributes:
        params: the Parameters, in the target's name order.
        names: their full names.
        offsets: start of each parameter in the flat buffers.
        data: the flat parameter buffer (each ``param.array`` is a view into it).
        grad: the flat gradient buffer, filled by ``gather_grads``.
        state: ``{name: flat array}`` of optimizer state, same layout as ``data``.
        xp: numpy or cupy.
    """

    def __init__(self, named_params, xp):
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.xp = xp
        sizes = [int(p.array.size) for p in self.params]
        self.offsets = [0]
        for s in sizes:
            self.offsets.append(self.offsets[-1] + s)
        dtype = self.params[0].array.dtype
        self.data = xp.empty(self.offsets[-1], dtype=dtype)
        self.grad = xp.zeros(self.offsets[-1], dtype=dtype)
        self.work = xp.empty(self.offsets[-1], dtype=dtype)
        self.state = {}
        self.views = []
        self.missing = []  # (lo, hi) of the parameters whose gradient was None at the last gather
        self.decay = None  # a WeightDecay rate the compiled update applies in its own pass (update_packed)
        self.param_grads = None  # each parameter's flat gradient, while Optimizer.update reads them unpacked
        for p, lo, hi in zip(self.params, self.offsets, self.offsets[1:]):
            self.data[lo:hi] = p.array.reshape(-1)
            view = self.data[lo:hi].reshape(p.array.shape)
            p.array = view
            self.views.append(view)

    @property
    def size(self):
        return self.offsets[-1]

    def slices(self):
        """``(param, lo, hi)`` for each packed parameter."""
        return zip(self.params, self.offsets, self.offsets[1:])

    def gather_grads(self):
        """Copy every parameter's gradient into ``grad`` (zeros where a gradient is None)."""
        grads = [p.grad for p in self.params]
        if all(g is not None for g in grads):
            self.missing = []
            self.xp.concatenate([g.reshape(-1) for g in grads], out=self.grad)
            return self.grad
        self.missing = []
        for g, lo, hi in zip(grads, self.offsets, self.offsets[1:]):
            if g is None:
                self.grad[lo:hi] = 0
                self.missing.append((lo, hi))
            else:
                self.grad[lo:hi] = g.reshape(-1)
        return self.grad

    def run_blocked(self, fn):
        """Call ``fn(data, grad, work, state)`` over the packed buffers, on numpy block by block.

        An update is several elementwise passes; over a whole buffer each pass streams it from
        memory, so with many parameters the update is bound by memory bandwidth. On numpy the
        buffers are cut into blocks of :data:`UPDATE_BLOCK` elements, every pass runs over one
        block while it is in cache, and the blocks are split over the BLAS threads (numpy
        releases the GIL in its loops). On cupy ``fn`` runs once over the whole buffers.

        ``fn`` gets same-length slices (``state`` as a dict of slices) and must update them in
        place, elementwise.
        """
        if self.xp is not numpy:
            fn(self.data, self.grad, self.work, self.state)
            return
        size = self.size
        count = -(-size // UPDATE_BLOCK)
        names = list(self.state)

        def part(first, last):
            for b in range(first, last):
                s = slice(b * UPDATE_BLOCK, min(size, (b + 1) * UPDATE_BLOCK))
                fn(self.data[s], self.grad[s], self.work[s], {k: self.state[k][s] for k in names})

        _buffers.split_run(part, count, size * self.data.itemsize * (3 + len(names)))

    def hold_missing(self):
        """Copies of the data and state of the parameters without a gradient (restored by ``restore``)."""
        return [(lo, hi, self.data[lo:hi].copy(), {k: s[lo:hi].copy() for k, s in self.state.items()})
                for lo, hi in self.missing]

    def restore(self, held):
        """Put back what ``hold_missing`` kept: a parameter without a gradient is not updated (Chainer)."""
        for lo, hi, data, state in held:
            self.data[lo:hi] = data
            for k, s in state.items():
                self.state[k][lo:hi] = s


class Optimizer:
    """Base of the optimizers: ``setup(link)``, then ``update()`` after each backward.

    Subclasses set their hyper-parameters through ``super().__init__(**hyper)``, name their
    state buffers in ``state_names`` and implement ``update_group(group)``, which updates
    ``group.data`` in place from ``group.grad`` and ``group.state`` (``group.work`` is a
    scratch buffer of the same size). Hyper-parameters read and write as attributes
    (``optimizer.lr = 0.1``) or through ``optimizer.hyperparam``.

    Attributes:
        target: the Link being optimised.
        t: number of updates done.
        epoch: epoch counter, advanced by ``new_epoch()``.
    """

    state_names: tuple[str, ...] = ()

    def __init__(self, **hyperparams):
        d = self.__dict__
        d["hyperparam"] = Hyperparameter(**hyperparams)
        d["target"] = None
        d["t"] = 0
        d["epoch"] = 0
        d["_hooks"] = {}
        d["_groups"] = None
        d["_current"] = None
        d["_device"] = None  # graph mode: the DeviceUpdate whose device scalars the GPU kernels read

    def __getattr__(self, name):
        hp = self.__dict__.get("hyperparam")
        if hp is not None and name in hp:
            return getattr(hp, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        hp = self.__dict__.get("hyperparam")
        if hp is not None and name in hp:
            setattr(hp, name, value)
        else:
            object.__setattr__(self, name, value)

    # -- setup and hooks --------------------------------------------------------
    def setup(self, link):
        """Attach the optimizer to ``link`` (a Link); returns self."""
        from ..link import Link

        if not isinstance(link, Link):
            raise TypeError(f"{type(self).__name__}.setup: link must be a Link, got {type(link).__name__}")
        self.target = link
        self.t = 0
        self._groups = None
        return self

    def add_hook(self, hook, name=None):
        """Add ``hook``, a callable ``hook(optimizer)`` run on the packed gradients before each update
        (after it when ``hook.timing == 'post'``).

        Raises:
            TypeError: ``hook`` is not callable.
            KeyError: a hook of that name is already there.
        """
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.add_hook: hook must be callable, got {type(hook).__name__}")
        name = name or getattr(hook, "name", None) or type(hook).__name__
        if name in self._hooks:
            raise KeyError(f"{type(self).__name__}.add_hook: a hook named {name!r} is already registered")
        timing = getattr(hook, "timing", "pre")
        if timing not in ("pre", "post"):
            raise ValueError(f"{type(self).__name__}.add_hook: hook.timing must be 'pre' or 'post', got {timing!r}")
        self._hooks[name] = hook

    def remove_hook(self, name):
        """Remove the hook called ``name``."""
        del self._hooks[name]

    def new_epoch(self):
        """Advance the epoch counter."""
        self.epoch += 1

    # -- packing ----------------------------------------------------------------
    def _require_target(self, what):
        if self.target is None:
            raise RuntimeError(f"{type(self).__name__}.{what}: call setup(link) first")

    def packed_groups(self):
        """The PackedGroups (one per dtype and device), packing or repacking when needed."""
        if self._current is not None:  # inside update_packed: the layout was checked already
            return self._current
        self._require_target("packed_groups")
        seen = set()
        named = []
        for n, p in self.target.namedparams(include_uninit=False):
            if id(p) not in seen:  # a parameter shared by two links is updated once
                seen.add(id(p))
                named.append((n, p))
        groups = self._groups
        if groups is not None and self._layout_matches(groups, named):
            return groups
        self._groups = self._pack(named, groups or [])
        return self._groups

    @staticmethod
    def _layout_matches(groups, named):
        if sum(len(g.params) for g in groups) != len(named):
            return False
        packed = {id(p): v for g in groups for p, v in zip(g.params, g.views)}
        return all(packed.get(id(p)) is p.array for _, p in named)

    def _pack(self, named, old_groups):
        old_state = {}
        for g in old_groups:
            for p, lo, hi in g.slices():
                old_state[id(p)] = (p, {k: s[lo:hi] for k, s in g.state.items()})
        by_key = {}
        for n, p in named:
            key = (p.array.dtype.str, str(backend.get_device_from_array(p.array)))
            by_key.setdefault(key, []).append((n, p))
        groups = []
        for key in sorted(by_key):
            members = by_key[key]
            dev = backend.get_device_from_array(members[0][1].array)
            with dev.scope():
                g = PackedGroup(members, dev.xp)
                for k in self.state_names:
                    g.state[k] = g.xp.zeros(g.size, dtype=g.data.dtype)
                for p, lo, hi in g.slices():
                    prev = old_state.get(id(p))
                    if prev is not None and prev[0] is p:
                        for k, s in prev[1].items():
                            if k in g.state and s.size == hi - lo:
                                g.state[k][lo:hi] = backend.to_device(s, dev)
            groups.append(g)
        return groups

    def pack_grads(self):
        """Copy the current gradients into the flat gradient buffers; return them, one per group."""
        return [g.gather_grads() for g in self.packed_groups()]

    def flat_grad(self):
        """Pack the current gradients and return the flat gradient buffer.

        The returned array IS the buffer the next ``update_packed()`` reads: reduce it in
        place (e.g. an all-reduce) between the two calls.

        Raises:
            ValueError: the parameters span several dtypes or devices (use ``pack_grads()``).
        """
        grads = self.pack_grads()
        return self._single(grads, "flat_grad", "pack_grads()")

    def flat_param(self):
        """The flat parameter buffer (every ``param.array`` is a view into it).

        Raises:
            ValueError: the parameters span several dtypes or devices (use ``packed_groups()``).
        """
        return self._single([g.data for g in self.packed_groups()], "flat_param", "packed_groups()")

    def _single(self, arrays, what, alternative):
        if len(arrays) != 1:
            raise ValueError(
                f"{type(self).__name__}.{what}: the parameters form {len(arrays)} groups (dtype/device); "
                f"use {alternative}"
            )
        return arrays[0]

    # -- updating ---------------------------------------------------------------
    def update(self, lossfun=None, *args, **kwargs):
        """One optimisation step from the gradients in ``param.grad``.

        With ``lossfun``, first clears the gradients, computes ``loss = lossfun(*args, **kwargs)``
        and runs ``loss.backward()`` (Chainer's form).
        """
        self._require_target("update")
        if lossfun is not None:
            self.target.cleargrads()
            loss = lossfun(*args, **kwargs)
            loss.backward()
            del loss
        if not self._update_from_param_grads():
            self.pack_grads()
            self.update_packed()

    # Set by an optimizer class whose compiled CPU update can read each parameter's own gradient
    # (read on the class itself, as ``folds_decay``).
    reads_param_grads = False

    def _update_from_param_grads(self) -> bool:
        """The update from each parameter's own gradient array, without packing them first; False
        (nothing done) unless it applies: the optimizer's compiled CPU update reads them
        (``reads_param_grads``), no hook runs, and every gradient is there, C-contiguous, of its
        buffer's dtype, with the compiled kernels on. Packing copies every gradient once per step
        (a pass over 42 MB at CNN/MNIST); the flat gradient buffer then keeps its last contents."""
        if self._hooks or not type(self).__dict__.get("reads_param_grads"):
            return False
        from ..kernels import cpu_compiled

        groups = self.packed_groups()
        grads = []
        for g in groups:
            gs = [p.grad for p in g.params]
            if (any(a is None or a.dtype != g.data.dtype for a in gs) or g.xp is not numpy
                    or not cpu_compiled.usable(g.data, *gs)):
                return False
            grads.append([a.reshape(-1) for a in gs])
        self.t += 1
        for g, gs in zip(groups, grads):
            g.decay, g.param_grads = None, gs
            try:
                self.update_group(g)
            finally:
                g.param_grads = None
        return True

    def update_packed(self):
        """One optimisation step from the already packed gradient buffers (see ``flat_grad``)."""
        self._require_target("update_packed")
        groups = self.packed_groups()
        self.t += 1
        hooks = list(self._hooks.values())
        self._current = groups
        try:
            pre = [h for h in hooks if getattr(h, "timing", "pre") == "pre"]
            folded = self._folded_decay(pre, groups)
            for hook in pre[:-1] if folded is not None else pre:
                hook(self)
            for g in groups:
                g.decay = folded
            for g in groups:
                with backend.get_device_from_array(g.data).scope():
                    held = g.hold_missing() if g.missing else None
                    self.update_group(g)
                    if held:
                        g.restore(held)
            for hook in hooks:
                if getattr(hook, "timing", "pre") == "post":
                    hook(self)
        finally:
            self._current = None

    # Set by an optimizer class whose compiled CPU update takes ``group.decay`` in its own pass (read
    # on the class itself: a subclass that overrides the update does not inherit the promise).
    folds_decay = False

    def _folded_decay(self, pre, groups):
        """The rate of a WeightDecay that runs last among the pre-hooks, when the compiled update
        applies it in the same pass (the result is the same bits as the hook, then the update)."""
        from ..kernels import cpu_compiled
        from .hooks import WeightDecay

        if not (type(self).__dict__.get("folds_decay") and pre and type(pre[-1]) is WeightDecay):
            return None
        if not all(cpu_compiled.usable(g.data, g.grad) for g in groups):
            return None
        return pre[-1].rate

    def update_group(self, group):  # pragma: no cover - abstract
        raise NotImplementedError
