"""Checks made before any work, so that what the user got wrong is one line and exit 2.

Output folders and files are tried (a small file written and removed) before a run, a profile or
a report starts; the data folder must be a readable folder; no two specs may name the
same cell. (A batch that does not split over its ranks is ``batch_split``'s to refuse.)
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchbench.errors import UserError

_PROBE_BYTES = 64 << 10  # a disk that cannot take this cannot take a results file


def _probe(folder: Path, what: str, given: Path | None = None) -> None:
    """Write and remove a small file in ``folder`` (a full or read-only disk fails here)."""
    if given is not None and given != folder:
        what = f"{what} {given}: in"
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".benchbench-probe-")
    except OSError as e:
        raise UserError(f"{what} {folder}: cannot write there ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * _PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise UserError(f"{what} {folder}: cannot write there ({e.strerror or e}); free space or choose "
                        "another folder") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


_RESULT_NAME_ROOM = 128  # what a run adds below an output folder: <machine-id>/<run-id>.json(.lock)


def check_path_length(path, option: str, room: int = 0) -> None:
    """Refuse a path the file system cannot name: a component over ``NAME_MAX`` or a whole path
    (plus ``room`` bytes that will be added below it) over ``PATH_MAX``.

    Raises:
        UserError: the part that is too long, and the limit.
    """
    full = os.path.abspath(os.fspath(path))
    existing = full
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    try:
        name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for part in Path(full).parts:
        if len(os.fsencode(part)) > name_max:
            raise UserError(f"{option} {path}: the name {part[:40]}... is {len(os.fsencode(part))} bytes long, more "
                            f"than the {name_max} a file name can have here")
    if len(os.fsencode(full)) + room >= path_max:
        raise UserError(f"{option} {path}: the path is {len(os.fsencode(full))} bytes long; with what is written below "
                        f"it that is more than the {path_max} a path can have here")


def check_output_dir(path, option: str = "--output") -> Path:
    """Make sure results can be written under folder ``path``, without creating anything.

    The folder itself, or the nearest folder above it that exists, must take a small file.

    Raises:
        UserError: ``path`` (or a folder on the way to it) is a file, or nothing can be
            written there (read-only, permission denied, full).
    """
    folder = Path(path)
    check_path_length(folder, option, _RESULT_NAME_ROOM)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == folder else f"cannot be created: {probe} is a file"
        raise UserError(f"{option} {folder}: {what}, not a folder; give a folder")
    _probe(probe, option, folder)
    return folder


def check_output_file(path, option: str) -> Path:
    """Make sure file ``path`` can be written, before the work that produces it.

    Nothing is left behind: an existing file is not touched, a missing one is not created.

    Raises:
        UserError: ``path`` is a folder, its folder is missing or not a folder, or it cannot be written.
    """
    target = Path(path)
    check_path_length(target, option, 64)  # a chart adds a suffix, an atomic write a temporary name
    if target.is_dir():
        raise UserError(f"{option} {target}: is a folder; give a file name")
    parent = target.parent
    if not parent.is_dir():
        kind = "is not a folder" if parent.exists() else "does not exist"
        raise UserError(f"{option} {target}: the folder {parent} {kind}")
    if target.exists():
        if not os.access(target, os.W_OK):
            raise UserError(f"{option} {target}: the file cannot be written (permission denied)")
        return target
    _probe(parent, option, target)
    return target


def check_data_dir(path, option: str = "--data-dir") -> None:
    """A data folder given by the user must be a readable folder when it exists.

    Args:
        path: the folder, or None.
        option: how the user gave it, for messages (``--data-dir`` or ``BENCHBENCH_DATA=``).

    Raises:
        UserError: a file, or a folder that cannot be listed.
    """
    if path is None:
        return
    folder = Path(path)
    shown = f"{option}{folder}" if option.endswith("=") else f"{option} {folder}"
    if not folder.exists():
        return
    if not folder.is_dir():
        raise UserError(f"{shown}: is a file, not a folder" if folder.is_file() else
                        f"{shown}: not a folder (a device or another special file)")
    try:
        with os.scandir(folder) as entries:
            next(entries, None)
    except OSError as e:
        raise UserError(f"{shown}: cannot read the folder ({e.strerror or e})") from None


def check_unique_cells(rows) -> None:
    """No two specs may name the same cell.

    Args:
        rows: ``(cell id, where it came from)`` pairs, e.g. ``("mlp_mnist/cpu/r0", "workload 'mlp_mnist', device 'cpu'")``.

    Raises:
        UserError: a cell id given twice; the message names both sources.
    """
    seen = {}
    for cell_id, source in rows:
        if cell_id in seen:
            raise UserError(f"cell {cell_id} is given twice ({seen[cell_id]}; {source}); give each workload "
                            "and device once")
        seen[cell_id] = source

