"""The figures of a cell besides its step times: interference and energy over the timed window,
the memory pool's high-water mark, and what deterministic mode changed.

Called by ``run_cell``; every function here takes the cell record (and the ``CellContext``) and fills its part.
"""
from __future__ import annotations

import os
import sys

def _gather(c, value, cell) -> list:
    """``value`` of every rank (a list of one outside data parallel, or where this rank failed)."""
    if c is None or c.size <= 1 or cell["status"] != "ok":
        return [value]
    return list(c.comm.allgather_obj(value))


def gpu_probe(device, warm: bool = True):
    if device.kind != "gpu":
        return None
    from benchbench.executor import probes

    try:
        return {"gpu_gemm_gflops": probes.measure(device, budget_s=0.02, reps=2, cpu=False, warm=warm)["gpu_gemm_gflops"]}
    except Exception as e:
        print(f"benchbench: GPU probe unavailable: {e}", file=sys.stderr)
        return None


def window_records(cell, c, timer, threads, gpu_probe_before) -> None:
    """The cell's interference and energy over the timed window, from every rank."""
    from benchbench.executor.cell.window import combine

    gpu_probe_after = gpu_probe(c.device, warm=False) if timer.step_s else None  # the steps warmed the clocks
    mine = c.window.as_dict()
    mine["gpu_probes"] = [gpu_probe_before, gpu_probe_after]
    ranks = _gather(c, mine, cell)
    if not timer.step_s:
        return
    # The BLAS-threads rule is for CPU cells: a GPU cell's matrix products do not run on the cores.
    blas = None if c.device.kind == "gpu" else threads if threads is not None else _blas_threads_now()
    steps = len(timer.step_s)
    per_epoch = c.train_it.batches_per_epoch if c.desc.get("profile") == "full" else None
    record, energy = combine(ranks, threads_per_rank=blas, probes=None, steps=steps,
                             samples=steps * int(cell["batch_size"] or 0), steps_per_epoch=per_epoch)
    if record is not None:
        gp = [r["gpu_probes"] for r in ranks if r.get("gpu_probes") and r["gpu_probes"][0]]
        if gp:
            record["gpu_probes"] = {"before": [g[0] for g in gp], "after": [g[1] for g in gp]}
        cell["interference"] = record
    cell["energy"] = energy


def _blas_threads_now():
    from benchbench.executor.interference import blas_threads

    return blas_threads()


def start_pool_peak(device):
    if device.kind != "gpu":
        return None
    from benchbench.core import backend
    from benchbench.executor.cell.device_memory import PoolPeak

    try:
        return PoolPeak(backend.cupy).install()
    except Exception as e:
        print(f"benchbench: memory pool tracking unavailable: {e}", file=sys.stderr)
        return None


def failed_alloc(exc, pool):
    from benchbench.executor.cell.device_memory import failed_size

    size = failed_size(exc)
    if size is None and pool is not None:
        size = pool.failed_bytes
    return size


def pool_records(cell, c, pool) -> None:
    """The pool's high-water mark of allocated bytes on every rank."""
    if pool is not None:
        pool.uninstall()
    peak = pool.peak_bytes if pool is not None else None
    peaks = _gather(c, peak, cell)
    if all(p is None for p in peaks):
        return
    cell["memory"]["pool_peak_bytes_per_rank"] = peaks
    cell["memory"]["pool_peak_bytes"] = max(p for p in peaks if p is not None)
    cell["memory"]["pool_scope"] = "memory pool high-water mark of allocated bytes, per rank (max shown)"


# --------------------------------------------------------------------------- deterministic mode
_ENV_CHANGES: list[str] = []  # what deterministic_environment changed in this worker
_DETERMINISTIC_ENV = (("CUPY_TF32", "0", "TF32 off (CUPY_TF32=0)"),
                      ("NVIDIA_TF32_OVERRIDE", "0", "TF32 off in the CUDA libraries (NVIDIA_TF32_OVERRIDE=0)"),
                      ("CUBLAS_WORKSPACE_CONFIG", ":4096:8", "cuBLAS deterministic workspace (CUBLAS_WORKSPACE_CONFIG=:4096:8)"))


def deterministic_environment(desc: dict, environ=None) -> list[str]:
    """Set the environment a deterministic GPU cell needs, before cupy is imported.

    CuPy's defaults are deterministic already (TF32 off unless ``CUPY_TF32`` > 0; the cuBLAS
    workspace setting matters only with several streams), so a setting counts as a change only
    where the environment had enabled TF32 before.

    Args:
        desc: the cell description; nothing is set unless it is a deterministic GPU cell.
        environ: the environment to change (default ``os.environ``).

    Returns:
        One line per setting that changed the computation (empty when CuPy's defaults held).
    """
    environ = os.environ if environ is None else environ
    if not desc.get("deterministic") or desc.get("device_kind") != "gpu":
        return []
    _ENV_CHANGES.clear()
    changes = []
    for key, value, what in _DETERMINISTIC_ENV:
        before = environ.get(key)
        environ[key] = value
        if _tf32_was_on(key, before):
            changes.append(f"{what}, was {key}={before}")
    if "cupy" in sys.modules:
        changes.append("warning: cupy was imported before the settings; they may not apply")
    _ENV_CHANGES.extend(changes)
    return changes


