"""Convolutions whose im2col columns are built a few samples at a time (``_conv_chunks``).

Every case of ``test_connection.CONV_CASES`` is run again with a chunk budget so small
that each chunk holds one sample (an odd batch of 3, so chunks are also uneven when the
budget allows two), against the loop reference and numerical gradients, and compared
with the whole-batch path that keeps its columns.
"""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.functions import _conv_chunks
from benchbench.core.functions.connection import Convolution2DFunction
from benchbench.core.gradient_check import check_backward

from .test_connection import CONV_CASES, _rand, _ref_conv


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.fixture
def one_sample_chunks(monkeypatch):
    """Columns of at most one sample per chunk (on numpy)."""
    monkeypatch.setattr(_conv_chunks, "COL_CHUNK_BYTES", 1)


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


def test_sample_chunks_one_chunk_off_numpy():
    class OtherModule:  # any array module but numpy (cupy) keeps the whole batch together
        pass

    assert _conv_chunks.sample_chunks(OtherModule, 64, 1 << 30, 1) == [(0, 64)]


@pytest.mark.parametrize("xs,ws,stride,pad,cover_all,dilate", CONV_CASES)
def test_chunked_convolution_matches_loops_and_numerical_grads(one_sample_chunks, xs, ws, stride, pad, cover_all,
                                                               dilate):
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
def test_chunked_and_whole_batch_paths_agree(monkeypatch, x_needs_grad, xs, ws, stride, pad, cover_all, dilate):
    xs = (5,) + xs[1:]
    x, W, b = _rand(numpy, *xs), _rand(numpy, *ws, seed=1), _rand(numpy, ws[0], seed=2)
    kw = dict(stride=stride, pad=pad, cover_all=cover_all, dilate=dilate)
    whole = _forward_backward(x, W, b, x_needs_grad, **kw)
    monkeypatch.setattr(_conv_chunks, "COL_CHUNK_BYTES", 1)
    chunked = _forward_backward(x, W, b, x_needs_grad, **kw)
    assert whole[-1]  # one chunk: the columns are kept for the weight gradient
    pointwise = ws[2:] == (1, 1) and _pair(stride) == (1, 1) and _pair(pad) == (0, 0)
    assert chunked[-1] == pointwise  # several chunks: nothing kept (a 1x1 keeps its input's copy)
    for a, c in zip(whole[:4], chunked[:4]):
        if a is None:
            assert c is None
        else:
            numpy.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-5)


def test_default_budget_splits_a_resnet_stage1_layer_and_keeps_no_columns():
    fn = Convolution2DFunction((1, 1), (1, 1), False, (1, 1))
    n, c, h = 64, 64, 32
    chunks = _conv_chunks.sample_chunks(numpy, n, c * 9 * h * h * 4)
    assert len(chunks) > 1 and all(c * 9 * h * h * 4 * (hi - lo) <= _conv_chunks.COL_CHUNK_BYTES
                                   for lo, hi in chunks)
    x = Variable(numpy.zeros((n, c, h, h), numpy.float32))
    W = Variable(numpy.zeros((c, c, 3, 3), numpy.float32))
    (y,) = fn.apply((x, W))
    assert fn.col is None and y.shape == (n, c, h, h)


def test_chunk_capacity_is_shared_by_split_layers():
    budget_elems = _conv_chunks.COL_CHUNK_BYTES // 4
    assert _conv_chunks.chunk_capacity([(0, 8)], 1000, 4) is None
    # two layers with different per-sample sizes ask for the same flat size
    small = _conv_chunks.chunk_capacity(_conv_chunks.sample_chunks(numpy, 64, 4 * budget_elems // 10),
                                        budget_elems // 10, 4)
    other = _conv_chunks.chunk_capacity(_conv_chunks.sample_chunks(numpy, 64, 4 * budget_elems // 7),
                                        budget_elems // 7, 4)
    assert small == other == budget_elems
    # one sample larger than the budget: the capacity grows to hold it
    assert _conv_chunks.chunk_capacity([(0, 1), (1, 2)], 3 * budget_elems, 4) == 3 * budget_elems
