"""Whole-step CUDA graphs: a fixed-shape training step captured once and replayed every step.

DESIGN
------
A GPU step launched op by op from Python costs the host hundreds of launches; for a fixed-shape
step the standard answer is a CUDA graph (cupy: ``Stream.begin_capture`` / ``end_capture`` ->
``Graph.launch``). :class:`GraphStep` wraps the one ``TrainingStep`` (``executor.step``):

1. **Warm-up, eagerly.** Step 1 runs eagerly (parameters initialised, packed, kernels compiled,
   cuBLAS and NCCL set up). Step 2 is the capture step:
2. **Self-check.** The state (parameters, optimizer state, BatchNorm statistics, ``t``, the loss
   scale) is copied; the eager step runs on the batch and its loss and resulting state are kept;
   the state is put back. The batch is copied into static input buffers and the whole step
   (forward, loss, backward, all-reduce, update) is captured on a side stream, then replayed
   once. Its loss and state must equal the eager step's: bit for bit where the kernels are the
   same (they are: graph mode's update kernels compute the eager kernels' expressions); a
   difference within :data:`TOLERANCE` is accepted and recorded (atomics on a real GPU may
   reorder sums). Otherwise, or when the capture raised, the state is put back, the eager step
   runs again and the cell stays eager, recording why: a wrong graph never produces a figure.
   Data-parallel ranks agree (one host all-gather) before replaying and after checking, so they
   never disagree on whether the NCCL call of the graph runs.
3. **Replay.** Each later step copies the host batch (and the host's random draws of the step,
   ``TrainingStep.draws``) into the static buffers, writes the step's scalars into device memory
   (``DeviceUpdate.stage``: learning rate, Adam's bias correction, the loss scale), launches the
   graph, and does the host bookkeeping the eager step does (``DeviceUpdate.finish``: ``t``, the
   dynamic loss scale after mixed precision's overflow flag is read back, which the eager step
   reads too; host counters such as BatchNorm's ``N`` advance as the capture advanced them). A batch
   of other shapes (none in training: the iterator drops each epoch's incomplete last batch) would
   run eagerly and be counted.

**Memory.** A graph replays into the addresses it captured, so nothing else may ever be handed
that memory while the graph lives. During the capture every allocation comes from a private
``cupy.cuda.MemoryPool`` (``set_allocator``), as PyTorch's graph pool does: a block freed and
reused inside the capture is reused in the same order at every replay, and a block freed after
the capture (a dropped gradient, a loss Variable) goes back to the private pool, which nothing but
this graph allocates from. Memory allocated before the capture and used by it (parameters and
gradients packed by the optimizer, its state, BatchNorm statistics, the static inputs, the device
scalars) is referenced from :attr:`GraphStep.held` for the graph's lifetime, besides its owners.
:meth:`GraphStep.release` drops the graph first, then the references, then frees the pool.

Things no replay can do are kept out of the captured region or moved to the device: mixed
precision's overflow check and loss-scale update (device flag; host update after the replay), NaN
checks and ``--until target`` (the training loop reads the loss after the step, as before), the
learning-rate schedule (a device scalar rewritten before each replay). A step that draws device
random numbers (dropout on the GPU) would repeat its draws at every replay; the shipped workloads
draw on the host (ResNet's augmentation, passed in as a static input).
"""
from __future__ import annotations

import time

import numpy

from benchbench.phases import GRAPH

MODES = ("on", "off", "auto")
#: accepted difference of a replay from the eager step: |replay - eager| <= ATOL + RTOL * |eager|
TOLERANCE = {"rtol": 1e-5, "atol": 1e-7}


