"""Device-synchronised step and phase timing that keeps every raw sample.

On the CPU a clock read is ``time.perf_counter()``. On a GPU every boundary
is a CUDA event recorded on the current stream, and a step's durations are
read once its last event has completed, so the clock never runs ahead of
queued kernels. cupy is reached only through ``core.backend``.

Example:
    >>> timer = StepTimer("cpu")
    >>> with timer.step():
    ...     with timer.phase("forward"):
    ...         pass
    >>> len(timer.step_s), list(timer.phases_s)
    (1, ['forward'])
"""
from __future__ import annotations

import contextlib
import time

from benchbench.core import backend
from benchbench.phases import PHASES  # noqa: F401  (the phase names a step is timed in, as timing.PHASES)


class _CpuClock:
    """Boundaries are ``perf_counter`` readings."""

    def mark(self):
        return time.perf_counter()

    def elapsed(self, start, end) -> float:
        return end - start

    def wait(self, mark):
        return None


class _GpuClock:
    """Boundaries are CUDA events on the current stream of one device."""

    def __init__(self, device: backend.Device):
        self._device = device

    def mark(self):
        cupy = backend.cupy
        with self._device.scope():
            event = cupy.cuda.Event()
            event.record()
        return event

    def elapsed(self, start, end) -> float:
        return backend.cupy.cuda.get_elapsed_time(start, end) / 1e3

    def wait(self, mark):
        mark.synchronize()


def _clock_for(device: backend.Device):
    return _GpuClock(device) if device.kind == "gpu" else _CpuClock()


class Stopwatch:
    """Elapsed seconds since construction (or ``reset``), device-synchronised at every read.

    Args:
        device: a ``core.backend.Device`` or a spec such as ``"cpu"`` or ``"gpu:0"``.
    """

    def __init__(self, device="cpu"):
        self._device = backend.Device(device)
        self.reset()

    def reset(self) -> None:
        """Restart from zero (after synchronising the device)."""
        self._device.synchronize()
        self._t0 = time.perf_counter()

    def read(self) -> float:
        """Seconds since the start, after the device finished all queued work."""
        self._device.synchronize()
        return time.perf_counter() - self._t0


class StepTimer:
    """Times training steps and the phases inside them; keeps every sample.

    A step is the span of ``with timer.step():``; inside it, ``with timer.phase(name):``
    blocks time the phases (``data``, ``forward``, ``backward``, ``update``,
    ``allreduce`` or any other name). Samples are in seconds, one entry per step
    for the step and for every phase the step used.

    Args:
        device: a ``core.backend.Device`` or a spec such as ``"cpu"`` or ``"gpu:0"``.

    Attributes:
        step_s: list of step durations in seconds.
        phases_s: dict phase name -> list of durations in seconds.
    """

    def __init__(self, device="cpu"):
        self.device = backend.Device(device)
        self._clock = _clock_for(self.device)
        self.step_s: list[float] = []
        self.phases_s: dict[str, list[float]] = {}
        self._marks: list | None = None

    def reset(self) -> None:
        """Drop every sample taken so far (for example after warm-up steps)."""
        self.step_s = []
        self.phases_s = {}

    @contextlib.contextmanager
    def step(self):
        """Time one step; nested ``phase`` blocks are recorded with it."""
        if self._marks is not None:
            raise RuntimeError("StepTimer.step: steps cannot be nested")
        self.device.synchronize()
        start = self._clock.mark()
        self._marks = []
        ok = False
        try:
            yield self
            ok = True
        finally:
            phases, self._marks = self._marks, None
            end = self._clock.mark()
            self._clock.wait(end)
            if ok:
                self.step_s.append(self._clock.elapsed(start, end))
                for name, a, b in phases:
                    self.phases_s.setdefault(name, []).append(self._clock.elapsed(a, b))

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time one phase of the current step.

        Args:
            name: the phase name, e.g. ``"forward"``.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"StepTimer.phase: name must be a non-empty string, got {name!r}")
        if self._marks is None:
            raise RuntimeError("StepTimer.phase: call it inside `with timer.step():`")
        a = self._clock.mark()
        try:
            yield
        finally:
            if self._marks is not None:
                self._marks.append((name, a, self._clock.mark()))

    def split_last(self, name: str, seconds: float, from_phase: str) -> None:
        """Move ``seconds`` of the last step's ``from_phase`` sample into a new ``name`` sample.

        Used for the all-reduce, which runs inside the optimizer update and reports
        its own duration.

        Args:
            name: the phase that receives the time, e.g. ``"allreduce"``.
            seconds: non-negative duration measured inside ``from_phase``.
            from_phase: the phase it was part of, e.g. ``"update"``.
        """
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"StepTimer.split_last: seconds must be a non-negative number, got {seconds!r}")
        samples = self.phases_s.get(from_phase)
        if not samples:
            raise ValueError(f"StepTimer.split_last: no {from_phase!r} sample to split")
        seconds = min(float(seconds), samples[-1])
        samples[-1] -= seconds
        self.phases_s.setdefault(name, []).append(seconds)
