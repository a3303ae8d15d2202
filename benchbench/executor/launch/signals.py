"""SIGTERM and SIGHUP handled as Ctrl-C while a run works.

A batch system ends a job with SIGTERM, a closed terminal sends SIGHUP; both then take
the path of Ctrl-C: the worker's process group is killed, its temporary folder removed,
the results file marked ``interrupted`` and ``--resume`` can complete the run.
"""
from __future__ import annotations

import contextlib
import signal
import threading

TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` in the main thread.

    The previous handlers come back on exit. Outside the main thread (where handlers
    cannot be set) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in TERMINATING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
