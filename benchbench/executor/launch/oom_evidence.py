"""Evidence of an out-of-memory kill: the cgroup's ``oom_kill`` counter.

A worker that dies by SIGKILL was not necessarily killed for memory (a user, a batch
system or a watchdog sends SIGKILL too). A cell is recorded as ``oom`` only on evidence:
an allocation error in the worker (the worker records that itself), or an increase of
the ``oom_kill`` counter of this process's cgroup (v2 ``memory.events``, v1
``memory.oom_control``) while the cell ran.
"""
from __future__ import annotations

from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_files() -> list[Path]:
    """The files that may hold an ``oom_kill`` counter for this process, most specific first."""
    out = []
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        rel = parts[2].lstrip("/")
        if parts[1] == "":  # cgroup v2
            out.append(_CGROUP_ROOT / rel / "memory.events")
        elif "memory" in parts[1].split(","):
            out.append(_CGROUP_ROOT / "memory" / rel / "memory.oom_control")
    out += [_CGROUP_ROOT / "memory.events", _CGROUP_ROOT / "memory" / "memory.oom_control"]
    return out


def oom_kill_count() -> int | None:
    """The cgroup's count of out-of-memory kills, or None where none can be read.

    Example:
        >>> isinstance(oom_kill_count(), (int, type(None)))
        True
    """
    for path in _cgroup_files():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def oom_killed_since(before: int | None) -> bool:
    """True when the ``oom_kill`` counter read now is above ``before`` (a reading taken earlier)."""
    if before is None:
        return False
    now = oom_kill_count()
    return now is not None and now > before
