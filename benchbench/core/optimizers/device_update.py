"""Graph mode of an optimizer: the values that change from step to step, read from device memory.

A CUDA graph replays the kernels it captured with the arguments they had at capture. A learning
rate passed as a kernel argument would be frozen into the graph, and so would Adam's bias-corrected
step (it changes every step), mixed precision's loss scale, and every decision the host takes on a
value read back (skip a step whose gradients overflowed). In graph mode therefore:

- each packed group's fused update reads its scalars (``Optimizer.kernel_scalars(t)``, in the order
  of ``kernels.cuda_update``'s ``*_device`` kernels) from a small device vector, which
  :meth:`DeviceUpdate.stage` rewrites from the host before every replay, for the step about to run;
- mixed precision seeds the backward with the loss scale and unscales with its inverse, both read
  from a device vector; the overflow flag stays on the device, and the update kernels do nothing
  where it is set (the eager step skips the update on the host);
- the host bookkeeping of a step (``t``, the dynamic loss scale, the skipped-step count) runs after
  the replay, in :meth:`DeviceUpdate.finish`, from the flag read back once: the values then follow
  the eager step's exactly.

The eager step never sees any of this: with no ``DeviceUpdate`` installed the optimizers call the
same kernels with host scalars as before.

Example:
    >>> dev = DeviceUpdate(optimizer)            # doctest: +SKIP
    >>> dev.unsupported() is None                # doctest: +SKIP
    True
    >>> dev.install(); ...capture the step...; dev.stage(); graph.launch(); dev.finish()  # doctest: +SKIP
"""
from __future__ import annotations

import numpy

from .. import backend, kernels


def _chain(optimizer):
    """``(base optimizer, LossScaler or None)`` of an optimizer and the wrappers around it."""
    scaler, base = None, optimizer
    while "inner" in getattr(base, "__dict__", {}):
        own = base.__dict__.get("loss_scaler")
        scaler = scaler if scaler is not None else own
        base = base.__dict__["inner"]
    return base, scaler


class DeviceUpdate:
    """The device-side scalars and flags of one optimizer chain in graph mode.

    Args:
        optimizer: a set-up optimizer, or a wrapper of one (mixed precision, data parallel).

    Attributes:
        base: the innermost optimizer (its ``t`` and packed groups).
        scaler: the ``LossScaler`` of mixed precision, or None.
        skip_flag: the device flag the captured overflow check sets (None without mixed precision).
    """

    def __init__(self, optimizer):
        self.base, self.scaler = _chain(optimizer)
        self.vectors: dict = {}  # id(group) -> the group's device vector of kernel scalars
        self.zero: dict = {}  # id(group) -> a device zero: "never skip" without mixed precision
        self.scale_vec = None  # [scale, 1 / scale] on the device (mixed precision)
        self.skip_flag = None
        self.installed = False

    def unsupported(self) -> str | None:
        """Why this optimizer cannot run in graph mode (one clause), or None when it can."""
        base = self.base
        if not callable(getattr(type(base), "kernel_scalars", None)):
            return (f"{type(base).__name__} has no device-scalar update: its learning rate would be frozen "
                    "into the graph")
        groups = base.packed_groups()
        if not groups or not all(kernels.fusable(g.data) for g in groups):
            return f"the {type(base).__name__} update is not one fused GPU kernel per packed buffer"
        if self.scaler is not None and len({g.data.dtype for g in groups}) != 1:
            return "mixed precision over parameters of several dtypes"
        if any(g.missing for g in groups):
            return "some parameters had no gradient (their update is held back on the host)"
        return None

    def install(self) -> None:
        """Allocate the device scalars and route the optimizer's GPU updates through them."""
        groups = self.base.packed_groups()
        for g in groups:
            with backend.get_device_from_array(g.data).scope():
                n = len(self.base.kernel_scalars(self.base.t + 1))
                self.vectors[id(g)] = g.xp.zeros(n, dtype=g.data.dtype)
                self.zero[id(g)] = g.xp.zeros(1, dtype=g.data.dtype)
        if self.scaler is not None:
            g = groups[0]
            with backend.get_device_from_array(g.data).scope():
                self.scale_vec = g.xp.zeros(2, dtype=g.data.dtype)
            self.scaler._device = self
        self.base._device = self
        self.installed = True

    def uninstall(self) -> None:
        """Back to the eager updates (host scalars); the device arrays are dropped."""
        self.base._device = None
        if self.scaler is not None:
            self.scaler._device = None
        self.vectors, self.zero, self.scale_vec, self.skip_flag = {}, {}, None, None
        self.installed = False

    def arrays(self) -> list:
        """Every device array the captured update reads (held for the graph's lifetime)."""
        out = list(self.vectors.values()) + list(self.zero.values())
        return out + [a for a in (self.scale_vec, self.skip_flag) if a is not None]

    # -- inside the captured step ------------------------------------------------------
    def update(self, name, group) -> None:
        """The group's fused update ``name`` with its scalars and skip flag read from the device."""
        from ..kernels import cuda_update

        skip = self.skip_flag if self.skip_flag is not None else self.zero[id(group)]
        cuda_update.device_update(name, group, self.vectors[id(group)], skip)

    def scale_seed(self, loss):
        """The gradient that seeds a scaled backward: the loss scale, copied from the device."""
        return self.scale_vec[0:1].astype(loss.dtype).reshape(loss.shape)

    def unscale(self, grads) -> None:
        """Divide ``grads`` by the loss scale (read from the device) and set :attr:`skip_flag` on the
        device where any value is inf or NaN: mixed precision's check, never read back here."""
        from ..kernels import cuda_mixed
        from ..kernels.fusion import get

        xp = backend.get_array_module(grads[0])
        flag = xp.zeros(1, dtype=grads[0].dtype)
        inv = self.scale_vec[1]  # a 0-d view: read at every replay
        for g in grads:
            get(*cuda_mixed.KERNELS["unscale_check"])(inv, g, flag)
        self.skip_flag = flag

    # -- around each replay ------------------------------------------------------------
    def stage(self) -> None:
        """Write the scalars of the step about to run (step ``t + 1``) into the device vectors."""
        base = self.base
        for g in base.packed_groups():
            vec = self.vectors[id(g)]
            vec.set(numpy.asarray(base.kernel_scalars(base.t + 1), dtype=vec.dtype))
        if self.scaler is not None:
            s = self.scaler.scale
            self.scale_vec.set(numpy.asarray([s, 1.0 / s], dtype=self.scale_vec.dtype))

    def finish(self) -> bool:
        """The host bookkeeping of one replayed step, as the eager step does it: ``t`` advances unless
        the step was skipped, and the loss scale adapts. Mixed precision reads the overflow flag back
        (one transfer, as the eager step's check). Returns whether the update ran."""
        finite = True
        if self.scaler is not None:
            finite = not bool(backend.as_numpy(self.skip_flag)[0])
            self.scaler.update(finite)
        if finite:
            self.base.t += 1
        return finite
