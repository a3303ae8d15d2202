"""Tests of benchbench.core.functions.math: forward against numpy, backward numerically."""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward

BINARY = [
    ("add", F.add, numpy.add),
    ("sub", F.sub, numpy.subtract),
    ("mul", F.mul, numpy.multiply),
    ("div", F.div, numpy.divide),
]
SHAPE_PAIRS = [((3,), (3,)), ((2, 5), (2, 5)), ((3, 4), (4,)), ((2, 1, 5), (3, 1)), ((1,), (2, 3))]


def _rand(xp, shape, low=0.5, high=1.5, dtype=numpy.float32, rng=None):
    rng = rng or numpy.random.default_rng(1)
    a = rng.uniform(low, high, shape) * rng.choice([-1, 1], shape)
    return xp.asarray(a.astype(dtype))


def _np(a):
    return backend.as_numpy(a)


@pytest.mark.parametrize("name,fn,ref", BINARY)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
def test_binary_forward_matches_numpy(xp, name, fn, ref, shapes):
    a, b = _rand(xp, shapes[0]), _rand(xp, shapes[1])
    y = fn(Variable(a), Variable(b))
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(_np(y.array), ref(_np(a), _np(b)), rtol=1e-6)


@pytest.mark.parametrize("name,fn,ref", BINARY)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
def test_binary_backward_sums_gradients_to_each_shape(xp, name, fn, ref, shapes):
    a, b = _rand(xp, shapes[0]), _rand(xp, shapes[1])
    check_backward(fn, (a, b))


@pytest.mark.parametrize("name,fn,ref", BINARY)
def test_binary_with_scalar_on_either_side(xp, name, fn, ref):
    a = _rand(xp, (2, 3))
    for c in (2, 0.5, numpy.float64(1.5), numpy.int32(3)):
        y = fn(Variable(a), c)
        assert y.dtype == numpy.float32
        numpy.testing.assert_allclose(_np(y.array), ref(_np(a), float(c)), rtol=1e-6)
        z = fn(c, Variable(a))
        assert z.dtype == numpy.float32
        numpy.testing.assert_allclose(_np(z.array), ref(float(c), _np(a)), rtol=1e-6)
    check_backward(lambda x: fn(x, 1.7), a)
    check_backward(lambda x: fn(-0.8, x), a)


@pytest.mark.parametrize("name,fn,ref", BINARY)
def test_binary_with_raw_array_operand_gets_no_gradient(xp, name, fn, ref):
    a, b = _rand(xp, (2, 3)), _rand(xp, (3,))
    x = Variable(a)
    y = F.sum(fn(x, b))
    y.backward()
    assert x.grad.shape == a.shape
    z = F.sum(fn(b, x))
    x.cleargrad()
    z.backward()
    assert x.grad.shape == a.shape


def test_operators_use_math_functions(xp):
    a, b = _rand(xp, (3,)), _rand(xp, (3,))
    x, y = Variable(a), Variable(b)
    na, nb = _np(a), _np(b)
    numpy.testing.assert_allclose(_np((x + y).array), na + nb, rtol=1e-6)
    numpy.testing.assert_allclose(_np((1 - x).array), 1 - na, rtol=1e-6)
    numpy.testing.assert_allclose(_np((2 / x).array), 2 / na, rtol=1e-6)
    numpy.testing.assert_allclose(_np((x ** 2).array), na ** 2, rtol=1e-6)
    numpy.testing.assert_allclose(_np((-x).array), -na, rtol=1e-6)


def test_value_used_twice_accumulates(xp):
    a = _rand(xp, (4,), dtype=numpy.float64)
    x = Variable(a)
    y = F.sum(x * x + x)
    y.backward()
    numpy.testing.assert_allclose(_np(x.grad), 2 * _np(a) + 1, rtol=1e-12)
    check_backward(lambda v: v * v + v / v * 3 - v, a)


