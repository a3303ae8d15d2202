"""Helpers of the adversarial tests: the real command line in a subprocess bounded in time and memory."""
import os
import resource
import subprocess
import sys
import textwrap

import pytest

from benchbench import results

from ..fake_suite import suite_source

MEMORY_LIMIT = 2 << 30  # address space of the CLI and its workers: a hostile input must not need more

SUITE = suite_source(target=2.0, epochs=3, extra='''

    CALLS = {"n": 0}


    def _calls_after(n):
        CALLS["n"] += 1
        return CALLS["n"] > n


    @workload(name="stall_late", **COMMON)
    class StallLate(Tiny):
        """Trains one epoch (8 steps and a validation batch), then hangs."""
        def forward(self, model, x, t, params):
            if Path("stall.flag").exists() and _calls_after(12):
                time.sleep(600)
            return super().forward(model, x, t, params)


    @workload(name="killed_late", **COMMON)
    class KilledLate(Tiny):
        """Trains one epoch, then is killed by SIGKILL (as a user or a batch system would)."""
        def forward(self, model, x, t, params):
            if _calls_after(12):
                os.kill(os.getpid(), 9)
            return super().forward(model, x, t, params)


    @workload(name="terminated", **COMMON)
    class Terminated(Tiny):
        def forward(self, model, x, t, params):
            os.kill(os.getpid(), 15)
            time.sleep(5)


    @workload(name="no_memory", **COMMON)
    class NoMemory(Tiny):
        def forward(self, model, x, t, params):
            raise MemoryError("cannot allocate 10 GiB")


    @workload(name="hang", **COMMON)
    class Hang(Tiny):
        def forward(self, model, x, t, params):
            time.sleep(600)


    @workload(name="sleepy", **COMMON)
    class Sleepy(Tiny):
        def forward(self, model, x, t, params):
            if Path("slow.flag").exists():
                time.sleep(2)
            return super().forward(model, x, t, params)


    @workload(name="big_batch", description="test", batch_size=10, epochs=1, metric="accuracy",
              higher_is_better=True, target=2.0, target_source="test", dataset="points")
    class BigBatch(Tiny):
        pass
''')

PLAN = textwrap.dedent('''
    workloads: [tiny]
    devices: cpu
    data: synthetic
    timeout_s: 120
    profiles:
      quick: {warmup_steps: 1, steps: 2, val_batches: 1, min_time_s: 0}
      full: {warmup_steps: 1, val_batches: 1}
''')


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def env_for(cwd, extra=None):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "TMPDIR": str(cwd / "tmp")}
    (cwd / "tmp").mkdir(exist_ok=True)
    env.update(extra or {})
    return env


def cli(cwd, *args, timeout=90, env=None):
    """``benchbench ARGS`` in ``cwd``, bounded in time and address space."""
    return subprocess.run([sys.executable, "-m", "benchbench", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env_for(cwd, env), preexec_fn=_limit_memory)


def popen(cwd, *args, env=None):
    """``benchbench ARGS`` started in the background (its own session), bounded in address space."""
    def setup():
        _limit_memory()
        os.setsid()

    return subprocess.Popen([sys.executable, "-m", "benchbench", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(cwd, env),
                            preexec_fn=setup)


def run_args(cwd, *extra):
    return ["run", "--config", cwd / "plan.yaml", "--output", cwd / "results", *extra]


def only_run(cwd):
    files = results.find_runs(cwd / "results")
    assert len(files) == 1, files
    return results.load(files[0])


def assert_user_error(proc, *needles):
    """Exit 2, one line ``benchbench: error: ...`` holding every needle, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("benchbench: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def project(tmp_path):
    """A working directory with the test suites and a plan."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "faults.py").write_text(SUITE)
    (tmp_path / "plan.yaml").write_text(PLAN)
    return tmp_path


def results_doc(run_id="20261123T105100Z-3f9c2a", status="interrupted", cells=None):
    """A small valid results document (one ok cell unless ``cells`` is given)."""
    cell = {"id": "tiny/cpu/r0", "workload": "tiny", "device": "cpu", "device_kind": "cpu", "n_devices": 1,
            "communicator": "single", "repeat": 0, "status": "ok", "reason": None, "batch_size": 8,
            "timing": {"step_s": [0.01, 0.011, 0.012]},
            "stats": {"step_s": {"n": 3, "median": 0.011, "q1": 0.0105, "q3": 0.0115, "iqr": 0.001,
                                 "ci_low": 0.01, "ci_high": 0.012, "noisy": False}}}
    return {"schema": results.SCHEMA, "schema_version": results.SCHEMA_VERSION, "run_id": run_id,
            "created": "2026-11-23T10:51:00Z", "updated": "2026-11-23T10:51:00Z", "status": status,
            "command": "benchbench run", "machine": {"id": "m-1", "hostname": "m", "cpu": {"model": "x"}, "gpus": []},
            "plan": {"profile": "quick", "devices": ["cpu"], "workloads": ["tiny"], "repeat": 1},
            "cells": [cell] if cells is None else cells}


def fake_sweep() -> dict:
    """A sweep result as ``bandwidth.run_sweep`` returns it, from a known line (no processes)."""
    from benchbench.executor import bandwidth

    points = [{"bytes": s, "time_s": 1e-5 + s / 1e9, "algbw_gbs": s / (1e-5 + s / 1e9) / 1e9,
               "busbw_gbs": s / (1e-5 + s / 1e9) / 1e9} for s in (4096, 65536, 1 << 20, 1 << 22)]
    return {"ranks": 2, "points": points, "fit": bandwidth.fit_link(points, 2), "device": "cpu:dp2",
            "communicator": "mpi"}
