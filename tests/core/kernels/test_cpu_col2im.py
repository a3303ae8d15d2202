"""The compiled col2im kernels (``cpu_col2im``) against the numpy path: the input gradient of an
im2col convolution bit for bit in float32 (stride 1 through the wide col2im, strides and dilations
through the general one, odd sizes, rectangles, chunked samples), and float64 gradients."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core.config import using_config
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import cpu_compiled

pytestmark = pytest.mark.skipif(not cpu_compiled.active() and cpu_compiled.numba_error() is not None,
                                reason="numba did not import")


@pytest.fixture
def calls(monkeypatch):
    from benchbench.core.kernels import cpu_col2im

    counts = {}
    for name in ("wide_col2im", "col2im"):
        def spy(*a, _fn=getattr(cpu_col2im, name), _name=name):
            counts[_name] = counts.get(_name, 0) + 1
            return _fn(*a)
        monkeypatch.setattr(cpu_col2im, name, spy)
    return counts


def _input_grad(path, x, W, stride, pad, dilate):
    xv = Variable(x, requires_grad=True)
    with cpu_compiled.using(path), using_config("conv_algorithm", "im2col"):
        y = F.convolution_2d(xv, Variable(W), None, stride=stride, pad=pad, dilate=dilate)
        y.grad = numpy.random.default_rng(3).standard_normal(y.shape).astype(x.dtype)
        y.backward()
    return xv.grad


# (n, c, o, h, w, k, stride, pad, dilate, kernel)
CASES = [
    (3, 5, 7, 9, 11, 3, 1, 1, 1, "wide_col2im"),          # o*h*w > c*oh*ow: GEMM + wide adds
    (2, 4, 6, 10, 9, (5, 3), 1, (2, 0), 1, "wide_col2im"),  # rectangular kernel and padding
    (3, 5, 7, 9, 11, 3, 2, 1, 1, "col2im"),               # stride 2
    (2, 3, 4, 9, 7, 3, (2, 1), (0, 1), 1, "col2im"),      # mixed strides
    (2, 3, 5, 11, 10, 3, 1, 2, 2, "col2im"),              # dilation
]


@pytest.mark.parametrize("case", CASES)
def test_compiled_col2im_matches_numpy_bit_for_bit(case, calls):
    n, c, o, h, w, k, stride, pad, dilate, name = case
    k = k if isinstance(k, tuple) else (k, k)
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((n, c, h, w)).astype(numpy.float32)
    W = rng.standard_normal((o, c) + k).astype(numpy.float32)
    want = _input_grad("numpy", x, W, stride, pad, dilate)
    assert not calls
    got = _input_grad("compiled", x, W, stride, pad, dilate)
    assert calls.get(name) == 1
    numpy.testing.assert_array_equal(got, want)


def test_chunked_samples_fill_every_plane(monkeypatch, calls):
    """Samples in several chunks: each call fills only its own planes, the rest stay as computed."""
    from benchbench.core.kernels import im2col

    monkeypatch.setattr(im2col, "sample_chunks", lambda xp, n, per: [(i, i + 1) for i in range(n)])
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((3, 5, 8, 7)).astype(numpy.float32)
    W = rng.standard_normal((7, 5, 3, 3)).astype(numpy.float32)
    want = _input_grad("numpy", x, W, 1, 1, 1)
    got = _input_grad("compiled", x, W, 1, 1, 1)
    assert calls.get("wide_col2im") == 3
    numpy.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("stride", [1, 2])
def test_float64_gradient_through_compiled_col2im(stride, calls):
    rng = numpy.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    W = rng.standard_normal((5, 3, 3, 3))
    gy_shape = F.convolution_2d(Variable(x), Variable(W), None, stride=stride, pad=1).shape
    gy = rng.standard_normal(gy_shape)
    with cpu_compiled.using("compiled"), using_config("conv_algorithm", "im2col"):
        check_backward(lambda a, b: F.convolution_2d(a, b, None, stride=stride, pad=1), (x, W), gy,
                       atol=1e-6, rtol=1e-5)
    assert calls
