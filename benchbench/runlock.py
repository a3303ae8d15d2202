"""One writer per results file: a lock held while a run writes its file.

The lock is ``<results file>.lock`` beside the file, held with ``fcntl.flock`` on an open
descriptor. It is keyed on the resolved file (symbolic links in the folders above resolved), so
two names of one file share one lock; the lock file itself is created with ``O_EXCL`` and opened
with ``O_NOFOLLOW``: a symbolic link, a hard link or anything but a regular file in its place is
refused, never written through. The kernel releases a ``flock`` when its holder exits, however
it exits (a crash or SIGKILL included): a lock left by a dead process is simply taken over. The
lock file records the holder (process id, host, start time) so that a refusal can say who holds
it; where the kernel names another holder (``/proc/locks``), that process is named.

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
import stat
from pathlib import Path

from benchbench.errors import UserError


class LockHeld(UserError):
    """Another live process holds the results file."""


def lock_path(results_file) -> Path:
    """The lock file of a results file: ``<file>.lock`` beside the resolved file.

    The folders above the file are resolved (``results/m/r.json`` and a path through a linked
    folder give one lock); the file's own name is kept, a symbolic link is not followed.
    """
    p = Path(results_file)
    return Path(os.path.realpath(p.parent)) / (p.name + ".lock")


def _flock_holder(fd: int) -> int | None:
    """The process id the kernel lists as holding a ``flock`` on ``fd``'s file (Linux), or None."""
    st = os.fstat(fd)
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read(1 << 20).splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK":  # waiters are listed as "N: -> FLOCK ..."
            continue
        try:
            major, minor, ino = parts[5].split(":")
            if int(ino) == st.st_ino and (int(major, 16), int(minor, 16)) == (os.major(st.st_dev), os.minor(st.st_dev)):
                return int(parts[4])
        except ValueError:
            continue
    return None


def _holder_text(fd: int) -> str:
    """Who holds the lock: the record in the open lock file when the kernel agrees, else the
    process the kernel names (a record left by an earlier, dead holder is not believed)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        recorded = f"process {int(info['pid'])} on {info['host']} (since {info['started']})"
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        recorded, pid = None, None
    holder = _flock_holder(fd)
    if holder is None or (pid == holder and info.get("host") == socket.gethostname()):
        return recorded or "another process (it has not recorded itself yet)"
    return f"process {holder} on {socket.gethostname()}"


def refuse_symlink(path, what: str = "results file", fix: str = "name the file itself") -> None:
    """Refuse a ``path`` that is a symbolic link: benchbench never writes through one.

    Raises:
        UserError: ``path`` is a symbolic link (the message names where it points, and ``fix``).
    """
    if os.path.islink(path):
        raise UserError(f"{path}: the {what} is a symbolic link (to {os.readlink(path)}); benchbench does not "
                        f"write through links: {fix}")


def _open_lock(path: Path) -> int:
    """Create the lock file (``O_EXCL``) or open the one there, never following a link."""
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            refuse_symlink(path, "lock file", "remove the link if no run is writing the results file")
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        kind = "not a regular file" if not stat.S_ISREG(st.st_mode) else f"a file with {st.st_nlink} hard links"
        raise UserError(f"{path}: the lock file is {kind}; benchbench does not write to it: remove it if no "
                        "run is writing this results file")
    return fd


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
                fd = _open_lock(self.path)
            except FileNotFoundError:  # removed between the two opens by a holder that ended
                continue
            except OSError as e:
                raise UserError(f"{self.path}: cannot create the lock of the results file "
                                f"({e.strerror or e}); choose a writable --output") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _holder_text(fd)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise UserError(f"{self.path}: cannot lock the results file ({e.strerror or e})") from None
                raise LockHeld(f"{self.results_file} is being written by {holder}; "
                               "wait for that run to end or stop it, then try again") from None
            # The file may have been removed by its previous holder between our open and flock:
            # then we hold a lock on a file nobody else will see; start again.
            try:
                same = os.path.samestat(os.fstat(fd), os.lstat(self.path))
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
            if os.path.samestat(os.fstat(self._fd), os.lstat(self.path)):  # only the file we hold
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
