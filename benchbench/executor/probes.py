"""Calibration probes: a short fixed sgemm and memory-bandwidth measurement (and a GPU GEMM).

Process accounting cannot see a neighbour on the same physical cores of a shared host, nor
throttling; a fixed piece of work timed before and after a cell (and at the start and end of a
run) can. A probe reports the best of ``reps`` timings, which is what the hardware gives when
nothing interferes. A cell whose probes moved by more than ``TOLERANCE`` (between its own
before and after, or against the run's first probe) is ``contended``.

Example:
    >>> p = measure("cpu", budget_s=0.01)
    >>> p["sgemm_gflops"] > 0 and p["membw_gbs"] > 0
    True
"""
from __future__ import annotations

import time

import numpy

TOLERANCE = 0.25  # a probe figure that moved by more than this fraction marks the cell contended
SGEMM_N = 256
MEMBW_FLOATS = 1 << 22  # 16 MiB of float32, copied (32 MiB moved)
GPU_GEMM_N = 1024


def _best_rate(fn, work: float, budget_s: float, reps: int) -> float:
    """``work`` per second of the fastest of ``reps`` batches of calls, each batch lasting about ``budget_s``."""
    fn()  # warm
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(budget_s / one))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return work / max(best, 1e-12)


def _cpu(budget_s: float, reps: int) -> dict:
    from threadpoolctl import threadpool_limits

    # One BLAS thread: a per-core gauge; a multi-threaded sgemm on a shared machine measures
    # the threads' synchronisation more than the cores.
    with threadpool_limits(limits=1, user_api="blas"):
        return _cpu_probes(budget_s, reps)


def _cpu_probes(budget_s: float, reps: int) -> dict:
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((SGEMM_N, SGEMM_N), dtype=numpy.float32)
    b = rng.standard_normal((SGEMM_N, SGEMM_N), dtype=numpy.float32)
    c = numpy.empty_like(a)
    gflops = _best_rate(lambda: numpy.matmul(a, b, out=c), 2.0 * SGEMM_N ** 3 / 1e9, budget_s, reps)
    src = numpy.ones(MEMBW_FLOATS, numpy.float32)
    dst = numpy.empty_like(src)
    gbs = _best_rate(lambda: numpy.copyto(dst, src), 2.0 * src.nbytes / 1e9, budget_s, reps)
    return {"sgemm_gflops": gflops, "membw_gbs": gbs}


def _gpu(device, budget_s: float, reps: int, warm: bool = True) -> float:
    from benchbench.core import backend

    cupy = backend.cupy
    with device.scope():
        a = cupy.ones((GPU_GEMM_N, GPU_GEMM_N), dtype=numpy.float32)
        b = cupy.ones((GPU_GEMM_N, GPU_GEMM_N), dtype=numpy.float32)

        def gemm():
            with backend.synced_timer(device):
                cupy.matmul(a, b)

        if warm:
            _warm_clocks(gemm)
        return _best_rate(gemm, 2.0 * GPU_GEMM_N ** 3 / 1e9, budget_s, reps)


WARMUP_MAX_S = 0.2  # longest a GPU probe waits for the clocks to leave idle


def _warm_clocks(fn, max_s: float = WARMUP_MAX_S, settle: float = 0.1, clock=time.perf_counter) -> int:
    """Call ``fn`` until three calls in a row take within ``settle`` of each other (an idle GPU's clocks
    ramp up under load, from a few hundred MHz) or ``max_s`` passes; returns the calls made."""
    times: list[float] = []
    end = clock() + max_s
    while clock() < end:
        t0 = clock()
        fn()
        times.append(clock() - t0)
        last = times[-3:]
        if len(last) == 3 and max(last) <= min(last) * (1.0 + settle):
            break
    return len(times)


def measure(device="cpu", budget_s: float = 0.03, reps: int = 3, cpu: bool = True, warm: bool = True) -> dict:
    """Run the probes once.

    Args:
        device: ``"cpu"``, ``"gpu:N"`` or a ``core.backend.Device``; a GPU adds a GPU GEMM.
        budget_s: about how long one timed batch of calls lasts (> 0).
        reps: timed batches per figure; the fastest counts (>= 1).
        cpu: run the CPU probes (sgemm, memory bandwidth); False for the GPU GEMM alone.
        warm: first run the GPU GEMM until its clocks settle (an idle GPU starts slow); False right
            after work (the clocks are up).

    Returns:
        ``{"sgemm_gflops", "membw_gbs", "gpu_gemm_gflops" (GPU only), "at"}``, ``at`` a
        ``time.time()`` stamp.

    Raises:
        ValueError: a budget or repetition count out of range.
    """
    from benchbench.core import backend

    if not budget_s > 0:
        raise ValueError(f"probes.measure: budget_s must be positive, got {budget_s!r}")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ValueError(f"probes.measure: reps must be a positive integer, got {reps!r}")
    dev = backend.Device(device)
    out = _cpu(budget_s, reps) if cpu else {}
    if dev.kind == "gpu":
        try:
            out["gpu_gemm_gflops"] = _gpu(dev, budget_s, reps, warm)
        except Exception as e:  # a probe never fails a cell
            out["gpu_gemm_error"] = f"{type(e).__name__}: {e}"
    out["at"] = time.time()
    return out


