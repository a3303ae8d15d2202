"""Compiled softmax cross-entropy against the numpy path (float32, odd sizes, ignored labels) and a
float64 gradient check on the compiled kernels."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import cpu_compiled

pytestmark = pytest.mark.skipif(not cpu_compiled.active(), reason="compiled kernels are off")


def _sce(path, n, k, normalize, dtype=numpy.float32):
    rng = numpy.random.default_rng(7)
    x = (4 * rng.standard_normal((n, k))).astype(dtype)
    t = rng.integers(0, k, n).astype(numpy.int32)
    t[::3] = -1  # ignored
    xv = Variable(x)
    with cpu_compiled.using(path):
        loss = F.softmax_cross_entropy(xv, t, normalize=normalize)
        loss.backward()
    return loss.array, xv.grad


@pytest.mark.parametrize("n,k", [(7, 10), (101, 3), (1, 1)])
@pytest.mark.parametrize("normalize", [True, False])
def test_compiled_softmax_cross_entropy_equals_the_numpy_path(n, k, normalize, monkeypatch):
    from benchbench.core.kernels import cpu_loss

    calls = []
    for name in ("forward", "backward"):
        real = getattr(cpu_loss, name)
        monkeypatch.setattr(cpu_loss, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    got = _sce("compiled", n, k, normalize)
    assert calls == ["forward", "backward"]
    want = _sce("numpy", n, k, normalize)
    assert calls == ["forward", "backward"]
    for g, w in zip(got, want):
        assert g.dtype == numpy.float32 and g.shape == w.shape
        numpy.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_compiled_softmax_cross_entropy_passes_a_float64_gradient_check():
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((9, 5))
    t = rng.integers(0, 5, 9)
    t[4] = -1
    with cpu_compiled.using("compiled"):
        check_backward(lambda v: F.softmax_cross_entropy(v, t), (x,), atol=1e-7, rtol=1e-6)
