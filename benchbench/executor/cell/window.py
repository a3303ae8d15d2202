"""The timed window of a cell: the spans of its timed steps, with what happened on the machine meanwhile.

A cell's figures (step time, interference, energy) must cover the same span. ``TimedWindow``
opens when timing starts (after the warm-up), pauses around validation and closes after the last
timed step; over those spans it accumulates the machine's and this process's CPU time
(``interference.CpuWindow``) and, on a GPU, the NVML energy counter, other processes on the device
and clock events. Each rank keeps its own window; :func:`combine` merges the ranks' windows into
the cell's ``interference`` and ``energy`` records (energy summed over ranks).
"""
from __future__ import annotations

import os
import time

from benchbench.executor import interference


class TimedWindow:
    """Accumulates CPU time and GPU energy over the timed spans of one rank.

    Args:
        monitor: an open ``system.GpuMonitor`` of this rank's GPU, or None (CPU, or no NVML).
    """

    def __init__(self, monitor=None):
        self.monitor = monitor
        self.cpu = {"wall_s": 0.0, "busy_s": 0.0, "own_s": 0.0, "cores": os.cpu_count() or 1,
                    "pid": os.getpid()}
        self.energy_mj = 0 if monitor is not None else None
        self.gpu_pids: set[int] = set()
        self.gpu_listed = 0  # the most processes NVML listed on the GPU at one look
        self.clock_events: set[str] = set()
        self.spans = 0
        self.closed = False
        self._cpu = None
        self._e0 = None
        # A CPU cell reads the CPU packages' RAPL counters where they are readable (system.cpu_power).
        self.rapl_j = None
        self._rapl = None
        if monitor is None:
            from benchbench.system.cpu_power import RaplCounter, cpu_energy

            if cpu_energy()["available"]:
                self._rapl, self.rapl_j = RaplCounter(), 0.0
        # Energy over the steps alone (bookkeeping between steps -- loss read-back, rank gathers -- left out).
        self.step_energy_mj = 0 if monitor is not None else None
        self.step_wall_s = 0.0
        self._step0 = None

    @property
    def open(self) -> bool:
        """True while a span is being measured."""
        return self._cpu is not None

    def start(self) -> None:
        """Open a span (timing starts or resumes)."""
        if self.open or self.closed:
            return
        self._gpu_look()
        if self._rapl is not None:
            self._rapl.start()
        self._cpu = interference.CpuWindow()
        self._cpu.start()
        if self.monitor is not None:  # read right after the CPU window's clock: the two spans coincide
            self._e0 = self.monitor.energy_mj()

    resume = start

    def pause(self) -> None:
        """Close the current span (e.g. before validation); ``resume`` opens the next."""
        if not self.open:
            return
        e1 = self.monitor.energy_mj() if self.monitor is not None else None
        r = self._cpu.stop()
        self._cpu = None
        if self._rapl is not None and self.rapl_j is not None:
            joules = self._rapl.stop()
            self.rapl_j = None if joules is None else self.rapl_j + joules
        for key in ("wall_s", "busy_s", "own_s"):
            self.cpu[key] += r[key]
        self.cpu["cores"] = r["cores"]
        if self.energy_mj is not None:
            if isinstance(self._e0, int) and isinstance(e1, int) and e1 >= self._e0:
                self.energy_mj += e1 - self._e0
            else:
                self.energy_mj = None  # the counter is not readable: no figure rather than a wrong one
        self.spans += 1
        self._gpu_look()

    def step_begin(self) -> None:
        """A timed step starts: read the energy counter (nothing outside an open span or without NVML)."""
        if self.open and self.step_energy_mj is not None:
            self._step0 = (self.monitor.energy_mj(), time.perf_counter())

    def step_end(self) -> None:
        """The timed step ended (device synchronised): add its energy and wall time."""
        if self._step0 is None:
            return
        (e0, t0), self._step0 = self._step0, None
        e1 = self.monitor.energy_mj()
        if isinstance(e0, int) and isinstance(e1, int) and e1 >= e0:
            self.step_energy_mj += e1 - e0
            self.step_wall_s += time.perf_counter() - t0
        else:
            self.step_energy_mj = None

    def stop(self) -> None:
        """Close the window after the last timed step; later ``start`` calls do nothing."""
        self.pause()
        self.closed = True

    def _gpu_look(self) -> None:
        if self.monitor is None:
            return
        pids = self.monitor.process_ids()
        if pids is not None:
            self.gpu_pids.update(pids)
            self.gpu_listed = max(self.gpu_listed, len(set(pids)))
        events = self.monitor.clock_events()
        if events:
            self.clock_events.update(events)

    def as_dict(self) -> dict:
        """This rank's figures (JSON-ready), for :func:`combine`."""
        return {"cpu": dict(self.cpu), "energy_mj": self.energy_mj, "gpu_pids": sorted(self.gpu_pids),
                "gpu_listed": self.gpu_listed,
                "clock_events": sorted(self.clock_events), "spans": self.spans, "pid": os.getpid(),
                "step_energy_mj": self.step_energy_mj if self.step_wall_s > 0 else None,
                "step_wall_s": self.step_wall_s,
                "has_gpu": self.monitor is not None, "rapl_j": self.rapl_j}


