import numpy
import pytest

from benchbench.core.config import using_config

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.config import using_config
from benchbench.core.gradient_check import check_backward


def _rand(xp, *shape, dtype=numpy.float32, seed=0):
    rng = numpy.random.default_rng(seed)
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def _ref_outsize(size, k, s, p, cover_all, d):
    dk = k + (k - 1) * (d - 1)
    if cover_all:
        return (size + 2 * p - dk + s - 1) // s + 1
    return (size + 2 * p - dk) // s + 1


def _ref_conv(x, W, b, stride, pad, cover_all=False, dilate=(1, 1)):
    """Direct convolution with Python loops over output pixels (float64)."""
    x = numpy.asarray(x, dtype=numpy.float64)
    W = numpy.asarray(W, dtype=numpy.float64)
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    (sy, sx), (ph, pw), (dy, dx) = stride, pad, dilate
    oh = _ref_outsize(h, kh, sy, ph, cover_all, dy)
    ow = _ref_outsize(w, kw, sx, pw, cover_all, dx)
    y = numpy.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for ki in range(kh):
                for kj in range(kw):
                    r = i * sy - ph + ki * dy
                    q = j * sx - pw + kj * dx
                    if 0 <= r < h and 0 <= q < w:
                        y[:, :, i, j] += x[:, :, r, q] @ W[:, :, ki, kj].T
    if b is not None:
        y += numpy.asarray(b, dtype=numpy.float64)[None, :, None, None]
    return y


# -- linear ---------------------------------------------------------------------------
def test_linear_forward_matches_reference(xp):
    x, W, b = _rand(xp, 5, 7), _rand(xp, 3, 7, seed=1), _rand(xp, 3, seed=2)
    y = F.linear(x, W, b)
    ref = backend.as_numpy(x) @ backend.as_numpy(W).T + backend.as_numpy(b)
    assert y.shape == (5, 3)
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-5, atol=1e-5)


def test_linear_flattens_after_batch_axes(xp):
    x, W = _rand(xp, 4, 2, 3), _rand(xp, 5, 6, seed=1)
    y = F.linear(x, W)
    ref = backend.as_numpy(x).reshape(4, 6) @ backend.as_numpy(W).T
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-5, atol=1e-5)
    y2 = F.linear(x, _rand(xp, 5, 3, seed=1), n_batch_axes=2)
    assert y2.shape == (4, 2, 5)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("n_batch_axes", [1, 2])
def test_linear_backward(xp, with_bias, n_batch_axes):
    in_size = 8 if n_batch_axes == 1 else 4
    x, W, b = _rand(xp, 3, 2, 4), _rand(xp, 5, in_size, seed=1), _rand(xp, 5, seed=2)
    if with_bias:
        check_backward(lambda x, W, b: F.linear(x, W, b, n_batch_axes), (x, W, b))
    else:
        check_backward(lambda x, W: F.linear(x, W, None, n_batch_axes), (x, W))


def test_linear_skips_input_grad_for_data(xp):
    x, W = _rand(xp, 4, 6), Variable(_rand(xp, 3, 6, seed=1))
    y = F.linear(Variable(x, requires_grad=False), W)
    y.grad = xp.ones_like(y.array)
    y.backward()
    numpy.testing.assert_allclose(backend.as_numpy(W.grad), numpy.ones((3, 4)) @ backend.as_numpy(x), rtol=1e-5)


def test_linear_validates():
    x, W = numpy.zeros((2, 4), numpy.float32), numpy.zeros((3, 5), numpy.float32)
    with pytest.raises(ValueError, match=r"linear: .*in_size 4.*expects 5"):
        F.linear(x, W)
    with pytest.raises(TypeError, match="linear: x must be a float array, got dtype int64"):
        F.linear(numpy.zeros((2, 5), numpy.int64), W)
    with pytest.raises(ValueError, match="linear: W must be 2-D"):
        F.linear(x, numpy.zeros((3, 4, 1), numpy.float32))
    with pytest.raises(ValueError, match=r"linear: b must have shape \(3,\)"):
        F.linear(numpy.zeros((2, 5), numpy.float32), W, numpy.zeros(4, numpy.float32))


# -- convolution_2d -------------------------------------------------------------------
CONV_CASES = [
    # x shape, W shape, stride, pad, cover_all, dilate
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 1, False, 1),
    ((2, 4, 6, 6), (3, 4, 3, 3), 1, 1, False, 1),  # gx as a full convolution of gy (out <= in channels)
    ((2, 1, 9, 8), (3, 1, 5, 5), 1, 0, False, 1),
    ((1, 2, 9, 7), (3, 2, 3, 2), (2, 1), (1, 0), False, 1),  # non-square kernel, mixed stride/pad
    ((2, 3, 8, 8), (2, 3, 3, 3), 2, 1, False, 1),
    ((2, 3, 8, 8), (2, 3, 3, 3), 2, 0, True, 1),  # cover_all grows the grid
    ((2, 4, 6, 5), (3, 4, 1, 1), 1, 0, False, 1),  # pointwise fast path
    ((2, 4, 6, 6), (3, 4, 1, 1), 2, 0, False, 1),  # strided 1x1 (ResNet shortcut)
    ((1, 2, 9, 9), (2, 2, 3, 3), 1, 2, False, 2),  # dilation
    ((2, 2, 4, 4), (2, 2, 2, 2), 2, 0, False, 1),  # stride == kernel
    ((2, 3, 6, 7), (2, 3, 3, 2), 1, (1, 0), True, 1),  # stride 1, non-square kernel, cover_all
    ((1, 2, 4, 4), (2, 2, 3, 3), 1, 3, False, 1),  # padding wider than the kernel
]


