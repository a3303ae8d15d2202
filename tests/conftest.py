"""Shared fixtures and the hardware markers (gpu, multi_gpu(n), mpi, slow) that skip themselves."""
import os
import shutil
import sys

import numpy
import pytest

from benchbench.core import backend


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def _mpi_available():
    try:
        import mpi4py  # noqa: F401
    except Exception:
        return False
    return os.path.exists(os.path.join(os.path.dirname(sys.executable), "mpiexec")) or bool(shutil.which("mpiexec"))


def pytest_configure(config):
    # Reports fit their tables to ``$COLUMNS`` or the terminal: the tests read them as a pipe does (no
    # width), whatever runs them (a narrow terminal, a pytest-xdist worker, which sets ``COLUMNS``);
    # a test of the fitting sets its own.
    os.environ.pop("COLUMNS", None)
    # Subprocesses (the CLI, mpiexec ranks) run in other folders: a relative PYTHONPATH such as
    # tests/simgpu must keep pointing at the same place there.
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if parts:
        os.environ["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in parts)


def _integration(item) -> bool:
    """Tests that start processes (the CLI in a subprocess, mpiexec, a wheel build): the inner loop
    (``pytest -m "not integration"``) leaves them out, CI runs them."""
    if item.get_closest_marker("mpi") is not None:
        return True
    module = getattr(item, "module", None)
    return module is not None and ("subprocess" in vars(module) or module.__name__.endswith("test_wheel"))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _integration(item):
            item.add_marker(pytest.mark.integration)
    n_gpus = backend.gpu_count()
    mpi_ok = _mpi_available()
    simulated = backend.gpu_simulated()
    for item in items:
        if item.get_closest_marker("gpu") and n_gpus == 0:
            item.add_marker(pytest.mark.skip(reason="needs an NVIDIA GPU with cupy"))
        m = item.get_closest_marker("multi_gpu")
        if m is not None:
            need = m.args[0] if m.args else 2
            if n_gpus < need:
                item.add_marker(pytest.mark.skip(reason=f"needs {need} GPUs, found {n_gpus}"))
        if item.get_closest_marker("simgpu") and not simulated:
            item.add_marker(pytest.mark.skip(reason="needs the simulated GPUs: PYTHONPATH=tests/simgpu"))
        if item.get_closest_marker("mpi") and not mpi_ok:
            item.add_marker(pytest.mark.skip(reason="needs mpi4py and mpiexec"))
        if item.get_closest_marker("slow") and not config.getoption("--runslow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --runslow"))


def pytest_terminal_summary(terminalreporter):
    """Write the run's counts where ``python -m tests`` asks for them (it adds up its two runs)."""
    path = os.environ.get("BENCHBENCH_TEST_COUNTS")
    if path and not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller adds up its workers' reports
        import json

        stats = terminalreporter.stats
        counts = {k: len(stats.get(k, [])) for k in ("passed", "failed", "skipped")}
        counts["errors"] = len(stats.get("error", []))
        with open(path, "w", encoding="utf-8") as f:
            json.dump(counts, f)


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test: numpy, and cupy where a GPU is present."""
    if request.param == "numpy":
        return numpy
    return backend.cupy


@pytest.fixture(autouse=True)
def _switches_read_afresh():
    """Environment switches are read once per process; each test reads them again, so a test that
    sets one (``monkeypatch.setenv``) sees its own value."""
    from benchbench.core.config import reload_switches

    reload_switches()
    yield
    reload_switches()


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same framework seed."""
    from benchbench.core import seed

    seed(0)
    yield


@pytest.fixture(params=["compiled", "numpy"])
def cpu_kernels(request):
    """Runs the test on both CPU kernel paths (``BENCHBENCH_CPU_KERNELS``): the compiled kernels and
    the numpy array code they are held against. Yields the path's name."""
    from benchbench.core.kernels import cpu_compiled

    if request.param == "compiled" and not cpu_compiled.active() and cpu_compiled.numba_error() is not None:
        pytest.skip(f"numba did not import: {cpu_compiled.numba_error()}")
    with cpu_compiled.using(request.param):
        yield request.param
