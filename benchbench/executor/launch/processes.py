"""Child process groups and scratch folders: the one discipline of every command that starts workers.

Every command that launches a worker or ``mpiexec`` does it through :func:`group`, so none can
forget a step:

- the child starts in its own session (its own process group), so the whole tree below it
  (``mpiexec``, ``hydra_pmi_proxy``, the ranks) can be ended with one signal;
- the kernel SIGKILLs the child when this process dies (``PR_SET_PDEATHSIG``), and the child's
  environment names this process (``lifeline.RUN_PID_ENV``) so that ranks further down run a
  watchdog that ends their group when it is gone;
- whatever ends the block (a time-out, Ctrl-C, SIGTERM turned into ``KeyboardInterrupt``, a bug),
  the group is killed and reaped before the exception goes on; so are ranks left behind by an
  ``mpiexec`` that exited.

Scratch folders are named ``benchbench-<kind>-<pid>-*`` after their owner, so that one left by a
process killed with SIGKILL (which removes nothing) is swept at the next start by
:func:`sweep_stale_scratch`, once its owner is gone.

Example:
    >>> with group(["true"]) as proc:  # doctest: +SKIP
    ...     wait(proc, timeout_s=10)
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from . import lifeline

_SCRATCH = re.compile(r"^benchbench-(?:cell|bw)-(\d+)-")
KILL_WAIT_S = 10.0


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (started by :func:`group`) and reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        pass


@contextlib.contextmanager
def group(cmd, **popen_kwargs):
    """Start ``cmd`` as the leader of a new process group, and end the group when the block ends.

    Args:
        cmd: the command line.
        **popen_kwargs: passed to ``subprocess.Popen`` (stdout, stderr, env, cwd...); the session,
            the parent-death signal and ``lifeline.RUN_PID_ENV`` are set here.

    Yields:
        The ``Popen`` object.
    """
    env = dict(popen_kwargs.pop("env", None) or os.environ)
    env[lifeline.RUN_PID_ENV] = lifeline.run_pid_value()
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(cmd, start_new_session=True, env=env, preexec_fn=lifeline.set_parent_death_signal,
                            **popen_kwargs)
    try:
        yield proc
    finally:
        # The leader may be gone with members left (ranks of an mpiexec that exited): the group's
        # id stays taken while it has members, so this reaches exactly them.
        kill_group(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for ``proc`` at most ``timeout_s`` seconds; True when it ended, False on time-out."""
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def scratch_dir(kind: str):
    """A temporary folder ``benchbench-<kind>-<this pid>-*``, removed when the block ends.

    Args:
        kind: ``cell`` or ``bw``.
    """
    if kind not in ("cell", "bw"):
        raise ValueError(f"scratch kind must be 'cell' or 'bw', got {kind!r}")
    return tempfile.TemporaryDirectory(prefix=f"benchbench-{kind}-{os.getpid()}-")


def sweep_stale_scratch(folder=None) -> list[Path]:
    """Remove scratch folders of processes that are gone (a run killed with SIGKILL leaves its own).

    Only folders named by :func:`scratch_dir`, owned by this user, not symbolic links, and whose
    owner process no longer exists are removed.

    Args:
        folder: where to look (default: the temporary folder, ``TMPDIR``).

    Returns:
        The folders removed.
    """
    root = Path(folder or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        m = _SCRATCH.match(entry.name)
        if not m:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_dir(follow_symlinks=False) or st.st_uid != os.getuid() or lifeline.alive(int(m.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed
