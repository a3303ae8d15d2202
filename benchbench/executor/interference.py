"""Was the machine quiet while a cell was timed? CPU time used by other processes, and a pre-flight check.

Process accounting: over a window (the timed steps of a cell), the machine's busy CPU time
(``psutil.cpu_times()`` summed over the CPUs: user, nice, system, irq, softirq and steal) minus the
CPU time of the run's own processes (every rank, with its BLAS threads) is the time other processes
(and, as steal, other tenants of the host) took. Its share of the machine's capacity
(wall time × logical CPUs) is ``other_share``; above ``CONTENDED_SHARE`` the cell is ``contended``.

What process accounting cannot see (a neighbour on the same physical cores, throttling) the
calibration probes catch (see ``executor.probes``); ``verdict`` combines both.

Example:
    >>> w = CpuWindow()
    >>> w.start(); _ = sum(range(10000)); r = w.stop()
    >>> sorted(r)[:3]
    ['busy_s', 'cores', 'other_cores']
"""
from __future__ import annotations

import os
import time

import psutil

CONTENDED_SHARE = 0.10  # other processes' share of the machine's CPU time above which a cell is contended
PREFLIGHT_BUSY_SHARE = 0.10  # the same threshold for the warning before a run starts

_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")
TICK_S = 0.01  # resolution of the kernel's CPU-time accounting (USER_HZ = 100)


def _machine_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(getattr(t, name, 0.0) for name in _BUSY_FIELDS))


def _process_cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def blas_threads() -> int | None:
    """The BLAS thread count of this process (threadpoolctl), or None where none is loaded."""
    try:
        from threadpoolctl import threadpool_info

        counts = [int(p.get("num_threads") or 0) for p in threadpool_info() if p.get("user_api") == "blas"]
    except Exception:
        return None
    return max(counts) if counts else None


class CpuWindow:
    """The machine's CPU time and this process's over one window.

    ``stop`` returns raw figures; :func:`summarize` turns the windows of every rank into
    the cell's ``interference`` record.
    """

    def __init__(self):
        self._proc = psutil.Process(os.getpid())
        self._t0 = self._busy0 = self._own0 = None

    def start(self) -> None:
        """Open the window (read the clocks)."""
        self._busy0 = _machine_busy_s()
        self._own0 = _process_cpu_s(self._proc)
        self._t0 = time.perf_counter()

    def stop(self) -> dict:
        """Close the window.

        Returns:
            ``{wall_s, busy_s, own_s, cores, other_cores, pid}``: wall seconds, the machine's busy CPU
            seconds, this process's CPU seconds, logical CPUs, and the CPUs other processes kept busy
            on average if this were the only process of the run.
        """
        if self._t0 is None:
            raise RuntimeError("CpuWindow.stop: call start() first")
        wall = time.perf_counter() - self._t0
        busy = max(0.0, _machine_busy_s() - self._busy0)
        own = max(0.0, _process_cpu_s(self._proc) - self._own0)
        cores = psutil.cpu_count() or 1
        return {"wall_s": wall, "busy_s": busy, "own_s": own, "cores": cores,
                "other_cores": max(0.0, busy - own) / wall if wall > 0 else 0.0, "pid": os.getpid()}