@pytest.fixture(params=["auto", "im2col"])
def conv_path(request):
    """The default algorithm (thin stride-1 layers run as the direct compiled kernels on the CPU)
    and im2col forced."""
    with using_config("conv_algorithm", request.param):
        yield request.param


@pytest.mark.parametrize("xs,ws,stride,pad,cover_all,dilate", CONV_CASES)
def test_convolution_2d_forward_matches_loops(xp, conv_path, xs, ws, stride, pad, cover_all, dilate):
    x, W, b = _rand(xp, *xs), _rand(xp, *ws, seed=1), _rand(xp, ws[0], seed=2)
    y = F.convolution_2d(x, W, b, stride=stride, pad=pad, cover_all=cover_all, dilate=dilate)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    ref = _ref_conv(backend.as_numpy(x), backend.as_numpy(W), backend.as_numpy(b),
                    pair(stride), pair(pad), cover_all, pair(dilate))
    assert y.shape == ref.shape
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("xs,ws,stride,pad,cover_all,dilate", CONV_CASES)
def test_convolution_2d_backward(xp, conv_path, xs, ws, stride, pad, cover_all, dilate):
    x, W, b = _rand(xp, *xs), _rand(xp, *ws, seed=1), _rand(xp, ws[0], seed=2)
    check_backward(
        lambda x, W, b: F.convolution_2d(x, W, b, stride=stride, pad=pad, cover_all=cover_all, dilate=dilate),
        (x, W, b),
    )


def test_convolution_2d_without_bias(xp):
    x, W = _rand(xp, 2, 2, 5, 5), _rand(xp, 3, 2, 3, 3, seed=1)
    y = F.convolution_2d(x, W)
    ref = _ref_conv(backend.as_numpy(x), backend.as_numpy(W), None, (1, 1), (0, 0))
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-4, atol=1e-4)
    check_backward(lambda x, W: F.convolution_2d(x, W, pad=1), (x, W))


@pytest.mark.parametrize("ws,pad", [((4, 3, 3, 3), 1), ((4, 3, 1, 1), 0)])
def test_convolution_2d_data_input_gives_same_weight_grad(xp, ws, pad):
    x, gy_seed = _rand(xp, 2, 3, 6, 6), 3
    grads = []
    for x_needs_grad in (True, False):
        xv = Variable(x.copy(), requires_grad=x_needs_grad)
        W, b = Variable(_rand(xp, *ws, seed=1)), Variable(_rand(xp, ws[0], seed=2))
        y = F.convolution_2d(xv, W, b, pad=pad)
        y.grad = _rand(xp, *y.shape, seed=gy_seed)
        y.backward()
        assert (xv.grad is not None) == x_needs_grad
        grads.append((backend.as_numpy(W.grad), backend.as_numpy(b.grad)))
    numpy.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-6)
    numpy.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-6)


def test_convolution_2d_validates():
    x, W = numpy.zeros((2, 3, 8, 8), numpy.float32), numpy.zeros((4, 3, 3, 3), numpy.float32)
    with pytest.raises(ValueError, match=r"convolution_2d: x must be 4-D \(N, C, H, W\), got shape \(3, 28, 28\)"):
        F.convolution_2d(numpy.zeros((3, 28, 28), numpy.float32), W)
    with pytest.raises(ValueError, match="convolution_2d: x has 2 channels .* W expects 3"):
        F.convolution_2d(numpy.zeros((2, 2, 8, 8), numpy.float32), W)
    with pytest.raises(TypeError, match="convolution_2d: W must be a float array, got dtype int32"):
        F.convolution_2d(x, W.astype(numpy.int32))
    with pytest.raises(ValueError, match="convolution_2d: stride must be positive, got 0"):
        F.convolution_2d(x, W, stride=0)
    with pytest.raises(ValueError, match=r"convolution_2d: pad must be >= 0, got \(1, -1\)"):
        F.convolution_2d(x, W, pad=(1, -1))
    with pytest.raises(TypeError, match="convolution_2d: stride must be an int or a pair of ints"):
        F.convolution_2d(x, W, stride=1.5)
    with pytest.raises(ValueError, match="convolution_2d: output would be empty"):
        F.convolution_2d(numpy.zeros((1, 3, 2, 2), numpy.float32), W)
    with pytest.raises(ValueError, match=r"convolution_2d: b must have shape \(4,\)"):
        F.convolution_2d(x, W, numpy.zeros(3, numpy.float32))
