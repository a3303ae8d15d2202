"""The simulated GPUs refuse what real cupy refuses, count host transfers, and simulate memory, NCCL and NVML.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does); skipped where ``cupy`` is real or absent.
"""
import os
import subprocess
import sys
import textwrap
import time

import numpy
import pytest

from benchbench.core import backend

pytestmark = pytest.mark.simgpu

SIMGPU = os.path.join(os.path.dirname(__file__), "simgpu")


@pytest.fixture
def cupy():
    return backend.cupy


def test_device_arrays_never_become_host_arrays_implicitly(cupy):
    a = cupy.arange(6, dtype=cupy.float32)
    with pytest.raises(TypeError, match="Implicit conversion"):
        numpy.asarray(a)
    # numpy's functions and ufuncs on device arrays dispatch to cupy's (NEP 18 / NEP 13), as in cupy:
    s, e = numpy.sum(a), numpy.exp(a)
    assert isinstance(s, cupy.ndarray) and isinstance(e, cupy.ndarray) and float(s) == 15.0
    with pytest.raises(TypeError):  # ... but a host array among the operands is still refused
        numpy.add(a, numpy.ones(6, numpy.float32))
    with pytest.raises(TypeError):
        numpy.concatenate([a, numpy.ones(6, numpy.float32)])
    with pytest.raises(TypeError):
        a + numpy.ones(6, numpy.float32)
    with pytest.raises(TypeError):
        numpy.ones(6, numpy.float32) * a
    with pytest.raises(TypeError):
        cupy.add(a, numpy.ones(6, numpy.float32))
    assert isinstance(a * numpy.float32(2) + 1, cupy.ndarray)  # host scalars are fine


def test_two_devices_or_a_device_that_is_not_current_raise(cupy):
    a = cupy.ones(3)
    with cupy.cuda.Device(1):
        b = cupy.ones(3)
        with pytest.raises(ValueError, match="GPU 1 and GPU 0|GPU 0 and GPU 1"):
            a + b
        with pytest.raises(ValueError, match="current device"):
            a * 2
        assert b.device.id == 1 and cupy.zeros(2).device.id == 1
    with pytest.raises(ValueError, match="current device"):
        b.sum()
    moved = cupy.asarray(b)  # as in cupy: an array of another device is copied to the current one
    assert moved.device.id == 0 and (a + moved).device.id == 0 and cupy.asarray(a) is a


def test_the_ways_back_to_the_host_are_counted(cupy):
    a = cupy.arange(4, dtype=cupy.float32)
    before = cupy._sim_stats()["device_to_host"]
    s = a.sum()
    assert isinstance(s, cupy.ndarray) and s.shape == ()  # reductions stay on the device
    assert cupy._sim_stats()["device_to_host"] == before
    assert float(s) == 6.0 and a.get().tolist() == [0, 1, 2, 3] and cupy.asnumpy(a)[1] == 1
    assert int(a[2]) == 2 and a[3].item() == 3.0 and bool(s > 0)
    assert cupy._sim_stats()["device_to_host"] == before + 6
    assert cupy._sim_host_transfers() == before + 6


def test_views_share_memory_and_strided_views_stay_inside_their_allocation(cupy):
    a = cupy.zeros(10, dtype=cupy.float32)
    v = a.reshape(2, 5)[:, 1:3]
    v[...] = 1
    assert a.get().sum() == 4
    w = cupy.lib.stride_tricks.as_strided(a, (5, 2), (8, 4))
    assert w.shape == (5, 2) and w.data.ptr == a.data.ptr
    with pytest.raises(ValueError, match="outside its allocation"):
        cupy.lib.stride_tricks.as_strided(a, (6, 2), (8, 4))


def test_memory_pool_counts_and_an_allocation_past_the_capacity_is_out_of_memory(cupy, monkeypatch):
    pool = cupy.get_default_memory_pool()
    with cupy.cuda.Device(1):
        pool.free_all_blocks()
        base = pool.used_bytes()
        a = cupy.empty(1 << 20, dtype=cupy.uint8)
        assert pool.used_bytes() == base + (1 << 20)
        del a
        assert pool.used_bytes() == base and pool.total_bytes() >= base + (1 << 20)  # cached
        pool.free_all_blocks()
        assert pool.total_bytes() == base
        monkeypatch.setenv("BENCHBENCH_SIM_GPU_MEMORY", str(base + (4 << 20)))
        keep = cupy.empty(3 << 20, dtype=cupy.uint8)
        with pytest.raises(cupy.cuda.memory.OutOfMemoryError, match="Out of memory allocating 2,097,152 bytes"):
            cupy.empty(2 << 20, dtype=cupy.uint8)
        assert isinstance(cupy.cuda.memory.OutOfMemoryError(1, 2), MemoryError)
        del keep


def test_a_custom_allocator_sees_every_allocation(cupy):
    seen = []
    pool = cupy.get_default_memory_pool()

    def tracking(size):
        seen.append(size)
        return pool.malloc(size)

    cupy.cuda.set_allocator(tracking)
    try:
        cupy.ones((4, 4), dtype=cupy.float32) * 2
    finally:
        cupy.cuda.set_allocator(None)
    assert seen == [64, 64]  # the requested sizes; the pool rounds them up to 512 bytes itself


