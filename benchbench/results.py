"""Results files: the versioned JSON schema, atomic writes, loading and validation.

One run is one JSON file, ``<results_dir>/<machine-id>/<run-id>.json``, rewritten
atomically after every finished cell; ``results/README.md`` documents the schema.
Validation is hand-written (a small table of field types below) and every problem
is reported on one line naming the file and the field path, e.g.
``results/h/r.json: cells[3].timing.step_s: expected a list of numbers, got str``.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import re
import secrets
import shlex
import tempfile
from pathlib import Path

from benchbench import __version__
from benchbench.errors import UserError

SCHEMA = "benchbench.results"
SCHEMA_VERSION = 1
RUN_STATUSES = ("running", "complete", "interrupted")
CELL_STATUSES = ("ok", "failed", "oom", "timeout", "diverged")

MAX_FILE_BYTES = 256 << 20  # far above any real run; refuses endless and sparse files
MAX_DEPTH = 64              # results files nest about 6 levels deep
_MAX_INT = 1 << 63

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RUN_ID_TIME = re.compile(r"^(\d{8}T\d{6}Z)")


class ResultsError(UserError):
    """A results file (or run dict) that cannot be read or does not follow the schema."""


# ---------------------------------------------------------------- field types

class _Obj:
    """An object with known fields: ``{name: (type, required)}``; ``"*"`` types all other keys."""

    def __init__(self, fields: dict, nullable: bool = False):
        self.fields, self.nullable = fields, nullable


class _List:
    def __init__(self, item, nullable: bool = False):
        self.item, self.nullable = item, nullable


class _Enum:
    def __init__(self, values: tuple, nullable: bool = False):
        self.values, self.nullable = values, nullable


_SCALARS = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "number": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "bool": ("a boolean", lambda v: isinstance(v, bool)),
    "dict": ("an object", lambda v: isinstance(v, dict)),
    "any": ("any value", lambda v: True),
}
_PLURAL = {"str": "strings", "int": "integers", "number": "numbers", "bool": "booleans", "dict": "objects"}

_SUMMARY = _Obj({
    "n": ("int", True), "median": ("number", True), "q1": ("number", True), "q3": ("number", True),
    "iqr": ("number", True), "ci_low": ("number", True), "ci_high": ("number", True), "noisy": ("bool", True),
    "mean": ("number", False), "std": ("number", False), "min": ("number", False), "max": ("number", False),
}, nullable=True)

_GPU = _Obj({
    "index": ("int", True), "name": ("str", True), "uuid": ("str?", False), "pci_bus_id": ("str?", False),
    "memory_bytes": ("int?", False), "driver": ("str?", False), "cuda": ("str?", False),
    "power_limit_w": ("number?", False), "clocks_mhz": ("dict?", False), "pcie": ("dict?", False),
    "processes": ("int?", False),
})

_MACHINE = _Obj({
    "id": ("str", True), "hostname": ("str", True), "os": ("str", False), "python": ("str", False),
    "cpu": (_Obj({
        "model": ("str", True), "arch": ("str?", False), "cores_physical": ("int?", False),
        "cores_logical": ("int?", False), "flags": (_List("str"), False), "max_mhz": ("number?", False),
    }), True),
    "blas": (_Obj({
        "library": ("str?", False), "version": ("str?", False), "kernel": ("str?", False),
        "threads": ("int?", False), "warning": ("str?", False),
    }, nullable=True), False),
    "memory_bytes": ("int?", False),
    "env": (_Obj({"*": ("str?", False)}), False),
    "gpus": (_List(_GPU), True),
    "simulated_gpus": ("bool", False),
    "versions": (_Obj({"*": ("str?", False)}), False),
})

_PLAN = _Obj({
    "profile": ("str", True), "devices": (_List("str"), True), "workloads": (_List("str"), True),
    "repeat": ("int", True), "seed": ("int?", False), "data": ("str?", False), "deterministic": ("bool", False),
    "dtype": ("str?", False), "config_file": ("str?", False), "config": ("dict?", False),
})

_CELL = _Obj({
    "id": ("str", True), "workload": ("str", True), "params": ("dict?", False), "device": ("str", True),
    "device_kind": (_Enum(("cpu", "gpu")), True), "n_devices": ("int", True),
    "scaling": (_Enum(("none", "strong", "weak")), False),
    "communicator": (_Enum(("single", "mpi", "nccl")), True), "repeat": ("int", True),
    "profile": ("str", False), "status": (_Enum(CELL_STATUSES), True), "reason": ("str?", True),
    "data": (_Obj({
        "dataset": ("str?", False), "source": (_Enum(("real", "synthetic", "generated"), nullable=True), False),
        "note": ("str?", False),
    }, nullable=True), False),
    "batch_size": ("int?", False), "per_device_batch": ("int?", False),
    "flops_per_sample": (_Obj({"*": ("number?", False)}, nullable=True), False),
    "dtype": ("str?", False), "deterministic": ("bool", False),
    "timing": (_Obj({
        "warmup_steps": ("int?", False), "step_s": (_List("number"), True),
        "phases_s": (_Obj({"*": (_List("number"), False)}, nullable=True), False),
    }), True),
    "stats": (_Obj({
        "step_s": (_SUMMARY, False), "samples_per_s": (_SUMMARY, False), "gflops": ("number?", False),
    }, nullable=True), False),
    "quality": (_Obj({
        "metric": ("str?", False), "value": ("number?", False), "target": ("number?", False),
        "target_source": ("str?", False), "reached": ("bool?", False), "time_to_target_s": ("number?", False),
        "higher_is_better": ("bool?", False),
    }, nullable=True), False),
    "epoch_log": (_List(_Obj({"epoch": ("int", True), "*": ("number?", False)})), False),
    "memory": (_Obj({"peak_host_bytes": ("int?", False), "peak_device_bytes": ("int?", False)}, nullable=True),
               False),
    "energy": (_Obj({"joules": ("number?", False), "joules_per_epoch": ("number?", False),
                     "source": ("str?", False)}, nullable=True), False),
    "hashes": (_Obj({"*": ("str?", False)}, nullable=True), False),
    "loss_curve": (_List("number?"), False), "allreduce_bytes": ("int?", False),
    "threads_per_rank": ("int?", False), "loss_scale": ("dict?", False),
    "started": ("str?", False), "duration_s": ("number?", False),
})

_RUN = _Obj({
    "run_id": ("str", True), "created": ("str", True), "updated": ("str", True),
    "status": (_Enum(RUN_STATUSES), True), "command": ("str", True),
    "machine": (_MACHINE, True), "plan": (_PLAN, True), "cells": (_List(_CELL), True),
})


def _got(v) -> str:
    return "null" if v is None else type(v).__name__


def _describe(t) -> str:
    if isinstance(t, str):
        name = t.rstrip("?")
        return _SCALARS[name][0] + (" or null" if t.endswith("?") else "")
    if isinstance(t, _List):
        inner = _PLURAL.get(t.item.rstrip("?"), "values") if isinstance(t.item, str) else "objects"
        return f"a list of {inner}" + (" or null" if t.nullable else "")
    if isinstance(t, _Enum):
        return "one of " + ", ".join(repr(v) for v in t.values) + (" or null" if t.nullable else "")
    return "an object" + (" or null" if t.nullable else "")


def _join(path: str, key) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _check(value, t, path: str, fail) -> None:
    """Check ``value`` against type ``t``; ``fail(path, message)`` raises."""
    nullable = t.endswith("?") if isinstance(t, str) else t.nullable
    if value is None:
        if not nullable:
            fail(path, f"expected {_describe(t)}, got null")
        return
    if isinstance(t, str):
        if not _SCALARS[t.rstrip("?")][1](value):
            fail(path, f"expected {_describe(t)}, got {_got(value)}")
        if t.rstrip("?") in ("int", "number"):
            if isinstance(value, float) and not math.isfinite(value):
                fail(path, f"expected a finite number, got {value}")
            if isinstance(value, int) and abs(value) >= _MAX_INT:
                fail(path, f"number out of range ({len(str(abs(value)))} digits)")
    elif isinstance(t, _Enum):
        if value not in t.values or isinstance(value, bool):
            fail(path, f"expected {_describe(t)}, got {value!r}")
    elif isinstance(t, _List):
        if not isinstance(value, list):
            fail(path, f"expected {_describe(t)}, got {_got(value)}")
        for i, item in enumerate(value):
            _check(item, t.item, _join(path, i), fail)
    else:
        if not isinstance(value, dict):
            fail(path, f"expected {_describe(t)}, got {_got(value)}")
        for key, (ft, required) in t.fields.items():
            if key == "*":
                continue
            if key not in value:
                if required:
                    fail(_join(path, key), "missing required field")
                continue
            _check(value[key], ft, _join(path, key), fail)
        if "*" in t.fields:
            for key, item in value.items():
                if key not in t.fields:
                    _check(item, t.fields["*"][0], _join(path, key), fail)


def _validate_cell_semantics(cell: dict, path: str, fail) -> None:
    if cell["n_devices"] < 1:
        fail(_join(path, "n_devices"), f"expected an integer >= 1, got {cell['n_devices']}")
    if cell["repeat"] < 0:
        fail(_join(path, "repeat"), f"expected an integer >= 0, got {cell['repeat']}")
    if cell["status"] != "ok" and not cell["reason"]:
        fail(_join(path, "reason"), f"a cell with status {cell['status']!r} needs a reason (one line)")


def validate(run, source: str = "<run>") -> dict:
    """Check that ``run`` follows the results schema; return it unchanged.

    Args:
        run: a parsed results file.
        source: the name used in error messages (usually the file path).

    Raises:
        ResultsError: one line naming ``source`` and the field path of the first problem.
    """
    def fail(path, message):
        raise ResultsError(f"{source}: {path}: {message}" if path else f"{source}: {message}")

    if not isinstance(run, dict):
        fail("", f"expected a JSON object at the top level, got {_got(run)}")
    if run.get("schema") != SCHEMA:
        fail("schema", f"expected {SCHEMA!r}, got {run.get('schema')!r}; not a benchbench results file")
    version = run.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        fail("schema_version", f"expected an integer, got {_got(version)}")
    if version > SCHEMA_VERSION:
        fail("schema_version", f"{version} is newer than this benchbench ({__version__}) reads "
                               f"(version {SCHEMA_VERSION}); upgrade benchbench to read this file")
    if version < SCHEMA_VERSION:
        fail("schema_version", f"{version} is older than this benchbench ({__version__}) reads "
                               f"(version {SCHEMA_VERSION}); re-run the benchmark to produce a current file")
    _check(run, _RUN, "", fail)
    seen = {}
    for i, cell in enumerate(run["cells"]):
        path = f"cells[{i}]"
        _validate_cell_semantics(cell, path, fail)
        if cell["id"] in seen:
            fail(_join(path, "id"), f"duplicate cell id {cell['id']!r} (also cells[{seen[cell['id']]}])")
        seen[cell["id"]] = i
    return run


# ---------------------------------------------------------------- building a run

def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id_now() -> str:
    """A new run id: the UTC time and a random suffix, e.g. ``20261123T105100Z-3f9c2a``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def cell_id(workload: str, device: str, repeat: int) -> str:
    """The id of a cell, ``<workload>/<device spec>/r<repeat>`` (e.g. ``mlp_mnist/gpu:0,1/r0``).

    Raises:
        ValueError: an empty or ``/``-containing name, or a negative repeat.
    """
    for name, value in (("workload", workload), ("device", device)):
        if not isinstance(value, str) or not value or "/" in value or value != value.strip():
            raise ValueError(f"cell_id: {name} must be a non-empty string without '/' or surrounding space, "
                             f"got {value!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise ValueError(f"cell_id: repeat must be an integer >= 0, got {repeat!r}")
    return f"{workload}/{device}/r{repeat}"


def to_jsonable(obj, _path: str = ""):
    """A copy of ``obj`` made of plain JSON types.

    numpy scalars and arrays become numbers and lists, tuples become lists, paths become
    strings and non-finite floats (a diverged loss) become ``None`` (``null``).

    Raises:
        TypeError: a value with no JSON form; the message names its path.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, _join(_path, str(k))) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, _join(_path, i)) for i, v in enumerate(obj)]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return to_jsonable(obj.tolist(), _path)
    raise TypeError(f"to_jsonable: {_path or 'value'}: {type(obj).__name__} has no JSON form")


def new_run(machine: dict, plan: dict, command) -> dict:
    """A new run dict (status ``running``, no cells) for a machine fingerprint and a resolved plan.

    Args:
        machine: ``benchbench.system.fingerprint()``.
        plan: the resolved plan (see the schema's ``plan`` block).
        command: the command line, a string or a list of arguments.

    Raises:
        ResultsError: ``machine`` or ``plan`` does not follow the schema.
        TypeError: ``command`` is neither a string nor a list of strings.
    """
    if isinstance(command, (list, tuple)) and all(isinstance(a, str) for a in command):
        command = shlex.join(command)
    if not isinstance(command, str):
        raise TypeError(f"new_run: command must be a string or a list of strings, got {type(command).__name__}")
    now = _now_iso()
    run = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": run_id_now(),
        "created": now, "updated": now, "status": "running", "command": command,
        "machine": to_jsonable(machine), "plan": to_jsonable(plan), "cells": [],
    }
    validate(run, "new_run")
    return run


def add_cell(run: dict, cell: dict) -> dict:
    """Validate ``cell`` and append it (as plain JSON types) to ``run``; return the stored cell.

    Raises:
        ResultsError: the cell does not follow the schema or its id is already in the run.
    """
    if not isinstance(run, dict) or not isinstance(run.get("cells"), list):
        raise TypeError(f"add_cell: run must be a run dict from new_run(), got {type(run).__name__}")
    stored = to_jsonable(cell)
    path = f"cells[{len(run['cells'])}]"

    def fail(p, message):
        raise ResultsError(f"add_cell: {p}: {message}")

    _check(stored, _CELL, path, fail)
    _validate_cell_semantics(stored, path, fail)
    if any(c.get("id") == stored["id"] for c in run["cells"]):
        fail(_join(path, "id"), f"duplicate cell id {stored['id']!r}")
    run["cells"].append(stored)
    run["updated"] = _now_iso()
    return stored


# ---------------------------------------------------------------- files

def atomic_write_json(path, obj) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically: a temporary file beside it, fsync, rename.

    The file at ``path`` is either the old one or the complete new one, never a partial
    write. ``obj`` is serialised before anything is written; NaN and infinity are refused.

    Raises:
        TypeError, ValueError: ``obj`` is not strict JSON (nothing is written).
        OSError: the write failed (the old file is left intact, the temporary file removed).
    """
    path = Path(path)
    text = json.dumps(obj, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
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
    try:  # make the rename itself durable where the platform allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


class RunWriter:
    """Keeps ``<results_dir>/<machine-id>/<run-id>.json`` up to date while a run goes on.

    Use as a context manager: the file is written on entry (status ``running``), after
    every :meth:`add_cell`, and on exit with status ``complete``, or ``interrupted`` when
    the block raised (Ctrl-C included). Finished cells are never lost.

    Example:
        >>> with RunWriter("results", new_run(fingerprint(), plan, argv)) as w:  # doctest: +SKIP
        ...     w.add_cell(cell)
    """

    def __init__(self, results_dir, run: dict):
        validate(run, "RunWriter")
        for field, value in (("machine.id", run["machine"]["id"]), ("run_id", run["run_id"])):
            if not _SAFE_NAME.match(value):
                raise ValueError(f"RunWriter: {field} {value!r} cannot name a file (use letters, digits, . _ -)")
        self.run = run
        self.path = Path(results_dir) / run["machine"]["id"] / f"{run['run_id']}.json"

    def write(self) -> Path:
        """Rewrite the file with the run as it is now."""
        self.run["updated"] = _now_iso()
        return atomic_write_json(self.path, to_jsonable(self.run))

    def add_cell(self, cell: dict) -> dict:
        """Add a finished cell and rewrite the file; returns the stored cell."""
        stored = add_cell(self.run, cell)
        self.write()
        return stored

    def finish(self, status: str = "complete") -> Path:
        """Set the run status (``complete`` or ``interrupted``) and rewrite the file."""
        if status not in RUN_STATUSES:
            raise ValueError(f"RunWriter.finish: status must be one of {RUN_STATUSES}, got {status!r}")
        self.run["status"] = status
        return self.write()

    def __enter__(self) -> RunWriter:
        self.write()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.finish("complete" if exc_type is None else "interrupted")
        return False


def load(path) -> dict:
    """Read and validate a results file.

    The file must be a regular file of at most ``MAX_FILE_BYTES``, nested at most
    ``MAX_DEPTH`` levels, with finite numbers in range; anything else is refused
    quickly and in bounded memory.

    Raises:
        ResultsError: unreadable file, not a regular file, too large, invalid JSON, or a
            schema problem; the one-line message names the file and the field path.
    """
    from benchbench import bounded_io

    path = Path(path)
    data = bounded_io.read_limited(path, MAX_FILE_BYTES, "results file", ResultsError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a UTF-8 text file") from None
    try:
        run = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise ResultsError(f"{path}: nested too deeply; not a file benchbench wrote") from None
    except ValueError as e:  # an integer of thousands of digits
        raise ResultsError(f"{path}: not valid JSON ({' '.join(str(e).split())[:120]})") from None
    bounded_io.check_depth(run, MAX_DEPTH, str(path), ResultsError)
    return validate(run, str(path))


def _newness(path: Path) -> str:
    m = _RUN_ID_TIME.match(path.stem)
    if m:
        return m.group(1)
    mtime = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
    return mtime.strftime("%Y%m%dT%H%M%SZ")


def find_runs(results_dir, machine_id: str | None = None) -> list[Path]:
    """Results files under ``results_dir`` (``<machine-id>/<run-id>.json``), newest first.

    Newness is the UTC start time in the run id (the file's modification time for
    files named otherwise). A missing directory gives an empty list.
    """
    root = Path(results_dir)
    if not root.is_dir():
        return []
    pattern = f"{machine_id}/*.json" if machine_id else "*/*.json"
    files = [p for p in root.glob(pattern) if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (_newness(p), p.name), reverse=True)


def latest_run(results_dir, machine_id: str | None = None) -> Path | None:
    """The newest results file under ``results_dir`` (optionally of one machine), or None."""
    runs = find_runs(results_dir, machine_id)
    return runs[0] if runs else None
