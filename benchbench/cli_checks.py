"""What the command line checks and maps before and around its verbs: output files, the run to
resume, prices, settings read from the environment, and which errors are the user's to fix.

Everything here turns a user's mistake into one line and exit status 2 (``UsageError``); an
``OSError`` about the user's own paths, disks or permissions counts as such a mistake.
"""
from __future__ import annotations

import errno
import math
import os
import sys
from pathlib import Path

from benchbench.errors import UserError


class UsageError(UserError):
    """A command-line problem reported as one line with exit status 2."""


def check_output_files(*options) -> None:
    """Each ``(option, path)`` given must be writable, checked before any work."""
    from benchbench.executor import preflight

    for option, path in options:
        if path:
            preflight.check_output_file(path, option)


def write_json_output(path, option: str, obj, default=None) -> None:
    """Write a ``--json`` file; a disk that filled or went read-only since the check is one line."""
    from benchbench.json_files import atomic_write_json

    try:
        atomic_write_json(path, obj, default=default)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write the file ({e.strerror or e}); nothing was written") from None


def parse_prices(items) -> dict:
    prices = {}
    for item in items:
        machine, sep, value = item.partition("=")
        try:
            price = float(value)
        except ValueError:
            price = None
        if not sep or not machine or price is None or not (math.isfinite(price) and price > 0):
            raise UsageError(f"--price must be MACHINE-ID=PRICE, a price above 0 (e.g. myhost-1a2b3c4d=12000), "
                             f"got {item!r}")
        prices[machine] = price
    return prices


def find_run(ref: str, results_dir) -> Path:
    from benchbench import results

    path = Path(ref)
    if os.path.lexists(path):
        from benchbench import runlock

        try:
            runlock.refuse_symlink(path)
        except UserError as e:
            raise UsageError(f"--resume: {e}") from None
        if not path.is_file():
            raise UsageError(f"--resume {ref}: not a regular file; give a results file or a run id")
        return path
    for candidate in results.find_runs(results_dir):
        if candidate.stem == ref:
            return candidate
    raise UsageError(f"--resume: no run {ref!r} (neither a results file nor a run id under {results_dir}/)")


def check_conv_algorithm() -> None:
    """Stop with one line when ``BENCHBENCH_CONV_ALGORITHM`` names no algorithm (before any cell runs)."""
    from benchbench.core.functions.connection import conv_algorithm

    try:
        conv_algorithm()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def warn_memory_limit(limit) -> None:
    """A memory budget above the machine's memory is a warning: the search stops at what there is."""
    import psutil

    total = psutil.virtual_memory().total
    if limit is not None and limit > total:
        print(f"benchbench: warning: --memory-limit {limit / 2**30:,.1f} GiB is more than this machine's memory "
              f"({total / 2**30:,.1f} GiB); the largest batch found is bounded by the memory there is",
              file=sys.stderr)


USER_OS_ERRORS = frozenset(getattr(errno, name) for name in (
    "ENAMETOOLONG", "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ELOOP", "EFBIG", "ENOTDIR", "EISDIR")
    if hasattr(errno, name))


def user_errors() -> tuple:
    """The exception types that are the user's to fix (one line, exit 2)."""
    kinds = [UserError]
    for module, name in (("benchbench.executor.plan", "PlanError"), ("benchbench.executor.devices", "DeviceSpecError"),
                         ("benchbench.executor.nodes", "HostfileError"),
                         ("benchbench.data", "DataError"), ("benchbench.results", "ResultsError"),
                         ("benchbench.reporting.runs", "ReportError")):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, name):
            kinds.append(getattr(mod, name))
    return tuple(kinds)
