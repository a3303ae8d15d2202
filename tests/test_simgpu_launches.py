"""The simulated GPUs count a kernel launch wherever real cupy launches one, and can be made slow.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does); skipped where ``cupy`` is real or absent.
"""
import time

import numpy
import pytest

from benchbench.core import backend

pytestmark = pytest.mark.simgpu


@pytest.fixture
def cupy():
    return backend.cupy


def _launches(cupy, fn):
    n0 = cupy._sim_stats()["launches"]
    fn()
    return cupy._sim_stats()["launches"] - n0


def test_kernels_count_one_launch_each_and_views_none(cupy):
    a = cupy.arange(12, dtype=cupy.float32).reshape(3, 4)
    w = cupy.ones((4, 5), dtype=cupy.float32)
    idx = cupy.asarray(numpy.array([2, 0], numpy.int64))
    kernels = {
        "ufunc": lambda: a * 2, "in-place": lambda: a.__iadd__(1), "reduction": lambda: a.sum(axis=0),
        "cast": lambda: a.astype(cupy.float16), "copy": lambda: a.copy(), "same-dtype astype": lambda: a.astype(a.dtype),
        "cuBLAS": lambda: a @ w, "fancy index": lambda: a[idx], "assignment": lambda: a.__setitem__(0, 1.0),
        "fill": lambda: cupy.zeros((3,), cupy.float32), "random": lambda: cupy.random.rand(3),
        "device copy": lambda: cupy.array(a), "copy of a transpose": lambda: cupy.ascontiguousarray(a.T),
        "scatter": lambda: cupy.add.at(a, idx, 1.0),
    }
    for what, fn in kernels.items():
        assert _launches(cupy, fn) == 1, what
    views = {
        "reshape": lambda: a.reshape(4, 3), "transpose": lambda: a.T, "slice": lambda: a[1:, ::2],
        "empty": lambda: cupy.empty((5,), cupy.float32), "broadcast": lambda: cupy.broadcast_to(a[0], (3, 4)),
        "astype copy=False": lambda: a.astype(a.dtype, copy=False), "contiguous": lambda: cupy.ascontiguousarray(a),
        "expand_dims": lambda: cupy.expand_dims(a, 0), "host to device": lambda: cupy.asarray(numpy.ones(3)),
    }
    for what, fn in views.items():
        assert _launches(cupy, fn) == 0, what


def test_reset_clears_launches(cupy):
    cupy.ones(3) + 1
    cupy._sim_reset_stats()
    assert cupy._sim_stats()["launches"] == 0


def test_a_launch_delay_makes_synchronisations_wait_for_the_queued_work(cupy, monkeypatch):
    monkeypatch.setenv("BENCHBENCH_SIM_LAUNCH_DELAY_US", "20000")  # 20 ms a launch
    a = cupy.ones(4, dtype=cupy.float32)
    start = cupy.cuda.Event()
    start.record()
    t0 = time.perf_counter()
    for _ in range(3):
        a = a + 1
    end = cupy.cuda.Event()
    end.record()
    end.synchronize()
    assert time.perf_counter() - t0 >= 0.06  # the host issued three launches, then waited for them
    assert cupy.cuda.get_elapsed_time(start, end) >= 60.0 - 1e-6  # the events see the device's time
    a = a + 1
    t1 = time.perf_counter()
    assert float(a[0]) == 5.0 and time.perf_counter() - t1 >= 0.015  # a read back waits too
    monkeypatch.setenv("BENCHBENCH_SIM_LAUNCH_DELAY_US", "fast")
    with pytest.raises(ValueError, match="BENCHBENCH_SIM_LAUNCH_DELAY_US"):
        a + 1
