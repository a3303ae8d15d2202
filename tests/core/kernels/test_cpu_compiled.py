"""The compiled CPU kernel layer: the switch, the record of what was compiled, numba imported only
when used, fork safety of its thread pool, and two processes filling one empty cache at once."""
import os
import subprocess
import sys

import numpy
import pytest

from benchbench.core.config import check_switches, reload_switches, switch
from benchbench.core.kernels import cpu_compiled

needs_numba = pytest.mark.skipif(not cpu_compiled.active(), reason="compiled kernels are off")


def test_the_switch_takes_compiled_or_numpy(monkeypatch):
    monkeypatch.setenv("BENCHBENCH_CPU_KERNELS", "fast")
    reload_switches()
    try:
        with pytest.raises(ValueError, match="BENCHBENCH_CPU_KERNELS=fast: must be one of compiled, numpy"):
            check_switches()
        monkeypatch.setenv("BENCHBENCH_CPU_KERNELS", "NumPy")
        reload_switches()
        assert switch("BENCHBENCH_CPU_KERNELS") == "numpy"
    finally:
        monkeypatch.delenv("BENCHBENCH_CPU_KERNELS")
        reload_switches()
    with pytest.raises(ValueError, match="path must be"):
        with cpu_compiled.using("fast"):
            pass


def test_the_numpy_path_records_itself_and_compiles_nothing():
    with cpu_compiled.using("numpy"):
        assert cpu_compiled.prepare() == {"path": "numpy"}
        assert not cpu_compiled.usable(numpy.zeros(3, numpy.float32))


@needs_numba
def test_prepare_compiles_every_kernel_and_matches_the_blas_threads():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        record = cpu_compiled.prepare()
        assert record["threads"] == 1 and cpu_compiled._state["numba"].get_num_threads() == 1
    record = cpu_compiled.prepare()
    assert record["path"] == "compiled" and record["kernels"] >= 4
    assert record["layer"] in ("tbb", "workqueue", "omp") and record["compile_s"] >= 0
    # ready for float32: a call with the workload's arrays compiles nothing more
    for d, templates in cpu_compiled._kernels:
        assert len(d.signatures) >= len(templates)
    cpu_compiled.start_threads()
    assert cpu_compiled._state["numba"].threading_layer() == record["layer"]
    a = numpy.zeros(5, numpy.float32)
    assert cpu_compiled.usable(a) and not cpu_compiled.usable(a[::2]) and not cpu_compiled.usable(a.astype(numpy.float16))


_CHILD = r"""
import json, os, sys, time
import numpy
from benchbench.core.kernels import cpu_compiled
cpu_compiled.FAMILIES[:] = ["cpu_activation"]  # a few kernels: enough to race, cheap to compile
record = cpu_compiled.prepare()
from benchbench.core.kernels import cpu_activation
y = numpy.ones(100_003, numpy.float32); g = numpy.full_like(y, 2.0)
assert float(cpu_activation.relu_grad(y, g).sum()) == 2.0 * y.size
pid = os.fork()
if pid == 0:  # a child of a parent that ran a parallel region runs one
    gx = cpu_activation.tanh_grad(y * 0.5, g)
    os._exit(0 if float(gx.sum()) == 1.5 * y.size else 1)
_, status = os.waitpid(pid, 0)
print(json.dumps({"record": record, "child": os.waitstatus_to_exitcode(status)}))
"""


@needs_numba
def test_two_processes_fill_an_empty_cache_at_once_and_a_forked_child_runs_a_kernel(tmp_path):
    """Each process compiles into the same empty cache folder at once, runs a parallel kernel, forks,
    and its child runs a parallel kernel too; a third process then loads every kernel from the cache.
    numba (it is imported by none of them at ``import benchbench``) stays out of a plain import."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("BENCHBENCH_CPU_KERNELS", None)
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    import json

    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in results:
        assert r["child"] == 0, r
        assert r["record"]["cold"] + r["record"]["cached"] == r["record"]["kernels"]
    assert any(r["record"]["cold"] > 0 for r in results)
    third = subprocess.run([sys.executable, "-c", _CHILD + "\nimport benchbench.cli\n"], env=env, capture_output=True,
                           text=True, timeout=240)
    assert third.returncode == 0, third.stderr
    r = json.loads(third.stdout.strip().splitlines()[-1])
    assert r["record"]["cached"] == r["record"]["kernels"] and r["record"]["cold"] == 0, r
    plain = subprocess.run([sys.executable, "-c", "import sys, benchbench, benchbench.cli, benchbench.core;"
                            "import benchbench.core.optimizers; print('numba' in sys.modules)"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert plain.stdout.strip() == "False", plain.stderr
    broken = subprocess.run([sys.executable, "-c", "import sys; sys.modules['numba'] = None; "
                             "from benchbench.core.kernels import cpu_compiled; print(cpu_compiled.prepare())"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert "{'path': 'numpy', 'reason': 'numba did not import (ModuleNotFoundError" in broken.stdout, broken.stderr
