"""Stream capture and CUDA graphs on the simulated GPUs, as strict as CUDA and cupy.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does); skipped where ``cupy`` is real or absent.
"""
import numpy
import pytest

from benchbench.core import backend

pytestmark = pytest.mark.simgpu

SCALE = "T x, float32 s", "T y", "y = x * s + (T)1", "sim_capture_scale"
SUMSQ = "T x", "T y", "x * x", "a + b", "y = a", "0", "sim_capture_sumsq"


@pytest.fixture
def cupy():
    return backend.cupy


def _step(cupy, x, w, idx, scale, sumsq):
    """A small step touching each kind of operation: cuBLAS, ufuncs, a reduction, fancy indexing, an
    assignment, a scatter, copies, a cast, user kernels."""
    h = cupy.tanh(x @ w)
    h[:, 0] = h[:, 1]
    g = h[idx].copy().astype(cupy.float64)
    acc = cupy.zeros((6, 5), cupy.float32)
    cupy.add.at(acc, idx, h[:3])
    y = scale(cupy.array(h) + cupy.ascontiguousarray(acc.T).T, numpy.float32(0.5))
    return {"h": h, "g": g, "acc": acc, "y": y, "s": y.sum(axis=0), "q": sumsq(y)}


def _host(out):
    return {k: v.get() for k, v in out.items()}


def test_a_capture_records_and_a_launch_replays_into_the_same_buffers(cupy):
    scale, sumsq = cupy.ElementwiseKernel(*SCALE), cupy.ReductionKernel(*SUMSQ)
    rng = numpy.random.default_rng(0)
    batches = [rng.standard_normal((6, 4)).astype(numpy.float32) for _ in range(3)]
    x = cupy.asarray(batches[0])
    w = cupy.asarray(rng.standard_normal((4, 5)).astype(numpy.float32))
    idx = cupy.asarray(numpy.array([3, 0, 3], numpy.int64))
    want = [_host(_step(cupy, cupy.asarray(b), w, idx, scale, sumsq)) for b in batches]

    s = cupy.cuda.Stream(non_blocking=True)
    before = cupy._sim_stats()
    with s:
        s.begin_capture()
        assert s.is_capturing() and cupy.cuda.runtime.streamIsCapturing(s.ptr)
        out = _step(cupy, x, w, idx, scale, sumsq)
        g = s.end_capture()
    assert isinstance(g, cupy.cuda.Graph) and not s.is_capturing()
    assert cupy._sim_stats()["launches"] == before["launches"], "recorded work launches nothing"
    assert all(numpy.isnan(v).all() for v in _host(out).values()), "nothing ran before the launch"
    for b, expect in zip(batches, want):
        x[...] = cupy.asarray(b)  # the new batch into the captured input buffer
        n0 = cupy._sim_stats()
        g.launch(stream=s)
        s.synchronize()
        n1 = cupy._sim_stats()
        assert (n1["graph_launches"], n1["launches"]) == (n0["graph_launches"] + 1, n0["launches"])
        got = _host(out)
        for k in expect:
            numpy.testing.assert_array_equal(got[k], expect[k], err_msg=k)
    assert "ndarray.__matmul__" in g.debug_dot_str()


def test_host_transfers_and_draws_on_a_capturing_stream_raise_as_in_cupy(cupy):
    x = cupy.ones((4,), cupy.float32)
    mask = x > 0
    s = cupy.cuda.Stream(non_blocking=True)
    forbidden = {
        "float": (lambda: float(x.sum()), RuntimeError, "D2H transfers are disallowed"),
        "get": (lambda: x.get(), RuntimeError, "D2H"),
        "asnumpy": (lambda: cupy.asnumpy(x), RuntimeError, "D2H"),
        "item": (lambda: x[0].item(), RuntimeError, "D2H"),
        "mask index": (lambda: x[mask], RuntimeError, "D2H"),
        "nonzero": (lambda: cupy.nonzero(x), RuntimeError, "D2H"),
        "asarray": (lambda: cupy.asarray(numpy.ones(3)), RuntimeError, "H2D transfers are disallowed"),
        "set": (lambda: x.set(numpy.zeros(4, numpy.float32)), RuntimeError, "H2D"),
        "host index": (lambda: x[[0, 1]], RuntimeError, "H2D"),
        "random": (lambda: cupy.random.rand(3), NotImplementedError, "cuRAND"),
    }
    with s:
        s.begin_capture()
        for what, (fn, exc, text) in forbidden.items():
            with pytest.raises(exc, match=text):
                fn()
        g = s.end_capture()  # cupy refuses these before any CUDA call: the capture is still valid
    g.launch(stream=s)


