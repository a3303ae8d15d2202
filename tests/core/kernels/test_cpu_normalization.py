"""Compiled batch normalisation against the numpy path (float32, odd sizes, 2-d and 4-d input, running
statistics, gradients) and float64 gradient checks on the compiled kernels."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import cpu_compiled

pytestmark = pytest.mark.skipif(not cpu_compiled.active(), reason="compiled kernels are off")


def _bn(path, shape, dtype, need_gx=True):
    rng = numpy.random.default_rng(3)
    x = (2.0 + 3.0 * rng.standard_normal(shape)).astype(dtype)
    c = shape[1]
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    rm, rv = numpy.zeros(c, dtype), numpy.ones(c, dtype)
    xv, gv, bv = Variable(x, requires_grad=need_gx), Variable(gamma), Variable(beta)
    with cpu_compiled.using(path):
        y = F.batch_normalization(xv, gv, bv, running_mean=rm, running_var=rv)
        y.grad = gy
        y.backward()
    return y.array, (xv.grad if need_gx else None), gv.grad, bv.grad, rm, rv


@pytest.mark.parametrize("shape", [(5, 7, 3, 9), (33, 13), (2, 3, 1, 1)])
@pytest.mark.parametrize("need_gx", [True, False])
def test_compiled_batch_normalization_equals_the_numpy_path(shape, need_gx, monkeypatch):
    from benchbench.core.kernels import cpu_normalization

    calls = []
    for name in ("forward", "backward"):
        real = getattr(cpu_normalization, name)
        monkeypatch.setattr(cpu_normalization, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    got = _bn("compiled", shape, numpy.float32, need_gx)
    assert calls == ["forward", "backward"]
    want = _bn("numpy", shape, numpy.float32, need_gx)
    assert calls == ["forward", "backward"]
    for g, w, name in zip(got, want, ("y", "gx", "ggamma", "gbeta", "running_mean", "running_var")):
        if w is None:
            assert g is None
            continue
        assert g.dtype == numpy.float32 and g.shape == w.shape, name
        numpy.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5 * max(1.0, float(numpy.abs(w).max())), err_msg=name)


@pytest.mark.parametrize("shape", [(4, 3, 2, 5), (7, 3)])
def test_compiled_batch_normalization_passes_float64_gradient_checks(shape):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    with cpu_compiled.using("compiled"):
        check_backward(F.batch_normalization, (x, gamma, beta), atol=1e-6, rtol=1e-5)
