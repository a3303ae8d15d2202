"""Reading user-supplied files with bounds: size, file kind and nesting depth.

A plan or results file named by the user may be anything: a FIFO that never ends, a
device such as ``/dev/zero``, a sparse file of terabytes, or JSON nested a million
levels deep. These helpers refuse such input quickly and in bounded memory, with a
one-line message naming the file, instead of hanging or exhausting memory.

Example:
    >>> from benchbench.errors import UserError
    >>> check_depth({"a": [1, {"b": 2}]}, 8, "x.json", UserError)
"""
from __future__ import annotations

import errno
import os
import stat

from benchbench.errors import UserError

MiB = 1 << 20


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def read_limited(path, limit: int, what: str, error=UserError, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    The file is opened without blocking (a FIFO does not hang the open) and its kind and size
    are checked on the open descriptor before anything is read; at most ``limit + 1`` bytes
    are read, so a file that grows or lies about its size is refused too.

    Args:
        path: the file.
        limit: the largest size accepted, in bytes (> 0).
        what: what the file is, for messages (e.g. ``"results file"``).
        error: the exception type raised (a ``UserError`` subclass).
        follow_symlinks: False to refuse a ``path`` that is a symbolic link (``O_NOFOLLOW``),
            for a file that is going to be rewritten.

    Returns:
        The file's content.

    Raises:
        error: missing, unreadable, a symbolic link (when not followed), not a regular file, or
            larger than ``limit``.
        ValueError: ``limit`` is not a positive integer.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"read_limited: limit must be a positive integer, got {limit!r}")
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(name, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_symlinks:
            raise error(f"{name}: the {what} is a symbolic link; benchbench does not write through links: "
                        "name the file itself") from None
        if e.errno == errno.ENOENT:
            raise error(f"{name}: no such {what}") from None
        raise error(f"{name}: cannot read the {what} ({e.strerror or e})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{name}: the {what} is {_kind(st.st_mode)}, not a regular file")
        raise error(f"{name}: the {what} is {st.st_size / MiB:.1f} MiB, more than the {limit / MiB:.0f} MiB "
                    f"a {what} can be; is it the right file?")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise error(f"{name}: cannot read the {what} ({e.strerror or e})") from None
    if len(data) > limit:
        raise error(f"{name}: the {what} is larger than the {limit / MiB:.0f} MiB a {what} can be")
    return data


def decode_utf8(data: bytes, name: str, what: str, error=UserError) -> str:
    """``data`` decoded as UTF-8, or an error naming the file and the line of the first bad byte.

    Raises:
        error: the bytes are not UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise error(f"{name}:{line}: the {what} is not UTF-8 text (byte 0x{data[e.start]:02x}); "
                    f"save it as UTF-8") from None


def check_depth(obj, max_depth: int, name: str, error=UserError) -> None:
    """Refuse lists and dicts nested deeper than ``max_depth`` (checked without recursion).

    Raises:
        error: nesting deeper than ``max_depth``; the message names ``name``.
    """
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise error(f"{name}: nested more than {max_depth} levels deep; not a file benchbench wrote")
        stack.extend((child, depth + 1) for child in children)
