"""The cell record: its skeleton, failed records, error classification, the timing summaries,
and the atomic JSON writer of a cell result."""
from __future__ import annotations

import datetime

import numpy

from benchbench.json_files import atomic_write_json

_MAX_REASON = 300


def skeleton(desc: dict) -> dict:
    """The cell record with every field the description fixes; measurements empty.

    Args:
        desc: the cell description the launcher writes (see ``executor.run.describe_cell``).

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
        "seed": int(desc.get("seed", 0)),
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
    """Write ``obj`` as JSON atomically (``json_files.atomic_write_json``); numpy values become numbers."""
    atomic_write_json(path, obj, indent=None, default=_jsonable)


def _jsonable(o):
    if isinstance(o, numpy.generic):
        return o.item()
    if isinstance(o, numpy.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class Diverged(Exception):
    """The training loss became NaN or infinite."""


def _summaries(cell: dict, c, timer) -> None:
    from benchbench import stats

    cell["timing"]["step_s"] = list(timer.step_s)
    cell["timing"]["phases_s"] = {k: list(v) for k, v in timer.phases_s.items()}
    if not timer.step_s:
        return
    st = {"step_s": stats.summarize(timer.step_s),
          "samples_per_s": stats.throughput_summary(timer.step_s, cell["batch_size"])}
    flops = (cell.get("flops_per_sample") or {}).get("train_step")
    st["gflops"] = flops * st["samples_per_s"]["median"] / 1e9 if flops else None
    cell["stats"] = st
