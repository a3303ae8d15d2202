"""A ring all-reduce model of data-parallel step time, fitted from measured cells.

The step time on ``n`` devices is modelled as::

    t_step(n) = t_compute / n          (strong scaling: the global batch is split)
              | t_compute              (weak scaling: each device keeps its batch)
              + 2 (n - 1) / n × bytes / bandwidth      (ring all-reduce: reduce-scatter + all-gather)
              + 2 (n - 1) × latency                    (one hop latency per ring step)

The all-reduce terms come from measurements only: from an all-reduce sweep of the device group
(``link=``, see ``executor.bandwidth``) with the gradient size (``bytes=``), or, failing that,
fitted from scaling points at three or more distinct device counts (two unknowns need more
than two points to be checked at all). Fewer points and no sweep: ``fit`` refuses
(``InsufficientData``) rather than guess. ``predict(..., bandwidth=...)`` answers "what if the
interconnect were faster" — an assumption, which reports label as such.

Example:
    >>> model = fit([ScalingPoint(1, 0.010), ScalingPoint(2, 0.0065, 0.0015), ScalingPoint(4, 0.0045, 0.0020)])
    >>> round(predict(model, 8) * 1e3, 2)  # doctest: +SKIP
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODES = ("strong", "weak")
MIN_DEVICE_COUNTS = 3  # distinct device counts needed to fit both all-reduce terms from scaling points
EXTRAPOLATION_FACTOR = 4  # predictions past this multiple of the largest measured count are extrapolations


class InsufficientData(ValueError):
    """The points cannot determine the all-reduce terms and no interconnect was measured."""


@dataclass(frozen=True)
class ScalingPoint:
    """One measured configuration.

    Attributes:
        n: number of devices (1 for the single-device cell).
        step_s: median step time, seconds.
        allreduce_s: median all-reduce phase time per step, seconds, where it was measured.
    """

    n: int
    step_s: float
    allreduce_s: float | None = None


@dataclass(frozen=True)
class ScalingModel:
    """A fitted ring all-reduce model (see the module docstring for the formula).

    Attributes:
        mode: ``strong`` or ``weak``.
        t_compute: single-device compute time per step, seconds.
        comm_s: ``bytes / bandwidth``, seconds.
        latency: per-hop latency, seconds.
        bytes: gradient bytes all-reduced per step, where known.
        bandwidth: bytes per second, where ``bytes`` is known.
        source: where the all-reduce terms come from (a measured interconnect or a fit).
        max_measured_n: the largest device count measured (predictions past 4x it are extrapolations).
    """

    mode: str
    t_compute: float
    comm_s: float
    latency: float
    bytes: float | None = None
    bandwidth: float | None = None
    source: str = "fitted"
    max_measured_n: int = 1


def _as_point(p) -> ScalingPoint:
    if isinstance(p, ScalingPoint):
        point = p
    elif isinstance(p, dict):
        point = ScalingPoint(p.get("n"), p.get("step_s"), p.get("allreduce_s"))
    elif isinstance(p, (tuple, list)) and len(p) in (2, 3):
        point = ScalingPoint(*p)
    else:
        raise TypeError(f"fit: each point must be a ScalingPoint, dict or (n, step_s[, allreduce_s]) tuple, got {p!r}")
    if not isinstance(point.n, int) or isinstance(point.n, bool) or point.n < 1:
        raise ValueError(f"fit: a point's n must be an integer >= 1, got {point.n!r}")
    if not isinstance(point.step_s, (int, float)) or not math.isfinite(point.step_s) or point.step_s <= 0:
        raise ValueError(f"fit: a point's step_s must be a positive number, got {point.step_s!r}")
    a = point.allreduce_s
    if a is not None and (not isinstance(a, (int, float)) or not math.isfinite(a) or a < 0):
        raise ValueError(f"fit: a point's allreduce_s must be a number >= 0 or None, got {a!r}")
    return point


def _nonnegative_lstsq(columns: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least squares for two non-negative coefficients (tries both, then each alone)."""
    candidates = []
    full, *_ = np.linalg.lstsq(columns, target, rcond=None)
    if np.all(full >= 0):
        candidates.append(full)
    for j in range(columns.shape[1]):
        col = columns[:, j]
        denom = float(col @ col)
        coef = np.zeros(columns.shape[1])
        if denom > 0:
            coef[j] = max(0.0, float(col @ target) / denom)
        candidates.append(coef)
    return min(candidates, key=lambda c: float(np.sum((columns @ c - target) ** 2)))


def _comm_columns(n: np.ndarray) -> np.ndarray:
    return np.stack([2 * (n - 1) / n, 2 * (n - 1)], axis=1)


