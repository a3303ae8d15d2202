"""Tests of benchbench.core.functions.evaluation."""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F


def _np(a):
    return backend.as_numpy(a)


@pytest.mark.parametrize("n,c", [(1, 3), (7, 5), (33, 10)])
def test_accuracy_matches_numpy(xp, n, c):
    rng = numpy.random.default_rng(n)
    y = rng.standard_normal((n, c)).astype(numpy.float32)
    t = rng.integers(0, c, n).astype(numpy.int32)
    t[: n // 2] = y[: n // 2].argmax(1)  # some right, some not
    acc = F.accuracy(Variable(xp.asarray(y)), xp.asarray(t))
    assert isinstance(acc, Variable) and not acc.requires_grad
    assert acc.shape == () and acc.dtype == numpy.float32
    assert float(acc.array) == pytest.approx((y.argmax(1) == t).mean())


def test_accuracy_with_spatial_axes(xp):
    rng = numpy.random.default_rng(0)
    y = rng.standard_normal((3, 4, 5)).astype(numpy.float32)
    t = rng.integers(0, 4, (3, 5)).astype(numpy.int64)
    acc = F.accuracy(xp.asarray(y), xp.asarray(t))
    assert float(acc.array) == pytest.approx((y.argmax(1) == t).mean())


def test_accuracy_ignore_label(xp):
    y = numpy.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], numpy.float32)
    t = numpy.array([0, 0, -1, 1], numpy.int32)
    acc = F.accuracy(xp.asarray(y), xp.asarray(t), ignore_label=-1)
    assert float(acc.array) == pytest.approx(2 / 3)
    assert float(F.accuracy(xp.asarray(y), xp.asarray(t)).array) == pytest.approx(2 / 4)
    none = F.accuracy(xp.asarray(y), xp.full(4, -1, dtype=numpy.int32), ignore_label=-1)
    assert float(none.array) == 0.0


def test_accuracy_validation():
    y = numpy.zeros((4, 3), numpy.float32)
    with pytest.raises(ValueError, match=r"accuracy: t must have shape \(4,\) for y of shape \(4, 3\), got \(5,\)"):
        F.accuracy(y, numpy.zeros(5, numpy.int32))
    with pytest.raises(TypeError, match="accuracy: t must be an integer array, got dtype float32"):
        F.accuracy(y, numpy.zeros(4, numpy.float32))
    with pytest.raises(TypeError, match="accuracy: y must be a float array"):
        F.accuracy(y.astype(numpy.int32), numpy.zeros(4, numpy.int32))
    with pytest.raises(ValueError, match=r"accuracy: y must have a class axis"):
        F.accuracy(numpy.zeros(4, numpy.float32), numpy.zeros(4, numpy.int32))
