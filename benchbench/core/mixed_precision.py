"""Mixed-precision training: float16 compute, float32 master weights, loss scaling.

The Parameters stay float32 (the *master weights*). Under
``using_config("compute_dtype", numpy.float16)`` every link casts its parameters and its
input to float16 at use with :func:`~benchbench.core.functions.cast`, so the products run in
float16 and the gradients flow back through the cast into float32 ``param.grad``.
Batch normalization computes its statistics and normalisation in float32 (input cast up,
output cast down): a float16 sum of squares over ``N*H*W`` values overflows.

Three pieces, used together (this is what the executor does)::

    dtype = mixed_precision.compute_dtype("float16")          # None for "float32"
    fmodel = mixed_precision.MixedPrecisionModel(model, dtype)  # casts the batch in, the output out
    opt = mixed_precision.MixedPrecisionOptimizer(optimizers.Adam(), mixed_precision.loss_scaler_for(dtype))
    opt.setup(model)                                           # then wrap in DataParallelOptimizer if needed
    loss = F.softmax_cross_entropy(fmodel(x), t)               # the loss is computed in float32
    model.cleargrads()
    opt.backward(loss)                                         # backward of loss * scale
    opt.update()                                               # unscale, skip on overflow, inner update

:class:`MixedPrecisionModel` casts float inputs to the compute dtype, runs the model under
that ``compute_dtype`` and casts float16 outputs up to float32, so the loss and its
reductions are computed in float32 whatever the workload's loss function is.

:class:`LossScaler` multiplies the loss gradient by ``scale`` (float16 gradients smaller than
6e-8 would otherwise flush to zero), then, on the packed float32 gradients, checks
finiteness with one reduction and divides by ``scale`` with one in-place operation. A step
whose gradients overflowed is skipped (the inner optimizer does not run: weights, state
and ``t`` are unchanged). Dynamic scaling halves the scale on overflow and doubles it
after ``growth_interval`` good steps.

bfloat16 is refused (``compute_dtype("bfloat16")`` raises a ``ValueError`` saying why):
numpy and cupy have no bfloat16 of their own. The ``ml_dtypes`` bfloat16 that CuPy 14
accepts is not a float kind to numpy (``dtype.kind == "V"``: every function here rejects
it), and even past those checks numpy's matmul returns float32 for it and einsum rejects
it, so a run would not stay in bfloat16; and emulating bfloat16 by rounding float32 mantissas would time
float32 arithmetic and report it as bfloat16. Either way the comparison tables would
show a speed that is not bfloat16's.
"""
from __future__ import annotations

import math

import numpy

from . import backend, kernels
from .config import using_config
from .functions._checks import OPERAND_TYPES
from .functions.array import cast
from .link import Link
from .optimizers.wrapper import OptimizerWrapper
from .variable import Variable

__all__ = [
    "compute_dtype", "to_compute_dtype", "MixedPrecisionModel", "LossScaler", "loss_scaler_for",
    "MixedPrecisionOptimizer",
]

_FLOAT32 = numpy.dtype(numpy.float32)


def compute_dtype(name):
    """The compute dtype for a ``--dtype`` name: None for float32 (no mixed precision).

    Args:
        name: ``"float32"``, ``"float16"`` or ``"bfloat16"``.

    Returns:
        None or ``numpy.dtype("float16")``.

    Raises:
        ValueError: an unknown name, or bfloat16 (see the module docstring).
    """
    if name == "float32":
        return None
    if name == "float16":
        return numpy.dtype(numpy.float16)
    if name == "bfloat16":
        raise ValueError(
            "compute_dtype: bfloat16 is not supported: numpy and cupy have no native bfloat16 (ml_dtypes' "
            "bfloat16 is not a float kind to numpy and its matmul returns float32), and emulating it in "
            "float32 storage would time float32 arithmetic; use float16 or float32"
        )
    raise ValueError(f"compute_dtype: name must be 'float32', 'float16' or 'bfloat16', got {name!r}")


def to_compute_dtype(dtype, *values):
    """Cast each Variable/array in ``values`` to ``dtype`` (None stays None); returns a tuple.

    Links call this with ``config.compute_dtype`` on their input and parameters.
    """
    return tuple(None if v is None else cast(v, dtype) for v in values)


def _is_low_float(a):
    dt = getattr(a, "dtype", None)
    if dt is None or not isinstance(a, OPERAND_TYPES):
        return False
    return dt.kind == "f" and dt.itemsize < 4


def _cast_input(a, dtype):
    if isinstance(a, OPERAND_TYPES) and a.dtype.kind == "f" and a.dtype != dtype:
        return cast(a, dtype) if isinstance(a, Variable) else a.astype(dtype)
    return a


def _cast_output(out):
    if isinstance(out, (tuple, list)):
        return type(out)(_cast_output(o) for o in out)
    if _is_low_float(out):
        return cast(out, _FLOAT32)
    return out


