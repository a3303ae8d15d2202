"""Tests of benchbench.core.functions.noise."""
import numpy
import pytest

from benchbench.core import Variable, backend, seed, using_config
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward


def _np(a):
    return backend.as_numpy(a)


def test_dropout_is_identity_in_evaluation(xp):
    a = xp.asarray(numpy.random.default_rng(0).standard_normal((4, 5)).astype(numpy.float32))
    with using_config("train", False):
        y = F.dropout(Variable(a), 0.5)
    numpy.testing.assert_array_equal(_np(y.array), _np(a))


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.8])
def test_dropout_drops_and_scales(xp, ratio):
    a = xp.ones((200, 50), dtype=numpy.float32)
    y = _np(F.dropout(a, ratio).array)
    assert y.dtype == numpy.float32
    kept = y != 0
    numpy.testing.assert_allclose(y[kept], 1 / (1 - ratio), rtol=1e-6)
    assert abs((~kept).mean() - ratio) < 0.02  # 10,000 draws: the standard error is < 0.005


def test_dropout_ratio_zero_keeps_everything(xp):
    a = xp.asarray(numpy.arange(1, 7, dtype=numpy.float32))
    numpy.testing.assert_array_equal(_np(F.dropout(a, 0.0).array), _np(a))


def test_dropout_seed_fixes_the_mask(xp):
    a = xp.ones((8, 9), dtype=numpy.float32)
    seed(3)
    first = _np(F.dropout(a).array)
    second = _np(F.dropout(a).array)
    seed(3)
    again = _np(F.dropout(a).array)
    numpy.testing.assert_array_equal(first, again)
    assert not numpy.array_equal(first, second)


def test_dropout_backward_uses_the_forward_mask(xp):
    x = Variable(xp.asarray(numpy.random.default_rng(1).standard_normal((6, 7)).astype(numpy.float32)))
    y, mask = F.dropout(x, 0.4, return_mask=True)
    F.sum(y).backward()
    numpy.testing.assert_array_equal(_np(x.grad), _np(mask))
    numpy.testing.assert_array_equal(_np(y.array), _np(x.array) * _np(mask))


def test_dropout_check_backward_with_given_mask(xp):
    rng = numpy.random.default_rng(2)
    a = xp.asarray(rng.standard_normal((3, 4)))
    mask = xp.asarray((rng.random((3, 4)) >= 0.5) * 2.0)
    check_backward(lambda v: F.dropout(v, 0.5, mask=mask), a)


def test_dropout_float64_is_preserved(xp):
    assert F.dropout(xp.ones((3, 3)), 0.3).dtype == numpy.float64


def test_dropout_validation():
    x = numpy.ones((2, 3), numpy.float32)
    with pytest.raises(ValueError, match=r"dropout: ratio must be in \[0, 1\), got 1.0"):
        F.dropout(x, 1.0)
    with pytest.raises(ValueError, match=r"dropout: ratio must be in \[0, 1\), got -0.1"):
        F.dropout(x, -0.1)
    with pytest.raises(TypeError, match="dropout: ratio must be a number, got str"):
        F.dropout(x, "0.5")
    with pytest.raises(TypeError, match="dropout: x must be a float array, got dtype int64"):
        F.dropout(numpy.ones(3, numpy.int64))
    with pytest.raises(ValueError, match=r"dropout: mask must have x's shape \(2, 3\), got \(3,\)"):
        F.dropout(x, mask=numpy.ones(3, numpy.float32))
