"""Tests of benchbench.core.functions.loss."""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward

pytestmark = pytest.mark.usefixtures("cpu_kernels")  # the compiled CPU kernels and the numpy path


def _np(a):
    return backend.as_numpy(a)


def _data(xp, n, c, seed=0, ignore=()):
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((n, c)).astype(numpy.float32)
    t = rng.integers(0, c, n).astype(numpy.int32)
    t[list(ignore)] = -1
    return xp.asarray(x), xp.asarray(t)


def _sce_reference(x, t, ignore_label=-1, normalize=True, class_weight=None, reduce="mean"):
    x = x.astype(numpy.float64)
    logp = x - x.max(1, keepdims=True)
    logp -= numpy.log(numpy.exp(logp).sum(1, keepdims=True))
    losses = numpy.zeros(len(t))
    for i, label in enumerate(t):
        if label != ignore_label:
            w = 1.0 if class_weight is None else class_weight[label]
            losses[i] = -w * logp[i, label]
    if reduce == "no":
        return losses
    count = int((t != ignore_label).sum()) if normalize else len(t)
    return losses.sum() / max(count, 1)


@pytest.mark.parametrize("n,c", [(1, 2), (5, 3), (7, 10), (32, 11)])
def test_softmax_cross_entropy_forward(xp, n, c):
    x, t = _data(xp, n, c)
    loss = F.softmax_cross_entropy(Variable(x), t)
    assert loss.shape == () and loss.dtype == numpy.float32
    numpy.testing.assert_allclose(float(loss.array), _sce_reference(_np(x), _np(t)), rtol=1e-5)


@pytest.mark.parametrize("n,c", [(1, 2), (5, 3), (6, 4)])
def test_softmax_cross_entropy_backward(xp, n, c):
    x, t = _data(xp, n, c)
    check_backward(lambda v: F.softmax_cross_entropy(v, t), x)
    check_backward(lambda v: F.softmax_cross_entropy(v, t, reduce="no"), x)


def test_softmax_cross_entropy_gradient_is_softmax_minus_onehot_over_n(xp):
    x, t = _data(xp, 5, 4)
    v = Variable(x)
    F.softmax_cross_entropy(v, t).backward()
    nx, nt = _np(x).astype(numpy.float64), _np(t)
    p = numpy.exp(nx) / numpy.exp(nx).sum(1, keepdims=True)
    p[numpy.arange(5), nt] -= 1
    numpy.testing.assert_allclose(_np(v.grad), p / 5, rtol=1e-5, atol=1e-7)
    assert v.grad.dtype == numpy.float32


def test_softmax_cross_entropy_ignore_label(xp):
    x, t = _data(xp, 7, 5, ignore=(1, 4))
    loss = F.softmax_cross_entropy(x, t)
    numpy.testing.assert_allclose(float(loss.array), _sce_reference(_np(x), _np(t)), rtol=1e-5)
    per = F.softmax_cross_entropy(x, t, reduce="no")
    numpy.testing.assert_allclose(_np(per.array), _sce_reference(_np(x), _np(t), reduce="no"), rtol=1e-5)
    assert _np(per.array)[1] == 0 and _np(per.array)[4] == 0
    v = Variable(x)
    F.softmax_cross_entropy(v, t).backward()
    numpy.testing.assert_array_equal(_np(v.grad)[[1, 4]], 0)
    check_backward(lambda a: F.softmax_cross_entropy(a, t), x)
    t7 = xp.asarray(numpy.where(_np(t) == -1, 7, _np(t)).astype(numpy.int32))
    numpy.testing.assert_allclose(float(F.softmax_cross_entropy(x, t7, ignore_label=7).array),
                                  float(loss.array), rtol=1e-6)


def test_softmax_cross_entropy_all_ignored_is_zero(xp):
    x, _ = _data(xp, 3, 4)
    t = xp.full(3, -1, dtype=numpy.int32)
    v = Variable(x)
    loss = F.softmax_cross_entropy(v, t)
    assert float(loss.array) == 0.0
    loss.backward()
    numpy.testing.assert_array_equal(_np(v.grad), 0)


def test_softmax_cross_entropy_normalize_false_and_class_weight(xp):
    x, t = _data(xp, 6, 3, ignore=(2,))
    y = F.softmax_cross_entropy(x, t, normalize=False)
    numpy.testing.assert_allclose(float(y.array), _sce_reference(_np(x), _np(t), normalize=False), rtol=1e-5)
    w = numpy.array([0.5, 2.0, 1.5], numpy.float32)
    y = F.softmax_cross_entropy(x, t, class_weight=xp.asarray(w))
    numpy.testing.assert_allclose(float(y.array), _sce_reference(_np(x), _np(t), class_weight=w), rtol=1e-5)
    check_backward(lambda a: F.softmax_cross_entropy(a, t, class_weight=xp.asarray(w)), x)


def test_softmax_cross_entropy_is_stable_with_large_logits(xp):
    x = numpy.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4], [0.0, 0.0, 1e4]], numpy.float32)
    t = numpy.array([0, 2, 0], numpy.int64)
    v = Variable(xp.asarray(x))
    loss = F.softmax_cross_entropy(v, xp.asarray(t))
    # Sample 0 is right and certain (0), sample 1 splits between two classes (log 2), sample 2 is off by 1e4.
    numpy.testing.assert_allclose(float(loss.array), (0 + numpy.log(2) + 1e4) / 3, rtol=1e-6)
    loss.backward()
    g = _np(v.grad)
    assert numpy.isfinite(g).all()
    numpy.testing.assert_allclose(g, numpy.array([[0, 0, 0], [0, 0.5, -0.5], [-1, 0, 1]]) / 3, atol=1e-6)