class GraphStep:
    """A training step run eagerly until step 2, then replayed from a CUDA graph (see the module doc).

    Args:
        step: the ``executor.step.TrainingStep`` (on a GPU).
        comm: the data-parallel communicator, or None.
        why_not: why graph mode is not tried for this cell (None: try it).
        requested: the mode asked for (``on``, ``off``, ``auto``).

    Attributes:
        record: the cell's ``graph`` block so far: ``requested``, ``used``, ``reason`` and, once
            captured, ``self_check``, ``captured_at_step``, ``eager_steps`` (:meth:`finish_record`
            adds the launch figures).
        launch_s: host seconds of each ``Graph.launch``.
        held: every device array the graph uses that was allocated before its capture.
    """

    def __init__(self, step, comm=None, why_not: str | None = None, requested: str = "auto"):
        self.step, self.comm = step, comm
        self.record = {"requested": requested, "used": False,
                       "reason": why_not or "not captured yet (step 2 is the capture step)"}
        self.wanted = why_not is None
        self.n = 0
        self.graph = self.pool = self.dev = None
        self.held, self.inputs, self.outputs = [], [], None
        self.host_deltas: list = []
        self.launch_s: list[float] = []
        self.timed_eager = False
        self.sim_launches: list = []  # simulated GPUs: (graph launches, kernel launches) of each timed step

    # -- the step -----------------------------------------------------------------------
    def __call__(self, fetch, device, timer=None):
        """One training step on the host batch ``fetch()`` gives; returns ``(loss, metric)`` (device
        values). :attr:`timed_eager` says whether it ran eagerly with its phases timed."""
        from benchbench.core import backend
        from benchbench.phases import DATA

        phase = timer.phase if timer is not None else _untimed
        self.n += 1
        self.timed_eager = False
        with phase(DATA):
            batch = fetch()
            if self.graph is not None and self._fits(batch):
                for buf, a in zip(self.inputs, (*batch, *self.step.draws(len(batch[0])))):
                    buf.set(numpy.asarray(a, dtype=buf.dtype))
                replay = True
            else:
                x, t = (backend.to_device(a, device) for a in batch)
                replay = False
        if replay:
            with phase(GRAPH):
                self._replay()
            return self.outputs
        if self.n == 2 and self.wanted:
            return self._capture_step(x, t)
        self.timed_eager = timer is not None
        if self.graph is not None:  # a batch of other shapes: eagerly, around the graph
            self.record["eager_steps"] = self.record.get("eager_steps", 0) + 1
            with self._suspended():
                return self.step(x, t, timer)
        return self.step(x, t, timer)

    @property
    def capture_due(self) -> bool:
        """The next step is the capture step (step 2, untimed)."""
        return self.wanted and self.n == 1

    def _fits(self, batch) -> bool:
        return all(getattr(a, "shape", None) == b.shape for a, b in zip(batch, self.inputs))

    def _replay(self) -> None:
        self.dev.stage()
        quiet = numpy.errstate(over="ignore", invalid="ignore")  # as LossScaler.backward: float16 may overflow
        t0 = time.perf_counter()
        if self.dev.scaler is not None:
            with quiet:
                self.graph.launch()
        else:
            self.graph.launch()
        self.launch_s.append(time.perf_counter() - t0)
        self.dev.finish()
        for link, attr, delta in self.host_deltas:
            setattr(link, attr, getattr(link, attr) + delta)

    # -- capture and check ----------------------------------------------------------------
    def _capture_step(self, x, t):
        """Step 2: the eager reference, the capture, one replay compared with it (module doc, 2)."""
        from benchbench.core import backend

        st = self.step
        drawn = st.draws(len(x))
        try:
            saved, why = _State(st), None
        except Exception as e:  # out of memory for the copy: no check, so no graph
            saved, why = None, f"no room for the check's copy of the training state ({type(e).__name__}: {e})"
        ok, why = self._agree(saved is not None, why)  # before any collective: every rank takes one path
        if not ok:
            saved = None
            return self._give_up(why, *st(x, t, None, drawn))
        loss, metric = st(x, t, None, drawn)  # the eager step from the saved state: the reference
        ref = (_host_values(loss, metric), _State(st).host())
        saved.restore()
        ok, why = self._agree(*self._try_capture(x, t, drawn))
        if ok:
            self._replay()
            got = (_host_values(*self.outputs), _State(st).host())
            ok, why, check = _compare(got, ref)
            self.record["self_check"] = check
            ok, why = self._agree(ok, why)
        if ok:
            self.record.update(used=True, reason="captured at step 2; its first replay matched the eager step",
                               captured_at_step=2)
            return self.outputs
        self._give_up(why)
        saved.restore()
        backend.Device(f"gpu:{x.device.id}").synchronize()
        return st(x, t, None, drawn)  # the eager step again, from the same state: the step's result

    def _give_up(self, why, *result):
        self.release()
        self.wanted = False
        self.record.update(used=False, reason=f"eager: {why}")
        return result

    def _try_capture(self, x, t, drawn) -> tuple[bool, str | None]:
        try:
            return self._capture(x, t, drawn)
        except Exception as e:  # out of memory for the graph's buffers, say: the cell stays eager
            return False, f"the capture failed ({type(e).__name__}: {e})"

    def _capture(self, x, t, drawn) -> tuple[bool, str | None]:
        from benchbench.core import backend
        from benchbench.core.optimizers.device_update import DeviceUpdate

        cupy, st = backend.cupy, self.step
        dev = DeviceUpdate(st.optimizer)
        why = dev.unsupported()
        if why is not None:
            return False, why
        dev.install()
        self.dev = dev
        self.inputs = [a.copy() for a in (x, t)] + [cupy.asarray(a) for a in drawn]
        before = _host_counters(st.model)
        t_before = dev.base.t
        self.pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=False)
        previous = cupy.cuda.get_allocator()
        error = graph = None
        try:
            cupy.cuda.set_allocator(self.pool.malloc)
            with stream:
                stream.begin_capture()
                try:
                    out = st(self.inputs[0], self.inputs[1], None, tuple(self.inputs[2:]))
                except Exception as e:  # the capture is invalid now; end it, then say why
                    error = e
                try:
                    graph = stream.end_capture()
                except Exception as e:
                    error = error or e
        finally:
            cupy.cuda.set_allocator(previous)
            dev.base.t = t_before  # the capture ran the host side of an update, not the update
        if error is not None:  # drop the half-made graph now (the error's traceback would keep it alive)
            why = f"the capture failed ({type(error).__name__}: {error})"
            error = graph = out = None
            return False, why
        self.graph, self.outputs = graph, (out[0], out[1])
        self.host_deltas = [(link, attr, getattr(link, attr) - v) for link, attr, v in before
                            if getattr(link, attr) != v]
        for link, attr, v in before:  # as ``t``: the capture ran the host side of a step, not the step
            setattr(link, attr, v)
        groups = _base(st.optimizer).packed_groups()
        self.held = self.inputs + dev.arrays() + _state_arrays(st) + [a for g in groups for a in (g.grad, g.work)]
        return True, None

    def _agree(self, ok: bool, why: str | None) -> tuple[bool, str | None]:
        """Data parallel: go on only when every rank can (a rank alone in an NCCL call would hang)."""
        if self.comm is None or getattr(self.comm, "size", 1) <= 1:
            return ok, why
        votes = self.comm.allgather_obj((bool(ok), why))
        bad = [(r, w) for r, (o, w) in enumerate(votes) if not o]
        if not bad:
            return True, None
        return False, (bad[0][1] if bad[0][0] == getattr(self.comm, "rank", 0) or len(bad) == len(votes)
                       else f"rank {bad[0][0]}: {bad[0][1]}")

    def _suspended(self):
        import contextlib

        dev = self.dev

        @contextlib.contextmanager
        def off():
            scaler = dev.scaler
            dev.base._device = None
            if scaler is not None:
                scaler._device = None
            try:
                yield
            finally:
                dev.base._device = dev
                if scaler is not None:
                    scaler._device = dev

        return off()

    # -- the record -------------------------------------------------------------------------
    def finish_record(self, timed_steps: int | None = None) -> dict:
        """The cell's ``graph`` block: with ``replays`` and ``host_launch_s``, the median host seconds
        of one ``Graph.launch`` over the last ``timed_steps`` replays (the timed ones)."""
        rec = dict(self.record)
        if self.launch_s:
            rec["replays"] = len(self.launch_s)
            timed = self.launch_s[-timed_steps:] if timed_steps else self.launch_s
            rec["host_launch_s"] = float(numpy.median(timed))
        if self.sim_launches:  # the simulated GPUs' counters over the timed steps
            last = self.sim_launches[-timed_steps:] if timed_steps else self.sim_launches
            rec["simulated_launches_per_step"] = {"graph": [g for g, _ in last], "kernel": [k for _, k in last]}
        if self.pool is not None:
            rec["pool_bytes"] = int(self.pool.total_bytes())
        rec["partial_batches"] = ("dropped: training takes full batches only (the iterator drops each epoch's "
                                  "incomplete last batch), in eager and graph mode alike")
        return rec

    def release(self) -> None:
        """Drop the graph, then everything it held, then its private pool (module doc, Memory)."""
        self.graph = None
        if self.dev is not None and self.dev.installed:
            self.dev.uninstall()
        self.held, self.inputs, self.outputs = [], [], None
        if self.pool is not None:
            self.pool.free_all_blocks()


