"""Results files: the versioned JSON schema, atomic writes, loading and validation.

One run is one JSON file, ``<results_dir>/<machine-id>/<run-id>.json``, rewritten
atomically after every finished cell. The one definition of a results file is the JSON
Schema ``benchbench/results.schema.json`` (what each figure means: ``results/README.md``);
files are validated against it with ``jsonschema``, plus the checks a schema cannot state
(unique cell ids, a reason for every cell that is not ok, finite numbers, the schema
version). Every problem is reported on one line naming the file and the field path, e.g.
``results/h/r.json: cells[3].timing.step_s: expected a list of numbers, got str``.
"""
from __future__ import annotations

import copy
import datetime
import functools
import importlib.resources
import json
import math
import os
import re
import secrets
import shlex
from pathlib import Path

from benchbench import __version__
from benchbench.errors import UserError
from benchbench.json_files import atomic_write_json

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


# ---------------------------------------------------------------- validation

_SCHEMA_FILE = "results.schema.json"
_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
          "object": "an object", "array": "a list", "null": "null"}
_PLURAL = {"string": "strings", "integer": "integers", "number": "numbers", "boolean": "booleans",
           "object": "objects", "array": "lists"}


def schema() -> dict:
    """The results file's JSON Schema (draft 2020-12), shipped as ``benchbench/results.schema.json``.

    Returns:
        A copy of the schema document (changing it changes nothing that validates).
    """
    return copy.deepcopy(_validators()[0].schema)


@functools.cache
def _validators():
    """(run validator, cell validator), compiled once; integers are never booleans nor ``1.0``."""
    import jsonschema

    text = importlib.resources.files("benchbench").joinpath(_SCHEMA_FILE).read_text(encoding="utf-8")
    doc = json.loads(text)
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    cell = {"$schema": doc["$schema"], "$defs": doc["$defs"], "$ref": "#/$defs/cell"}
    return cls(doc), cls(cell)


def _got(v) -> str:
    return "null" if v is None else type(v).__name__


def _join(path: str, key) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _resolve(sub: dict, root: dict) -> dict:
    ref = sub.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return root["$defs"][ref[len("#/$defs/"):]]
    return sub


def _describe(sub: dict, root: dict) -> str:
    """The expected type of schema ``sub`` in words: ``a list of numbers``, ``an integer or null``."""
    sub = _resolve(sub, root)
    if "enum" in sub:
        values = [v for v in sub["enum"] if v is not None]
        return "one of " + ", ".join(repr(v) for v in values) + (" or null" if None in sub["enum"] else "")
    types = sub.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    words = []
    for t in types:
        if t == "array" and "items" in sub:
            item = _resolve(sub["items"], root).get("type", "")
            item = [x for x in ([item] if isinstance(item, str) else item) if x != "null"]
            words.append(f"a list of {_PLURAL.get(item[0], 'values') if len(item) == 1 else 'values'}")
        elif t != "null":
            words.append(_WORDS[t])
    text = " or ".join(words) or "any value"
    return text + (" or null" if "null" in types else "")


def _message(error, root: dict) -> tuple[list, str]:
    """(JSON path, one-line message) of a ``jsonschema`` error, in this module's words."""
    path, kind, value = list(error.absolute_path), error.validator, error.instance
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        return path + missing[:1], "missing required field"
    if kind in ("type", "enum"):
        if kind == "enum" and isinstance(value, (str, int, float, bool)):
            return path, f"expected {_describe(error.schema, root)}, got {value!r}"
        return path, f"expected {_describe(error.schema, root)}, got {_got(value)}"
    if kind == "minimum":
        return path, f"expected {_describe(error.schema, root)} >= {error.validator_value}, got {value!r}"
    if kind == "const":
        return path, f"expected {error.validator_value!r}, got {value!r}"
    return path, " ".join(error.message.split())[:200]


def _check_schema(value, validator, prefix: list, fail) -> None:
    import jsonschema

    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        path, message = _message(error, _validators()[0].schema)
        fail(_path(prefix + path), message)


def _path(keys) -> str:
    text = ""
    for key in keys:
        text = _join(text, key)
    return text


