"""The dependency rules of shared/DESIGN.md, read from every module's imports (top-level and lazy alike):
the layer rules, the parent process never importing the worker's room, no import circle anywhere in
the package (Chainer's Variable <-> functions circle aside), and no module over the size limit.

A failure names the file, the line, the import and the rule it breaks.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "benchbench"

# Optional third-party dependencies and the only places allowed to import them.
OPTIONAL_IMPORTERS = {
    "cupy": ("benchbench/core/backend.py",),
    "cupyx": ("benchbench/core/backend.py",),
    "cupy.cuda.nccl": ("benchbench/executor/communicators/",),
    "mpi4py": ("benchbench/executor/communicators/",),
    "pynvml": ("benchbench/system/nvml.py",),
    "pandas": ("benchbench/reporting/",),
    "matplotlib": ("benchbench/reporting/",),
    "jsonschema": ("benchbench/results.py",),
    "numba": ("benchbench/core/kernels/",),
    "llvmlite": ("benchbench/core/kernels/",),
}


def _all_but(*keep: str) -> tuple[str, ...]:
    """Every top-level benchbench module and package but ``keep`` (a layer that imports only itself)."""
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    return tuple(f"benchbench.{n}" for n in sorted(names - set(keep)))


# What a layer may never import (benchbench modules by dotted prefix).
FORBIDDEN = {
    "benchbench/core/": ("benchbench.data", "benchbench.registry", "benchbench.executor", "benchbench.results",
                         "benchbench.reporting", "benchbench.cli", "benchbench.stats", "benchbench.system",
                         "benchbench.json_files"),
    "benchbench/data/": ("benchbench.core", "benchbench.registry", "benchbench.executor", "benchbench.results",
                         "benchbench.reporting", "benchbench.cli", "benchbench.stats", "benchbench.system"),
    "benchbench/stats/": _all_but("stats"),
    "benchbench/json_files.py": ("benchbench.",),  # the atomic JSON writer: standard library only
    "benchbench/errors.py": ("benchbench.",),  # the error types every layer may raise: a leaf
    # The parent process (planning, launching, the run, the command line) never imports the worker's room.
    "benchbench/executor/planning/": ("benchbench.executor.cell",),
    "benchbench/executor/launch/": ("benchbench.executor.cell",),
    "benchbench/executor/run.py": ("benchbench.executor.cell",),
    "benchbench/executor/protocol.py": ("benchbench.executor.cell", "benchbench.executor.launch"),
    "benchbench/cli.py": ("benchbench.executor.cell",),
    "benchbench/cli_args.py": ("benchbench.executor.cell",),
    "benchbench/core/kernels/": ("benchbench.core.functions", "benchbench.core.links", "benchbench.core.optimizers"),
    "benchbench/executor/": ("benchbench.reporting", "benchbench.cli"),
    "benchbench/reporting/": ("benchbench.executor", "benchbench.cli", "benchbench.core"),
    "benchbench/suites/": ("benchbench.executor", "benchbench.reporting", "benchbench.results", "benchbench.cli",
                "benchbench.system", "benchbench.stats"),
}
# core may import only the standard library, numpy and itself; its backend boundary (backend.py) also
# reaches cupy (above) and threadpoolctl, the BLAS thread limit that the executor sets.
CORE_THIRD_PARTY = {"numpy"}
BACKEND_THIRD_PARTY = {"threadpoolctl", "cupy", "cupyx"}
# The compiled CPU kernels (core/kernels/, imported lazily) reach numba and its code generator
# llvmlite (the explicit SIMD vectors of cpu_simd); their machinery also the user cache folder
# (platformdirs) for numba's cache.
KERNELS_THIRD_PARTY = {"numba", "llvmlite"}
COMPILED_THIRD_PARTY = {"numba", "platformdirs"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """(line, dotted name) of every import in ``path``, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:  # `from cupy.cuda import nccl` imports cupy.cuda.nccl
                yield node.lineno, f"{mod}.{alias.name}" if alias.name != "*" else mod


def _files():
    return sorted(PACKAGE.rglob("*.py"))


def _stdlib(name: str) -> bool:
    import sys

    return name.split(".")[0] in sys.stdlib_module_names or name.split(".")[0] == "__future__"


def _within(name: str, banned: str) -> bool:
    """``name`` is ``banned`` or inside it (``banned`` ending in a dot: anything below that prefix)."""
    if banned.endswith("."):
        return name.startswith(banned)
    return name == banned or name.startswith(banned + ".")


