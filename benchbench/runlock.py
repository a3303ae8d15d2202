"""One writer per results file: a lock held while a run writes its file.

The lock is ``<results file>.lock`` beside the file, held with ``fcntl.flock`` on an open
descriptor, so the kernel releases it when the holder exits, however it exits (a crash or
SIGKILL included): a lock left by a dead process is simply taken over. The lock file
records the holder (process id, host, start time) so that a refusal can say who holds it.

Example:
    >>> with RunLock("results/m/r.json"):  # doctest: +SKIP
    ...     pass  # write results/m/r.json
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from benchbench.errors import UserError


class LockHeld(UserError):
    """Another live process holds the results file."""


def lock_path(results_file) -> Path:
    """The lock file of a results file: ``<file>.lock`` beside it."""
    p = Path(results_file)
    return p.with_name(p.name + ".lock")


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8")[:4096])
        return (f"process {int(info['pid'])} on {info['host']} (since {info['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class RunLock:
    """The exclusive right to write one results file.

    Args:
        results_file: the results file to hold.

    Raises (from :meth:`acquire`):
        LockHeld: another live process holds it; the message names it.
        UserError: the lock file cannot be created (an unwritable folder).
    """

    def __init__(self, results_file):
        self.results_file = Path(results_file)
        self.path = lock_path(results_file)
        self._fd = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock (without waiting); returns self."""
        if self._fd is not None:
            return self
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise UserError(f"{self.path}: cannot create the lock of the results file "
                                f"({e.strerror or e}); choose a writable --output") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise UserError(f"{self.path}: cannot lock the results file ({e.strerror or e})") from None
                raise LockHeld(f"{self.results_file} is being written by {_holder_text(self.path)}; "
                               "wait for that run to end or stop it, then try again") from None
            # The file may have been removed by its previous holder between our open and flock:
            # then we hold a lock on a file nobody else will see; start again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back and remove the lock file."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