@pytest.mark.parametrize("sync", ["stream", "device", "runtime", "stream query"])
def test_a_synchronisation_during_capture_is_900_and_invalidates_it(cupy, sync):
    CUDARuntimeError = cupy.cuda.runtime.CUDARuntimeError
    s = cupy.cuda.Stream(non_blocking=True)
    x = cupy.ones((4,), cupy.float32)
    call = {"stream": s.synchronize, "device": cupy.cuda.Device(0).synchronize,
            "runtime": cupy.cuda.runtime.deviceSynchronize, "stream query": lambda: s.done}[sync]
    with s:
        s.begin_capture()
        x += 1
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported") as e:
            call()
        assert e.value.status == 900
        with pytest.raises(RuntimeError, match="invalidated the capture sequence"):
            s.is_capturing()
        x.reshape(2, 2)  # a view calls no CUDA API: no error
        with pytest.raises(CUDARuntimeError) as e:
            x * 2  # a launch into the invalidated capture
        assert e.value.status == 901
        with pytest.raises(CUDARuntimeError) as e:
            s.end_capture()
        assert e.value.status == 901
    assert not s.is_capturing()
    numpy.testing.assert_array_equal(x.get(), numpy.ones(4, numpy.float32))  # the captured += never ran


def test_the_legacy_null_stream_beside_a_blocking_capture_is_906(cupy):
    CUDARuntimeError = cupy.cuda.runtime.CUDARuntimeError
    x = cupy.ones((4,), cupy.float32)
    blocking, non_blocking = cupy.cuda.Stream(), cupy.cuda.Stream(non_blocking=True)
    non_blocking.begin_capture()
    numpy.testing.assert_array_equal((x + 1).get(), numpy.full(4, 2, numpy.float32))  # null stream: independent
    non_blocking.end_capture()
    blocking.begin_capture()
    with pytest.raises(CUDARuntimeError) as e:
        x.get()  # cudaStreamIsCapturing(null) raises; the capture stays valid
    assert e.value.status == 906 and blocking.is_capturing()
    with pytest.raises(CUDARuntimeError) as e:
        x += 1  # a launch on the null stream: refused, and the capture is invalidated
    assert e.value.status == 906
    with pytest.raises(CUDARuntimeError) as e:
        blocking.end_capture()
    assert e.value.status == 901
    numpy.testing.assert_array_equal(x.get(), numpy.ones(4, numpy.float32))


def test_capture_misuse_raises_cupys_and_cudas_errors(cupy):
    CUDARuntimeError = cupy.cuda.runtime.CUDARuntimeError
    with pytest.raises(RuntimeError, match="cannot capture on the default"):
        cupy.cuda.Stream.null.begin_capture()
    with pytest.raises(NotImplementedError):
        cupy.cuda.Graph()
    s = cupy.cuda.Stream(non_blocking=True)
    with pytest.raises(CUDARuntimeError) as e:
        s.end_capture()
    assert e.value.status == 401
    s.begin_capture(mode=cupy.cuda.runtime.streamCaptureModeGlobal)
    with pytest.raises(CUDARuntimeError) as e:
        s.begin_capture()
    assert e.value.status == 401
    ev = s.record()
    for call in (ev.query, ev.synchronize, lambda: cupy.cuda.get_elapsed_time(ev, ev)):
        with pytest.raises(CUDARuntimeError) as e:
            call()
        assert e.value.status == 907
    s.end_capture()


def _capture(cupy, s, fn):
    with s:
        s.begin_capture()
        out = fn()
        return s.end_capture(), out


