"""BatchNormalization link: training statistics, running averages, inference mode."""
import numpy
import pytest

from benchbench.core import links as L, using_config
from benchbench.core.gradient_check import check_backward


def test_params_and_persistents():
    bn = L.BatchNormalization(4)
    assert bn.gamma.shape == bn.beta.shape == (4,)
    numpy.testing.assert_array_equal(bn.avg_var, numpy.ones(4))
    assert [n for n, _ in bn.namedpersistents()] == ["/N", "/avg_mean", "/avg_var"]
    assert L.BatchNormalization(4, use_gamma=False).gamma is None


def test_training_normalises_with_batch_statistics_and_updates_running_mean():
    rng = numpy.random.default_rng(0)
    x = (rng.standard_normal((16, 3, 2, 2)) * 2 + 5).astype(numpy.float32)
    bn = L.BatchNormalization(3, decay=0.9)
    y = bn(x).array
    mean = x.mean(axis=(0, 2, 3))
    numpy.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    numpy.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-3)
    numpy.testing.assert_allclose(bn.avg_mean, 0.1 * mean, rtol=1e-4)
    assert bn.N == 1


def test_inference_uses_running_statistics():
    bn = L.BatchNormalization(2, eps=1e-5)
    bn.avg_mean[...] = [1.0, -1.0]
    bn.avg_var[...] = [4.0, 0.25]
    bn.gamma.array[...] = [2.0, 1.0]
    bn.beta.array[...] = [0.0, 3.0]
    x = numpy.array([[3.0, 0.0]], numpy.float32)
    with using_config("train", False):
        y = bn(x).array
    want = numpy.array([[2.0 * (3 - 1) / numpy.sqrt(4 + 1e-5), (0 + 1) / numpy.sqrt(0.25 + 1e-5) + 3]])
    numpy.testing.assert_allclose(y, want, rtol=1e-5)
    assert bn.N == 0


def test_backward_through_gamma_and_beta():
    bn = L.BatchNormalization(3)
    x = numpy.random.default_rng(1).standard_normal((5, 3))
    check_backward(bn, x, params=(bn.gamma, bn.beta), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": 3, "decay": 1.0}, {"size": 3, "eps": 0.0}])
def test_rejects_bad_args(kwargs):
    with pytest.raises(ValueError, match="BatchNormalization"):
        L.BatchNormalization(**kwargs)