def fit(points, mode: str = "strong", bytes: float | None = None, link: dict | None = None) -> ScalingModel:
    """Fits the ring all-reduce model to measured points.

    The compute time comes from the single-device point where there is one, otherwise from the
    data-parallel points' step time less their all-reduce time. The all-reduce terms are fitted
    (non-negative least squares) to the measured all-reduce phase times where present, otherwise
    to what the compute term leaves of the step times.

    Args:
        points: ``ScalingPoint`` objects (or dicts / tuples of the same fields); at least one.
        mode: ``strong`` or ``weak``.
        bytes: gradient bytes all-reduced per step, where known (gives the model a bandwidth).
        link: a measured interconnect, ``{"latency_s", "bandwidth_bytes_per_s"}`` (``executor.bandwidth``
            fit); with ``bytes`` its terms are used instead of fitting them.

    Returns:
        The fitted :class:`ScalingModel`.

    Raises:
        InsufficientData: data-parallel points at fewer than ``MIN_DEVICE_COUNTS`` distinct device
            counts and no measured link (with the gradient size).
        ValueError: no points, a bad point, or an unknown mode.
    """
    if mode not in MODES:
        raise ValueError(f"fit: mode must be 'strong' or 'weak', got {mode!r}")
    if bytes is not None and (not isinstance(bytes, (int, float)) or bytes <= 0):
        raise ValueError(f"fit: bytes must be a positive number or None, got {bytes!r}")
    pts = [_as_point(p) for p in points]
    if not pts:
        raise ValueError("fit: points is empty; give at least one measured point")
    divisor = (lambda n: n) if mode == "strong" else (lambda n: 1)
    singles = [p.step_s for p in pts if p.n == 1]
    if singles:
        t_compute = float(np.median(singles))
    else:
        estimates = [(p.step_s - (p.allreduce_s or 0.0)) * divisor(p.n) for p in pts]
        t_compute = max(float(np.median(estimates)), 0.0)
    multi = [p for p in pts if p.n > 1]
    counts = sorted({p.n for p in pts})
    comm_s = latency = 0.0
    measured = (link is not None and bytes is not None and link.get("accepted", True) is not False
                and (link.get("bandwidth_bytes_per_s") or 0) > 0 and link.get("latency_s") is not None)
    if measured:
        comm_s, latency = float(bytes) / float(link["bandwidth_bytes_per_s"]), float(link["latency_s"])
        return ScalingModel(mode=mode, t_compute=t_compute, comm_s=comm_s, latency=latency, bytes=bytes,
                            bandwidth=float(link["bandwidth_bytes_per_s"]), source="measured interconnect",
                            max_measured_n=max(counts))
    if len(counts) < MIN_DEVICE_COUNTS:
        raise InsufficientData(
            f"fit: the all-reduce latency and bandwidth need a measured interconnect (`benchbench bandwidth`, "
            f"with the gradient size) or scaling points at {MIN_DEVICE_COUNTS} or more distinct device counts; "
            f"got device counts {counts}")
    if multi:
        n = np.array([p.n for p in multi], dtype=np.float64)
        if all(p.allreduce_s is not None for p in multi):
            target = np.array([p.allreduce_s for p in multi])
        else:
            target = np.array([max(p.step_s - t_compute / divisor(p.n), 0.0) for p in multi])
        comm_s, latency = (float(c) for c in _nonnegative_lstsq(_comm_columns(n), target))
    bandwidth = bytes / comm_s if bytes is not None and comm_s > 0 else None
    return ScalingModel(mode=mode, t_compute=t_compute, comm_s=comm_s, latency=latency, bytes=bytes, bandwidth=bandwidth,
                        source=f"fitted from {len(counts)} device counts", max_measured_n=max(counts))


def predict(model: ScalingModel, n, bandwidth: float | None = None):
    """The model's step time on ``n`` devices, seconds.

    Args:
        model: a fitted :class:`ScalingModel`.
        n: number of devices (an int or an array of them, each >= 1).
        bandwidth: bytes per second to assume instead of the fitted one (needs ``model.bytes``).

    Returns:
        A float for a scalar ``n``, an array otherwise.

    Raises:
        ValueError: ``n`` below 1, a non-positive bandwidth, or a bandwidth for a model without bytes.
        TypeError: ``model`` is not a ScalingModel.
    """
    if not isinstance(model, ScalingModel):
        raise TypeError(f"predict: model must be a ScalingModel, got {type(model).__name__}")
    arr = np.asarray(n, dtype=np.float64)
    if arr.size == 0 or np.any(~np.isfinite(arr)) or np.any(arr < 1):
        raise ValueError(f"predict: n must be >= 1, got {n!r}")
    comm_s = model.comm_s
    if bandwidth is not None:
        if not isinstance(bandwidth, (int, float)) or bandwidth <= 0:
            raise ValueError(f"predict: bandwidth must be a positive number of bytes/s, got {bandwidth!r}")
        if model.bytes is None:
            raise ValueError("predict: bandwidth needs a model fitted with bytes= (the gradient size); this one has none")
        comm_s = model.bytes / bandwidth
    compute = model.t_compute / arr if model.mode == "strong" else np.full_like(arr, model.t_compute)
    t = compute + 2 * (arr - 1) / arr * comm_s + 2 * (arr - 1) * model.latency
    return float(t) if np.ndim(n) == 0 else t


def predicted_throughput(model: ScalingModel, n, batch_n1: float):
    """Samples/s the model predicts on ``n`` devices, given the single-device (or per-device) batch.

    Strong scaling keeps the global batch at ``batch_n1``; weak scaling multiplies it by ``n``.
    """
    arr = np.asarray(n, dtype=np.float64)
    batch = batch_n1 if model.mode == "strong" else batch_n1 * arr
    return batch / predict(model, arr)
