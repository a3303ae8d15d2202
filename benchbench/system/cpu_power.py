"""CPU frequency settings and package energy, read from sysfs: what pyperf's ``system show`` checks.

``cpu_frequency()`` records the cpufreq governor, turbo, current and maximum frequency, NUMA nodes
and SMT, with a warning for each setting that makes timings vary (as pyperf warns: a governor
other than ``performance``, turbo on, SMT on). ``cpu_energy()`` says whether the RAPL package
counters of ``/sys/class/powercap`` can be read, and ``RaplCounter`` reads them around a window,
so CPU cells can have an energy figure; where they cannot be read, the reason is recorded.

Every function takes ``root`` (default ``/``), the directory the ``sys`` tree is read under, so
that tests point it at a tree they write.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "BENCHBENCH_SYSFS_ROOT"  # tests only: the directory holding the ``sys`` tree to read


def _root(root) -> Path:
    return Path(root if root is not None else os.environ.get(ROOT_ENV) or "/")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except (OSError, ValueError):
        return None


def _int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _cpus(root: Path) -> list[Path]:
    base = root / "sys/devices/system/cpu"
    try:
        return sorted((p for p in base.iterdir() if p.name[3:].isdigit() and p.name.startswith("cpu")),
                      key=lambda p: int(p.name[3:]))
    except OSError:
        return []


def cpu_frequency(root=None) -> dict:
    """Governor, turbo, frequencies, NUMA and SMT of this machine, and pyperf-style warnings.

    Args:
        root: the directory under which ``sys/`` is read (default ``/``).

    Returns:
        ``{governor, turbo, cur_mhz, max_mhz, min_mhz, numa_nodes, smt, warnings}``; a fact that
        cannot be read is None (a virtual machine often exposes no cpufreq).
    """
    root = _root(root)
    cpus = _cpus(root)
    freq = [c / "cpufreq" for c in cpus if (c / "cpufreq").is_dir()]
    governors = sorted({g for g in (_read(f / "scaling_governor") for f in freq) if g})
    cur = [v for v in (_int(f / "scaling_cur_freq") for f in freq) if v]
    top = [v for v in (_int(f / "cpuinfo_max_freq") for f in freq) if v]
    low = [v for v in (_int(f / "cpuinfo_min_freq") for f in freq) if v]
    no_turbo = _int(root / "sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = _int(root / "sys/devices/system/cpu/cpufreq/boost")
    turbo = (no_turbo == 0) if no_turbo is not None else (boost == 1 if boost is not None else None)
    nodes = root / "sys/devices/system/node"
    try:
        numa = len([p for p in nodes.iterdir() if p.name.startswith("node") and p.name[4:].isdigit()])
    except OSError:
        numa = None
    smt_active = _int(root / "sys/devices/system/cpu/smt/active")
    out = {
        "governor": ", ".join(governors) or None,
        "turbo": turbo,
        "cur_mhz": round(sum(cur) / len(cur) / 1000, 1) if cur else None,
        "max_mhz": max(top) / 1000 if top else None,
        "min_mhz": min(low) / 1000 if low else None,
        "numa_nodes": numa or None,
        "smt": None if smt_active is None else bool(smt_active),
    }
    warnings = []
    if governors and governors != ["performance"]:
        warnings.append(f"CPU governor is {out['governor']}, not performance: the clock follows the load and "
                        "timings vary (`cpupower frequency-set -g performance`)")
    if turbo:
        warnings.append("turbo boost is on: the clock depends on temperature and on how many cores are busy")
    if out["smt"]:
        warnings.append("SMT (hyper-threading) is on: two threads on one core share its units")
    if not freq:
        warnings.append("no cpufreq in sysfs (a virtual machine?): governor and frequency unknown")
    out["warnings"] = warnings
    return out


def _rapl_packages(root: Path) -> list[Path]:
    base = root / "sys/class/powercap"
    try:
        zones = sorted(p for p in base.iterdir() if p.name.count(":") == 1 and p.name.startswith("intel-rapl"))
    except OSError:
        return []
    return [z for z in zones if (_read(z / "name") or "").startswith("package")]


def cpu_energy(root=None) -> dict:
    """Can the CPU package energy (RAPL through powercap) be read here, and if not, why.

    Returns:
        ``{available, domains, reason}``: ``domains`` the package zones found; ``reason`` None
        when available, else a sentence for the report.
    """
    root = _root(root)
    if not (root / "sys/class/powercap").is_dir():
        return {"available": False, "domains": [], "reason": "no /sys/class/powercap on this machine (no RAPL driver, "
                "or a virtual machine that hides it): CPU energy cannot be measured"}
    packages = _rapl_packages(root)
    if not packages:
        return {"available": False, "domains": [], "reason": "powercap has no intel-rapl package zone (not an Intel or "
                "AMD CPU with RAPL, or the driver is not loaded): CPU energy cannot be measured"}
    unreadable = [p.name for p in packages if _int(p / "energy_uj") is None]
    if unreadable:
        return {"available": False, "domains": [p.name for p in packages],
                "reason": f"RAPL energy_uj of {', '.join(unreadable)} is not readable by this user (root only since "
                          "Linux 5.10): run as root or `chmod o+r` it to get CPU energy"}
    return {"available": True, "domains": [p.name for p in packages], "reason": None}


class RaplCounter:
    """Joules of every CPU package between :meth:`start` and :meth:`stop`, with counter wrap-around."""

    def __init__(self, root=None):
        self._packages = _rapl_packages(_root(root))
        self._start: list[int | None] = []

    def _now(self) -> list[int | None]:
        return [_int(p / "energy_uj") for p in self._packages]

    def start(self) -> RaplCounter:
        self._start = self._now()
        return self

    def stop(self) -> float | None:
        """Joules since :meth:`start`, or None where a counter could not be read."""
        end = self._now()
        if not self._packages or None in end or None in self._start:
            return None
        total = 0
        for p, a, b in zip(self._packages, self._start, end):
            span = _int(p / "max_energy_range_uj") or 0
            total += b - a if b >= a else b + span - a
        return total / 1e6