def _check_numbers(value, path: str, fail) -> None:
    """Refuse non-finite floats and integers of 2^63 or more anywhere in ``value``."""
    stack = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            fail(p, f"expected a finite number, got {v}")
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) >= _MAX_INT:
            fail(p, f"number out of range ({len(str(abs(v)))} digits)")
        elif isinstance(v, dict):
            stack.extend((item, _join(p, k)) for k, item in reversed(list(v.items())))
        elif isinstance(v, list):
            stack.extend((item, _join(p, i)) for i, item in reversed(list(enumerate(v))))


def _validate_cell_semantics(cell: dict, path: str, fail) -> None:
    from benchbench import results_meaning

    if cell["status"] != "ok" and not cell["reason"]:
        fail(_join(path, "reason"), f"a cell with status {cell['status']!r} needs a reason (one line)")
    results_meaning.check_cell(cell, path, fail)


def validate(run, source: str = "<run>") -> dict:
    """Check that ``run`` follows the results schema; return it unchanged.

    The schema is ``benchbench/results.schema.json`` (see :func:`schema`); beyond it, numbers
    must be finite and integers below 2^63, cell ids unique, and a cell that is not ``ok``
    needs a reason.

    Args:
        run: a parsed results file.
        source: the name used in error messages (usually the file path).

    Raises:
        ResultsError: one line naming ``source`` and the field path of the most relevant problem.
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
    _check_schema(run, _validators()[0], [], fail)
    _check_numbers(run, "", fail)
    from benchbench import results_meaning

    results_meaning.check_names(run, fail)
    seen = {}
    for i, cell in enumerate(run["cells"]):
        path = f"cells[{i}]"
        if cell["id"] in seen:
            fail(_join(path, "id"), f"duplicate cell id {cell['id']!r} (also cells[{seen[cell['id']]}])")
        _validate_cell_semantics(cell, path, fail)
        seen[cell["id"]] = i
    return run


# ---------------------------------------------------------------- building a run

def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id_now() -> str:
    """A new run id: the UTC time and a random suffix, e.g. ``20261123T105100Z-3f9c2a``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def cell_id(workload: str, device: str, repeat: int, seed: int | None = None) -> str:
    """The id of a cell, ``<workload>/<device spec>/r<repeat>`` (e.g. ``mlp_mnist/gpu:0,1/r0``), or
    ``<workload>/<device spec>/s<seed>/r<repeat>`` in a run of several seeds (``mlp_mnist/cpu/s2/r0``).

    Raises:
        ValueError: an empty or ``/``-containing name, or a negative repeat or seed.
    """
    for name, value in (("workload", workload), ("device", device)):
        if not isinstance(value, str) or not value or "/" in value or value != value.strip():
            raise ValueError(f"cell_id: {name} must be a non-empty string without '/' or surrounding space, "
                             f"got {value!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise ValueError(f"cell_id: repeat must be an integer >= 0, got {repeat!r}")
    if seed is None:
        return f"{workload}/{device}/r{repeat}"
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"cell_id: seed must be None or an integer >= 0, got {seed!r}")
    return f"{workload}/{device}/s{seed}/r{repeat}"


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
    validate(run, "the new run")
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
        raise ResultsError(f"{p}: {message}")

    _check_schema(stored, _validators()[1], [len(run["cells"])], lambda p, m: fail("cells" + p, m))
    _check_numbers(stored, path, fail)
    _validate_cell_semantics(stored, path, fail)
    if any(c.get("id") == stored["id"] for c in run["cells"]):
        fail(_join(path, "id"), f"duplicate cell id {stored['id']!r}")
    run["cells"].append(stored)
    run["updated"] = _now_iso()
    return stored


# ---------------------------------------------------------------- files

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
        validate(run, "the run")
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


def load(path, follow_symlinks: bool = True) -> dict:
    """Read and validate a results file (``follow_symlinks=False``: refuse a link, for a file to rewrite).

    The file must be a regular file of at most ``MAX_FILE_BYTES``, nested at most
    ``MAX_DEPTH`` levels, with finite numbers in range; anything else is refused
    quickly and in bounded memory.

    Raises:
        ResultsError: unreadable file, not a regular file, too large, invalid JSON, or a
            schema problem; the one-line message names the file and the field path.
    """
    from benchbench import bounded_io

    path = Path(path)
    data = bounded_io.read_limited(path, MAX_FILE_BYTES, "results file", ResultsError, follow_symlinks)
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