def _tf32_was_on(key: str, before) -> bool:
    """Did the environment enable TF32 before deterministic mode set ``key``?"""
    if key != "CUPY_TF32" or before is None:
        return False  # NVIDIA_TF32_OVERRIDE only forces off; CUBLAS_WORKSPACE_CONFIG: one stream
    try:
        return int(before) > 0
    except ValueError:
        return False


# Where the shipped workloads reduce in an order the hardware could change, and why that order is fixed.
DETERMINISTIC_ALREADY = (
    "sums and means (loss, BatchNorm statistics, bias gradients): CuPy's reduction kernels and CUB reduce "
    "in a fixed tree order, run to run",
    "matrix products (linear, convolution as GEMM, LSTM gates): cuBLAS gives bit-identical results run to "
    "run on one GPU model and one stream; atomics mode stays off by default",
    "col2im and pooling gradients: strided slices added in a fixed order, no add.at",
    "NCCL all-reduce: fixed order for a fixed number of ranks, topology and algorithm",
)


def deterministic_record(desc: dict, paths: dict | None = None) -> dict | None:
    """What deterministic mode changed in this cell (None when the mode is off).

    Args:
        desc: the cell description.
        paths: how often each deterministic-only path ran during the cell
            (``core.config.deterministic_paths``, counted over the cell).

    Returns:
        ``{changes, paths, differs, note}``: ``differs`` is True only where a deterministic-only
        path ran or a setting changed what the libraries compute.
    """
    if not desc.get("deterministic"):
        return None
    if desc.get("device_kind") != "gpu":
        return {"changes": [], "paths": {}, "differs": False,
                "note": "on the CPU the kernels (numpy, BLAS) are deterministic already: the mode changes nothing"}
    ran = {k: int(v) for k, v in (paths or {}).items() if v}
    changes = [f"{k} ({v} calls)" for k, v in sorted(ran.items())] + list(_ENV_CHANGES)
    differs = bool(ran) or any(not c.startswith("warning:") for c in _ENV_CHANGES)
    note = None if differs else ("no deterministic-only path ran in this cell and CuPy's defaults were "
                                 "deterministic already: the mode changed nothing")
    return {"changes": changes, "paths": ran, "differs": differs, "note": note,
            "deterministic_already": list(DETERMINISTIC_ALREADY)}


def tf32_record(desc: dict, environ=None) -> dict | None:
    """Whether float32 matrix products may use TF32 in this GPU cell (CuPy: only with ``CUPY_TF32`` > 0)."""
    if desc.get("device_kind") != "gpu":
        return None
    environ = os.environ if environ is None else environ
    value = environ.get("CUPY_TF32")
    forced_off = environ.get("NVIDIA_TF32_OVERRIDE") == "0"
    return {"enabled": _tf32_was_on("CUPY_TF32", value) and not forced_off,
            "source": f"CUPY_TF32={value}" if value is not None else "CUPY_TF32 unset (CuPy's default: off)"}


def interconnect_record(cell, c) -> None:
    """A short all-reduce sweep over the cell's own communicator (data-parallel cells that finished)."""
    if c is None or c.size <= 1 or cell["status"] != "ok":
        return
    from benchbench.executor import bandwidth

    xp = c.device.xp
    try:
        with c.device.scope():
            # Up to the gradient size: the scaling model predicts the all-reduce of the whole gradient.
            sizes = bandwidth.sizes_up_to(int(getattr(c.optimizer, "allreduce_bytes", 0) or 0) // 4 * 4)
            result = bandwidth.sweep(c.comm, sizes, reps=5, warmup=1, xp=xp)
    except Exception as e:  # the measurement never fails a finished cell
        cell["interconnect"] = {"error": f"{type(e).__name__}: {e}"}
        return
    result["communicator"] = cell.get("communicator")
    cell["interconnect"] = result


def persistent_digest(c) -> str:
    """A hash of this rank's floating-point persistent buffers (BatchNorm running statistics)."""
    import hashlib

    import numpy

    h = hashlib.sha256()
    for name, (link, attr) in sorted(c.model.namedpersistents(), key=lambda kv: kv[0]):
        value = getattr(link, attr, None)
        if c.backend.is_array(value) and value.dtype.kind == "f":
            h.update(name.encode())
            h.update(numpy.ascontiguousarray(c.backend.as_numpy(value)).tobytes())
    return h.hexdigest()


def batchnorm_record(cell, c) -> None:
    """Data parallel: did the ranks' BatchNorm running statistics differ before the last averaging, and
    agree after it?"""
    if c is None or c.size <= 1 or cell["status"] != "ok" or c.model is None:
        return
    digests = c.comm.allgather_obj(persistent_digest(c))
    before = c.comm.allgather_obj(c.persistent_digest_before)
    names = list(c.synced_persistents or [])
    cell["batchnorm_sync"] = {
        "buffers": len(names), "ranks_agree": len(set(digests)) == 1,
        "ranks_differed_before": None if None in before else len(set(before)) > 1,
        "rule": "running statistics only: floating-point persistent buffers (BatchNorm running mean and "
                "variance) averaged over the ranks before every validation; training normalises each rank's "
                "batch with its own statistics (not SyncBN)",
    }
