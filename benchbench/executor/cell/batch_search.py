"""The largest batch that trains on a device, searched in the cell's own worker process.

Each probe is full training steps (forward, backward, update; ``STEPS_PER_PROBE`` of them) of a
fresh model at one batch size. The search doubles the batch from 1 until a probe runs out of memory, then bisects between
the last batch that trained and the first that did not. An out-of-memory is caught and recorded;
the device's memory pool is emptied between probes. On the CPU each probe runs in a child forked
from the worker, so the worker's heap after a search is the heap before it and the timed steps at
the batch found need no more memory than the probe that found it. On the CPU the limit is a budget enforced on
this process (``RLIMIT_DATA`` above what the worker already holds), so an allocation past it
raises ``MemoryError`` and the machine never swaps. The search stops at a cap (by default
``2**14`` or the training set's size) and says so when the cap, not memory, stopped it.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import resource
import time
import tracemalloc

import numpy

from benchbench.executor.planning.batch import DEFAULT_SEARCH_CAP
from benchbench.executor.step import build_step

#: training steps per probe: the second one runs in the steady state of the timed steps (the
#: optimizer's state allocated, the previous step's gradients alive during the forward pass)
STEPS_PER_PROBE = 2


def search(probe, cap: int = DEFAULT_SEARCH_CAP, start: int = 1) -> dict:
    """Find the largest batch for which ``probe(batch)`` succeeds.

    Args:
        probe: ``probe(batch) -> (ok, bytes)``; ``ok`` False means out of memory. ``bytes`` is the
            memory the probe used (None where unknown). Any other error propagates.
        cap: the largest batch tried.
        start: the first batch tried.

    Returns:
        ``{"max_batch": int | None, "stopped_by": "oom" | "cap" | "oom_at_start",
        "probes": [{"batch", "ok", "bytes", "seconds"}, ...], "cap": cap}``; ``max_batch`` is None
        when not even ``start`` trains.

    Example:
        >>> search(lambda b: (b <= 40, None), cap=1000)["max_batch"]
        40
    """
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"search: cap must be a positive integer, got {cap!r}")
    if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start <= cap:
        raise ValueError(f"search: start must be an integer in [1, cap={cap}], got {start!r}")
    probes = []

    def run(batch):
        t0 = time.perf_counter()
        ok, used = probe(batch)
        probes.append({"batch": int(batch), "ok": bool(ok), "bytes": None if used is None else int(used),
                       "seconds": time.perf_counter() - t0})
        return ok

    good, bad, batch = None, None, start
    while True:  # doubling
        if run(batch):
            good = batch
            if batch >= cap:
                break
            batch = min(batch * 2, cap)
        else:
            bad = batch
            break
    if good is None:
        return {"max_batch": None, "stopped_by": "oom_at_start", "probes": probes, "cap": cap}
    if bad is None:
        return {"max_batch": good, "stopped_by": "cap", "probes": probes, "cap": cap}
    while bad - good > 1:  # bisection
        mid = (good + bad) // 2
        if run(mid):
            good = mid
        else:
            bad = mid
    return {"max_batch": good, "stopped_by": "oom", "probes": probes, "cap": cap}


def _vm_data_bytes() -> int | None:
    """This process's data segment (``VmData``), which ``RLIMIT_DATA`` limits; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _warm_blas() -> None:
    """Have the BLAS library allocate its work buffers now, before a limit (it cannot fail cleanly later)."""
    for dtype in (numpy.float32, numpy.float64):
        a = numpy.ones((512, 512), dtype)
        a @ a
    # Likewise the compiled CPU kernels: compiled or loaded from the cache (LLVM's memory) and their
    # thread pool started here, so that neither counts against the budget of the forked probes.
    from benchbench.core.kernels import cpu_compiled

    cpu_compiled.prepare()
    cpu_compiled.start_threads()


@contextlib.contextmanager
def memory_budget(budget: int | None):
    """Limit this process's further allocations to ``budget`` bytes (``RLIMIT_DATA``).

    The limit is set to what the process already holds plus ``budget``, so the budget is the
    memory training may use on top of the interpreter, libraries and data. An allocation past it
    raises ``MemoryError``. The previous limit is restored on exit.

    Yields:
        The limit set in bytes (None when ``budget`` is None or the platform cannot limit).
    """
    if budget is None:
        yield None
        return
    _warm_blas()
    base = _vm_data_bytes()
    if base is None:
        yield None
        return
    old = resource.getrlimit(resource.RLIMIT_DATA)
    limit = base + int(budget)
    if old[1] != resource.RLIM_INFINITY:
        limit = min(limit, old[1])
    resource.setrlimit(resource.RLIMIT_DATA, (limit, old[1]))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, old)


