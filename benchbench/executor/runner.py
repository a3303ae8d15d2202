"""One cell (workload x device spec x repeat) in the current process.

Run as ``python -m benchbench.executor.runner --cell cell.json --out result.json``:
the launcher writes the cell description, this module trains and times the
workload and writes the cell result atomically. It never raises out: any
exception becomes ``status: failed`` with a one-line reason, an out-of-memory
becomes ``oom`` and a non-finite loss ``diverged`` (training stops at once).
Data-parallel cells (``n_ranks > 1``) run one process per rank under mpiexec;
rank 0 writes the result, a failing rank writes ``result.json.rankN``.

Progress goes to stdout as lines ``@progress {"done": k, "total": n, ...}``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import hashlib
import json
import math
import os
import resource
import sys
import time
import traceback

import numpy

from .cell_figures import (batchnorm_record, deterministic_environment, deterministic_record, failed_alloc, gpu_probe,
                           interconnect_record, pool_records, start_pool_peak, window_records)

PROGRESS_PREFIX = "@progress "
_MAX_REASON = 300
_MAX_TIMED_STEPS = 100_000  # bound on the steps a minimum timed duration adds


# --------------------------------------------------------------------------- the cell record
def skeleton(desc: dict) -> dict:
    """The cell record with every field the description fixes; measurements empty.

    Args:
        desc: the cell description the launcher writes (see ``launcher.describe_cell``).

    Returns:
        A dict in the results schema's cell shape with status ``failed`` until filled in.
    """
    n = int(desc.get("n_ranks", 1))
    return {
        "id": desc["id"],
        "workload": desc.get("workload_name", desc["workload"].partition(":")[0]),
        "params": dict(desc.get("params") or {}),
        "device": desc["device"],
        "device_kind": desc.get("device_kind", "cpu"),
        "n_devices": n,
        "scaling": desc.get("scaling", "strong") if n > 1 else "none",
        "communicator": desc.get("communicator", "single"),
        "repeat": int(desc.get("repeat", 0)),
        "profile": desc.get("profile", "quick"),
        "status": "failed",
        "reason": None,
        "data": {"dataset": desc.get("dataset"), "source": None, "note": None},
        "batch_size": desc.get("batch_size"),
        "per_device_batch": desc.get("per_device_batch"),
        "flops_per_sample": None,
        "dtype": desc.get("dtype", "float32"),
        "deterministic": bool(desc.get("deterministic", False)),
        "timing": {"warmup_steps": int((desc.get("settings") or {}).get("warmup_steps") or 0),
                   "step_s": [], "phases_s": {}},
        "stats": None,
        "quality": None,
        "epoch_log": [],
        "memory": {"peak_host_bytes": None, "peak_device_bytes": None},
        "energy": {"joules": None, "joules_per_epoch": None, "source": None},
        "hashes": None,
        "started": _now(),
        "duration_s": 0.0,
    }


def failed(desc: dict, status: str, reason: str, **fields) -> dict:
    """A finished cell record with ``status`` and a one-line ``reason``."""
    cell = skeleton(desc)
    cell.update(fields)
    cell["status"], cell["reason"] = status, one_line(reason)
    return cell


def one_line(text) -> str:
    """``text`` squeezed to one line of at most a few hundred characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= _MAX_REASON else s[: _MAX_REASON - 1] + "…"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def classify(exc: BaseException) -> str:
    """``oom`` for a host or device out-of-memory, else ``failed``."""
    if isinstance(exc, MemoryError):
        return "oom"
    if type(exc).__name__ in ("OutOfMemoryError", "CUDARuntimeError") and "memory" in str(exc).lower():
        return "oom"
    return "failed"


