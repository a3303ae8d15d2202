"""Writing JSON files atomically: the one writer every layer above ``core`` uses.

A reader never sees a partial file: the text goes to a temporary file in the same
folder, is flushed and fsynced, and then renamed over the target. Standard library only.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_json(path, obj, *, indent: int | None = 1, default=None) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically: a temporary file beside it, fsync, rename.

    The file at ``path`` is either the old one or the complete new one, never a partial
    write. ``obj`` is serialised before anything is written; NaN and infinity are refused.
    Missing parent folders are created; the new file is readable by all (mode 0644).

    Args:
        path: the file to write (str or path-like).
        obj: the value to write.
        indent: ``json.dumps`` indentation (None: one line).
        default: ``json.dumps`` hook for values with no JSON form (None: refuse them).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError, ValueError: ``obj`` is not strict JSON (nothing is written).
        OSError: the write failed (the old file is left intact, the temporary file removed).
    """
    path = Path(path)
    text = json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=False, default=default) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable where the platform allows it."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