class MixedPrecisionModel:
    """Calls ``model`` in mixed precision: float inputs cast to ``dtype``, float16 outputs to float32.

    Every other attribute is the model's (``fmodel.cleargrads()``, ``fmodel.rnn``...).

    Args:
        model: the Link (its Parameters stay float32).
        dtype: the compute dtype (see :func:`compute_dtype`).

    Example:
        >>> fmodel = MixedPrecisionModel(model, numpy.float16)
        >>> loss = F.softmax_cross_entropy(fmodel(x), t)     # logits float32, layers float16
    """

    def __init__(self, model, dtype):
        if not isinstance(model, Link):
            raise TypeError(f"MixedPrecisionModel: model must be a Link, got {type(model).__name__}")
        dt = numpy.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"MixedPrecisionModel: dtype must be a float dtype, got {dt}")
        self.__dict__["model"] = model
        self.__dict__["dtype"] = dt

    def __getattr__(self, name):
        return getattr(self.__dict__["model"], name)

    def __call__(self, *args, **kwargs):
        dt = self.dtype
        args = tuple(_cast_input(a, dt) for a in args)
        kwargs = {k: _cast_input(v, dt) for k, v in kwargs.items()}
        with using_config("compute_dtype", dt):
            out = self.model(*args, **kwargs)
        return _cast_output(out)

    def __repr__(self):
        return f"MixedPrecisionModel({self.model!r}, {self.dtype})"


