"""One training step, built once: the model on its device, the optimizer (mixed precision and data
parallel wrapped around it where asked), and the step itself (forward, backward, update).

The cell's training loop, the largest-batch search, ``benchbench profile`` and
``benchmarks/train_step.py`` all build their step here, so what they time or probe is the same step.
"""
from __future__ import annotations

import contextlib
import dataclasses

from benchbench.phases import BACKWARD, FORWARD, UPDATE


@dataclasses.dataclass
class TrainingStep:
    """A workload's model and optimizer on one device, and one training step over them.

    Attributes:
        wl, params: the workload and its resolved parameters.
        model: the float32 model (the master weights under mixed precision).
        fmodel: the model the forward runs (``model``, or its mixed-precision view).
        optimizer: the optimizer, set up on ``model`` (wrapped for mixed precision and data parallel).
        mixed: the forward runs in a lower precision with loss scaling.
        cpu_kernels: on the CPU, what ``core.kernels.cpu_compiled.prepare`` did before the first
            step (the compiled kernels' path, threads, compile or cache-load seconds); else None.
    """

    wl: object
    params: dict
    model: object
    fmodel: object
    optimizer: object
    mixed: bool
    cpu_kernels: dict | None = None

    def __call__(self, x, t, timer=None):
        """Forward, backward and update on the batch ``(x, t)`` (already on the device).

        Args:
            timer: an ``executor.timing.StepTimer`` inside its ``step()``: the forward, backward and
                update phases are timed in it; None times nothing.

        Returns:
            ``(loss, metric)`` as the workload's forward gives them (device values, not read back).
        """
        phase = timer.phase if timer is not None else _untimed
        with phase(FORWARD):
            loss, metric = self.wl.forward(self.fmodel, x, t, self.params)
        with phase(BACKWARD):
            self.model.cleargrads()
            if self.mixed:
                self.optimizer.backward(loss)  # scales the loss; the update unscales
            else:
                loss.backward()
        with phase(UPDATE):
            self.optimizer.update()
        return loss, metric


@contextlib.contextmanager
def _untimed(name):
    yield


def build_step(wl, params: dict, device, dtype: str = "float32", wrap=None) -> TrainingStep:
    """A fresh model of ``wl`` on ``device`` and its optimizer, as one :class:`TrainingStep`.

    Args:
        wl: the registry Workload; ``params`` its resolved parameters.
        device: a ``core.backend.Device`` or spec (``"cpu"``, ``"gpu:0"``).
        dtype: the compute dtype (``float32``, or ``float16``/``bfloat16`` for mixed precision on a GPU).
        wrap: ``wrap(optimizer) -> optimizer`` applied last, before ``setup`` (data parallel), or None.

    Raises:
        ValueError: ``dtype`` names no compute dtype.
    """
    from benchbench.core import mixed_precision

    model = wl.build_model(params)
    model.to_device(str(device))
    optimizer, fmodel = wl.build_optimizer(params), model
    compute = mixed_precision.compute_dtype(dtype)
    if compute is not None:
        # float32 master weights in the model; the forward runs in ``compute`` with loss scaling.
        optimizer = mixed_precision.MixedPrecisionOptimizer(optimizer, mixed_precision.loss_scaler_for(compute))
        fmodel = mixed_precision.MixedPrecisionModel(model, compute)
    if wrap is not None:
        optimizer = wrap(optimizer)
    optimizer.setup(model)
    kernels = None
    if getattr(device, "kind", str(device).partition(":")[0]) == "cpu":
        from benchbench.core.kernels import cpu_compiled

        # Compiled (or loaded from the cache) now, under the cell's BLAS thread limit: no step pays for it.
        kernels = cpu_compiled.prepare("float32")  # the master weights' dtype
    return TrainingStep(wl, params, model, fmodel, optimizer, compute is not None, kernels)
