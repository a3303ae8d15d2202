"""Was the machine quiet while a cell was timed? CPU time used by other processes, and a pre-flight check.

Process accounting: over a window (the timed steps of a cell), the busy CPU time of the CPUs this
process may run on (its affinity; ``psutil.cpu_times(percpu=True)``: user, nice, system, irq, softirq
and steal) minus the CPU time of the run's own processes (the launcher's whole process tree --
``benchbench run``, ``mpiexec`` and its proxies, every rank with its BLAS threads -- or, without a
launcher, the ranks) is the time other processes (and, as steal, other tenants of the host) took.
Its share of those CPUs' capacity (wall time × CPUs) is ``other_share``; above ``CONTENDED_SHARE``
the cell is ``contended``. A cgroup CPU quota caps the free cores the BLAS-threads rule (CPU cells
only) compares with. On the GPU side (``gpu_reasons``) other processes count, by pid or, where NVML
lists host pids, by number; a power cap is recorded and never decides.

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


def _machine_busy_s(cpus: list[int] | None = None) -> float:
    """Busy CPU seconds of the machine, or of the CPUs ``cpus`` alone."""
    if cpus is None:
        t = psutil.cpu_times()
        return float(sum(getattr(t, name, 0.0) for name in _BUSY_FIELDS))
    per = psutil.cpu_times(percpu=True)
    return float(sum(getattr(per[i], name, 0.0) for i in cpus if i < len(per) for name in _BUSY_FIELDS))


def usable_cpus() -> list[int] | None:
    """The CPUs this process may run on (its affinity), or None where the system does not say."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs' worth of time the cgroup quota allows (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``); None: no quota."""
    v2 = _read(f"{root}/cpu.max")
    if v2 is not None:
        parts = v2.split()
        quota, period = (parts + ["100000"])[:2] if parts else ("max", "1")
    else:
        quota, period = _read(f"{root}/cpu/cpu.cfs_quota_us"), _read(f"{root}/cpu/cpu.cfs_period_us")
    try:
        q, p = float(quota), float(period)
    except (TypeError, ValueError):
        return None  # "max", -1 or nothing readable: no quota
    return q / p if q > 0 and p > 0 else None


def _run_root_pid() -> int | None:
    """The launcher's pid (``BENCHBENCH_RUN_PID``, on this host), whose process tree is the run's."""
    from benchbench.executor.launch.lifeline import RUN_PID_ENV

    pid, _, host = os.environ.get(RUN_PID_ENV, "").partition("@")
    if not pid.isdigit():
        return None
    import socket

    return int(pid) if host == socket.gethostname() else None


def _tree_cpu(root: int | None) -> dict[int, float]:
    """CPU seconds of ``root`` and all its descendants (the launcher, mpiexec, its proxies, the ranks)."""
    if root is None:
        return {}
    try:
        top = psutil.Process(root)
        procs = [top] + top.children(recursive=True)
    except (psutil.Error, OSError):
        return {}
    out = {}
    for p in procs:
        try:
            out[p.pid] = _process_cpu_s(p)
        except (psutil.Error, OSError):
            continue
    return out


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
        self._cpus = usable_cpus()
        self._root = _run_root_pid()
        self._tree0: dict[int, float] = {}

    def start(self) -> None:
        """Open the window (read the clocks)."""
        self._busy0 = _machine_busy_s(self._cpus)
        self._tree0 = _tree_cpu(self._root)
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
        busy = max(0.0, _machine_busy_s(self._cpus) - self._busy0)
        own = max(0.0, _process_cpu_s(self._proc) - self._own0)
        tree1 = _tree_cpu(self._root)
        # The launcher's whole tree (launcher, mpiexec and its proxies, every rank) is the run's own:
        # processes alive at both ends count their difference, those born in the window all of theirs.
        tree = sum(max(0.0, v - self._tree0.get(pid, 0.0)) for pid, v in tree1.items()) if tree1 else None
        cores = len(self._cpus) if self._cpus else (psutil.cpu_count() or 1)
        out = {"wall_s": wall, "busy_s": busy, "own_s": own, "cores": cores,
               "other_cores": max(0.0, busy - max(own, tree or 0.0)) / wall if wall > 0 else 0.0, "pid": os.getpid(),
               "cpu_quota": cgroup_cpu_quota()}
        if tree is not None:
            out["tree_s"] = max(tree, own)
        return out


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
    trees = [w["tree_s"] for w in windows if w.get("tree_s") is not None]
    if trees:  # every rank saw the launcher's whole tree: the largest reading, not their sum
        own = max(own, max(trees))
    other_s = max(0.0, main["busy_s"] - own)
    share = min(1.0, other_s / (wall * cores)) if wall > 0 else 0.0  # clock ticks can overshoot a little
    # Both counters tick in TICK_S per CPU: a short window cannot resolve a small share.
    uncertainty = min(1.0, 2.0 * TICK_S * (len(windows) + cores) / (wall * cores)) if wall > 0 else 1.0
    other_cores = other_s / wall if wall > 0 else 0.0
    quota = main.get("cpu_quota")
    free = max(0.0, min(cores - other_cores, quota if quota else cores))
    threads = None if threads_per_rank is None else int(threads_per_rank) * len(windows)
    oversubscribed = bool(threads is not None and threads > free + 0.5)
    reasons = []
    if share > threshold + uncertainty:
        reasons.append(f"other processes used {share:.0%} of the machine's CPU time (threshold {threshold:.0%})")
    if oversubscribed and share > threshold / 2:
        reasons.append(f"{threads} BLAS thread(s) on {free:.1f} free core(s)")
    reasons += gpu_reasons(gpu)
    if probes and probes.get("moved"):
        reasons.append(probes.get("reason") or "the calibration probes moved")
    return {"other_share": share, "share_uncertainty": uncertainty, "other_cores": other_cores, "own_cores": own / wall if wall > 0 else 0.0,
            "cores": cores, "cpu_quota": quota, "free_cores": free, "blas_threads": threads, "oversubscribed": oversubscribed,
            "window_s": wall, "threshold": threshold, "gpu": gpu, "probes": probes, "reasons": reasons,
            "verdict": "contended" if reasons else "quiet"}


# Clock events recorded but not deciding: a GEMM-heavy step sits at the power cap by design.
RECORDED_ONLY_EVENTS = ("sw_power_cap",)


def gpu_reasons(gpu: dict | None) -> list[str]:
    """Why the GPU side makes a cell contended (empty when it does not).

    Other processes count by pid where NVML lists the run's own pids; where it does not (a container
    sees host pids: ``pid_namespace`` ``"unknown"``), by how many more processes NVML lists than the
    run has on the GPU. A power cap is recorded, never a reason.
    """
    if not gpu:
        return []
    reasons = []
    if gpu.get("pid_namespace") == "unknown":
        extra = int(gpu.get("listed_processes") or 0) - int(gpu.get("own_processes") or 1)
        if extra > 0:
            reasons.append(f"{extra} other process(es) on the GPU (counted: NVML lists host pids, pid namespace "
                           "unknown)")
    elif gpu.get("other_processes"):
        reasons.append(f"{len(gpu['other_processes'])} other process(es) on the GPU")
    deciding = [e for e in gpu.get("clock_events") or [] if e not in RECORDED_ONLY_EVENTS]
    if deciding:
        reasons.append("GPU clock events: " + ", ".join(deciding))
    return reasons


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
