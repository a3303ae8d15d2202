"""User suite files tried in a child process first, so that one that hangs cannot hang the command.

A suite file is Python code run at import. Before the command imports a user's suite files
itself, a child process (its own process group, ended with the command) imports them one by
one and says when each is done. A file that takes longer than the time-out (an endless loop, a
fork loop, a wait for input), or that ends the child's interpreter (``os._exit``, a crash), is
named and left out; the others are imported by the command as before, where an exception is
reported as a broken file. The built-in suites are not probed: no child is started when there
is no user suite folder. A file that imported cleanly is remembered by its content (a marker
named by its SHA-256 in the user cache folder), so the child starts only for files new or
changed since.

``BENCHBENCH_SUITE_TIMEOUT`` sets the time-out in seconds (default 20).
"""
from __future__ import annotations

import hashlib
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchbench.errors import UserError

TIMEOUT_ENV = "BENCHBENCH_SUITE_TIMEOUT"
DEFAULT_TIMEOUT_S = 20.0

_CHILD = r"""
import importlib.util, os, sys
token = sys.argv[1]
for i, path in enumerate(sys.argv[2:]):
    print("", token, "start", i, flush=True)
    try:
        spec = importlib.util.spec_from_file_location(f"benchbench_suite_probe_{i}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    except BaseException:
        pass
    print("", token, "done", i, flush=True)
os._exit(0)
"""


def timeout_s() -> float:
    """The time-out of one suite file's import, from ``BENCHBENCH_SUITE_TIMEOUT`` (default 20 s).

    Raises:
        UserError: the variable is not a number of seconds above 0 and at most 3600.
    """
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 3600:
        raise UserError(f"{TIMEOUT_ENV}={text}: expected a number of seconds above 0 and at most 3600")
    return value


def _read_lines(stream, token: str, out: queue.Queue) -> None:
    for line in stream:
        words = line.decode("utf-8", "replace").split()
        if len(words) == 3 and words[0] == token and words[2].isdigit():  # what the suite prints is not ours
            out.put((words[1], int(words[2])))
    out.put(None)


def _marker(path: str) -> Path | None:
    """Where the verdict "imports cleanly" of this file's content is remembered, or None."""
    import platformdirs

    from benchbench import __version__

    try:
        digest = hashlib.sha256(Path(path).read_bytes())
    except OSError:
        return None
    digest.update(f"\0{sys.executable}\0{__version__}".encode())
    return Path(platformdirs.user_cache_dir("benchbench")) / "suite-imports" / digest.hexdigest()


def _remember(marker: Path | None) -> None:
    if marker is None:
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644))
    except OSError:  # a read-only cache only costs the child next time
        pass


def unsafe_files(paths, limit_s: float | None = None) -> dict:
    """The suite files that hang or end the interpreter at import, tried in a child process.

    Files whose content imported cleanly before are not tried again.

    Args:
        paths: suite files (paths).
        limit_s: the time-out per file (default :func:`timeout_s`).

    Returns:
        ``{path: one-line reason}`` for each file to leave out.
    """
    limit = timeout_s() if limit_s is None else float(limit_s)
    markers = {str(p): _marker(str(p)) for p in paths}
    pending = [p for p, m in markers.items() if m is None or not m.is_file()]
    bad = _probe(pending, limit) if pending else {}
    for path in pending:
        if path not in bad:
            _remember(markers[path])
    return bad


def _probe(pending: list, limit: float) -> dict:
    """Import ``pending`` files one by one in a child; the ones that hang or end it, with why."""
    from benchbench.executor.launch import processes

    bad = {}
    while pending:
        lines: queue.Queue = queue.Queue()
        token = secrets.token_hex(8)
        cmd = [sys.executable, "-c", _CHILD, token, *pending]
        current, done = None, -1
        with processes.group(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
            threading.Thread(target=_read_lines, args=(proc.stdout, token, lines), daemon=True).start()
            deadline = time.monotonic() + limit
            while True:
                try:
                    item = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    if current is not None:
                        bad[pending[current]] = (f"importing it took longer than {limit:g} s (an endless loop or a "
                                                 f"wait at import?); left out ({TIMEOUT_ENV} sets the limit)")
                    break
                if item is None:  # the interpreter ended
                    if current is not None:
                        proc.wait()
                        bad[pending[current]] = f"importing it ended the process (exit status {proc.returncode}); left out"
                    break
                kind, index = item
                if kind == "start":
                    current, deadline = index, time.monotonic() + limit
                else:
                    current, done = None, index
        stopped = current if current is not None else len(pending)
        pending = pending[stopped + 1:]
    return bad