def test_memory_a_live_graph_uses_is_never_handed_out_or_released(cupy):
    GraphMemoryError = cupy.cuda.graph.GraphMemoryError
    pool = cupy.get_default_memory_pool()
    s = cupy.cuda.Stream(non_blocking=True)
    x = cupy.ones((1000,), cupy.float32)  # a size no other test uses: blocks of 4096 bytes

    def step():
        t = x * 2  # a temporary: freed during the capture, its block back in the stream's arena
        return t + 1

    g, y = _capture(cupy, s, step)
    with s, pytest.raises(GraphMemoryError, match="would be handed to another allocation"):
        cupy.empty((1000,), cupy.float32)  # the graph's temporary, reused while the graph lives
    keep = cupy.empty((1000,), cupy.float32)  # another stream's arena (the null stream's): fine
    with pytest.raises(GraphMemoryError, match="releasing a cached block"):
        pool.free_all_blocks()
    g.launch(stream=s)
    s.synchronize()
    numpy.testing.assert_array_equal(y.get(), numpy.full(1000, 3, numpy.float32))
    del g
    with s:
        cupy.empty((1000,), cupy.float32)  # the graph is gone: its memory is the pool's again
    pool.free_all_blocks()
    del keep


def test_a_graph_whose_input_was_freed_refuses_to_launch(cupy):
    s = cupy.cuda.Stream(non_blocking=True)
    x = cupy.ones((8,), cupy.float32)
    g, y = _capture(cupy, s, lambda: x * 2)
    g.launch(stream=s)
    del x
    with pytest.raises(cupy.cuda.graph.GraphMemoryError, match="reads memory freed since its capture"):
        g.launch(stream=s)


def test_a_private_pool_keeps_the_graphs_memory_apart(cupy):
    s = cupy.cuda.Stream(non_blocking=True)
    private = cupy.cuda.MemoryPool()
    x = cupy.ones((1000,), cupy.float32)
    with cupy.cuda.using_allocator(private.malloc):
        g, y = _capture(cupy, s, lambda: (x * 2) + 1)
    with s:
        z = cupy.empty((1000,), cupy.float32)  # from the default pool: never the graph's blocks
    g.launch(stream=s)
    s.synchronize()
    assert float(y.sum()) == 3000.0 and z.shape == (1000,)


def test_growing_the_pool_is_refused_in_a_global_mode_capture_and_allowed_in_relaxed(cupy):
    CUDARuntimeError = cupy.cuda.runtime.CUDARuntimeError
    s = cupy.cuda.Stream(non_blocking=True)
    x = cupy.ones((3000,), cupy.float32)
    with s:
        s.begin_capture(mode=cupy.cuda.runtime.streamCaptureModeGlobal)
        with pytest.raises(CUDARuntimeError) as e:
            x * 2  # no cached block of this size in the stream's arena: cudaMalloc
        assert e.value.status == 900
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            s.end_capture()
        cupy.empty((3000,), cupy.float32)  # warm the arena: freed at once, one cached block of the size
        s.begin_capture(mode=cupy.cuda.runtime.streamCaptureModeGlobal)
        y = x * 2  # served from the pool without a CUDA call
        g = s.end_capture()
        s.begin_capture()  # relaxed (cupy's default): the pool may cudaMalloc
        z = x * 3
        g2 = s.end_capture()
    g.launch(stream=s)
    g2.launch(stream=s)
    s.synchronize()
    assert float(y[0]) == 2.0 and float(z[0]) == 3.0


def test_a_captured_all_reduce_replays_across_two_gpus(cupy, monkeypatch):
    import threading

    from cupy.cuda import nccl

    monkeypatch.setenv("BENCHBENCH_SIM_NCCL_TIMEOUT", "20")
    uid, results, errors = nccl.get_unique_id(), {}, {}
    batches = [numpy.arange(4, dtype=numpy.float32) * k for k in (1, 5)]

    def rank(r):
        try:
            with cupy.cuda.Device(r):
                comm = nccl.NcclCommunicator(2, uid, r)
                s = cupy.cuda.Stream(non_blocking=True)
                x = cupy.zeros((4,), cupy.float32)

                def step():
                    y = x * (r + 1)
                    comm.allReduce(y.data.ptr, y.data.ptr, y.size, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, s.ptr)
                    return y + 1

                g, out = _capture(cupy, s, step)
                results[r] = [out.get().tolist()]  # nothing ran, nothing was exchanged
                for b in batches:
                    x[...] = cupy.asarray(b)
                    g.launch(stream=s)
                    s.synchronize()
                    results[r].append(out.get().tolist())
                comm.destroy()
        except Exception as e:  # reported below, with the rank
            errors[r] = e

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for r in range(2):
        assert all(numpy.isnan(results[r][0]))
        for b, got in zip(batches, results[r][1:]):
            assert got == (b * 1 + b * 2 + 1).tolist()