def summarize(windows: list[dict], threads_per_rank: int | None = None, gpu: dict | None = None,
              probes: dict | None = None, threshold: float = CONTENDED_SHARE) -> dict:
    """The cell's ``interference`` record from the windows of all its ranks (one machine).

    Args:
        windows: :meth:`CpuWindow.stop` of every rank; the machine figures are taken from the
            longest window, the run's own CPU time is the sum over ranks.
        threads_per_rank: BLAS threads of each rank (None: unknown).
        gpu: other processes on the cell's GPUs and clock events (see ``system.gpu_activity``), if any.
        probes: the calibration probes around the cell (see ``executor.probes.judge``), if any.
        threshold: the share of the machine's CPU time others may use before the cell is contended.

    Returns:
        ``{other_share, share_uncertainty, other_cores, own_cores, cores, free_cores, blas_threads,
        oversubscribed, window_s, threshold, gpu, probes, reasons, verdict}``; ``verdict`` is
        ``"quiet"`` or ``"contended"`` and ``reasons`` says why. The CPU share counts against the
        threshold only beyond its accounting uncertainty (clock ticks over a short window).

    Raises:
        ValueError: no windows, or a threshold outside (0, 1).
    """
    if not windows:
        raise ValueError("interference.summarize: at least one window is needed")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"interference.summarize: threshold must be in (0, 1), got {threshold!r}")
    main = max(windows, key=lambda w: w["wall_s"])
    wall, cores = main["wall_s"], int(main["cores"])
    own = sum(w["own_s"] for w in windows)
    other_s = max(0.0, main["busy_s"] - own)
    share = min(1.0, other_s / (wall * cores)) if wall > 0 else 0.0  # clock ticks can overshoot a little
    # Both counters tick in TICK_S per CPU: a short window cannot resolve a small share.
    uncertainty = min(1.0, 2.0 * TICK_S * (len(windows) + cores) / (wall * cores)) if wall > 0 else 1.0
    other_cores = other_s / wall if wall > 0 else 0.0
    free = max(0.0, cores - other_cores)
    threads = None if threads_per_rank is None else int(threads_per_rank) * len(windows)
    oversubscribed = bool(threads is not None and threads > free + 0.5)
    reasons = []
    if share > threshold + uncertainty:
        reasons.append(f"other processes used {share:.0%} of the machine's CPU time (threshold {threshold:.0%})")
    if oversubscribed and share > threshold / 2:
        reasons.append(f"{threads} BLAS thread(s) on {free:.1f} free core(s)")
    if gpu and gpu.get("other_processes"):
        reasons.append(f"{len(gpu['other_processes'])} other process(es) on the GPU")
    if gpu and gpu.get("clock_events"):
        reasons.append("GPU clock events: " + ", ".join(gpu["clock_events"]))
    if probes and probes.get("moved"):
        reasons.append(probes.get("reason") or "the calibration probes moved")
    return {"other_share": share, "share_uncertainty": uncertainty, "other_cores": other_cores, "own_cores": own / wall if wall > 0 else 0.0,
            "cores": cores, "free_cores": free, "blas_threads": threads, "oversubscribed": oversubscribed,
            "window_s": wall, "threshold": threshold, "gpu": gpu, "probes": probes, "reasons": reasons,
            "verdict": "contended" if reasons else "quiet"}


def preflight(interval_s: float = 0.5, threshold: float = PREFLIGHT_BUSY_SHARE) -> dict:
    """How busy the machine is before a run starts (as pyperf's system checks: warn, do not tune).

    Args:
        interval_s: how long to watch, in seconds (> 0).
        threshold: the share of CPU time other processes may use before ``busy`` is True.

    Returns:
        ``{other_share, cores, busy, top, load_avg}``: the share of the machine's CPU time
        other processes used over the interval, whether that exceeds ``threshold``, the
        busiest other processes as ``{pid, name, core_share}`` (share of one core), and the 1-minute
        load average where the system has one.
    """
    if not interval_s > 0:
        raise ValueError(f"interference.preflight: interval_s must be positive, got {interval_s!r}")
    me = os.getpid()
    procs = {}
    for p in psutil.process_iter(["pid", "name"]):
        try:
            procs[p.pid] = (p, _process_cpu_s(p))
        except (psutil.Error, OSError):
            continue
    w = CpuWindow()
    w.start()
    time.sleep(interval_s)
    r = w.stop()
    top = []
    for pid, (p, before) in procs.items():
        if pid == me:
            continue
        try:
            used = _process_cpu_s(p) - before
        except (psutil.Error, OSError):
            continue
        if used > 0.02 * r["wall_s"]:
            top.append({"pid": pid, "name": p.info.get("name") or "?", "core_share": used / r["wall_s"]})
    top.sort(key=lambda t: -t["core_share"])
    share = min(1.0, max(0.0, r["busy_s"] - r["own_s"]) / (r["wall_s"] * r["cores"]))
    try:
        load = float(os.getloadavg()[0])
    except (AttributeError, OSError):
        load = None
    return {"other_share": share, "cores": r["cores"], "busy": share > threshold, "top": top[:3], "load_avg": load}


def preflight_warning(check: dict) -> str | None:
    """One line warning that the machine is busy, or None when it is quiet."""
    if not check.get("busy"):
        return None
    top = ", ".join(f"{t['name']} (pid {t['pid']}, {t['core_share']:.0%} of a core)" for t in check.get("top") or [])
    return (f"benchbench: warning: the machine is busy: other processes used {check['other_share']:.0%} of its "
            f"{check['cores']} CPU(s)" + (f" ({top})" if top else "") +
            "; figures taken now will be slower than the hardware allows and are marked contended")