def test_gradients_of_an_add_reach_both_inputs(xp):
    a, b = _rand(xp, (2, 3)), _rand(xp, (2, 3))
    x, y = Variable(a), Variable(b)
    F.sum(x + y).backward()
    numpy.testing.assert_array_equal(_np(x.grad), numpy.ones((2, 3)))
    numpy.testing.assert_array_equal(_np(y.grad), numpy.ones((2, 3)))


UNARY = [
    (F.neg, numpy.negative, -2.0, 2.0),
    (F.exp, numpy.exp, -2.0, 2.0),
    (F.log, numpy.log, 0.2, 3.0),
    (F.sqrt, numpy.sqrt, 0.2, 3.0),
    (F.square, numpy.square, -2.0, 2.0),
    (F.absolute, numpy.abs, -2.0, 2.0),
]


@pytest.mark.parametrize("fn,ref,low,high", UNARY)
@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 1, 3)])
def test_unary_forward_and_backward(xp, fn, ref, low, high, shape):
    rng = numpy.random.default_rng(3)
    a = rng.uniform(low, high, shape)
    if fn is F.absolute:
        a[numpy.abs(a) < 0.1] = 0.5  # keep away from the kink
    a = xp.asarray(a.astype(numpy.float32))
    y = fn(Variable(a))
    assert y.dtype == numpy.float32 and y.shape == shape
    numpy.testing.assert_allclose(_np(y.array), ref(_np(a)), rtol=1e-6)
    check_backward(fn, a)


@pytest.mark.parametrize("p", [2, 3, 0.5, -1.5])
def test_pow_scalar(xp, p):
    a = xp.asarray(numpy.random.default_rng(0).uniform(0.3, 2.0, (3, 4)).astype(numpy.float32))
    y = F.pow(Variable(a), p)
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(_np(y.array), _np(a) ** p, rtol=1e-5)
    check_backward(lambda x: F.pow(x, p), a)


def test_pow_variable_exponent(xp):
    a = xp.asarray(numpy.random.default_rng(0).uniform(0.3, 2.0, (3, 4)))
    p = xp.asarray(numpy.random.default_rng(1).uniform(-1, 2, (4,)))
    numpy.testing.assert_allclose(_np(F.pow(Variable(a), Variable(p)).array), _np(a) ** _np(p))
    check_backward(F.pow, (a, p))


@pytest.mark.parametrize("fn,ref", [(F.maximum, numpy.maximum), (F.minimum, numpy.minimum)])
@pytest.mark.parametrize("shapes", [((4,), (4,)), ((3, 4), (4,)), ((2, 1), (1, 3))])
def test_maximum_minimum(xp, fn, ref, shapes):
    a, b = _rand(xp, shapes[0]), _rand(xp, shapes[1], rng=numpy.random.default_rng(7))
    numpy.testing.assert_array_equal(_np(fn(Variable(a), Variable(b)).array), ref(_np(a), _np(b)))
    check_backward(fn, (a, b))


@pytest.mark.parametrize("transa", [False, True])
@pytest.mark.parametrize("transb", [False, True])
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)),
                                    ((2, 1, 3, 4), (3, 4, 2))])
def test_matmul(xp, transa, transb, shapes):
    sa, sb = shapes
    rng = numpy.random.default_rng(5)
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    if transa:
        a = a.swapaxes(-1, -2).copy()
    if transb:
        b = b.swapaxes(-1, -2).copy()
    a32, b32 = xp.asarray(a.astype(numpy.float32)), xp.asarray(b.astype(numpy.float32))
    y = F.matmul(Variable(a32), Variable(b32), transa=transa, transb=transb)
    ea = a.swapaxes(-1, -2) if transa else a
    eb = b.swapaxes(-1, -2) if transb else b
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(_np(y.array), numpy.matmul(ea, eb), rtol=1e-4, atol=1e-5)
    check_backward(lambda x, w: F.matmul(x, w, transa, transb), (xp.asarray(a), xp.asarray(b)))