def violations():
    found = []
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        for line, name in _imports(path):
            top = name.split(".")[0]
            for dep, allowed in OPTIONAL_IMPORTERS.items():
                if (name == dep or name.startswith(dep + ".")) and not any(rel.startswith(a) for a in allowed):
                    if dep == "cupy" and name.startswith("cupy.cuda.nccl") and \
                            any(rel.startswith(a) for a in OPTIONAL_IMPORTERS["cupy.cuda.nccl"]):
                        continue  # NCCL is reached as cupy.cuda.nccl by the communicators
                    found.append(f"{rel}:{line}: imports {name}: only {', '.join(allowed)} may import {dep}")
            for layer, banned in FORBIDDEN.items():
                if rel.startswith(layer) and any(_within(name, b) for b in banned):
                    found.append(f"{rel}:{line}: imports {name}: {layer} may not import it")
            if rel.startswith("benchbench/core/") and top != "benchbench" and not _stdlib(name) \
                    and top not in CORE_THIRD_PARTY and not (top in BACKEND_THIRD_PARTY
                                                             and rel == "benchbench/core/backend.py") \
                    and not (top in KERNELS_THIRD_PARTY and rel.startswith("benchbench/core/kernels/")) \
                    and not (top in COMPILED_THIRD_PARTY and rel == "benchbench/core/kernels/cpu_compiled.py"):
                found.append(f"{rel}:{line}: imports {name}: core imports no third-party package but numpy "
                             "(cupy only in core/backend.py)")
    return sorted(set(found))


def test_imports_follow_the_design_rules():
    found = violations()
    assert not found, "import rules of shared/DESIGN.md broken:\n" + "\n".join(found)


@pytest.mark.parametrize("source, rel, needle", [
    ("import pandas\n", "benchbench/core/variable.py", "core imports no third-party"),
    ("import numba\n", "benchbench/core/functions/activation.py", "core imports no third-party"),
    ("import platformdirs\n", "benchbench/core/kernels/cpu_update.py", "core imports no third-party"),
    ("from benchbench.reporting import tables\n", "benchbench/executor/launch/launcher.py", "may not import"),
    ("from benchbench.executor.cell import training\n", "benchbench/executor/launch/launcher.py", "may not import"),
    ("from ..cell.run_cell import run_cell\n", "benchbench/executor/planning/plan.py", "may not import"),
    ("from benchbench.executor.cell import worker\n", "benchbench/cli.py", "may not import"),
    ("import cupy\n", "benchbench/executor/timing.py", "only benchbench/core/backend.py may import cupy"),
    ("from ..executor import plan\n", "benchbench/core/link.py", "may not import"),
    ("from mpi4py import MPI\n", "benchbench/system/cpu.py", "may import mpi4py"),
    ("from benchbench.json_files import atomic_write_json\n", "benchbench/core/serializers.py", "may not import"),
    ("import jsonschema\n", "benchbench/reporting/tables.py", "only benchbench/results.py may import jsonschema"),
])
def test_the_checker_catches_a_forbidden_edge(tmp_path, source, rel, needle):
    fake_root = tmp_path
    target = fake_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source)
    global ROOT, PACKAGE
    saved = ROOT, PACKAGE
    ROOT, PACKAGE = fake_root, fake_root / "benchbench"
    try:
        found = violations()
    finally:
        ROOT, PACKAGE = saved
    assert any(needle in f and rel in f for f in found), found


# -- import circles -------------------------------------------------------------------------------
# Chainer's own circle: a Variable's operators call functions, and functions build Variables.
ALLOWED_CIRCLES = [{"benchbench.core.function", "benchbench.core.variable", "benchbench.core.functions._checks",
                    "benchbench.core.functions.array", "benchbench.core.functions.math"}]


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (top-level and lazy imports alike)."""
    modules = {_module_name(p): p for p in _files()}

    def resolve(name):
        while name and name not in modules:  # `from pkg import name`: the module, or the package itself
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, path in modules.items():
        graph[mod] = {r for _, name in _imports(path) if name.startswith("benchbench")
                      for r in [resolve(name)] if r and r != mod and r != "benchbench"}
    return graph


def circles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (iterative Tarjan)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def unexpected_circles():
    return [c for c in circles(import_graph()) if not any(set(c) <= allowed for allowed in ALLOWED_CIRCLES)]


def test_the_package_has_no_import_circle():
    found = unexpected_circles()
    assert not found, "import circles (each a set of modules that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_the_circle_check_finds_a_circle(tmp_path):
    pkg = tmp_path / "benchbench" / "executor"
    pkg.mkdir(parents=True)
    (tmp_path / "benchbench" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from benchbench.executor import b\n")  # a lazy import counts
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("from benchbench.executor.a import f\n")
    (pkg / "d.py").write_text("from benchbench.executor import a\n")  # on no circle
    global ROOT, PACKAGE
    saved = ROOT, PACKAGE
    ROOT, PACKAGE = tmp_path, tmp_path / "benchbench"
    try:
        found = unexpected_circles()
    finally:
        ROOT, PACKAGE = saved
    assert found == [["benchbench.executor.a", "benchbench.executor.b", "benchbench.executor.c"]]


# -- module size ----------------------------------------------------------------------------------
MAX_MODULE_LINES = 450


def test_no_module_is_over_the_size_limit():
    big = [f"{p.relative_to(ROOT)}: {n} lines" for p in _files()
           for n in [len(p.read_text(encoding="utf-8").splitlines())] if n > MAX_MODULE_LINES]
    assert not big, f"modules over {MAX_MODULE_LINES} lines (split them by what they hold):\n" + "\n".join(big)
