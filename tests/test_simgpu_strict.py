"""The simulated GPUs are never laxer than cupy: each rule of tests/simgpu/cupy's table, held.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does); skipped where ``cupy`` is real or absent.
"""
import numpy
import pytest

from benchbench.core import backend

pytestmark = pytest.mark.simgpu


@pytest.fixture
def cupy():
    return backend.cupy


def _d2h(cupy):
    return cupy._sim_stats()["device_to_host"]


def _h2d(cupy):
    return cupy._sim_stats()["host_to_device"]


def test_integer_indexing_gives_views(cupy):
    a = cupy.arange(6, dtype=cupy.float32)
    v = a[2]
    assert v.shape == () and isinstance(v, cupy.ndarray)
    v[...] = 40
    m = cupy.zeros((2, 3), dtype=cupy.float32)
    m[1, 2][...] = 5  # every index an integer: still a view
    assert float(a[2]) == 40 and float(m.sum()) == 5


def test_add_at_takes_only_cupys_atomic_dtypes(cupy):
    import cupyx

    idx = cupy.asarray([0, 0, 1], dtype=cupy.int32)
    for dt in (cupy.float32, cupy.float64, cupy.int32, cupy.uint64):
        a = cupy.zeros(3, dtype=dt)
        cupy.add.at(a, idx, 1)
        assert a.get().tolist() == [2, 1, 0]
    for dt in (cupy.int64, cupy.int16, cupy.complex64):
        with pytest.raises(TypeError, match="cupy.add.at only supports"):
            cupy.add.at(cupy.zeros(3, dtype=dt), idx, 1)
    with pytest.raises(TypeError, match="scatter_add only supports"):
        cupyx.scatter_add(cupy.zeros(3, dtype=cupy.int64), idx, 1)
    with pytest.raises(TypeError, match="subtract.at"):
        cupy.subtract.at(cupy.zeros(3, dtype=cupy.float32), idx, 1)
    b = cupy.zeros(3, dtype=cupy.int64)
    cupy.add.at(b, slice(0, 2), 1)  # no integer-array index: an ordinary kernel, any dtype
    assert b.get().tolist() == [1, 1, 0]


def test_events_are_incomplete_until_synchronised(cupy, monkeypatch):
    monkeypatch.setenv("BENCHBENCH_SIM_EVENT_LATENCY_S", "60")  # a device far behind the host
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    end.record()
    assert not end.query() and not end.done
    with pytest.raises(cupy.cuda.CUDARuntimeError, match="NotReady"):
        cupy.cuda.get_elapsed_time(start, end)
    end.synchronize()  # and every earlier event of its stream
    assert end.query() and start.query() and cupy.cuda.get_elapsed_time(start, end) >= 0
    e = cupy.cuda.Event()
    e.record()
    cupy.cuda.Device().synchronize()
    assert e.query()
    e.record()
    cupy.ones(2).get()  # a blocking copy to the host waits for the device
    assert e.query()
    monkeypatch.setenv("BENCHBENCH_SIM_EVENT_LATENCY_S", "0")
    e.record()
    assert e.query()  # the device catches up by itself


def test_streams_and_events_belong_to_a_device(cupy):
    from cupy.cuda import nccl

    with cupy.cuda.Device(1):
        s1 = cupy.cuda.Stream()
    assert s1.device_id == 1
    e0 = cupy.cuda.Event()
    with pytest.raises(cupy.cuda.CUDARuntimeError, match="InvalidResourceHandle"):
        e0.record(s1)
    comm = nccl.NcclCommunicator(1, nccl.get_unique_id(), 0)
    x = cupy.ones(4, dtype=cupy.float32)
    with pytest.raises(nccl.NcclError, match="stream of GPU 1"):
        comm.allReduce(x.data.ptr, x.data.ptr, 4, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, s1.ptr)
    s0 = cupy.cuda.Stream()
    comm.allReduce(x.data.ptr, x.data.ptr, 4, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, s0.ptr)
    with pytest.raises(nccl.NcclError, match="no stream"):
        comm.allReduce(x.data.ptr, x.data.ptr, 4, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, 0xDEAD)


def test_implicit_syncs_and_host_index_arrays_are_counted(cupy):
    a = cupy.arange(6, dtype=cupy.float32)
    mask = a > 2
    for f in (lambda: a[mask], lambda: cupy.nonzero(mask), lambda: cupy.flatnonzero(mask),
              lambda: cupy.compress(mask, a), lambda: mask.nonzero(), lambda: cupy.unique(a)):
        before = _d2h(cupy)
        f()
        assert _d2h(cupy) == before + 1
    before = _d2h(cupy)
    a[mask] = 0  # a mask scatter stays on the device
    assert _d2h(cupy) == before
    before = _h2d(cupy)
    a[numpy.array([0, 1])]
    a[[2, 3]] = 1
    assert _h2d(cupy) == before + 2
    before = _h2d(cupy)
    a[cupy.asarray([0, 1])]  # (the asarray is the one transfer)
    assert _h2d(cupy) == before + 1


def test_each_device_has_its_own_generator(cupy):
    cupy.random.seed(5)
    cupy.random.rand(3)
    with cupy.cuda.Device(1):
        cupy.random.seed(9)  # seeds device 1's generator only
        cupy.random.rand(3)
    after = cupy.random.rand(3).get()  # device 0's stream goes on where it was
    cupy.random.seed(5)
    cupy.random.rand(3)
    assert numpy.array_equal(cupy.random.rand(3).get(), after)
    with cupy.cuda.Device(1):
        assert cupy.random.get_random_state() is not None
    assert len({id(cupy.random.get_random_state())} | {id(_on(cupy, 1))}) == 2


def _on(cupy, device):
    with cupy.cuda.Device(device):
        return cupy.random.get_random_state()


def test_the_framework_seeds_every_device_it_draws_on(cupy):
    from benchbench.core import seed
    from benchbench.core.random import get_xp_rng

    draws = []
    for _ in range(2):
        seed(3)
        with cupy.cuda.Device(1):
            draws.append(get_xp_rng(cupy).rand(4).get())
    assert numpy.array_equal(*draws)


def test_copies_are_made_on_the_current_device(cupy):
    a = cupy.arange(3, dtype=cupy.float32)
    with cupy.cuda.Device(1):
        b = a.copy()
        assert b.device.id == 1 and b.get().tolist() == [0, 1, 2]
        with pytest.raises(ValueError, match="current device"):
            a.astype(cupy.float64)  # a kernel on another device's array
        assert a.astype(cupy.float32, copy=False) is a
    assert a.astype(cupy.float64).device.id == 0


def test_the_table_of_rules_is_in_the_package_docstring(cupy):
    doc = cupy.__doc__
    for rule in ("views", "add.at", "query()", "stream", "nonzero", "host index", "per device",
                 "Duplicate GPU", "copy()", "__array_function__", "ramp", "power cap", "host pid"):
        assert rule in doc, rule