def test_matmul_operator(xp):
    a, b = _rand(xp, (2, 3)), _rand(xp, (3, 2))
    numpy.testing.assert_allclose(_np((Variable(a) @ Variable(b)).array), _np(a) @ _np(b), rtol=1e-6)


@pytest.mark.parametrize("fn,ref", [(F.sum, numpy.sum), (F.mean, numpy.mean)])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_mean(xp, fn, ref, axis, keepdims):
    a = _rand(xp, (3, 5, 2))
    y = fn(Variable(a), axis=axis, keepdims=keepdims)
    expected = ref(_np(a), axis=axis, keepdims=keepdims)
    assert y.dtype == numpy.float32
    assert y.shape == expected.shape
    numpy.testing.assert_allclose(_np(y.array), expected, rtol=1e-5)
    check_backward(lambda x: fn(x, axis=axis, keepdims=keepdims), a)


def test_sum_gradient_is_a_writable_array(xp):
    x = Variable(_rand(xp, (3, 4)))
    F.sum(x).backward()
    x.grad += 1  # optimizers and all-reduces write into gradients
    numpy.testing.assert_array_equal(_np(x.grad), numpy.full((3, 4), 2.0))


def test_binary_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        F.add(Variable(numpy.ones((2, 3), numpy.float32)), numpy.ones(4, numpy.float32))
    with pytest.raises(ValueError, match="mul"):
        Variable(numpy.ones(3)) * Variable(numpy.ones(2))


def test_bad_operand_types():
    x = Variable(numpy.ones(3, numpy.float32))
    with pytest.raises(TypeError, match="add: operands .* got str"):
        F.add(x, "a")
    with pytest.raises(TypeError, match="mul: at least one operand"):
        F.mul(2, 3)
    with pytest.raises(TypeError, match="pow: operands .* got list"):
        F.pow(x, [2])
    with pytest.raises(TypeError, match="exp: x must be"):
        F.exp(1.0)


def test_matmul_validation():
    a = Variable(numpy.ones((2, 3), numpy.float32))
    with pytest.raises(ValueError, match=r"matmul: b must have at least 2 dimensions, got shape \(3,\)"):
        F.matmul(a, numpy.ones(3, numpy.float32))
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ"):
        F.matmul(a, numpy.ones((2, 3), numpy.float32))
    with pytest.raises(ValueError, match="matmul: batch dimensions"):
        F.matmul(numpy.ones((2, 2, 3)), numpy.ones((3, 3, 2)))
    with pytest.raises(TypeError, match="matmul: a must be"):
        F.matmul("a", a)


def test_reduction_axis_validation():
    x = Variable(numpy.ones((2, 3), numpy.float32))
    with pytest.raises(ValueError, match="sum: axis 2 is out of range"):
        F.sum(x, axis=2)
    with pytest.raises(ValueError, match="mean: axis .* repeats"):
        F.mean(x, axis=(1, -1))
    with pytest.raises(TypeError, match="sum: axis must be"):
        F.sum(x, axis=1.0)


def test_mixed_dtypes_give_each_input_a_gradient_of_its_own_dtype(xp):
    x = Variable(_rand(xp, (2, 3)))
    w = Variable(_rand(xp, (3,), dtype=numpy.float64))
    y = F.sum(x * w + x / w - w)
    assert y.dtype == numpy.float64
    y.backward()
    assert x.grad.dtype == numpy.float32 and w.grad.dtype == numpy.float64
    nx, nw = _np(x.array).astype(numpy.float64), _np(w.array)
    numpy.testing.assert_allclose(_np(x.grad), numpy.broadcast_to(nw + 1 / nw, (2, 3)), rtol=1e-6)
    numpy.testing.assert_allclose(_np(w.grad), (nx - nx / nw ** 2).sum(0) - 2, rtol=1e-6)
