"""Tests of benchbench.core.functions.activation."""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward

pytestmark = pytest.mark.usefixtures("cpu_kernels")  # the compiled CPU kernels and the numpy path

SHAPES = [(7,), (3, 5), (2, 3, 4)]


def _away_from_zero(xp, shape, seed=0):
    rng = numpy.random.default_rng(seed)
    a = rng.uniform(0.1, 2.0, shape) * rng.choice([-1, 1], shape)
    return xp.asarray(a.astype(numpy.float32))


def _np(a):
    return backend.as_numpy(a)


def _softmax(x, axis):
    e = numpy.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ELEMENTWISE = [
    (F.relu, lambda x: numpy.maximum(x, 0)),
    (F.leaky_relu, lambda x: numpy.where(x >= 0, x, 0.2 * x)),
    (lambda x: F.leaky_relu(x, slope=0.05), lambda x: numpy.where(x >= 0, x, 0.05 * x)),
    (F.sigmoid, lambda x: 1 / (1 + numpy.exp(-x))),
    (F.tanh, numpy.tanh),
]


@pytest.mark.parametrize("fn,ref", ELEMENTWISE)
@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_forward_and_backward(xp, fn, ref, shape):
    a = _away_from_zero(xp, shape)
    y = fn(Variable(a))
    assert y.dtype == numpy.float32 and y.shape == shape
    numpy.testing.assert_allclose(_np(y.array), ref(_np(a).astype(numpy.float64)), rtol=1e-5, atol=1e-6)
    check_backward(fn, a)


def test_relu_gradient_is_zero_for_negatives(xp):
    x = Variable(xp.asarray(numpy.array([-1.0, 2.0, -3.0, 4.0], numpy.float32)))
    F.sum(F.relu(x)).backward()
    numpy.testing.assert_array_equal(_np(x.grad), [0, 1, 0, 1])


def test_sigmoid_is_stable_for_large_inputs(xp):
    a = xp.asarray(numpy.array([-1e4, -100.0, 0.0, 100.0, 1e4], numpy.float32))
    y = _np(F.sigmoid(a).array)
    assert numpy.isfinite(y).all()
    numpy.testing.assert_allclose(y, [0, 0, 0.5, 1, 1], atol=1e-7)


@pytest.mark.parametrize("fn,ref", [(F.softmax, _softmax),
                                    (F.log_softmax, lambda x, axis: numpy.log(_softmax(x, axis)))])
@pytest.mark.parametrize("shape,axis", [((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((7,), 0)])
def test_softmax_family(xp, fn, ref, shape, axis):
    a = _away_from_zero(xp, shape)
    y = fn(Variable(a), axis=axis)
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(_np(y.array), ref(_np(a).astype(numpy.float64), axis), rtol=1e-5, atol=1e-6)
    check_backward(lambda x: fn(x, axis=axis), a)


def test_softmax_rows_sum_to_one(xp):
    y = F.softmax(_away_from_zero(xp, (4, 9)))
    numpy.testing.assert_allclose(_np(y.array).sum(axis=1), numpy.ones(4), rtol=1e-6)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_family_is_stable_with_large_logits(xp, fn):
    a = numpy.array([[1e4, 0.0, -1e4], [1e4, 1e4 - 1, 5.0]], numpy.float32)
    y = _np(fn(xp.asarray(a)).array)
    assert numpy.isfinite(y).all()
    ref = _softmax(a.astype(numpy.float64), 1)
    if fn is F.log_softmax:
        ref = (a - a.max(1, keepdims=True)) - numpy.log(numpy.exp(a - a.max(1, keepdims=True)).sum(1, keepdims=True))
    numpy.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_float64_is_preserved(xp):
    a = xp.asarray(numpy.ones((2, 3)))
    for fn in (F.relu, F.sigmoid, F.tanh, F.softmax, F.log_softmax, F.leaky_relu):
        assert fn(a).dtype == numpy.float64


@pytest.mark.parametrize("fn", [F.relu, F.leaky_relu, F.sigmoid, F.tanh, F.softmax, F.log_softmax])
def test_integer_input_is_rejected(fn):
    name = fn.__name__
    with pytest.raises(TypeError, match=f"{name}: x must be a float array, got dtype int64"):
        fn(numpy.ones((2, 3), numpy.int64))
    with pytest.raises(TypeError, match=f"{name}: x must be a Variable or an array, got list"):
        fn([1.0, 2.0])


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_axis_out_of_range(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: axis 1 is out of range for x of shape \(3,\)"):
        fn(numpy.ones(3, numpy.float32))
    with pytest.raises(TypeError, match="axis must be an int"):
        fn(numpy.ones((2, 3), numpy.float32), axis=None)


def test_leaky_relu_slope_must_be_a_number():
    with pytest.raises(TypeError, match="leaky_relu: slope must be a number, got str"):
        F.leaky_relu(numpy.ones(3, numpy.float32), slope="0.1")
