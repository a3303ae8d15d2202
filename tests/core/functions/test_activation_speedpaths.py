"""sigmoid's exp-based fast path: extreme inputs, every float dtype, and the output-based backward."""
import warnings

import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward

pytestmark = pytest.mark.usefixtures("cpu_kernels")  # the compiled CPU kernels and the numpy path


def _ref(x):
    x = numpy.asarray(x, numpy.float64)
    with numpy.errstate(over="ignore"):
        return 1.0 / (1.0 + numpy.exp(-x))


@pytest.mark.parametrize("dtype", [numpy.float16, numpy.float32, numpy.float64])
def test_sigmoid_extremes_are_exact_limits_without_warnings(xp, dtype):
    a = numpy.array([-1e4, -200.0, -60.0, -1.0, 0.0, 1.0, 60.0, 200.0, 1e4, -numpy.inf, numpy.inf], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = backend.as_numpy(F.sigmoid(xp.asarray(a)).array)
    assert y.dtype == dtype
    numpy.testing.assert_array_equal(y[[0, 9]], 0)
    numpy.testing.assert_array_equal(y[[7, 8, 10]], 1)
    assert y[4] == 0.5
    # Relative accuracy wherever the true value is a normal number of the dtype.
    tol = 2e-3 if dtype == numpy.float16 else 1e-6
    numpy.testing.assert_allclose(y, _ref(a), rtol=tol, atol=numpy.finfo(dtype).tiny)


def test_sigmoid_propagates_nan(xp):
    y = backend.as_numpy(F.sigmoid(xp.asarray(numpy.array([numpy.nan, 1.0], numpy.float32))).array)
    assert numpy.isnan(y[0]) and numpy.isfinite(y[1])


def test_sigmoid_float32_relative_accuracy_over_the_whole_range(xp):
    a = numpy.linspace(-85, 20, 20001).astype(numpy.float32)
    y = backend.as_numpy(F.sigmoid(xp.asarray(a)).array)
    numpy.testing.assert_allclose(y, _ref(a), rtol=1e-6, atol=0)


def test_sigmoid_does_not_modify_its_input(xp):
    a = xp.asarray(numpy.linspace(-3, 3, 7).astype(numpy.float32))
    before = backend.as_numpy(a).copy()
    F.sigmoid(a)
    numpy.testing.assert_array_equal(backend.as_numpy(a), before)


def test_sigmoid_backward_matches_formula_and_saturates(xp):
    a = numpy.array([-1e4, -3.0, 0.0, 2.0, 1e4], numpy.float32)
    x = Variable(xp.asarray(a))
    y = F.sigmoid(x)
    gy = numpy.array([1.0, 2.0, -1.0, 0.5, 3.0], numpy.float32)
    y.grad = xp.asarray(gy)
    y.backward()
    s = _ref(a)
    g = backend.as_numpy(x.grad)
    assert g.dtype == numpy.float32 and numpy.isfinite(g).all()
    numpy.testing.assert_allclose(g, gy * s * (1 - s), rtol=1e-5, atol=1e-7)
    assert g[0] == 0 and g[4] == 0


@pytest.mark.parametrize("shape", [(1,), (4, 3, 5, 5)])
def test_sigmoid_gradient_in_float64(xp, shape):
    rng = numpy.random.default_rng(3)
    check_backward(F.sigmoid, xp.asarray(rng.standard_normal(shape) * 4))


@pytest.mark.parametrize("name", ["sigmoid", "relu"])
@pytest.mark.parametrize("threshold", [0, 1 << 40])
@pytest.mark.parametrize("cpu_kernels", ["numpy"], indirect=True)  # the numpy path's threaded pieces
def test_threaded_pieces_give_the_bits_of_one_pass(monkeypatch, name, threshold):
    """sigmoid and relu split over threads (every size, or never) match the one-pass formulas bit for bit,
    extremes and a NaN included; non-contiguous inputs take one pass."""
    from benchbench.core.kernels import buffers as _buffers

    monkeypatch.setattr(_buffers, "_PARALLEL_MIN_BYTES", threshold)
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((5, 7, 11)).astype(numpy.float32) * 30
    x.flat[[0, 3, 9]] = [numpy.inf, -numpy.inf, numpy.nan]
    gy = rng.standard_normal(x.shape).astype(numpy.float32)
    for arr in (x, x.transpose(2, 0, 1)):
        g = gy if arr is x else gy.transpose(2, 0, 1)
        v = Variable(arr.copy() if arr is x else arr)
        y = getattr(F, name)(v)
        y.grad = g
        y.backward()
        if name == "sigmoid":
            with numpy.errstate(over="ignore"):
                want = 1 / (numpy.exp(-arr) + 1)
            want_g = (1 - want) * want * g
        else:
            want = numpy.maximum(arr, 0)
            want_g = g * (want > 0)
        numpy.testing.assert_array_equal(y.array, want)
        numpy.testing.assert_array_equal(v.grad, want_g)