class LossScaler:
    """Loss scaling: ``backward`` of ``loss * scale``, then unscaling with an overflow check.

    Args:
        scale: the initial scale (> 0); 2**15 by default.
        dynamic: halve the scale on overflow and double it after ``growth_interval`` good
            steps (otherwise the scale stays fixed; overflowed steps are still skipped).
        growth_interval: good steps between two doublings (>= 1).
        min_scale, max_scale: bounds of the dynamic scale.

    Attributes:
        scale: the current scale.
        good_steps: finite steps since the last change of scale.
        skipped_steps: steps skipped because a gradient was inf or NaN.

    Example:
        >>> scaler = LossScaler()
        >>> scaler.backward(loss)          # instead of loss.backward()
    """

    def __init__(self, scale=2.0 ** 15, dynamic=True, growth_interval=1000, min_scale=1.0, max_scale=2.0 ** 24):
        for name, v in (("scale", scale), ("min_scale", min_scale), ("max_scale", max_scale)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < math.inf):
                raise ValueError(f"LossScaler: {name} must be a positive finite number, got {v!r}")
        if not min_scale <= max_scale:
            raise ValueError(f"LossScaler: min_scale {min_scale!r} exceeds max_scale {max_scale!r}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval < 1:
            raise ValueError(f"LossScaler: growth_interval must be an int >= 1, got {growth_interval!r}")
        self.scale = float(scale)
        self.dynamic = bool(dynamic)
        self.growth_interval = growth_interval
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.good_steps = 0
        self.skipped_steps = 0
        self.scaled = False  # set by backward, cleared by the optimizer's update
        self._device = None  # graph mode: the optimizers.device_update.DeviceUpdate holding the scale on the device

    def backward(self, loss, retain_graph=False):
        """Run ``loss.backward()`` with the gradient seeded by ``scale`` (the loss value is unchanged).

        Args:
            loss: a scalar float32 (or float64) Variable.
            retain_graph: as in :meth:`Variable.backward`.

        Raises:
            TypeError: ``loss`` is not a Variable, or is float16 (compute the loss in float32).
            ValueError: ``loss`` is not a scalar.
        """
        if not isinstance(loss, Variable):
            raise TypeError(f"LossScaler.backward: loss must be a Variable, got {type(loss).__name__}")
        if loss.size != 1:
            raise ValueError(f"LossScaler.backward: loss must be a scalar, got shape {loss.shape}")
        if loss.dtype.kind != "f" or loss.dtype.itemsize < 4:
            raise TypeError(
                f"LossScaler.backward: loss must be float32 or float64, got {loss.dtype}; compute the loss "
                "from float32 logits (MixedPrecisionModel casts the model's output up)"
            )
        if self._device is not None:  # graph mode: the scale is read from the device at every replay
            loss.grad = self._device.scale_seed(loss)
        else:
            loss.grad = loss.xp.full(loss.shape, self.scale, dtype=loss.dtype)
        # A float16 overflow in backward is expected here and handled by ``unscale``: no numpy warning.
        with numpy.errstate(over="ignore", invalid="ignore"):
            loss.backward(retain_graph=retain_graph)
        self.scaled = True

    def unscale(self, grads):
        """Check ``grads`` (flat arrays) for inf/NaN; if all are finite, divide them by ``scale`` in place.

        One reduction per array (a sum, which is inf or NaN when any element is), their total
        read back to the host once, the step's only device-to-host transfer, and one in-place
        multiply per array. On a GPU (float32 buffers), one fused kernel per array does both
        (``kernels.cuda_mixed``: it unscales and flags any inf/NaN) and the flag is read back once.
        Returns whether the gradients were finite (None in graph mode, where the check stays on the device).
        """
        grads = list(grads)
        if not grads:
            return True
        if self._device is not None:  # graph mode: the check stays on the device (DeviceUpdate.unscale)
            self._device.unscale(grads)
            return None
        if kernels.fusable(*grads) and len({g.dtype for g in grads}) == 1:
            from .kernels import cuda_mixed

            return cuda_mixed.unscale_check(backend.get_array_module(grads[0]), grads, self.scale)
        with numpy.errstate(over="ignore", invalid="ignore"):
            total = grads[0].sum(dtype=numpy.float32)
            for g in grads[1:]:  # the flat buffers of one device: the sums add up there
                total = total + g.sum(dtype=numpy.float32)
            if not math.isfinite(float(total)):
                return False
        if self.scale != 1.0:
            inv = 1.0 / self.scale
            for g in grads:
                g *= inv
        return True

    def update(self, finite):
        """Record a step: count it, and adjust the scale when dynamic."""
        if not finite:
            self.skipped_steps += 1
            self.good_steps = 0
            if self.dynamic:
                self.scale = max(self.scale / 2.0, self.min_scale)
            return
        self.good_steps += 1
        if self.dynamic and self.good_steps >= self.growth_interval:
            self.scale = min(self.scale * 2.0, self.max_scale)
            self.good_steps = 0

    def __repr__(self):
        return (f"LossScaler(scale={self.scale}, dynamic={self.dynamic}, growth_interval={self.growth_interval}, "
                f"skipped_steps={self.skipped_steps})")


def loss_scaler_for(dtype):
    """The default scaler for a compute dtype: dynamic from 2**15 for float16, a static 1 otherwise
    (which still skips a step whose gradients are not finite)."""
    dt = numpy.dtype(dtype)
    if dt == numpy.float16:
        return LossScaler()
    return LossScaler(scale=1.0, dynamic=False)


class MixedPrecisionOptimizer(OptimizerWrapper):
    """Wrap an optimizer for mixed precision: unscale the packed gradients, skip overflowed steps.

    ``pack_grads()`` and ``update_packed()`` keep the inner optimizer's protocol, so
    ``DataParallelOptimizer(MixedPrecisionOptimizer(inner), comm)`` all-reduces the scaled
    gradients and every rank then takes the same skip decision on the same reduced buffer.
    Hyper-parameters, hooks and ``t`` read and write through to ``inner`` (its hooks run
    on the unscaled gradients).

    Args:
        inner: an optimizer from ``benchbench.core.optimizers`` (float32 parameters).
        loss_scaler: a :class:`LossScaler`; a dynamic one by default.

    Example:
        >>> opt = MixedPrecisionOptimizer(optimizers.MomentumSGD(0.1)).setup(model)
        >>> model.cleargrads(); opt.backward(loss); opt.update()
    """

    _own = OptimizerWrapper._own | {"loss_scaler"}

    def __init__(self, inner, loss_scaler=None):
        super().__init__(inner)
        if loss_scaler is None:
            loss_scaler = LossScaler()
        elif not isinstance(loss_scaler, LossScaler):
            raise TypeError(
                f"MixedPrecisionOptimizer: loss_scaler must be a LossScaler, got {type(loss_scaler).__name__}"
            )
        self.loss_scaler = loss_scaler

    @property
    def loss_scale(self):
        """The current loss scale."""
        return self.loss_scaler.scale

    @property
    def skipped_steps(self):
        """Steps skipped because the gradients overflowed."""
        return self.loss_scaler.skipped_steps

    def backward(self, loss, retain_graph=False):
        """``loss.backward()`` with the loss scaled (see :meth:`LossScaler.backward`)."""
        self.loss_scaler.backward(loss, retain_graph=retain_graph)

    def update(self, lossfun=None, *args, **kwargs):
        """One step from the (scaled) gradients in ``param.grad``; with ``lossfun``, first computes them."""
        if self.target is None:
            raise RuntimeError("MixedPrecisionOptimizer.update: call setup(link) first")
        if lossfun is not None:
            self._grads_from(lossfun, *args, **kwargs)
        self.pack_grads()
        self.update_packed()

    def update_packed(self):
        """Unscale the packed gradients and run the inner update, or skip it on inf/NaN."""
        groups = self.inner.packed_groups()
        for g in groups:
            if g.grad.dtype.itemsize < 4:
                raise TypeError(
                    f"MixedPrecisionOptimizer.update_packed: the master weights must be float32, "
                    f"got {g.grad.dtype} parameters {g.names[:3]}"
                )
        scaler = self.loss_scaler
        if not scaler.scaled and scaler.scale != 1.0:
            raise RuntimeError(
                "MixedPrecisionOptimizer.update_packed: the gradients were not computed with the loss scaled; "
                "call optimizer.backward(loss) instead of loss.backward()"
            )
        scaler.scaled = False
        finite = scaler.unscale([g.grad for g in groups])
        if finite is None:  # graph mode: the update kernels skip on the device flag; DeviceUpdate.finish counts
            self.inner.update_packed()
            return
        scaler.update(finite)
        if finite:
            self.inner.update_packed()

    def __repr__(self):
        return f"MixedPrecisionOptimizer({type(self.inner).__name__}, {self.loss_scaler!r})"