def write_json(path, obj) -> None:
    """Write ``obj`` as JSON atomically (temporary file in the same folder, fsync, rename)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, allow_nan=False, default=_jsonable)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonable(o):
    if isinstance(o, numpy.generic):
        return o.item()
    if isinstance(o, numpy.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class Diverged(Exception):
    """The training loss became NaN or infinite."""


# --------------------------------------------------------------------------- training
class _Cell:
    """Everything one cell's training needs, built on the cell's device."""

    def __init__(self, desc, comm):
        from .. import core, registry
        from ..core import backend

        self.desc, self.comm = desc, comm
        self.rank, self.size = (comm.rank, comm.size) if comm is not None else (0, 1)
        self.settings = desc.get("settings") or {}
        self.wl, self.params = registry.resolve(desc["workload"], registry.discover())
        indices = desc.get("indices") or []
        if desc.get("device_kind") == "gpu":
            # A GPU of this rank's own node: the node-local rank picks it, not the global rank.
            local = int(getattr(comm, "local_rank", self.rank)) if comm is not None else 0
            self.device = backend.Device(f"gpu:{indices[local] if len(indices) > local else indices[0]}")
        else:
            self.device = backend.Device("cpu")
        self.core, self.backend = core, backend

    def progress(self, **event):
        if self.rank == 0:
            print(PROGRESS_PREFIX + json.dumps(event), flush=True)

    def build(self, cell):
        from ..data import BatchIterator

        wl, params, desc = self.wl, self.params, self.desc
        self.core.seed(int(desc.get("seed", 0)))
        global_batch, per_rank = _batches(wl.batch_size, self.size, desc.get("scaling", "strong"))
        if desc.get("batch"):  # a batch sweep or the largest batch (see executor/batch_run.py)
            from .batch_run import cell_batches

            global_batch, per_rank = cell_batches(self, cell)
        cell["batch_size"], cell["per_device_batch"] = global_batch, per_rank
        quick = desc.get("profile", "quick") == "quick"
        s = self.settings
        n_train = global_batch * (int(s.get("warmup_steps") or 0) + int(s.get("steps") or 1)) if quick else None
        n_val = None
        if s.get("val_batches") is not None:
            n_val = max(1, int(s["val_batches"])) * global_batch
        if quick and desc.get("batch"):  # throughput only: one global batch of data, reshuffled every step
            n_train, n_val = global_batch, 1
        ds = wl.load_data(desc.get("data", "auto"), data_dir=desc.get("data_dir"), seed=int(desc.get("seed", 0)),
                          n_train=n_train, n_val=n_val)
        cell["data"] = {"dataset": wl.dataset, "source": ds.source, "note": ds.note}
        seed = int(desc.get("seed", 0))
        self.train_it = BatchIterator(ds.train, per_rank, shuffle=True, seed=seed, rank=self.rank,
                                      size=self.size, repeat=True)
        self.val_data = ds.val
        self.per_rank = per_rank
        self.model = wl.build_model(params)
        self.model.to_device(str(self.device))
        inner = wl.build_optimizer(params)
        from ..core import mixed_precision

        dtype = mixed_precision.compute_dtype(desc.get("dtype", "float32"))
        self.mixed = dtype is not None
        self.fmodel = self.model
        if self.mixed:
            # float32 master weights in the model; the forward runs in ``dtype`` with loss scaling.
            inner = mixed_precision.MixedPrecisionOptimizer(inner, mixed_precision.loss_scaler_for(dtype))
            self.fmodel = mixed_precision.MixedPrecisionModel(self.model, dtype)
        if self.size > 1:
            from .data_parallel import DataParallelOptimizer

            inner = DataParallelOptimizer(inner, self.comm)
        inner.setup(self.model)
        self.optimizer = inner
        self.dp = self.size > 1

    def step(self, timer):
        """One timed training step; returns (loss, metric) as floats (averaged over ranks)."""
        be, dev = self.backend, self.device
        with timer.step():
            with timer.phase("data"):
                batch = self.train_it.next()
                x, t = (be.to_device(a, dev) for a in batch)
            with timer.phase("forward"):
                loss, metric = self.wl.forward(self.fmodel, x, t, self.params)
            with timer.phase("backward"):
                self.model.cleargrads()
                if self.mixed:
                    self.optimizer.backward(loss)
                else:
                    loss.backward()
            with timer.phase("update"):
                self.optimizer.update()
        if self.dp:
            timer.split_last("allreduce", float(self.optimizer.last_allreduce_s), "update")
        return self._mean(*_to_host(loss, metric))

    def _mean(self, *values):
        if not self.dp:
            return values
        rows = self.comm.allgather_obj(tuple(values))
        return tuple(float(numpy.mean([r[i] for r in rows])) for i in range(len(values)))

    def validate(self, max_batches):
        """Mean loss and metric over the validation set (this rank's shard, then over ranks)."""
        from ..data import BatchIterator

        core, be = self.core, self.backend
        if self.dp:  # every rank validates with the same BatchNorm running statistics
            from .data_parallel import average_persistents

            self.synced_persistents = average_persistents(self.model, self.comm)
        it = BatchIterator(self.val_data, self.per_rank, shuffle=False, rank=self.rank, size=self.size, repeat=False)
        n_batches = it.batches_per_epoch if max_batches is None else min(int(max_batches), it.batches_per_epoch)
        tot_loss = tot_metric = 0.0
        count = 0
        with core.using_config("train", False), core.no_backprop_mode():
            for _ in range(max(n_batches, 0)):
                batch = it.next()
                n = len(batch[0])
                if n == 0:  # a rank's share of a small last batch
                    continue
                x, t = (be.to_device(a, self.device) for a in batch)
                loss, metric = self.wl.forward(self.fmodel, x, t, self.params)
                lv = _scalar(loss)
                tot_loss += lv * n
                tot_metric += _scalar(metric, lv) * n
                count += n
        rows = [(tot_loss, tot_metric, count)]
        if self.dp:
            rows = self.comm.allgather_obj(rows[0])
        total = sum(r[2] for r in rows)
        if total == 0:
            return math.nan, math.nan
        return sum(r[0] for r in rows) / total, sum(r[1] for r in rows) / total

    def weights_hash(self) -> str:
        h = hashlib.sha256()
        for name, p in sorted(self.model.namedparams(), key=lambda kv: kv[0]):
            h.update(name.encode())
            if p.array is not None:
                h.update(numpy.ascontiguousarray(self.backend.as_numpy(p.array)).tobytes())
        for name, (link, attr) in getattr(self.model, "namedpersistents", lambda: ())():
            value = getattr(link, attr, None)
            h.update(name.encode())
            if self.backend.is_array(value):
                h.update(numpy.ascontiguousarray(self.backend.as_numpy(value)).tobytes())
            else:
                h.update(repr(value).encode())
        return h.hexdigest()


def _to_host(loss, metric) -> tuple[float, float]:
    """``(loss, metric)`` as floats, read from the device in ONE transfer (the metric is the loss
    when the workload has none)."""
    from ..core import backend

    la = getattr(loss, "array", loss)
    ma = la if metric is None else getattr(metric, "array", metric)
    if backend.get_array_module(la, ma) is numpy:
        return _scalar(la), _scalar(ma)
    xp = backend.cupy
    both = xp.stack([xp.asarray(la, dtype=numpy.float64).reshape(()), xp.asarray(ma, dtype=numpy.float64).reshape(())])
    loss_v, metric_v = backend.as_numpy(both).tolist()
    return float(loss_v), float(metric_v)


def _scalar(v, default=math.nan) -> float:
    if v is None:
        return default
    from ..core import backend

    return float(backend.as_numpy(getattr(v, "array", v)))


def _batches(batch_size: int, size: int, scaling: str) -> tuple[int, int]:
    """(global batch, per-rank batch) for strong or weak scaling."""
    if size <= 1:
        return batch_size, batch_size
    if scaling == "weak":
        return batch_size * size, batch_size
    if batch_size % size:
        raise ValueError(f"strong scaling: the batch size {batch_size} does not split over {size} ranks; "
                         "use --scaling weak or a rank count that divides it")
    return batch_size, batch_size // size


def _check_finite(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise Diverged(f"loss became {loss} at step {step}")


def _train_quick(c: _Cell, cell: dict, timer, losses: list) -> None:
    s = c.settings
    warmup, steps = int(s.get("warmup_steps") or 0), int(s.get("steps") or 1)
    total = warmup + steps
    for i in range(total):
        if i == warmup:
            timer.reset()
            c.window.start()
        loss, metric = c.step(timer)
        losses.append(loss)
        _check_finite(loss, i + 1)
        c.progress(done=i + 1, total=total, phase="warm-up" if i < warmup else "timed", loss=loss)
    # A minimum timed duration, not only a step count: a window of a few tenths of a second says
    # little (clock ticks, a single scheduler hiccup).
    min_time = float(s.get("min_time_s") or 0.0)
    extra = 0

    def more():  # every rank of a data-parallel cell must take the same number of steps: rank 0 decides
        go = bool(min_time) and sum(timer.step_s) < min_time and len(timer.step_s) < _MAX_TIMED_STEPS
        return bool(c.comm.bcast_obj(go)) if c.dp else go

    if more():
        c.fixed_steps, c.fixed_weights_hash = total, c.weights_hash()
        loss, metric = c.step(timer)
        losses.append(loss)
        extra += 1
        _check_finite(loss, total + extra)
    while extra and more():
        loss, metric = c.step(timer)
        losses.append(loss)
        extra += 1
        _check_finite(loss, total + extra)
    cell["timing"]["min_time_s"] = min_time
    c.window.stop()
    if (cell.get("batch") or {}).get("quality") == "throughput only":
        return  # a batch other than the workload's own: throughput only (see executor/batch_run.py)
    vloss, vmetric = c.validate(s.get("val_batches"))
    cell["quality"] = _quality(c, vloss, vmetric)
    # A quick cell trains a few steps: its quality is a sanity value, not a verdict on the target.
    cell["quality"]["judged"] = False


def _train_full(c: _Cell, cell: dict, timer, losses: list, stopwatch) -> None:
    s = c.settings
    warmup = int(s.get("warmup_steps") or 0)
    epochs = int(s.get("epochs") or c.wl.epochs)
    per_epoch = c.train_it.batches_per_epoch
    accuracy = c.wl.metric == "accuracy"
    until = s.get("until") or "target"
    step = 0
    lr_rule = getattr(c, "lr_rule", None)  # training at another batch (see executor/batch_run.py)
    for epoch in range(epochs):
        c.wl.adjust_optimizer(c.optimizer, epoch, epochs, c.params)
        if lr_rule is not None:
            lr_base = lr_rule.base(c.optimizer)
        sum_loss = sum_metric = 0.0
        for _ in range(per_epoch):
            if step == warmup:
                timer.reset()
                c.window.start()
            if lr_rule is not None:
                lr_rule.apply(c.optimizer, lr_base, step)
            loss, metric = c.step(timer)
            step += 1
            losses.append(loss)
            _check_finite(loss, step)
            sum_loss += loss
            sum_metric += metric
            if step % 10 == 0 or step == epochs * per_epoch:
                c.progress(done=step, total=epochs * per_epoch, epoch=epoch + 1, loss=loss)
        c.window.pause()
        vloss, vmetric = c.validate(s.get("val_batches"))
        c.window.resume()
        row = {"epoch": epoch + 1, "main/loss": sum_loss / per_epoch, "validation/main/loss": vloss}
        if accuracy:
            row["main/accuracy"] = sum_metric / per_epoch
            row["validation/main/accuracy"] = vmetric
        else:
            row[f"main/{c.wl.metric}"] = sum_metric / per_epoch
            row[f"validation/main/{c.wl.metric}"] = vmetric
        row["elapsed_time"] = stopwatch.read()
        cell["epoch_log"].append(row)
        _append_epoch(c, row)
        q = _quality(c, vloss, vmetric)
        _keep_best(q, cell.get("quality"), row["elapsed_time"])
        q["until"], q["epochs"] = until, epoch + 1
        cell["quality"] = q
        if q["reached"] and q.get("time_to_target_s") is None:
            q["time_to_target_s"] = row["elapsed_time"]
        if q["reached"] and until == "target":
            break
    c.window.stop()


def _keep_best(q: dict, previous: dict | None, elapsed: float) -> None:
    """``q`` (this epoch's quality) gains the best value so far and the first time the target was reached."""
    prev = previous or {}
    best = prev.get("best_value")
    value = q["value"]
    if value is not None and (best is None or (value > best if q["higher_is_better"] else value < best)):
        best = value
    q["best_value"] = best
    q["time_to_target_s"] = prev.get("time_to_target_s")


def _append_epoch(c: _Cell, row: dict) -> None:
    """Append a finished epoch to the cell's epoch log file (the launcher keeps it if the cell dies)
    and report it as a progress event."""
    if c.rank != 0:
        return
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    c.progress(epoch_done=row["epoch"], row=clean)
    path = c.desc.get("epoch_log_path")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(clean, default=_jsonable) + "\n")


def _quality(c: _Cell, vloss: float, vmetric: float) -> dict:
    wl = c.wl
    value = vmetric if wl.metric == "accuracy" else (vmetric if math.isfinite(vmetric) else vloss)
    target = wl.target_for(c.params)
    reached = bool(math.isfinite(value) and (value >= target if wl.higher_is_better else value <= target))
    return {"metric": wl.metric, "value": value if math.isfinite(value) else None, "target": target,
            "target_source": wl.target_source, "reached": reached, "time_to_target_s": None,
            "higher_is_better": wl.higher_is_better, "validation_loss": vloss if math.isfinite(vloss) else None}


def _summaries(cell: dict, c: _Cell, timer) -> None:
    from .. import stats

    cell["timing"]["step_s"] = list(timer.step_s)
    cell["timing"]["phases_s"] = {k: list(v) for k, v in timer.phases_s.items()}
    if not timer.step_s:
        return
    st = {"step_s": stats.summarize(timer.step_s),
          "samples_per_s": stats.throughput_summary(timer.step_s, cell["batch_size"])}
    flops = (cell.get("flops_per_sample") or {}).get("train_step")
    st["gflops"] = flops * st["samples_per_s"]["median"] / 1e9 if flops else None
    cell["stats"] = st


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
        desc: the cell description (see ``launcher.describe_cell``).
        comm: the communicator of a data-parallel cell, or None for one process.

    Returns:
        The cell record (results schema), status ok / failed / oom / diverged.
    """
    from .timing import Stopwatch, StepTimer
    from .window import TimedWindow

    t0 = time.perf_counter()
    cell = skeleton(desc)
    mode = deterministic_record(desc)
    if mode is not None:
        cell["deterministic_mode"] = mode
    timer = losses = c = monitor = pool = threads = gpu_probe_before = None
    try:
        c = _Cell(desc, comm)
        cell["flops_per_sample"] = {k: float(v) for k, v in c.wl.flops_per_sample(c.params).items()}
        monitor = _start_monitor(c.device)
        c.window = TimedWindow(monitor)
        pool = start_pool_peak(c.device)
        gpu_probe_before = gpu_probe(c.device)
        threads = _cpu_threads_per_rank(c)
        if threads is not None:
            cell["threads_per_rank"] = threads
        with c.core.using_config("deterministic", bool(desc.get("deterministic", False))), c.device.scope(), \
                _blas_threads(threads):
            c.build(cell)
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
    if getattr(c, "batch_limits", None) is not None:  # the CPU memory budget of a batch search
        c.batch_limits.close()
    try:
        if c is not None and getattr(c, "window", None) is not None:
            c.window.stop()
        if timer is not None:
            _summaries(cell, c, timer)
            window_records(cell, c, timer, threads, gpu_probe_before)
        pool_records(cell, c, pool)
        interconnect_record(cell, c)
        batchnorm_record(cell, c)
        if losses:
            cell["loss_curve"] = [float(v) if math.isfinite(v) else None for v in losses]
        if c is not None and getattr(c, "mixed", False):
            cell["loss_scale"] = {"final": float(c.optimizer.loss_scale), "skipped_steps": int(c.optimizer.skipped_steps)}
        if c is not None and c.size > 1:
            cell["allreduce_bytes"] = int(getattr(c.optimizer, "allreduce_bytes", 0) or 0)
        if c is not None and getattr(c, "model", None) is not None:
            # The steps a minimum timed duration adds depend on the machine's speed: the hashes cover the
            # fixed steps (warm-up + steps) only, so that repeats of the same computation compare equal.
            fixed = getattr(c, "fixed_steps", None)
            curve = losses[:fixed] if fixed is not None else losses
            cell["hashes"] = {"weights": getattr(c, "fixed_weights_hash", None) or c.weights_hash(),
                              "loss_curve": hashlib.sha256(numpy.asarray(curve or [], numpy.float64).tobytes()).hexdigest()}
        _finish_monitor(monitor, cell)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        if cell["status"] == "ok":
            cell["status"], cell["reason"] = "failed", one_line(f"{type(e).__name__}: {e}")
    cell["memory"]["peak_host_bytes"] = _peak_host_bytes()
    if c is not None and c.size > 1:
        try:
            from .ranks import combine_ranks

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
        from .. import system

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


# --------------------------------------------------------------------------- process entry
def _rank_from_env() -> int:
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def main(argv=None) -> int:
    """Entry point of the worker process; returns the exit status (0 when a result was written)."""
    parser = argparse.ArgumentParser(prog="python -m benchbench.executor.runner")
    parser.add_argument("--cell", required=True, help="the cell description (JSON)")
    parser.add_argument("--out", required=True, help="where to write the cell result (JSON)")
    args = parser.parse_args(argv)
    from .lifeline import start_watchdog

    start_watchdog()  # end with the run, even when the launcher is killed outright
    with open(args.cell, encoding="utf-8") as f:
        desc = json.load(f)
    deterministic_environment(desc)
    with contextlib.ExitStack() as stack:
        return _worker(desc, args.out, stack)


def _worker(desc: dict, out: str, stack: contextlib.ExitStack) -> int:
    n_ranks = int(desc.get("n_ranks", 1))
    comm, rank = None, _rank_from_env()
    if n_ranks > 1:
        from . import ranks

        state = {"rank": rank, "where": None}
        try:
            comm = ranks.create_comm(desc, out, stack, state)
            rank = comm.rank
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            rank = state["rank"]
            where = f" ({state['where']})" if state["where"] else ""
            ranks.write_failure(desc, out, rank, f"rank {rank}{where}: cannot create the {desc.get('communicator')} "
                                                 f"communicator: {type(e).__name__}: {e}")
            ranks.abort_world(1)  # the peers must not wait out the collective time-out
            return 1
    cell = run_cell(desc, comm)
    if cell["status"] != "ok" and comm is not None and cell["reason"] and not cell["reason"].startswith("rank "):
        cell["reason"] = one_line(f"rank {rank}: {cell['reason']}")
    if comm is not None and cell["status"] != "ok":
        cell["failed_at"] = time.time()
    if rank == 0:
        write_json(out, cell)
    elif cell["status"] != "ok":
        write_json(f"{out}.rank{rank}", cell)
    if comm is not None:
        if cell["status"] in ("failed", "oom"):
            sys.stderr.flush()
            comm.abort(1)
        try:
            comm.close()
        except Exception:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