def test_other_streams_see_memory_as_it_was_before_the_capture(cupy):
    s = cupy.cuda.Stream(non_blocking=True)
    x = cupy.ones((2, 3), cupy.float32)
    with s:
        s.begin_capture()
        x += 1
        y = x.T * 2
    # relaxed mode, a non-blocking stream: a copy on the null stream is legal and sees no captured work
    numpy.testing.assert_array_equal(x[:, 1:].get(), numpy.ones((2, 2), numpy.float32))
    assert float(x[1, 2]) == 1.0 and numpy.isnan(y.get()).all()
    with s:
        g = s.end_capture()
        g.launch()
        s.synchronize()
    numpy.testing.assert_array_equal(y.get(), numpy.full((3, 2), 4, numpy.float32))


def test_unsafe_calls_from_another_thread_break_a_global_capture_only(cupy):
    import threading

    CUDARuntimeError = cupy.cuda.runtime.CUDARuntimeError
    runtime = cupy.cuda.runtime
    for mode, refused in ((runtime.streamCaptureModeGlobal, True), (runtime.streamCaptureModeThreadLocal, False)):
        s = cupy.cuda.Stream(non_blocking=True)
        s.begin_capture(mode=mode)
        seen = []
        grow = cupy.cuda.MemoryPool().malloc  # an empty pool: its first block is a cudaMalloc
        t = threading.Thread(target=lambda: seen.append(_try(lambda: grow(7777))))
        t.start()
        t.join()
        if refused:
            assert isinstance(seen[0], CUDARuntimeError) and seen[0].status == 900
            with pytest.raises(CUDARuntimeError, match="Invalidated"):
                s.end_capture()
        else:
            assert seen[0] is None
            s.end_capture()


def _try(fn):
    try:
        fn()
    except Exception as e:  # handed back to the test's thread
        return e
    return None


def test_a_graph_launched_into_a_capture_is_a_node_and_on_the_null_stream_beside_one_906(cupy):
    CUDARuntimeError = cupy.cuda.runtime.CUDARuntimeError
    s, outer = cupy.cuda.Stream(non_blocking=True), cupy.cuda.Stream()
    x = cupy.ones((4,), cupy.float32)
    g, _ = _capture(cupy, s, lambda: x.__iadd__(1))
    with outer:
        outer.begin_capture()
        g.launch()
        g.launch()
        with pytest.raises(CUDARuntimeError) as e:
            g.launch(stream=cupy.cuda.Stream.null)
        assert e.value.status == 906
    with pytest.raises(CUDARuntimeError, match="Invalidated"):
        outer.end_capture()
    with outer:
        outer.begin_capture()
        g.launch()
        g.launch()
        twice = outer.end_capture()
    n0 = cupy._sim_stats()["graph_launches"]
    twice.launch(stream=outer)
    outer.synchronize()
    assert cupy._sim_stats()["graph_launches"] == n0 + 1
    numpy.testing.assert_array_equal(x.get(), numpy.full(4, 3, numpy.float32))


def test_memory_freed_without_a_pool_breaks_the_graph_that_used_it(cupy):
    s = cupy.cuda.Stream(non_blocking=True)
    x = cupy.ones((8,), cupy.float32)
    with cupy.cuda.using_allocator(None):  # plain cudaMalloc / cudaFree
        g, y = _capture(cupy, s, lambda: (x * 2) + 1)  # the temporary x * 2 goes back to the device
    g.upload(stream=s)  # an upload touches no memory
    with pytest.raises(cupy.cuda.graph.GraphMemoryError, match="was released"):
        g.launch(stream=s)