def _untimed(name):
    import contextlib

    return contextlib.nullcontext()


class _State:
    """A device copy of the step's training state, to put back after the eager reference."""

    def __init__(self, st):
        self.st = st
        self.arrays = [(a, a.copy()) for a in _state_arrays(st)]
        base = _base(st.optimizer)
        self.t = base.t
        scaler = _scaler(st.optimizer)
        self.scaler = None if scaler is None else dict(vars(scaler))
        self.counters = _host_counters(st.model)

    def restore(self) -> None:
        for a, copy in self.arrays:
            a[...] = copy
        _base(self.st.optimizer).t = self.t
        scaler = _scaler(self.st.optimizer)
        if scaler is not None:
            vars(scaler).update({k: v for k, v in self.scaler.items() if k != "_device"})
        for link, attr, v in self.counters:
            setattr(link, attr, v)

    def host(self) -> list:
        """The state's values on the host, with ``t``, the loss scale and the host counters (what the
        check compares)."""
        from benchbench.core import backend

        out = [backend.as_numpy(a) for a, _ in self.arrays]
        scaler = _scaler(self.st.optimizer)
        counters = [v for _, _, v in _host_counters(self.st.model)]
        host = [_base(self.st.optimizer).t, scaler.scale if scaler else 0.0, *counters]
        return out + [numpy.asarray(host, numpy.float64)]


