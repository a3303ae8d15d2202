"""The training of one cell: the ``CellContext`` build (model, optimizer, data on the cell's device),
one timed step, validation, and the quick and full profiles' training loops."""
from __future__ import annotations

import hashlib
import json
import math

import numpy

from benchbench.executor.planning.batch import scaled_batches as _batches  # (global, per-rank) batch for strong or weak scaling
from benchbench.cell_record import Diverged, _jsonable

from benchbench.executor.protocol import PROGRESS_PREFIX, data_seed
from benchbench.executor.step import build_step
from benchbench.phases import ALLREDUCE, DATA, UPDATE
_MAX_TIMED_STEPS = 100_000  # bound on the steps a minimum timed duration adds


class CellContext:
    """Everything one cell's training needs, built on the cell's device.

    Its attributes are declared here, once: ``__init__`` sets where the cell runs, ``build`` what it
    trains; the batch run (``batch_run``), the cell run (``run_cell``) and the training loops fill in
    the rest, and everything reads them as plain attributes.
    """

    # where the cell runs (set by __init__)
    desc: dict
    comm: object
    rank: int
    size: int
    settings: dict
    device: object
    # what it trains (set by build)
    train_step: object = None  # the executor.step.TrainingStep; the four below are its parts
    graphs: object = None  # the executor.graph_step.GraphStep of a GPU cell that may use a CUDA graph
    graph_record: dict | None = None  # the cell's ``graph`` block where no GraphStep runs
    model: object = None
    fmodel: object = None  # the model as the forward sees it (mixed precision wraps it)
    optimizer: object = None
    dp: object = None  # the data-parallel optimizer wrapper, or None
    mixed: bool = False
    train_it: object = None
    val_data: object = None
    per_rank: int | None = None
    synced_persistents: tuple = ()
    # set by others
    window: object = None  # the timed window (run_cell)
    batch_limits: object = None  # the CPU memory budget of a batch search (batch_run)
    lr_rule: object = None  # the learning rate at another batch (batch_run)
    fixed_steps: int | None = None  # the steps of a quick cell's fixed part and the weights after them
    fixed_weights_hash: str | None = None
    persistent_digest_before: str | None = None  # data parallel: this rank's BatchNorm statistics before averaging

    def __init__(self, desc, comm):
        from benchbench import core, registry
        from benchbench.core import backend

        self.desc, self.comm = desc, comm
        self.rank, self.size = (comm.rank, comm.size) if comm is not None else (0, 1)
        self.settings = desc.get("settings") or {}
        self.wl, self.params = registry.resolve(desc["workload"], registry.discover(bounded=False))  # the launcher tried the files
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
        from benchbench.data import BatchIterator

        wl, params, desc = self.wl, self.params, self.desc
        self.core.seed(int(desc.get("seed", 0)))
        global_batch, per_rank = _batches(wl.batch_size, self.size, desc.get("scaling", "strong"))
        if desc.get("batch"):  # a batch sweep or the largest batch (see executor/batch_run.py)
            from benchbench.executor.cell.batch_run import cell_batches

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
        ds = wl.load_data(desc.get("data", "auto"), data_dir=desc.get("data_dir"), seed=data_seed(desc),
                          n_train=n_train, n_val=n_val)
        cell["data"] = {"dataset": wl.dataset, "source": ds.source, "note": ds.note}
        _log_header(self, cell["data"])
        seed = int(desc.get("seed", 0))
        self.train_it = BatchIterator(ds.train, per_rank, shuffle=True, seed=seed, rank=self.rank,
                                      size=self.size, repeat=True)
        self.val_data = ds.val
        self.per_rank = per_rank
        wrap = None
        if self.size > 1:
            from benchbench.executor.cell.data_parallel import DataParallelOptimizer

            def wrap(inner):
                return DataParallelOptimizer(inner, self.comm)
        self.train_step = build_step(wl, params, self.device, desc.get("dtype", "float32"), wrap=wrap)
        self.model, self.fmodel = self.train_step.model, self.train_step.fmodel
        self.optimizer, self.mixed = self.train_step.optimizer, self.train_step.mixed
        self.dp = self.size > 1
        self._graph_mode()

    def _graph_mode(self):
        """Whether this cell's steps may replay a CUDA graph (``--gpu-graphs``; executor/graph_step.py)."""
        requested = self.desc.get("gpu_graphs") or "auto"
        if self.device.kind != "gpu":
            self.graph_record = {"requested": requested, "used": False,
                                 "reason": "a CPU cell: CUDA graphs are a GPU feature"}
            return
        if requested == "off":
            self.graph_record = {"requested": requested, "used": False,
                                 "reason": "--gpu-graphs off: every operation launched from Python (eager)"}
            return
        from benchbench.executor.graph_step import GraphStep

        vary = getattr(self.wl, "varying_shapes", None)
        why_not = f"eager: the workload's shapes vary from step to step ({vary})" if vary else None
        if (self.desc.get("batch") or {}).get("requested") == "max":
            why_not = "eager: the batch is the largest that trains eagerly; a graph needs memory of its own"
        self.graphs = GraphStep(self.train_step, self.comm if self.dp else None, why_not, requested)

    @property
    def min_warmup(self) -> int:
        """Warm-up steps this cell takes at least: 2 where a CUDA graph is captured (one eager step, then
        the capture step with its check, never timed), else 0."""
        return 2 if self.graphs is not None and self.graphs.wanted else 0

    def graph_block(self, timer=None) -> dict:
        """The cell record's ``graph`` block; where the graph was used, the host time of its launch and
        the GPU time of a step side by side (medians over the timed steps)."""
        if self.graphs is None:
            return dict(self.graph_record or {})
        steps = list(getattr(timer, "step_s", None) or [])
        block = self.graphs.finish_record(len(steps) or None)
        if block["used"] and steps:
            block["gpu_step_s"] = float(numpy.median(steps))
        return block

    def step(self, timer):
        """One timed training step; returns (loss, metric) as floats (averaged over ranks)."""
        be, dev = self.backend, self.device
        window = self.window
        if window is not None:
            window.step_begin()
        counts = be.sim_counts() if self.graphs is not None else None
        with timer.step():
            if self.graphs is not None:
                loss, metric = self.graphs(self.train_it.next, dev, timer)
            else:
                with timer.phase(DATA):
                    batch = self.train_it.next()
                    x, t = (be.to_device(a, dev) for a in batch)
                loss, metric = self.train_step(x, t, timer)
        if counts is not None:  # simulated GPUs: what the step launched (graph_step.GraphStep.sim_launches)
            after = be.sim_counts()
            self.graphs.sim_launches.append((after["graph_launches"] - counts["graph_launches"],
                                             after["launches"] - counts["launches"]))
        if window is not None:
            window.step_end()
        if self.dp and (self.graphs is None or self.graphs.timed_eager):
            timer.split_last(ALLREDUCE, float(self.optimizer.last_allreduce_s), UPDATE)
        return self._mean(*_to_host(loss, metric))

    def _mean(self, *values):
        if not self.dp:
            return values
        rows = self.comm.allgather_obj(tuple(values))
        return tuple(float(numpy.mean([r[i] for r in rows])) for i in range(len(values)))

    def validate(self, max_batches):
        """Mean loss and metric over the validation set (this rank's shard, then over ranks)."""
        from benchbench.data import BatchIterator

        core, be = self.core, self.backend
        if self.dp:  # every rank validates with the same BatchNorm running statistics
            from benchbench.executor.cell.data_parallel import average_persistents
            from benchbench.executor.cell.measurements import persistent_digest

            self.persistent_digest_before = persistent_digest(self)  # each rank's own, before averaging
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
    from benchbench.core import backend

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
    from benchbench.core import backend

    return float(backend.as_numpy(getattr(v, "array", v)))


