"""Tests of benchbench.core.functions.array."""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward


def _rand(xp, shape, seed=0):
    return xp.asarray(numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32))


def _np(a):
    return backend.as_numpy(a)


@pytest.mark.parametrize("shape,new", [((2, 3), (3, 2)), ((2, 3, 5), (-1, 5)), ((7,), (7, 1)), ((2, 3), 6)])
def test_reshape(xp, shape, new):
    a = _rand(xp, shape)
    y = F.reshape(Variable(a), new)
    numpy.testing.assert_array_equal(_np(y.array), _np(a).reshape(new))
    check_backward(lambda x: F.reshape(x, new), a)


def test_variable_reshape_and_flatten(xp):
    a = _rand(xp, (2, 3, 5))
    assert Variable(a).reshape(6, 5).shape == (6, 5)
    y = F.flatten(Variable(a))
    numpy.testing.assert_array_equal(_np(y.array), _np(a).ravel())
    check_backward(F.flatten, a)


def test_reshape_size_mismatch():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape x of shape \(2, 3\) \(6 elements\) to \(4, 2\)"):
        F.reshape(numpy.ones((2, 3)), (4, 2))


@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1)])
def test_transpose(xp, axes):
    a = _rand(xp, (2, 3, 4))
    y = F.transpose(Variable(a), axes)
    numpy.testing.assert_array_equal(_np(y.array), _np(a).transpose(axes))
    check_backward(lambda x: F.transpose(x, axes), a)


def test_transpose_property_and_validation(xp):
    a = _rand(xp, (2, 3))
    numpy.testing.assert_array_equal(_np(Variable(a).T.array), _np(a).T)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) is not a permutation"):
        F.transpose(a, (0, 0))


def test_swapaxes_expand_dims_squeeze(xp):
    a = _rand(xp, (2, 1, 3))
    na = _np(a)
    numpy.testing.assert_array_equal(_np(F.swapaxes(a, 0, 2).array), na.swapaxes(0, 2))
    numpy.testing.assert_array_equal(_np(F.expand_dims(a, -1).array), numpy.expand_dims(na, -1))
    numpy.testing.assert_array_equal(_np(F.squeeze(a).array), na.squeeze())
    assert F.squeeze(_rand(xp, (1, 2, 1)), axis=0).shape == (2, 1)
    check_backward(lambda x: F.swapaxes(x, 0, 2), a)
    check_backward(lambda x: F.expand_dims(x, 1), a)
    check_backward(lambda x: F.squeeze(x, 1), a)
    with pytest.raises(ValueError, match=r"squeeze: axis 0 of x \(2, 1, 3\) has length 2"):
        F.squeeze(a, 0)
    with pytest.raises(ValueError, match="swapaxes: axis2 3 is out of range"):
        F.swapaxes(a, 0, 3)


KEYS = [
    (slice(1, 3),),
    (Ellipsis, 1),
    (slice(None), None, slice(None, None, -2)),
    (1, slice(0, 2)),
    (numpy.array([0, 2, 0]),),
    ([3, 1, 3, 3],),
    (slice(None), numpy.array([[0, 1], [4, 4]])),
    (numpy.array([True, False, True, True]),),
]


@pytest.mark.parametrize("key", KEYS)
def test_get_item(xp, key):
    a = _rand(xp, (4, 5))
    ref = _np(a)[tuple(numpy.asarray(k) if isinstance(k, list) else k for k in key)]
    k = key[0] if len(key) == 1 else key
    k = xp.asarray(k) if isinstance(k, numpy.ndarray) else k
    y = F.get_item(Variable(a), k)
    numpy.testing.assert_array_equal(_np(y.array), ref)
    check_backward(lambda x: F.get_item(x, k), a)


def test_get_item_repeated_indices_accumulate(xp):
    x = Variable(_rand(xp, (3, 2)))
    F.sum(x[[0, 0, 2, 0]]).backward()
    numpy.testing.assert_array_equal(_np(x.grad), [[3, 3], [0, 0], [1, 1]])