def test_softmax_cross_entropy_float64(xp):
    x, t = _data(xp, 4, 3)
    assert F.softmax_cross_entropy(x.astype(numpy.float64), t).dtype == numpy.float64


def test_softmax_cross_entropy_validation():
    x = numpy.zeros((32, 10), numpy.float32)
    t = numpy.zeros(32, numpy.int32)
    name = "softmax_cross_entropy"
    with pytest.raises(TypeError, match=f"{name}: x must be a float array, got dtype int32"):
        F.softmax_cross_entropy(x.astype(numpy.int32), t)
    with pytest.raises(TypeError, match=rf"{name}: t must be an integer array \(int32 or int64\), got dtype float32"):
        F.softmax_cross_entropy(x, t.astype(numpy.float32))
    with pytest.raises(ValueError, match=rf"{name}: t must have shape \(N,\)=\(32,\), got \(31,\)"):
        F.softmax_cross_entropy(x, t[:31])
    with pytest.raises(ValueError, match=rf"{name}: x must be 2-D \(N, C\), got shape \(32, 10, 1\)"):
        F.softmax_cross_entropy(x[:, :, None], t)
    with pytest.raises(ValueError, match=rf"{name}: labels in t must lie in \[0, 10\).*got 10"):
        F.softmax_cross_entropy(x, numpy.full(32, 10, numpy.int32))
    with pytest.raises(ValueError, match=f"{name}: reduce must be 'mean' or 'no', got 'sum'"):
        F.softmax_cross_entropy(x, t, reduce="sum")
    with pytest.raises(ValueError, match=rf"{name}: class_weight must be an array of shape \(C,\)=\(10,\)"):
        F.softmax_cross_entropy(x, t, class_weight=numpy.ones(3, numpy.float32))


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 5)])
def test_mean_squared_error(xp, shape):
    rng = numpy.random.default_rng(0)
    a = xp.asarray(rng.standard_normal(shape).astype(numpy.float32))
    b = xp.asarray(rng.standard_normal(shape).astype(numpy.float32))
    y = F.mean_squared_error(Variable(a), Variable(b))
    assert y.shape == () and y.dtype == numpy.float32
    numpy.testing.assert_allclose(float(y.array), ((_np(a) - _np(b)) ** 2).mean(), rtol=1e-5)
    check_backward(F.mean_squared_error, (a, b))


def test_mean_squared_error_validation():
    with pytest.raises(ValueError, match=r"mean_squared_error: x0 and x1 must have one shape, got \(3,\) and \(4,\)"):
        F.mean_squared_error(numpy.ones(3), numpy.ones(4))
    with pytest.raises(TypeError, match="mean_squared_error: x0 and x1 must have one dtype"):
        F.mean_squared_error(numpy.ones(3), numpy.ones(3, numpy.float32))
    with pytest.raises(TypeError, match="mean_squared_error: x1 must be a float array, got dtype int64"):
        F.mean_squared_error(numpy.ones(3), numpy.ones(3, numpy.int64))


def _bce_reference(x, t, normalize=True, reduce="mean"):
    x = x.astype(numpy.float64)
    p = 1 / (1 + numpy.exp(-x))
    loss = -(t * numpy.log(p) + (1 - t) * numpy.log(1 - p)) * (t != -1)
    if reduce == "no":
        return loss
    return loss.sum() / (max((t != -1).sum(), 1) if normalize else len(t))


@pytest.mark.parametrize("normalize", [True, False])
def test_sigmoid_cross_entropy(xp, normalize):
    rng = numpy.random.default_rng(0)
    x = xp.asarray(rng.standard_normal((5, 3)).astype(numpy.float32))
    tn = rng.integers(0, 2, (5, 3)).astype(numpy.int32)
    tn[1, 2] = -1
    t = xp.asarray(tn)
    y = F.sigmoid_cross_entropy(Variable(x), t, normalize=normalize)
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(float(y.array), _bce_reference(_np(x), tn, normalize), rtol=1e-5)
    per = F.sigmoid_cross_entropy(x, t, reduce="no")
    numpy.testing.assert_allclose(_np(per.array), _bce_reference(_np(x), tn, reduce="no"), rtol=1e-5, atol=1e-7)
    check_backward(lambda v: F.sigmoid_cross_entropy(v, t, normalize=normalize), x)
    check_backward(lambda v: F.sigmoid_cross_entropy(v, t, reduce="no"), x)


def test_sigmoid_cross_entropy_stable_and_validated(xp):
    x = xp.asarray(numpy.array([[1e4, -1e4]], numpy.float32))
    y = F.sigmoid_cross_entropy(x, xp.asarray(numpy.array([[1, 0]], numpy.int32)))
    assert float(y.array) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"sigmoid_cross_entropy: t must have x's shape \(1, 2\), got \(2,\)"):
        F.sigmoid_cross_entropy(x, xp.asarray(numpy.array([1, 0], numpy.int32)))
    with pytest.raises(TypeError, match="sigmoid_cross_entropy: t must be an integer array"):
        F.sigmoid_cross_entropy(x, x)