def _check_finite(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise Diverged(f"loss became {loss} at step {step}")


def _train_quick(c: CellContext, cell: dict, timer, losses: list) -> None:
    s = c.settings
    warmup, steps = max(int(s.get("warmup_steps") or 0), c.min_warmup), int(s.get("steps") or 1)
    cell["timing"]["warmup_steps"] = warmup
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


def _train_full(c: CellContext, cell: dict, timer, losses: list, stopwatch) -> None:
    s = c.settings
    warmup = max(int(s.get("warmup_steps") or 0), c.min_warmup)
    cell["timing"]["warmup_steps"] = warmup
    epochs = int(s.get("epochs") or c.wl.epochs)
    per_epoch = c.train_it.batches_per_epoch
    accuracy = c.wl.metric == "accuracy"
    until = s.get("until") or "target"
    step = 0
    lr_rule = c.lr_rule  # training at another batch (see executor/cell/batch_run.py)
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
        _keep_best(q, cell.get("quality"), epoch + 1)
        q["until"], q["epochs"] = until, epoch + 1
        cell["quality"] = q
        if q["reached"] and q.get("time_to_target_s") is None:
            q["time_to_target_s"], q["epochs_to_target"] = row["elapsed_time"], epoch + 1
        if q["reached"] and until == "target":
            break
    c.window.stop()


def _keep_best(q: dict, previous: dict | None, epoch: int) -> None:
    """``q`` (this epoch's quality) gains the best value so far (and its epoch) and the first time
    and epoch the target was reached."""
    prev = previous or {}
    best, best_epoch = prev.get("best_value"), prev.get("best_epoch")
    value = q["value"]
    if value is not None and (best is None or (value > best if q["higher_is_better"] else value < best)):
        best, best_epoch = value, epoch
    q["best_value"], q["best_epoch"] = best, best_epoch
    q["time_to_target_s"] = prev.get("time_to_target_s")
    q["epochs_to_target"] = prev.get("epochs_to_target")


def _log_header(c: CellContext, data: dict) -> None:
    """The first line of the cell's epoch log file: its data and how its quality is judged, so that
    the epochs of a cell that dies later keep their data source and target (``launcher.partial_quality``)."""
    path = c.desc.get("epoch_log_path")
    if c.rank != 0 or not path or c.desc.get("profile", "quick") != "full":
        return
    wl = c.wl
    header = {"data": data, "quality": {"metric": wl.metric, "target": wl.target_for(c.params),
                                        "target_source": wl.target_source, "higher_is_better": wl.higher_is_better,
                                        "until": (c.settings or {}).get("until") or "target"}}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(header, default=_jsonable) + "\n")


def _append_epoch(c: CellContext, row: dict) -> None:
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


def _quality(c: CellContext, vloss: float, vmetric: float) -> dict:
    wl = c.wl
    value = vmetric if wl.metric == "accuracy" else (vmetric if math.isfinite(vmetric) else vloss)
    target = wl.target_for(c.params)
    reached = bool(math.isfinite(value) and (value >= target if wl.higher_is_better else value <= target))
    return {"metric": wl.metric, "value": value if math.isfinite(value) else None, "target": target,
            "target_source": wl.target_source, "reached": reached, "time_to_target_s": None,
            "higher_is_better": wl.higher_is_better, "validation_loss": vloss if math.isfinite(vloss) else None}