def test_get_item_errors():
    with pytest.raises(IndexError, match=r"get_item: index .* is invalid for x of shape \(2, 3\)"):
        F.get_item(numpy.ones((2, 3)), 5)
    with pytest.raises(TypeError, match="get_item: index arrays must be integer or boolean, got dtype float64"):
        F.get_item(numpy.ones((2, 3)), numpy.array([0.0]))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(xp, axis):
    shapes = [(2, 3), (2, 1), (2, 4)] if axis != 0 else [(2, 3), (1, 3), (3, 3)]
    arrays = [_rand(xp, s, seed=i) for i, s in enumerate(shapes)]
    y = F.concat([Variable(a) for a in arrays], axis=axis)
    numpy.testing.assert_array_equal(_np(y.array), numpy.concatenate([_np(a) for a in arrays], axis=axis))
    check_backward(lambda *xs: F.concat(xs, axis=axis), tuple(arrays))


def test_concat_validation():
    with pytest.raises(ValueError, match=r"concat: xs\[1\] has shape \(3, 3\)"):
        F.concat([numpy.ones((2, 3)), numpy.ones((3, 3))], axis=1)
    with pytest.raises(TypeError, match="concat: xs must be a list or tuple"):
        F.concat(numpy.ones((2, 3)))
    with pytest.raises(ValueError, match="concat: xs is empty"):
        F.concat([])


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(xp, axis):
    arrays = [_rand(xp, (2, 3), seed=i) for i in range(3)]
    y = F.stack(arrays, axis=axis)
    numpy.testing.assert_array_equal(_np(y.array), numpy.stack([_np(a) for a in arrays], axis=axis))
    check_backward(lambda *xs: F.stack(xs, axis=axis), tuple(arrays))
    with pytest.raises(ValueError, match=r"stack: xs\[1\] has shape \(3,\)"):
        F.stack([arrays[0], numpy.ones(3)])


@pytest.mark.parametrize("spec,axis", [(3, 1), ([1, 4], 1), ([2], 0), (1, 0)])
def test_split_axis(xp, spec, axis):
    a = _rand(xp, (3, 6))
    ys = F.split_axis(Variable(a), spec, axis)
    assert isinstance(ys, tuple)
    refs = numpy.split(_np(a), spec, axis=axis)
    assert len(ys) == len(refs)
    for y, r in zip(ys, refs):
        numpy.testing.assert_array_equal(_np(y.array), r)
    check_backward(lambda x: F.split_axis(x, spec, axis), a)


def test_split_axis_unused_output_gets_zero_gradient(xp):
    x = Variable(_rand(xp, (2, 4)))
    first, _ = F.split_axis(x, 2, 1)
    F.sum(first).backward()
    numpy.testing.assert_array_equal(_np(x.grad), [[1, 1, 0, 0], [1, 1, 0, 0]])


def test_split_axis_validation():
    message = r"split_axis: indices_or_sections=4 must be a positive divisor .* \(length 6\)"
    with pytest.raises(ValueError, match=message):
        F.split_axis(numpy.ones((2, 6)), 4, 1)
    assert isinstance(F.split_axis(numpy.ones((2, 6)), 1, 1, force_tuple=False), Variable)


@pytest.mark.parametrize("shape,target", [((3,), (2, 3)), ((2, 1), (2, 5)), ((1, 3, 1), (2, 3, 4)), ((), (2,))])
def test_broadcast_to(xp, shape, target):
    a = _rand(xp, shape)
    y = F.broadcast_to(Variable(a), target)
    numpy.testing.assert_array_equal(_np(y.array), numpy.broadcast_to(_np(a), target))
    check_backward(lambda x: F.broadcast_to(x, target), a)


def test_broadcast_to_validation():
    with pytest.raises(ValueError, match=r"broadcast_to: x of shape \(3,\) cannot be broadcast to \(4,\)"):
        F.broadcast_to(numpy.ones(3), (4,))


def test_where(xp):
    c = xp.asarray(numpy.array([[True, False, True]]))
    a, b = _rand(xp, (2, 3)), _rand(xp, (3,), seed=1)
    y = F.where(c, Variable(a), Variable(b))
    numpy.testing.assert_array_equal(_np(y.array), numpy.where(_np(c), _np(a), _np(b)))
    check_backward(lambda x0, x1: F.where(c, x0, x1), (a, b))
    with pytest.raises(TypeError, match="where: condition must be a boolean array"):
        F.where(xp.ones(3), a, b)
    with pytest.raises(ValueError, match="where: shapes of condition"):
        F.where(c, a, _rand(xp, (2,)))