def is_oom(exc: BaseException) -> bool:
    """True for a host ``MemoryError`` or cupy's ``OutOfMemoryError``."""
    from benchbench.cell_record import classify

    return classify(exc) == "oom"


def _free_device(device) -> None:
    gc.collect()
    if device.kind == "gpu":
        from benchbench.core import backend

        backend.cupy.get_default_memory_pool().free_all_blocks()


def make_probe(c, data, dtype: str = "float32", load=None):
    """A probe for :func:`search`: one full training step of a fresh model of cell ``c``.

    Args:
        c: the ``CellContext`` (workload, parameters, device).
        data: the training arrays (a tuple); a probe's batch takes samples cyclically from them.
        dtype: the cell's dtype (``float32``, or a mixed-precision compute dtype such as ``float16``).
        load: ``load(batch) -> training arrays``: the data the timed steps will hold at that batch,
            loaded inside each probe instead of ``data`` (so the probe holds what they will hold).

    Returns:
        ``probe(batch) -> (ok, bytes)``: ``bytes`` is the device memory pool's size after the step
        on a GPU, the peak of traced host allocations during the step on the CPU.
    """
    be, dev, wl, params = c.backend, c.device, c.wl, c.params
    arrays = data if isinstance(data, (list, tuple)) else (data,)
    n = len(arrays[0])

    def probe(batch):
        _free_device(dev)
        tracing = dev.kind == "cpu"
        if tracing:
            tracemalloc.start()
        step = model = optimizer = x = t = loss = metric = tiled = None
        try:
            # As in the timed steps: the training data (``batch`` samples here) and a batch taken from it.
            if load is not None:
                tiled = tuple(load(batch))[:2]
            else:
                idx = numpy.arange(batch) % n
                tiled = tuple(a[idx] for a in arrays[:2])
            order = numpy.arange(batch)[::-1]
            x, t = (be.to_device(a[order % len(a)], dev) for a in tiled)
            step = build_step(wl, params, dev, dtype)  # the same step the timed steps run
            model, optimizer = step.model, step.optimizer
            for _ in range(STEPS_PER_PROBE):
                loss = metric = None
                loss, metric = step(x, t)
            dev.synchronize()
            if dev.kind == "gpu":
                used = int(be.cupy.get_default_memory_pool().total_bytes())
            else:
                used = int(tracemalloc.get_traced_memory()[1])
            return True, used
        except Exception as e:
            if not is_oom(e):
                raise
            return False, None
        finally:
            if tracing:
                tracemalloc.stop()
            del step, model, optimizer, x, t, loss, metric, tiled
            _free_device(dev)

    return probe


def forked(probe, timeout_s: float = 600.0, under_budget: bool = False):
    """``probe`` run in a child process forked for each call (CPU, one process per cell).

    The child's result ``(ok, bytes)`` comes back through a pipe; an error other than an
    out-of-memory is raised here as ``RuntimeError``; a child killed by a signal counts as out of
    memory when the signal is SIGKILL (the kernel's out-of-memory killer), and so does a child that
    exits without a result while ``under_budget`` (a library giving up on a failed allocation);
    anything else is an error. A child with no result after ``timeout_s`` is killed: an error.
    """
    import select
    import signal

    def run(batch):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one probe, then exit without running any cleanup of the parent's
            os.close(r)
            try:
                msg = {"result": list(probe(batch))}
            except BaseException as e:  # out of memory anywhere in the probe is the probe's answer
                msg = {"result": [False, None]} if is_oom(e) else {"error": f"{type(e).__name__}: {e}"}
            with os.fdopen(w, "w") as f:
                f.write(json.dumps(msg))
            os._exit(0)
        os.close(w)
        chunks, deadline = [], time.monotonic() + timeout_s
        with os.fdopen(r, "rb") as f:
            while True:
                ready, _, _ = select.select([f], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise RuntimeError(f"the probe at batch {batch} gave no result within {timeout_s:g} s")
                chunk = os.read(f.fileno(), 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        text = b"".join(chunks).decode("utf-8")
        _, status = os.waitpid(pid, 0)
        if not text:
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            if sig == signal.SIGKILL or (under_budget and os.WIFEXITED(status)):
                # the kernel's out-of-memory killer, or a library that exits when an allocation
                # fails under the budget (OpenBLAS does: "Memory allocation still failed")
                return False, None
            raise RuntimeError(f"the probe at batch {batch} died without a result (wait status {status})")
        msg = json.loads(text)
        if "error" in msg:
            raise RuntimeError(f"the probe at batch {batch} failed: {msg['error']}")
        ok, used = msg["result"]
        return bool(ok), used

    return run
