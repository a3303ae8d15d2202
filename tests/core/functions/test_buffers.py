import numpy
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core.kernels import buffers as _buffers


# -- the pool ---------------------------------------------------------------------------
def test_pool_reuses_a_released_array():
    pool = _buffers.BufferPool()
    a = pool.acquire((64, 32), numpy.float32)
    pool.release(a)
    b = pool.acquire((64, 32), numpy.float32)
    assert b is a
    assert pool.free_bytes == 0


def test_pool_never_hands_out_a_held_array_twice():
    pool = _buffers.BufferPool()
    a = pool.acquire((128,), numpy.float32)
    b = pool.acquire((128,), numpy.float32)
    assert not numpy.shares_memory(a, b)
    a[...] = 1.0
    b[...] = 2.0
    assert (a == 1.0).all()


def test_pool_release_of_a_view_returns_its_owner():
    pool = _buffers.BufferPool()
    a = pool.acquire((4, 8, 2), numpy.float64)
    pool.release(a.reshape(32, 2)[:, 0])
    assert pool.acquire((4, 8, 2), numpy.float64) is a


def test_pool_double_release_does_not_duplicate():
    pool = _buffers.BufferPool()
    a = pool.acquire((16,), numpy.float32)
    pool.release(a)
    pool.release(a)
    first = pool.acquire((16,), numpy.float32)
    second = pool.acquire((16,), numpy.float32)
    assert first is a
    assert not numpy.shares_memory(first, second)


def test_pool_ignores_foreign_arrays_and_keys_by_shape_and_dtype():
    pool = _buffers.BufferPool()
    foreign = numpy.empty((16,), numpy.float32)
    pool.release(foreign)
    assert pool.free_bytes == 0
    a = pool.acquire((16,), numpy.float32)
    pool.release(a)
    assert pool.acquire((16,), numpy.float64) is not a
    assert pool.acquire((8, 2), numpy.float32) is not a


def test_pool_respects_its_free_bytes_limit_and_clear():
    pool = _buffers.BufferPool(max_free_bytes=1000)
    small = pool.acquire((100,), numpy.float32)   # 400 bytes
    big = pool.acquire((200,), numpy.float32)     # 800 bytes
    pool.release(small)
    pool.release(big)
    assert pool.free_bytes == 400
    pool.clear()
    assert pool.free_bytes == 0
    assert pool.acquire((100,), numpy.float32) is not small


def test_module_acquire_pools_only_large_numpy_arrays():
    big = _buffers.acquire(numpy, (256, 256), numpy.float32)
    _buffers.release(numpy, big)
    assert _buffers.acquire(numpy, (256, 256), numpy.float32) is big
    tiny = _buffers.acquire(numpy, (4,), numpy.float32)
    _buffers.release(numpy, tiny)
    assert _buffers.acquire(numpy, (4,), numpy.float32) is not tiny


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threaded_copy_matches_copyto(monkeypatch, threads):
    monkeypatch.setattr(_buffers, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(_buffers, "copy_threads", lambda: threads)
    src = numpy.arange(5 * 7 * 6, dtype=numpy.float32).reshape(5, 7, 6).transpose(2, 0, 1)
    dst = numpy.empty(src.shape, numpy.float32)
    assert _buffers.copy(numpy, dst, src) is dst
    numpy.testing.assert_array_equal(dst, src)


def test_copy_threads_is_at_least_one():
    assert _buffers.copy_threads() >= 1


# -- convolutions of one shape alive together in one graph, steps repeated ------------------
def _conv_ref(x, W, stride, pad):
    xp_ = numpy.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp_, W.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return numpy.einsum("ncyxij,ocij->noyx", win, W), win


def _conv_ref_grads(x, W, gy, stride, pad):
    _, win = _conv_ref(x, W, stride, pad)
    gW = numpy.einsum("ncyxij,noyx->ocij", win, gy)
    n, c, h, w = x.shape
    kh, kw = W.shape[2:]
    oh, ow = gy.shape[2:]
    gpad = numpy.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for i in range(kh):
        for j in range(kw):
            gpad[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride] += numpy.einsum(
                "noyx,oc->ncyx", gy, W[:, :, i, j])
    return gpad[:, :, pad:pad + h, pad:pad + w], gW


@pytest.mark.parametrize("ksize,stride,pad", [(3, 1, 1), (3, 2, 1), (1, 1, 0)])
def test_same_shape_convolutions_in_one_graph_get_their_own_buffers(ksize, stride, pad):
    # Large enough (float64) for every work array to come from the pool.
    rng = numpy.random.default_rng(0)
    n, c, hw = 4, 16, 16
    x = rng.standard_normal((n, c, hw, hw))
    W1 = rng.standard_normal((c, c, ksize, ksize)) * 0.1
    W2 = rng.standard_normal((c, c, ksize, ksize)) * 0.1
    W3 = rng.standard_normal((c, c, ksize, ksize)) * 0.1
    for step in range(3):  # later steps run on buffers released by the earlier ones
        xv = Variable(x + step)
        v1, v2, v3 = Variable(W1), Variable(W2), Variable(W3)
        a = F.convolution_2d(xv, v1, stride=1, pad=ksize // 2)
        b = F.convolution_2d(xv, v2, stride=1, pad=ksize // 2)   # same shape as a, alive with it
        z = F.convolution_2d(a * b, v3, stride=stride, pad=pad)
        r = rng.standard_normal(z.shape)
        loss = F.sum(z * r)
        loss.backward()

        ra, _ = _conv_ref(x + step, W1, 1, ksize // 2)
        rb, _ = _conv_ref(x + step, W2, 1, ksize // 2)
        rz, _ = _conv_ref(ra * rb, W3, stride, pad)
        numpy.testing.assert_allclose(z.array, rz, rtol=1e-10, atol=1e-10)
        gab, gW3 = _conv_ref_grads(ra * rb, W3, r, stride, pad)
        gx1, gW1 = _conv_ref_grads(x + step, W1, gab * rb, 1, ksize // 2)
        gx2, gW2 = _conv_ref_grads(x + step, W2, gab * ra, 1, ksize // 2)
        numpy.testing.assert_allclose(v3.grad, gW3, rtol=1e-9, atol=1e-9)
        numpy.testing.assert_allclose(v1.grad, gW1, rtol=1e-9, atol=1e-9)
        numpy.testing.assert_allclose(v2.grad, gW2, rtol=1e-9, atol=1e-9)
        numpy.testing.assert_allclose(xv.grad, gx1 + gx2, rtol=1e-9, atol=1e-9)
