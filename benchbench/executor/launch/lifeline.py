"""A worker never outlives its run: parent-death signal and a watchdog.

The launcher starts each worker in its own process group and, on Linux, asks the
kernel to SIGKILL the worker when the launcher dies (``PR_SET_PDEATHSIG``), so even a
SIGKILL of ``benchbench run`` takes its worker along. Processes further down (MPI ranks
under ``mpiexec``) do not have the launcher as parent, so every worker also runs a
watchdog thread that polls the launcher's process id (passed in ``RUN_PID_ENV``) and
ends its own process group when the launcher is gone. The variable holds
``PID@HOST``: ranks on other nodes of a multi-node run cannot see the launcher's
process and do not watch it (mpiexec ends them with their node's proxy).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import sys
import threading
import time

RUN_PID_ENV = "BENCHBENCH_RUN_PID"
_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    Meant as a ``preexec_fn`` (it runs in the child between fork and exec).

    Returns:
        True when the request was made, False where the platform has no such call.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def run_pid_value(pid: int | None = None) -> str:
    """The value of ``RUN_PID_ENV`` for a worker of process ``pid`` (default: this one): ``PID@HOST``."""
    return f"{os.getpid() if pid is None else int(pid)}@{socket.gethostname()}"


def _watched_pid() -> int | None:
    pid, _, host = os.environ.get(RUN_PID_ENV, "").partition("@")
    if not pid.isdigit() or host != socket.gethostname():
        return None
    return int(pid)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_watchdog(pid: int | None = None, interval_s: float = 1.0) -> threading.Thread | None:
    """Start a daemon thread that ends this process group when process ``pid`` is gone.

    Args:
        pid: the run's main process (default: from the ``BENCHBENCH_RUN_PID`` environment
            variable; no watchdog when it is not set or names another host).
        interval_s: how often to look, in seconds (> 0).

    Returns:
        The thread, or None when there is no process to watch.
    """
    if pid is None:
        pid = _watched_pid()
    if pid is None or pid <= 1:
        return None
    if not interval_s > 0:
        raise ValueError(f"start_watchdog: interval_s must be > 0, got {interval_s!r}")

    def watch():
        while alive(pid):
            time.sleep(interval_s)
        # The run is gone: nobody will read this cell's result. End the whole group
        # (an MPI rank takes its siblings and mpiexec along), then this process.
        try:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        finally:
            os._exit(137)

    thread = threading.Thread(target=watch, name="benchbench-watchdog", daemon=True)
    thread.start()
    return thread