def _base(opt):
    from benchbench.core.optimizers.device_update import _chain

    return _chain(opt)[0]


def _scaler(opt):
    from benchbench.core.optimizers.device_update import _chain

    return _chain(opt)[1]


def _state_arrays(st) -> list:
    """The device arrays that carry training state from step to step: packed parameters and
    optimizer state, and the model's persistent buffers."""
    from benchbench.core import backend

    out = []
    for g in _base(st.optimizer).packed_groups():
        out += [g.data] + [g.state[k] for k in sorted(g.state)]
    for _, (link, attr) in sorted(st.model.namedpersistents(), key=lambda kv: kv[0]):
        value = getattr(link, attr, None)
        if backend.is_array(value):
            out.append(value)
    return out


def _host_counters(model) -> list:
    """``(link, attr, value)`` of the model's host-side numeric persistents (BatchNorm's ``N``)."""
    out = []
    for _, (link, attr) in sorted(model.namedpersistents(), key=lambda kv: kv[0]):
        value = getattr(link, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((link, attr, value))
    return out


def _host_values(loss, metric) -> numpy.ndarray:
    from benchbench.core import backend

    la = getattr(loss, "array", loss)
    ma = la if metric is None else getattr(metric, "array", metric)
    return numpy.asarray([backend.as_numpy(la).astype(numpy.float64).reshape(()),
                          backend.as_numpy(ma).astype(numpy.float64).reshape(())])


def _compare(got, ref) -> tuple[bool, str | None, dict]:
    """Whether the replay's (loss and metric, state) equal the eager step's: identical, or within
    :data:`TOLERANCE`; the check's record."""
    pairs = [got[0], *got[1]], [ref[0], *ref[1]]
    identical = all(numpy.array_equal(a, b, equal_nan=True) for a, b in zip(*pairs))
    worst = 0.0
    close = True
    for a, b in zip(*pairs) if not identical else ():
        a, b = numpy.asarray(a, numpy.float64), numpy.asarray(b, numpy.float64)
        if a.shape != b.shape:
            close = False
            continue
        with numpy.errstate(invalid="ignore", over="ignore"):
            diff = numpy.abs(a - b)
        worst = max(worst, float(diff.max(initial=0.0)))
        close = close and bool(numpy.all(diff <= TOLERANCE["atol"] + TOLERANCE["rtol"] * numpy.abs(b)))
    check = {"passed": bool(identical or close), "identical": bool(identical), "max_abs_diff": worst,
             "loss_eager": float(ref[0][0]), "loss_replay": float(got[0][0]),
             "tolerance": f"|replay - eager| <= {TOLERANCE['atol']:g} + {TOLERANCE['rtol']:g} x |eager|, every "
                          "value of the loss, metric, parameters, optimizer state and BatchNorm statistics"}
    why = None if check["passed"] else (f"the first replay differed from the eager step (max |difference| "
                                        f"{worst:.3g}, loss {check['loss_replay']!r} vs {check['loss_eager']!r})")
    return check["passed"], why, check
