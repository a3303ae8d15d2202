"""Convolutions whose im2col columns are not kept for backward, or are built a few samples at a time.

Every case of ``test_connection.CONV_CASES`` is run again with a chunk budget so small
that each chunk holds one sample (an odd batch of 3, so chunks are also uneven when the
budget allows two), and with whole-batch columns rebuilt for the weight gradient, against
the loop reference and numerical gradients, and compared with the path that keeps them.
"""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.kernels import conv_chunks as _conv_chunks
from benchbench.core.functions.connection import Convolution2DFunction
from benchbench.core.config import using_config
from benchbench.core.gradient_check import check_backward

from .test_connection import CONV_CASES, _rand, _ref_conv


@pytest.fixture(autouse=True)
def _im2col():
    """These tests are about im2col's columns: thin layers would otherwise run as direct kernels."""
    with using_config("conv_algorithm", "im2col"):
        yield


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.fixture(params=["one sample per chunk", "whole batch, rebuilt"])
def unkept_columns(request, monkeypatch):
    """Columns never kept for backward: one sample per chunk, or the whole batch rebuilt (on numpy)."""
    if request.param == "one sample per chunk":
        monkeypatch.setattr(_conv_chunks, "COL_CHUNK_BYTES", 1)
    monkeypatch.setattr(_conv_chunks, "HOLD_COL_BYTES", 0)
    return request.param


@pytest.mark.parametrize("n,per,budget", [(1, 10, 1), (3, 10, 1), (7, 10, 25), (64, 100, 6400), (64, 100, 6399),
                                          (5, 0, 1)])
def test_sample_chunks_cover_the_batch_within_budget(n, per, budget):
    chunks = _conv_chunks.sample_chunks(numpy, n, per, budget)
    assert chunks[0][0] == 0 and chunks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    sizes = [hi - lo for lo, hi in chunks]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert all(s == 1 or s * per <= budget for s in sizes)
    assert len(chunks) == -(-n // max(1, budget // max(per, 1)))


def test_one_kept_chunk_off_numpy():
    class OtherModule:  # any array module but numpy (cupy) keeps the whole batch together
        pass

    assert _conv_chunks.sample_chunks(OtherModule, 64, 1 << 30, 1) == [(0, 64)]
    assert _conv_chunks.holds_columns(OtherModule, 1 << 40)
    assert _conv_chunks.column_capacity(OtherModule, [(0, 64)], 10, 4) is None


@pytest.mark.parametrize("xs,ws,stride,pad,cover_all,dilate", CONV_CASES)
def test_unkept_columns_match_loops_and_numerical_grads(unkept_columns, xs, ws, stride, pad, cover_all, dilate):
    xs = (3,) + xs[1:]
    x, W, b = _rand(numpy, *xs), _rand(numpy, *ws, seed=1), _rand(numpy, ws[0], seed=2)
    y = F.convolution_2d(x, W, b, stride=stride, pad=pad, cover_all=cover_all, dilate=dilate)
    ref = _ref_conv(x, W, b, _pair(stride), _pair(pad), cover_all, _pair(dilate))
    numpy.testing.assert_allclose(y.array, ref, rtol=1e-4, atol=1e-4)
    check_backward(
        lambda x, W, b: F.convolution_2d(x, W, b, stride=stride, pad=pad, cover_all=cover_all, dilate=dilate),
        (x, W, b),
    )


def _forward_backward(x, W, b, x_needs_grad, **kw):
    xv = Variable(x.copy(), requires_grad=x_needs_grad)
    Wv, bv = Variable(W.copy()), Variable(b.copy())
    y = F.convolution_2d(xv, Wv, bv, **kw)
    fn = y.creator
    kept = fn.col is not None
    y.grad = _rand(numpy, *y.shape, seed=3)
    y.backward()
    assert fn.col is None  # given back after the weight gradient
    return y.array, xv.grad, Wv.grad, bv.grad, kept


@pytest.mark.parametrize("x_needs_grad", [True, False])
@pytest.mark.parametrize("xs,ws,stride,pad,cover_all,dilate", CONV_CASES)
def test_kept_and_unkept_column_paths_agree(monkeypatch, x_needs_grad, xs, ws, stride, pad, cover_all, dilate):
    xs = (5,) + xs[1:]
    x, W, b = _rand(numpy, *xs), _rand(numpy, *ws, seed=1), _rand(numpy, ws[0], seed=2)
    kw = dict(stride=stride, pad=pad, cover_all=cover_all, dilate=dilate)
    whole = _forward_backward(x, W, b, x_needs_grad, **kw)
    monkeypatch.setattr(_conv_chunks, "HOLD_COL_BYTES", 0)
    rebuilt = _forward_backward(x, W, b, x_needs_grad, **kw)
    monkeypatch.setattr(_conv_chunks, "COL_CHUNK_BYTES", 1)
    chunked = _forward_backward(x, W, b, x_needs_grad, **kw)
    assert whole[-1]  # small columns are kept for the weight gradient
    pointwise = ws[2:] == (1, 1) and _pair(stride) == (1, 1) and _pair(pad) == (0, 0)
    assert rebuilt[-1] == chunked[-1] == pointwise  # otherwise nothing kept (a 1x1 keeps its input's copy)
    for a, r, c in zip(whole[:4], rebuilt[:4], chunked[:4]):
        if a is None:
            assert r is None
        else:
            numpy.testing.assert_allclose(r, a, rtol=1e-5, atol=1e-5)
        if a is None:
            assert c is None
        else:
            numpy.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-5)


def test_a_resnet_stage1_layer_keeps_no_columns():
    fn = Convolution2DFunction((1, 1), (1, 1), False, (1, 1))
    n, c, h = 64, 64, 32  # 144 MiB of columns
    assert _conv_chunks.sample_chunks(numpy, n, c * 9 * h * h * 4) == [(0, n)]
    assert not _conv_chunks.holds_columns(numpy, n * c * 9 * h * h * 4)
    x = Variable(numpy.zeros((n, c, h, h), numpy.float32))
    W = Variable(numpy.zeros((c, c, 3, 3), numpy.float32))
    (y,) = fn.apply((x, W))
    assert fn.col is None and y.shape == (n, c, h, h)



def test_unkept_columns_of_every_layer_share_one_capacity(monkeypatch):
    monkeypatch.setattr(_conv_chunks, "_largest", {})
    assert _conv_chunks.column_capacity(numpy, [(0, 4)], 100, 4) == 400
    assert _conv_chunks.column_capacity(numpy, [(0, 2), (2, 5)], 100, 4) == 400  # a smaller layer: same size
    assert _conv_chunks.column_capacity(numpy, [(0, 8)], 100, 4) == 800  # a larger one raises it
    assert _conv_chunks.column_capacity(numpy, [(0, 1)], 100, 4) == 800
    assert _conv_chunks.column_capacity(numpy, [(0, 1)], 100, 8) == 100  # per dtype
