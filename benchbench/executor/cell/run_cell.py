"""``run_cell``: one cell trained, timed and recorded in this process, with its GPU monitor and
BLAS thread limit; it never raises out."""
from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import os
import resource
import sys
import time
import traceback

import numpy

from benchbench.cell_record import Diverged, _summaries, classify, one_line, skeleton
from benchbench.executor.cell.measurements import (batchnorm_record, deterministic_record, failed_alloc, gpu_probe,
                                                   interconnect_record, pool_records, start_pool_peak, tf32_record,
                                                   window_records)
from benchbench.executor.cell.training import CellContext, _train_full, _train_quick


def _peak_host_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _cpu_threads_per_rank(c) -> int | None:
    """BLAS threads for each rank of a CPU data-parallel cell: the node's cores shared among the
    ranks on it (MPI_LOCALNRANKS), so that N ranks do not oversubscribe the cores N times over."""
    if c.size <= 1 or c.device.kind != "cpu":
        return None
    local = int(os.environ.get("MPI_LOCALNRANKS") or c.size)
    return max(1, (os.cpu_count() or 1) // max(local, 1))


@contextlib.contextmanager
def _blas_threads(threads):
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def run_cell(desc: dict, comm=None) -> dict:
    """Train and time one cell in this process; always returns a finished cell record.

    Args:
        desc: the cell description (see ``executor.run.describe_cell``).
        comm: the communicator of a data-parallel cell, or None for one process.

    Returns:
        The cell record (results schema), status ok / failed / oom / diverged.
    """
    from benchbench.executor.timing import Stopwatch, StepTimer
    from benchbench.executor.cell.window import TimedWindow

    from benchbench.core import host_allocator

    t0 = time.perf_counter()
    cell = skeleton(desc)
    cell["host_allocator"] = host_allocator.tune()  # freed arrays reused: no page faults each step
    from benchbench.core.config import deterministic_paths

    paths_before = dict(deterministic_paths)
    timer = losses = c = monitor = pool = threads = gpu_probe_before = None
    try:
        c = CellContext(desc, comm)
        cell["flops_per_sample"] = {k: float(v) for k, v in c.wl.flops_per_sample(c.params).items()}
        monitor = _start_monitor(c.device)
        c.window = TimedWindow(monitor)
        gpu_probe_before = gpu_probe(c.device)  # before the pool is tracked: the probe's arrays are not the cell's
        pool = start_pool_peak(c.device)
        threads = _cpu_threads_per_rank(c)
        if threads is not None:
            cell["threads_per_rank"] = threads
        with c.core.using_config("deterministic", bool(desc.get("deterministic", False))), c.device.scope(), \
                _blas_threads(threads):
            c.build(cell)
            cell["cpu_kernels"] = c.train_step.cpu_kernels
            # Everything alive now (modules, the model, the data) lives for the whole cell: keep it
            # out of the cyclic garbage collector's scans, which otherwise grow with every import
            # and can double the per-function overhead of small steps.
            gc.collect()
            gc.freeze()
            timer, losses = StepTimer(c.device), []
            stopwatch = Stopwatch(c.device)
            if desc.get("profile", "quick") == "full":
                _train_full(c, cell, timer, losses, stopwatch)
            else:
                _train_quick(c, cell, timer, losses)
        cell["status"] = "ok"
    except Diverged as e:
        cell["status"], cell["reason"] = "diverged", one_line(e)
    except Exception as e:  # the cell fails, the run goes on
        traceback.print_exc(file=sys.stderr)
        cell["status"], cell["reason"] = classify(e), one_line(f"{type(e).__name__}: {e}")
        if cell["status"] == "oom":
            cell["memory"]["failed_alloc_bytes"] = failed_alloc(e, pool)
    if cell["status"] != "ok" and isinstance(cell.get("quality"), dict) and cell["epoch_log"]:
        cell["quality"]["partial"] = True  # the epochs finished before the cell ended early
    if c is not None and c.batch_limits is not None:  # the CPU memory budget of a batch search
        c.batch_limits.close()
    mode = deterministic_record(desc, {k: v - paths_before.get(k, 0) for k, v in deterministic_paths.items()})
    if mode is not None:
        cell["deterministic_mode"] = mode
    if desc.get("device_kind") == "gpu":
        cell["tf32"] = tf32_record(desc)
    try:
        if c is not None and c.window is not None:
            c.window.stop()
        if pool is not None:
            pool.uninstall()  # the after-probe's arrays are not the cell's either
        if timer is not None:
            _summaries(cell, c, timer)
            window_records(cell, c, timer, threads, gpu_probe_before)
        pool_records(cell, c, pool)
        interconnect_record(cell, c)
        batchnorm_record(cell, c)
        if losses:
            cell["loss_curve"] = [float(v) if math.isfinite(v) else None for v in losses]
        if c is not None and c.mixed:
            cell["loss_scale"] = {"final": float(c.optimizer.loss_scale), "skipped_steps": int(c.optimizer.skipped_steps)}
        if c is not None and c.size > 1:
            cell["allreduce_bytes"] = int(getattr(c.optimizer, "allreduce_bytes", 0) or 0)
        if c is not None and c.model is not None:
            # The steps a minimum timed duration adds depend on the machine's speed: the hashes cover the
            # fixed steps (warm-up + steps) only, so that repeats of the same computation compare equal.
            fixed = c.fixed_steps
            curve = losses[:fixed] if fixed is not None else losses
            cell["hashes"] = {"weights": c.fixed_weights_hash or c.weights_hash(),
                              "loss_curve": hashlib.sha256(numpy.asarray(curve or [], numpy.float64).tobytes()).hexdigest()}
        _finish_monitor(monitor, cell)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        if cell["status"] == "ok":
            cell["status"], cell["reason"] = "failed", one_line(f"{type(e).__name__}: {e}")
    cell["memory"]["peak_host_bytes"] = _peak_host_bytes()
    if c is not None and c.size > 1:
        try:
            from benchbench.executor.cell.ranks import combine_ranks

            combine_ranks(cell, c.comm)
        except Exception:
            pass
    cell["duration_s"] = time.perf_counter() - t0
    if cell["stats"] is None and cell["status"] == "ok":
        cell["status"], cell["reason"] = "failed", "no timed step (the profile has 0 steps)"
    return cell


def _start_monitor(device):
    if device.kind != "gpu":
        return None
    try:
        from benchbench import system

        mon = system.GpuMonitor(device.index)
        start = getattr(mon, "start", None)
        if start is not None:
            start()
        return mon
    except Exception as e:
        print(f"benchbench: GPU monitor unavailable: {e}", file=sys.stderr)
        return None


def _finish_monitor(mon, cell):
    if mon is None:
        return
    stop = getattr(mon, "stop", None)
    info = stop() if stop is not None else None
    info = info if isinstance(info, dict) else vars(mon)
    joules = info.get("joules", info.get("energy_j"))
    peak = info.get("peak_memory_bytes", info.get("peak_device_bytes"))
    cell["memory"]["peak_device_bytes"] = int(peak) if peak is not None else None
    cell["memory"]["device_scope"] = (f"NVML, {info.get('memory_scope')}-wide (CUDA context and the pool's cached "
                                      "blocks included), rank 0" if peak is not None else None)
    if joules is not None:
        # The whole cell (data loading, model build, validation) on rank 0's GPU: kept, labelled, not
        # used for samples/J (that is the timed window's, see window.combine).
        cell["energy"]["whole_cell_joules_rank0"] = float(joules)