def test_events_time_the_host_clock_in_milliseconds(cupy):
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    time.sleep(0.05)
    end.record()
    end.synchronize()
    assert 45 <= cupy.cuda.get_elapsed_time(start, end) < 5000
    with pytest.raises(cupy.cuda.runtime.CUDARuntimeError):
        cupy.cuda.get_elapsed_time(cupy.cuda.Event(disable_timing=True), end)


def test_devices_past_the_count_do_not_exist(cupy):
    n = cupy.cuda.runtime.getDeviceCount()
    assert n == int(os.environ.get("BENCHBENCH_SIM_GPUS", "2"))
    with pytest.raises(cupy.cuda.runtime.CUDARuntimeError, match="invalid device ordinal"):
        with cupy.cuda.Device(n):
            pass


def test_nvml_energy_grows_at_the_simulated_power_and_bus_ids_match_cupys(cupy, monkeypatch):
    import pynvml

    monkeypatch.setenv("BENCHBENCH_SIM_GPU_POWER_W", "100")
    with pytest.raises(pynvml.NVMLError):
        pynvml.nvmlDeviceGetCount()
    pynvml.nvmlInit()
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(1)
        e0, t0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.time()
        time.sleep(0.2)
        e1, t1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.time()
        assert (e1 - e0) / 1000 == pytest.approx(100 * (t1 - t0), rel=0.05)
        bus = cupy.cuda.Device(1).pci_bus_id
        assert pynvml.nvmlDeviceGetPciInfo(pynvml.nvmlDeviceGetHandleByPciBusId(bus)).busId.endswith(bus[5:].upper())
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            pynvml.nvmlDeviceGetHandleByIndex(99)
    finally:
        pynvml.nvmlShutdown()


_NCCL_RANK = textwrap.dedent('''
    import sys, json
    import cupy
    from cupy.cuda import nccl
    uid = tuple(json.loads(sys.argv[1])); rank = int(sys.argv[2]); mode = sys.argv[3]
    with cupy.cuda.Device(0 if mode == "dup" else rank):
        comm = nccl.NcclCommunicator(2, uid, rank)
        x = cupy.arange(5, dtype=cupy.float32) * (rank + 1)
        if mode == "mismatch" and rank == 1:
            comm.bcast(x.data.ptr, x.size, nccl.NCCL_FLOAT32, 0, cupy.cuda.get_current_stream().ptr)
        elif mode == "die" and rank == 1:
            sys.exit(7)
        else:
            comm.allReduce(x.data.ptr, x.data.ptr, x.size, nccl.NCCL_FLOAT32, nccl.NCCL_SUM,
                           cupy.cuda.get_current_stream().ptr)
        print(json.dumps(x.get().tolist()))
''')


def _nccl_pair(mode):
    from cupy.cuda import nccl
    import json

    uid = json.dumps(list(nccl.get_unique_id()))
    env = {**os.environ, "PYTHONPATH": SIMGPU, "BENCHBENCH_SIM_NCCL_TIMEOUT": "20"}
    procs = [subprocess.Popen([sys.executable, "-c", _NCCL_RANK, uid, str(r), mode], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    return [p.communicate(timeout=60) + (p.returncode,) for p in procs]


def test_nccl_all_reduce_moves_the_bytes_between_processes():
    out = _nccl_pair("ok")
    for stdout, stderr, rc in out:
        assert rc == 0, stderr
        assert stdout.strip() == "[0.0, 3.0, 6.0, 9.0, 12.0]"


def test_nccl_collectives_out_of_order_fail_on_every_rank():
    for stdout, stderr, rc in _nccl_pair("mismatch"):
        assert rc != 0 and "collective mismatch" in stderr, stderr


def test_nccl_refuses_two_ranks_on_one_gpu():
    for stdout, stderr, rc in _nccl_pair("dup"):
        assert rc != 0 and "Duplicate GPU detected" in stderr, stderr


def test_nccl_peer_death_fails_the_survivor_quickly():
    t0 = time.monotonic()
    (_, err0, rc0), (_, _, rc1) = _nccl_pair("die")
    assert rc1 == 7 and rc0 != 0 and "NCCL_ERROR" in err0
    assert time.monotonic() - t0 < 50  # not the 120 s default time-out: the closed socket tells


def test_nccl_refuses_host_pointers(cupy):
    from cupy.cuda import nccl

    comm = nccl.NcclCommunicator(1, nccl.get_unique_id(), 0)
    host = numpy.zeros(4, numpy.float32)
    with pytest.raises(nccl.NcclError, match="not a live device allocation"):
        comm.allReduce(host.ctypes.data, host.ctypes.data, 4, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, 0)
    dev = cupy.ones(4, dtype=cupy.float32)
    comm.allReduce(dev.data.ptr, dev.data.ptr, 4, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, 0)
    assert dev.get().tolist() == [1, 1, 1, 1]


def test_benchbench_knows_the_gpus_are_simulated():
    from benchbench import system

    fp = system.fingerprint()
    assert backend.gpu_simulated() and fp["simulated_gpus"] is True
    assert "SIMULATED" in system.format_fingerprint(fp)
    assert len(fp["gpus"]) == backend.gpu_count() and "Simulated" in fp["gpus"][0]["name"]
