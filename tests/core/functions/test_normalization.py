import numpy
import pytest

from benchbench.core import backend
from benchbench.core import functions as F
from benchbench.core.config import no_backprop_mode
from benchbench.core.gradient_check import check_backward

pytestmark = pytest.mark.usefixtures("cpu_kernels")  # the compiled CPU kernels and the numpy path


def _rand(xp, *shape, seed=0, loc=0.0, scale=1.0):
    rng = numpy.random.default_rng(seed)
    return xp.asarray((loc + scale * rng.standard_normal(shape)).astype(numpy.float32))


def _ref_bn(x, gamma, beta, eps, axes):
    x = numpy.asarray(x, dtype=numpy.float64)
    keep = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    g = numpy.asarray(gamma, numpy.float64).reshape(keep)
    b = numpy.asarray(beta, numpy.float64).reshape(keep)
    return g * (x - mean) / numpy.sqrt(var + eps) + b


SHAPES = [((6, 4), (0,)), ((3, 4, 5, 2), (0, 2, 3))]


@pytest.mark.parametrize("shape,axes", SHAPES)
def test_batch_normalization_forward_matches_reference(xp, shape, axes):
    x = _rand(xp, *shape, loc=3.0, scale=2.0)
    gamma, beta = _rand(xp, shape[1], seed=1), _rand(xp, shape[1], seed=2)
    y = F.batch_normalization(x, gamma, beta)
    ref = _ref_bn(backend.as_numpy(x), backend.as_numpy(gamma), backend.as_numpy(beta), 2e-5, axes)
    assert y.shape == shape
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-4, atol=1e-4)


def test_batch_normalization_custom_axis(xp):
    x = _rand(xp, 3, 4, 5)
    gamma, beta = _rand(xp, 3, 4, seed=1), _rand(xp, 3, 4, seed=2)
    y = F.batch_normalization(x, gamma, beta, axis=2)
    ref = _ref_bn(backend.as_numpy(x), backend.as_numpy(gamma), backend.as_numpy(beta), 2e-5, (2,))
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,axes", SHAPES)
def test_batch_normalization_backward(xp, shape, axes):
    x = _rand(xp, *shape, loc=1.0, scale=2.0)
    gamma, beta = _rand(xp, shape[1], seed=1), _rand(xp, shape[1], seed=2)
    check_backward(F.batch_normalization, (x, gamma, beta), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("shape,axes", SHAPES)
def test_batch_normalization_updates_running_stats(xp, shape, axes):
    x = _rand(xp, *shape, loc=3.0, scale=2.0)
    c = shape[1]
    gamma, beta = xp.ones(c, numpy.float32), xp.zeros(c, numpy.float32)
    rm, rv = xp.full(c, 0.5, numpy.float32), xp.full(c, 2.0, numpy.float32)
    rm_id, rv_id = id(rm), id(rv)
    with no_backprop_mode():
        F.batch_normalization(x, gamma, beta, running_mean=rm, running_var=rv, decay=0.8)
    xn = backend.as_numpy(x).astype(numpy.float64)
    m = xn.size // c
    mean = xn.mean(axis=axes)
    unbiased = xn.var(axis=axes) * m / (m - 1)
    assert id(rm) == rm_id and id(rv) == rv_id
    numpy.testing.assert_allclose(backend.as_numpy(rm), 0.8 * 0.5 + 0.2 * mean, rtol=1e-5)
    numpy.testing.assert_allclose(backend.as_numpy(rv), 0.8 * 2.0 + 0.2 * unbiased, rtol=1e-5)


@pytest.mark.parametrize("shape,axes", SHAPES)
def test_train_output_equals_fixed_with_batch_statistics(xp, shape, axes):
    x = _rand(xp, *shape, loc=-1.0, scale=3.0)
    gamma, beta = _rand(xp, shape[1], seed=1), _rand(xp, shape[1], seed=2)
    y_train = F.batch_normalization(x, gamma, beta)
    xn = backend.as_numpy(x)
    mean = xp.asarray(xn.mean(axis=axes).astype(numpy.float32))
    var = xp.asarray(xn.var(axis=axes).astype(numpy.float32))
    y_fixed = F.fixed_batch_normalization(x, gamma, beta, mean, var)
    numpy.testing.assert_allclose(backend.as_numpy(y_train.array), backend.as_numpy(y_fixed.array),
                                  rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,axes", SHAPES)
def test_fixed_batch_normalization_forward_and_backward(xp, shape, axes):
    c = shape[1]
    x = _rand(xp, *shape)
    gamma, beta, mean = _rand(xp, c, seed=1), _rand(xp, c, seed=2), _rand(xp, c, seed=3)
    var = xp.asarray(numpy.linspace(0.5, 2.0, c).astype(numpy.float32))
    y = F.fixed_batch_normalization(x, gamma, beta, mean, var, eps=1e-3)
    keep = tuple(1 if i in axes else s for i, s in enumerate(shape))
    n = lambda a: backend.as_numpy(a).astype(numpy.float64).reshape(keep)  # noqa: E731
    ref = n(gamma) * (backend.as_numpy(x) - n(mean)) / numpy.sqrt(n(var) + 1e-3) + n(beta)
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-5, atol=1e-5)
    check_backward(lambda *a: F.fixed_batch_normalization(*a, eps=1e-3), (x, gamma, beta, mean, var),
                   atol=1e-4, rtol=1e-3)


def test_batch_normalization_validates():
    x = numpy.zeros((4, 3, 2, 2), numpy.float32)
    g = numpy.ones(3, numpy.float32)
    with pytest.raises(ValueError, match=r"batch_normalization: gamma must have shape \(3,\) to match x, got \(4,\)"):
        F.batch_normalization(x, numpy.ones(4, numpy.float32), g)
    with pytest.raises(TypeError, match="batch_normalization: x must be a float array, got dtype int64"):
        F.batch_normalization(x.astype(numpy.int64), g, g)
    with pytest.raises(ValueError, match="batch_normalization: x must have at least 2 axes"):
        F.batch_normalization(numpy.zeros(3, numpy.float32), g, g)
    with pytest.raises(ValueError, match="batch_normalization: axis must name distinct axes"):
        F.batch_normalization(x, g, g, axis=(0, 0))
    with pytest.raises(ValueError, match="batch_normalization: running_var must have shape"):
        F.batch_normalization(x, g, g, running_var=numpy.ones(2, numpy.float32))
    with pytest.raises(ValueError, match="fixed_batch_normalization: var must have shape"):
        F.fixed_batch_normalization(x, g, g, g, numpy.ones(2, numpy.float32))
