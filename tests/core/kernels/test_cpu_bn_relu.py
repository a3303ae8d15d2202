"""Batch normalisation with its ReLU fused (``batch_normalization(..., activation=relu)`` on the
compiled CPU kernels): the bits of ``relu(batch_normalization(...))`` forward and backward (NaN,
inf and signed zeros included), one function in the graph, the fallbacks, the link's argument, and
float64 gradient checks."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core import links as L
from benchbench.core.config import using_config
from benchbench.core.functions.activation import ReLU
from benchbench.core.functions.normalization import BatchNormalization
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import cpu_compiled

pytestmark = pytest.mark.skipif(cpu_compiled.numba_error() is not None, reason="needs numba")


def _inputs(shape, dtype=numpy.float32, inf=True):
    rng = numpy.random.default_rng(5)
    c = shape[1]
    x = (1.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    gamma[0], beta[0] = 0.0, -0.0  # channel 0: outputs of -0.0 and +0.0, which the ReLU makes +0.0
    gy = rng.standard_normal(shape).astype(dtype)
    if inf:  # where the ReLU's output is 0: 0 * inf is NaN (numpy's path would warn of it)
        gy.reshape(shape[0], c, -1)[0, 0, 0] = numpy.inf
    return x, gamma, beta, gy


def _run(fused, x, gamma, beta, gy, path="compiled"):
    c = x.shape[1]
    rm, rv = numpy.zeros(c, x.dtype), numpy.ones(c, x.dtype)
    xv, gv, bv = Variable(x.copy()), Variable(gamma.copy()), Variable(beta.copy())
    with cpu_compiled.using(path):
        if fused:
            y = F.batch_normalization(xv, gv, bv, running_mean=rm, running_var=rv, activation=F.relu)
        else:
            y = F.relu(F.batch_normalization(xv, gv, bv, running_mean=rm, running_var=rv))
        creator = y.creator
        y.grad = gy
        y.backward()
    return creator, [y.array, xv.grad, gv.grad, bv.grad, rm, rv]


def _same_bits(got, want):
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert numpy.array_equal(g, w, equal_nan=True) and numpy.array_equal(numpy.signbit(g), numpy.signbit(w))


@pytest.mark.parametrize("shape", [(5, 7, 3, 9), (33, 13), (2, 3, 1, 1)])
def test_fused_relu_gives_the_bits_of_relu_after_batch_normalization(shape):
    x, gamma, beta, gy = _inputs(shape)
    fused_fn, fused = _run(True, x, gamma, beta, gy)
    plain_fn, plain = _run(False, x, gamma, beta, gy)
    assert isinstance(fused_fn, BatchNormalization) and fused_fn.relu and fused_fn.label == "BatchNormalization+relu"
    assert isinstance(plain_fn, ReLU)
    _same_bits(fused, plain)
    assert not numpy.signbit(fused[0]).any() and (fused[0] >= 0).all()
    assert numpy.isnan(fused[1].reshape(shape[0], shape[1], -1)[0, 0]).any()  # the 0 * inf went through


def test_the_numpy_path_and_other_activations_are_not_fused():
    x, gamma, beta, gy = _inputs((4, 3, 2, 2), inf=False)
    creator, got = _run(True, x, gamma, beta, gy, path="numpy")
    assert isinstance(creator, ReLU)
    _same_bits(got, _run(False, x, gamma, beta, gy, path="numpy")[1])
    with cpu_compiled.using("compiled"):
        y = F.batch_normalization(Variable(x), Variable(gamma), Variable(beta), activation=F.sigmoid)
        assert y.creator.label != "BatchNormalization+relu" and (y.array > 0).all()
        with pytest.raises(TypeError, match="batch_normalization: activation must be None or a function"):
            F.batch_normalization(x, gamma, beta, activation="relu")


def test_a_gradient_the_kernel_does_not_take_goes_through_the_relu_first():
    x, gamma, beta, gy = _inputs((6, 4, 3, 5), inf=False)
    wide = numpy.zeros(gy.shape[:-1] + (2 * gy.shape[-1],), gy.dtype)
    wide[..., ::2] = gy
    strided = wide[..., ::2]  # the same values, not C-contiguous: the numpy backward takes it
    assert not strided.flags.c_contiguous
    fused = _run(True, x, gamma, beta, strided)[1]
    plain = _run(False, x, gamma, beta, strided)[1]
    _same_bits(fused, plain)


def test_the_link_fuses_in_training_and_applies_it_after_otherwise():
    x = _inputs((4, 3, 5, 5))[0]
    bn = L.BatchNormalization(3)
    with cpu_compiled.using("compiled"):
        y = bn(Variable(x), activation=F.relu)
        assert isinstance(y.creator, BatchNormalization) and y.creator.relu
        with using_config("train", False):
            y = bn(Variable(x), activation=F.relu)
            assert isinstance(y.creator, ReLU)
            numpy.testing.assert_array_equal(y.array, F.relu(bn(Variable(x))).array)


@pytest.mark.parametrize("shape", [(4, 3, 2, 5), (7, 3)])
def test_fused_relu_passes_float64_gradient_checks(shape, monkeypatch):
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    seen = []
    init = BatchNormalization.__init__
    monkeypatch.setattr(BatchNormalization, "__init__", lambda self, *a, **k: seen.append(k.get("relu")) or init(self, *a, **k))
    with cpu_compiled.using("compiled"):
        y = F.batch_normalization(x, gamma, beta).array
        keep = numpy.abs(y) > 0.05  # away from the ReLU's kink
        check_backward(lambda x, g, b: F.batch_normalization(x, g, b, activation=F.relu) * keep,
                       (x, gamma, beta), atol=1e-6, rtol=1e-5)
    assert True in seen
