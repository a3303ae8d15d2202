"""Where workloads are found: suite files of a folder and entry points of group
``benchbench.workloads``, collected into a ``Registry`` by ``discover``."""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from benchbench.errors import UserError
from benchbench.registry.description import Workload

ENTRY_POINT_GROUP = "benchbench.workloads"


@dataclass
class Registry:
    """Workloads found by :func:`discover`, and the files that failed to load.

    Attributes:
        workloads: name -> Workload.
        errors: ``(path or entry point, one-line error)`` pairs.
    """

    workloads: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)

    def add(self, wl, where):
        if not wl.source:
            wl.source = where
        prior = self.workloads.get(wl.name)
        if prior is not None:
            self.errors.append(
                (where, f"duplicate workload name {wl.name!r}: defined in {prior.source} and in {wl.source}")
            )
            return
        self.workloads[wl.name] = wl


def default_suites_dir():
    """``./suites`` when the current directory has one, else the built-in ``benchbench/suites``."""
    here = Path.cwd() / "suites"
    if here.is_dir():
        return here
    return builtin_suites_dir()


def builtin_suites_dir():
    """The folder of the built-in workloads, inside the package (so a wheel carries them)."""
    return Path(__file__).resolve().parents[1] / "suites"


class SuitesDirError(UserError):
    """A suite folder named by the user that is not a folder."""


def discover(suites_dir=None, entry_points=True, builtins=None, bounded=True):
    """Find every workload: the built-in suites, a user's suite files, and the entry points.

    Suite files are ``*.py`` files not starting with ``_``, loaded by path. A user's folder
    (``suites_dir``, or ``./suites`` when there is one) adds to the built-in workloads; a name
    defined twice keeps the first (the built-in) and is reported naming both files. A file that
    fails to import, or that defines no workload, is recorded in ``Registry.errors`` and the
    others still load. With ``bounded``, a user's files are first imported in a child process
    (``suite_probe``): one that hangs or ends the interpreter is named in ``Registry.errors`` and
    left out. Signal handlers that a suite file changes at import are put back.

    Args:
        suites_dir: a folder of suite files; None for ``./suites`` when there is one.
        entry_points: also load entry points of group ``benchbench.workloads``
            (each a Workload, an iterable of them, a module defining them, or a
            callable returning one of those).
        builtins: also load the built-in suites (default: when ``suites_dir`` is None).
        bounded: try the user's files in a child process first (a worker whose launcher
            already did passes False).

    Returns:
        A :class:`Registry`.

    Raises:
        SuitesDirError: ``suites_dir`` is given and is not a folder.
    """
    reg = Registry()
    if suites_dir is not None:
        user = Path(suites_dir)
        if not user.is_dir():
            raise SuitesDirError(f"suites folder {str(user)!r} is not a folder")
    else:
        user = Path.cwd() / "suites"
    builtin = builtin_suites_dir()
    folders = [builtin] if (suites_dir is None if builtins is None else builtins) else []
    if user.is_dir() and (not folders or user.resolve() != builtin):
        folders.append(user)
    handlers = _signal_handlers()
    try:
        for folder in folders:
            files = [p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]
            left_out = {}
            if bounded and folder != builtin and files:
                from benchbench.registry import suite_probe

                left_out = suite_probe.unsafe_files(files)
            for path in files:
                if str(path) in left_out:
                    reg.errors.append((str(path), left_out[str(path)]))
                    continue
                _add_file(reg, path)
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                where = f"entry point {ep.name} = {ep.value}"
                try:
                    found = _workloads_in(ep.load())
                    if not found:
                        raise ValueError("provides no workload")
                except (Exception, SystemExit, KeyboardInterrupt, GeneratorExit) as e:
                    reg.errors.append((where, _one_line(e)))
                    continue
                for wl in found:
                    reg.add(wl, where)
    finally:
        _restore_signal_handlers(handlers)
    return reg


def _add_file(reg, path) -> None:
    try:
        found = _workloads_in(_load_file(path))
        if not found:
            raise ValueError("defines no workload (decorate a Workload subclass with @workload)")
    except (Exception, SystemExit, KeyboardInterrupt, GeneratorExit) as e:
        # a broken suite file, even one calling sys.exit() or raising KeyboardInterrupt
        # at import, must not stop the others
        reg.errors.append((str(path), _one_line(e)))
        return
    for wl in found:
        wl.source = str(path)
        reg.add(wl, str(path))


_WATCHED_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def _signal_handlers() -> dict | None:
    if threading.current_thread() is not threading.main_thread():
        return None
    return {sig: signal.getsignal(sig) for sig in _WATCHED_SIGNALS}


def _restore_signal_handlers(handlers) -> None:
    """Put back the handlers a suite file changed at import (one that ignores Ctrl-C, say)."""
    for sig, handler in (handlers or {}).items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


def _load_file(path):
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    mod_name = f"benchbench_suite_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def _workloads_in(obj):
    """The Workloads held by a Workload, an iterable, a module or a zero-argument callable."""
    if isinstance(obj, Workload):
        return [obj]
    if isinstance(obj, type(sys)):
        found = []
        for v in vars(obj).values():
            if isinstance(v, Workload) and all(v is not w for w in found):
                found.append(v)
        return found
    if isinstance(obj, (list, tuple)):
        if not all(isinstance(v, Workload) for v in obj):
            raise TypeError("expected Workload instances")
        return list(obj)
    if callable(obj):
        return _workloads_in(obj())
    raise TypeError(f"expected a Workload, a list of them or a module, got {type(obj).__name__}")


def _one_line(e):
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