def combine(ranks: list[dict], *, threads_per_rank: int | None, probes: dict | None, steps: int,
            samples: int, steps_per_epoch: int | None = None) -> tuple[dict, dict]:
    """The cell's ``interference`` and ``energy`` records from every rank's :meth:`TimedWindow.as_dict`.

    Args:
        ranks: one dict per rank.
        threads_per_rank: BLAS threads per rank, if known.
        probes: the probes' judgement (``probes.judge``), if any.
        steps: timed steps in the window.
        samples: samples processed in the timed steps (all ranks).
        steps_per_epoch: steps of one epoch of the full dataset (full profile), for J/epoch;
            None leaves J/epoch out (the quick profile trains on a slice).

    Returns:
        ``(interference, energy)``; energy figures are None where no rank had a readable counter.
    """
    if not ranks:
        raise ValueError("window.combine: no rank windows")
    own_pids = {r["pid"] for r in ranks}
    gpu = None
    if any(r.get("has_gpu") for r in ranks):
        others = sorted({p for r in ranks for p in r.get("gpu_pids") or [] if p not in own_pids})
        events = sorted({e for r in ranks for e in r.get("clock_events") or []})
        gpu = {"other_processes": others,
               "clock_events": [e for e in events if e not in interference.RECORDED_ONLY_EVENTS],
               "power_capped": any(e in interference.RECORDED_ONLY_EVENTS for e in events)}
        if any(r["pid"] not in (r.get("gpu_pids") or []) for r in ranks if r.get("has_gpu")):
            # NVML lists pids of another namespace (the host's, seen from a container): which are ours is
            # unknown, so the count decides: more processes listed on a GPU than the run has there.
            gpu.update(other_processes=[], pid_namespace="unknown", listed_pids=others,
                       listed_processes=max(int(r.get("gpu_listed") or 0) for r in ranks), own_processes=1)
    windows = [r["cpu"] for r in ranks if r["cpu"]["wall_s"] > 0]
    record = interference.summarize(windows, threads_per_rank, gpu=gpu, probes=probes) if windows else None
    energy = {"joules": None, "joules_per_epoch": None, "samples_per_joule": None, "watts": None,
              "window": "timed steps", "ranks": len(ranks), "source": None}
    readings = [r.get("energy_mj") for r in ranks if r.get("has_gpu")]
    per_step = [r.get("step_energy_mj") for r in ranks if r.get("has_gpu")]
    if per_step and all(isinstance(v, int) for v in per_step):  # the steps alone
        readings = per_step
        wall = max(r.get("step_wall_s") or 0.0 for r in ranks)
        energy["window"] = "timed steps (bookkeeping between steps excluded)"
    elif readings:
        wall = max(r["cpu"]["wall_s"] for r in ranks)
    if readings and all(isinstance(v, int) for v in readings):
        joules = sum(readings) / 1000.0
        energy.update(joules=joules, source="nvml",
                      joules_per_epoch=joules / steps * steps_per_epoch if steps and steps_per_epoch else None,
                      samples_per_joule=samples / joules if joules > 0 else None,
                      watts=joules / wall if wall > 0 else None,
                      joules_per_sample=joules / samples if samples else None,
                      window_s=wall)
    cpu_readings = [r.get("rapl_j") for r in ranks if not r.get("has_gpu")]
    if not readings and cpu_readings and all(isinstance(v, float) for v in cpu_readings):
        # The packages' counters are machine-wide: every rank of a node reads the same energy, so the
        # largest reading is the node's (one node; ranks on several nodes would need a sum per node).
        joules = max(cpu_readings)
        wall = max(r["cpu"]["wall_s"] for r in ranks)
        energy.update(joules=joules, source="rapl", scope="CPU packages, whole machine (every process)",
                      joules_per_epoch=joules / steps * steps_per_epoch if steps and steps_per_epoch else None,
                      samples_per_joule=samples / joules if joules > 0 else None,
                      watts=joules / wall if wall > 0 else None,
                      joules_per_sample=joules / samples if samples else None, window_s=wall)
    return record, energy