_FIGURES = ("sgemm_gflops", "membw_gbs", "gpu_gemm_gflops")


def judge(before: dict | None, after: dict | None, reference: dict | None = None,
          tolerance: float = TOLERANCE) -> dict:
    """Did the probes around a cell move beyond ``tolerance``?

    A figure moved when it slowed down by more than ``tolerance``: after against before (a faster
    "after" is clocks that ramped up, not interference), and the cell's better reading against the
    run's ``reference`` (its first probe), which catches a neighbour present for the whole cell.

    Args:
        before, after: :func:`measure` results around the cell (either may be None).
        reference: the run's first probe, or None.
        tolerance: the allowed fractional change, in (0, 1).

    Returns:
        ``{before, after, reference, tolerance, changes, moved, reason}``: ``changes`` maps
        ``"<figure> after/before"`` and ``"<figure> cell/reference"`` to ratios.
    """
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"probes.judge: tolerance must be in (0, 1), got {tolerance!r}")
    changes, worst = {}, None
    for name in _FIGURES:
        a, b = (before or {}).get(name), (after or {}).get(name)
        if a and b:
            changes[f"{name} after/before"] = b / a
        cell_best = max([v for v in (a, b) if v] or [0.0])
        ref = (reference or {}).get(name)
        if ref and cell_best:
            changes[f"{name} cell/reference"] = cell_best / ref
    for key, ratio in changes.items():
        dev = ratio  # slowdowns only
        if dev < 1.0 - tolerance and (worst is None or dev < worst[1]):
            worst = (key, dev, ratio)
    reason = None
    if worst is not None:
        reason = f"calibration probe {worst[0]} = {worst[2]:.2f} (tolerance ±{tolerance:.0%})"
    return {"before": before, "after": after, "reference": reference, "tolerance": tolerance,
            "changes": changes, "moved": worst is not None, "reason": reason}


class RunCalibration:
    """Probes at the start and end of a run and around each cell, run by the launching process.

    The worker of a GPU cell adds its own GPU GEMM probes (``interference.gpu_probes``);
    :meth:`after_cell` judges the cell's probes and marks it ``contended`` when they moved.

    Args:
        budget_s, reps: as in :func:`measure`.
        tolerance: as in :func:`judge`.
    """

    def __init__(self, budget_s: float = 0.03, reps: int = 3, tolerance: float = TOLERANCE):
        self.budget_s, self.reps, self.tolerance = budget_s, reps, tolerance
        self.start: dict | None = None
        self.end: dict | None = None
        self._before: dict | None = None

    def run_start(self) -> dict:
        """Probe once before the first cell; the run's reference."""
        self.start = self._before = measure("cpu", self.budget_s, self.reps)
        return self.start

    def before_cell(self, index=None, desc=None) -> None:
        """Probe before a cell (re-uses the previous cell's after-probe when there is one)."""
        if self._before is None:
            self._before = measure("cpu", self.budget_s, self.reps)

    def after_cell(self, index, cell: dict) -> dict:
        """Probe after a cell, judge, and record it in ``cell["interference"]`` (changed in place)."""
        after = measure("cpu", self.budget_s, self.reps)
        before, self._before = self._before, after
        record = cell.get("interference")
        if not isinstance(record, dict):
            return cell
        gpu = record.get("gpu_probes") or {}
        b, a = dict(before or {}), dict(after)
        for side, probe in (("before", b), ("after", a)):
            values = [g.get("gpu_gemm_gflops") for g in gpu.get(side) or [] if g and g.get("gpu_gemm_gflops")]
            if values:
                probe["gpu_gemm_gflops"] = min(values)
        ref = dict(self.start or {})
        verdict = judge(b, a, ref, self.tolerance)
        record["probes"] = verdict
        if verdict["moved"]:
            record["reasons"] = list(record.get("reasons") or []) + [verdict["reason"]]
            record["verdict"] = "contended"
        return cell

    def run_end(self) -> dict:
        """Probe once after the last cell."""
        self.end = measure("cpu", self.budget_s, self.reps)
        return self.end

    def as_dict(self) -> dict:
        """The run's probes, for the results file."""
        return {"start": self.start, "end": self.end, "tolerance": self.tolerance,
                "what": f"best of {self.reps}: {SGEMM_N}² float32 sgemm on one thread (GFLOP/s), copy of "
                        f"{MEMBW_FLOATS * 4 >> 20} MiB (GB/s, read + write)"}
