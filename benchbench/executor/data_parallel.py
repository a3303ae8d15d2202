"""Data parallelism as a wrapper around an optimizer (the ChainerMN shape).

``setup(model)`` broadcasts every parameter from rank 0 once, in sorted name order, so all
ranks start from the same weights. ``update()`` packs every gradient into one contiguous
buffer, all-reduces it (mean over ranks), hands each parameter a view of the averaged
gradient, and runs the inner optimizer's update. Each rank trains on its own shard of every
global batch; with the mean of the shard-mean gradients this is the single-process gradient
of the global batch.
"""
from __future__ import annotations

import time

from ..core import backend


class DataParallelOptimizer:
    """Wrap ``inner`` (a set-up-able optimizer) so its updates are data parallel over ``comm``.

    Args:
        inner: an optimizer from ``benchbench.core.optimizers`` (not yet set up).
        comm: a communicator from ``benchbench.executor.communicators.create``.

    Attributes:
        last_allreduce_s: seconds the last gradient all-reduce took (device-synchronised).
        allreduce_bytes: size of the packed gradient buffer in bytes.
    """

    def __init__(self, inner, comm):
        if not hasattr(inner, "setup") or not hasattr(inner, "update"):
            raise TypeError(f"DataParallelOptimizer: inner must be an optimizer, got {type(inner).__name__}")
        self.inner = inner
        self.comm = comm
        self.target = None
        self.last_allreduce_s = 0.0
        self.allreduce_bytes = 0
        self._flat = None
        self._layout = None
        self._uninitialized = False

    def __getattr__(self, name):
        # Hyper-parameters, hooks and the step counter of the inner optimizer stay reachable.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def setup(self, link):
        """Set up the inner optimizer on ``link`` and broadcast its parameters from rank 0."""
        self.target = link
        self.inner.setup(link)
        self.broadcast_params()
        self._uninitialized = any(p.array is None for p in self._params())
        return self

    def _params(self):
        return [p for _, p in sorted(self.target.namedparams(), key=lambda kv: kv[0])]

    def broadcast_params(self):
        """Give every rank rank 0's parameters (call again after lazily initialised ones appear)."""
        for p in self._params():
            if p.array is None:
                continue
            if not p.array.flags.c_contiguous:
                p.array = p.array.copy()
            self.comm.broadcast(p.array, root=0)

    def _pack(self, params):
        layout = tuple((id(p), p.array.shape, p.array.dtype) for p in params)
        if layout != self._layout:
            xp = backend.get_array_module(params[0].array)
            dtype = params[0].array.dtype
            total = sum(p.array.size for p in params)
            self._flat = xp.empty(total, dtype=dtype)
            self._layout = layout
            self.allreduce_bytes = self._flat.nbytes
        flat = self._flat
        offset = 0
        for p in params:
            n = p.array.size
            if p.grad is None:
                flat[offset:offset + n] = 0
            else:
                flat[offset:offset + n] = p.grad.reshape(-1)
            offset += n
        return flat

    def allreduce_grads(self):
        """All-reduce (mean) every gradient through one packed buffer; returns the seconds it took."""
        if self._uninitialized:
            # Lazily initialised parameters appeared at the first forward pass: make sure
            # every rank holds rank 0's values before the first update.
            self.broadcast_params()
            self._uninitialized = any(p.array is None for p in self._params())
        params = [p for p in self._params() if p.array is not None]
        if not params:
            return 0.0
        flat = self._pack(params)
        device_sync = backend.synchronize
        device_sync(flat)
        t0 = time.perf_counter()
        self.comm.allreduce_mean(flat)
        device_sync(flat)
        elapsed = time.perf_counter() - t0
        offset = 0
        for p in params:
            n = p.array.size
            p.grad = flat[offset:offset + n].reshape(p.array.shape)
            offset += n
        self.last_allreduce_s = elapsed
        return elapsed

    def update(self, lossfun=None, *args, **kwargs):
        """Optionally compute the loss and gradients, all-reduce them, then run the inner update."""
        if lossfun is not None:
            loss = lossfun(*args, **kwargs)
            self.target.cleargrads()
            loss.backward()
        self.allreduce_grads()
        self.inner.update()
