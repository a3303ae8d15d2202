import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward


@pytest.fixture(params=["numpy", "numpy, numpy kernels", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test; on the CPU both kernel paths: the default (compiled, where
    numba imports) and the numpy array code (``BENCHBENCH_CPU_KERNELS=numpy``)."""
    if request.param == "cupy":
        yield backend.cupy
        return
    from benchbench.core.kernels import cpu_compiled

    path = "numpy" if "kernels" in request.param or not cpu_compiled.active() else "compiled"
    with cpu_compiled.using(path):
        yield numpy


def _distinct(xp, *shape, seed=0, dtype=numpy.float32):
    """Values 0.01 apart in random order, so no window has a tie and a 1e-3 step never reorders them."""
    rng = numpy.random.default_rng(seed)
    n = int(numpy.prod(shape))
    return xp.asarray((rng.permutation(n) * 0.01 - n * 0.005).reshape(shape).astype(dtype))


def _outsize(size, k, s, p, cover_all):
    if cover_all:
        return (size + 2 * p - k + s - 1) // s + 1
    return (size + 2 * p - k) // s + 1


def _ref_pool(x, ksize, stride, pad, cover_all, kind):
    """Pooling with Python loops over output pixels; max ignores padding, average counts it as zeros."""
    x = numpy.asarray(x, dtype=numpy.float64)
    n, c, h, w = x.shape
    (kh, kw), (sy, sx), (ph, pw) = ksize, stride, pad
    oh, ow = _outsize(h, kh, sy, ph, cover_all), _outsize(w, kw, sx, pw, cover_all)
    y = numpy.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, q0 = i * sy - ph, j * sx - pw
            win = x[:, :, max(r0, 0):min(r0 + kh, h), max(q0, 0):min(q0 + kw, w)]
            if kind == "max":
                y[:, :, i, j] = win.max(axis=(2, 3))
            else:
                y[:, :, i, j] = win.sum(axis=(2, 3)) / (kh * kw)
    return y


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


MAX_CASES = [
    # x shape, ksize, stride, pad, cover_all
    ((2, 3, 6, 6), 2, None, 0, True),  # non-overlapping, divisible
    ((2, 3, 6, 6), 2, 1, 0, True),  # CNN/MNIST: ksize 2 stride 1
    ((2, 2, 7, 7), 2, None, 0, True),  # odd size: cover_all adds a partial window
    ((2, 2, 7, 7), 2, None, 0, False),  # ... which floor rounding drops
    ((1, 2, 7, 5), 3, 2, 1, True),  # overlapping, padded
    ((1, 2, 7, 5), 3, 2, 1, False),
    ((2, 1, 8, 10), (3, 2), (2, 3), (1, 0), True),  # non-square everything
    ((1, 2, 5, 5), 5, 1, 0, True),  # one window covers everything
    # stride 1 runs over the flat padded array: padding, overlap, rectangles, index types
    ((2, 2, 7, 6), 3, 1, 1, True),
    ((1, 3, 6, 8), (3, 2), 1, (1, 0), False),
    ((1, 2, 13, 12), (12, 11), 1, 0, True),  # 132 offsets: int32 indices
]


@pytest.mark.parametrize("xs,ksize,stride,pad,cover_all", MAX_CASES)
def test_max_pooling_2d_forward_matches_loops(xp, xs, ksize, stride, pad, cover_all):
    x = _distinct(xp, *xs)
    y = F.max_pooling_2d(x, ksize, stride, pad, cover_all)
    ks = _pair(ksize)
    ref = _ref_pool(backend.as_numpy(x), ks, ks if stride is None else _pair(stride), _pair(pad), cover_all, "max")
    assert y.shape == ref.shape
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-6)


@pytest.mark.parametrize("xs,ksize,stride,pad,cover_all", MAX_CASES)
def test_max_pooling_2d_backward(xp, xs, ksize, stride, pad, cover_all):
    x = _distinct(xp, *xs, seed=1)
    check_backward(lambda x: F.max_pooling_2d(x, ksize, stride, pad, cover_all), x)


def test_max_pooling_2d_output_sizes():
    x = numpy.zeros((1, 1, 24, 24), numpy.float32)
    assert F.max_pooling_2d(x, 2, stride=1).shape == (1, 1, 23, 23)
    assert F.max_pooling_2d(x[:, :, :23, :23], 2).shape == (1, 1, 12, 12)
    assert F.max_pooling_2d(x[:, :, :23, :23], 2, cover_all=False).shape == (1, 1, 11, 11)


@pytest.mark.parametrize("stride", [1, 2])
def test_max_pooling_2d_ties_send_gradient_to_first_maximum(xp, stride):
    x = xp.zeros((1, 1, 3, 3), dtype=numpy.float32)  # every window is a tie (as after a ReLU)
    v = Variable(x)
    y = F.max_pooling_2d(v, 2, stride=stride)
    y.grad = xp.ones(y.shape, dtype=numpy.float32)
    y.backward()
    expected = numpy.zeros((3, 3), numpy.float32)
    if stride == 1:
        expected[:2, :2] = 1  # each of the four windows routes to its own top-left cell
    else:  # cover_all windows: (0,0), (0,2), (2,0), (2,2); the partial ones start at their first real cell
        expected[0, 0] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1
    numpy.testing.assert_array_equal(backend.as_numpy(v.grad)[0, 0], expected)


def test_max_pooling_2d_stride_1_tie_goes_to_the_first_in_row_major_order(xp):
    """A maximum in row 0 and another in row 1 but further left: row 0's wins, as its offset comes first."""
    x = numpy.zeros((1, 1, 3, 3), numpy.float32)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 5.0
    v = Variable(xp.asarray(x))
    y = F.max_pooling_2d(v, 2, stride=1)
    y.grad = xp.ones(y.shape, dtype=numpy.float32)
    y.backward()
    g = backend.as_numpy(v.grad)[0, 0]
    assert g[0, 1] == 2 and g[1, 0] == 1  # windows (0,0) and (0,1) pick (0,1); window (1,0) picks (1,0)


def test_max_pooling_2d_stride_1_takes_a_strided_view(xp):
    base = _distinct(xp, 2, 6, 5, 3, seed=2)
    x = base.transpose(0, 3, 1, 2)  # (2, 3, 6, 5), not C-contiguous
    y = F.max_pooling_2d(x, 2, stride=1)
    ref = _ref_pool(backend.as_numpy(x), (2, 2), (1, 1), (0, 0), True, "max")
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-6)
    check_backward(lambda x: F.max_pooling_2d(x, 2, 1), xp.ascontiguousarray(x))


def test_max_pooling_2d_does_not_modify_input(xp):
    x = _distinct(xp, 1, 2, 4, 4)
    before = backend.as_numpy(x).copy()
    F.max_pooling_2d(x, 1, stride=1)
    F.max_pooling_2d(x, 2, stride=1)
    numpy.testing.assert_array_equal(backend.as_numpy(x), before)


AVG_CASES = [
    ((2, 3, 6, 6), 2, None, 0),
    ((2, 2, 7, 7), 3, 2, 1),  # padded zeros count in the average
    ((1, 2, 8, 9), (3, 2), (2, 3), (1, 0)),
    ((2, 3, 4, 4), 4, None, 0),  # global pooling of a ResNet head
    ((1, 2, 5, 5), 2, 1, 0),
]


@pytest.mark.parametrize("xs,ksize,stride,pad", AVG_CASES)
def test_average_pooling_2d_forward_matches_loops(xp, xs, ksize, stride, pad):
    x = _distinct(xp, *xs)
    y = F.average_pooling_2d(x, ksize, stride, pad)
    ks = _pair(ksize)
    ref = _ref_pool(backend.as_numpy(x), ks, ks if stride is None else _pair(stride), _pair(pad), False, "avg")
    assert y.shape == ref.shape
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("xs,ksize,stride,pad", AVG_CASES)
def test_average_pooling_2d_backward(xp, xs, ksize, stride, pad):
    x = _distinct(xp, *xs, seed=1)
    check_backward(lambda x: F.average_pooling_2d(x, ksize, stride, pad), x)


def test_global_average_pooling_2d(xp):
    x = _distinct(xp, 2, 3, 4, 5)
    y = F.global_average_pooling_2d(x)
    numpy.testing.assert_allclose(backend.as_numpy(y.array), backend.as_numpy(x).mean(axis=(2, 3)), rtol=1e-5)
    check_backward(F.global_average_pooling_2d, x)


@pytest.mark.parametrize("fn", [F.max_pooling_2d, F.average_pooling_2d])
def test_pooling_validates(fn):
    name = fn.__name__
    x = numpy.zeros((1, 2, 4, 4), numpy.float32)
    with pytest.raises(ValueError, match=rf"{name}: x must be 4-D \(N, C, H, W\), got shape \(2, 4, 4\)"):
        fn(x[0], 2)
    with pytest.raises(TypeError, match=f"{name}: x must be a float array, got dtype int64"):
        fn(numpy.zeros((1, 2, 4, 4), numpy.int64), 2)
    with pytest.raises(ValueError, match=f"{name}: ksize must be positive, got 0"):
        fn(x, 0)
    with pytest.raises(ValueError, match=r"stride must be positive, got \(1, 0\)"):
        fn(x, 2, (1, 0))
    with pytest.raises(ValueError, match="pad must be >= 0, got -1"):
        fn(x, 2, 1, -1)
    with pytest.raises(ValueError, match=f"{name}: output would be empty"):
        fn(x, 5, 1, 0)


def test_global_average_pooling_2d_validates():
    with pytest.raises(ValueError, match="global_average_pooling_2d: x must be 4-D"):
        F.global_average_pooling_2d(numpy.zeros((2, 3), numpy.float32))
