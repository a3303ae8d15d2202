"""Compiled activation kernels against the numpy path (float32, odd sizes, 4-d) and float64 gradient
checks on them."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import cpu_compiled

pytestmark = pytest.mark.skipif(not cpu_compiled.active(), reason="compiled kernels are off")

FUNCS = {"relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh}
KERNELS = {"relu": ["relu_grad"], "sigmoid": ["sigmoid", "sigmoid_grad"], "tanh": ["tanh_grad"]}


def _run(path, name, shape):
    rng = numpy.random.default_rng(9)
    x = Variable((3 * rng.standard_normal(shape)).astype(numpy.float32))
    x.array.reshape(-1)[::5] = 0.0  # relu's kink: gradient 0 there on both paths
    gy = rng.standard_normal(shape).astype(numpy.float32)
    with cpu_compiled.using(path):
        y = FUNCS[name](x)
        y.grad = gy
        y.backward()
    return y.array, x.grad


@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("shape", [(3, 5, 7, 11), (1,), (101, 1000)])
def test_compiled_activations_equal_the_numpy_path(name, shape, monkeypatch):
    from benchbench.core.kernels import cpu_activation

    calls = []
    for k in KERNELS[name]:
        real = getattr(cpu_activation, k)
        monkeypatch.setattr(cpu_activation, k, lambda *a, _r=real, _n=k: calls.append(_n) or _r(*a))
    got = _run("compiled", name, shape)
    assert calls == KERNELS[name]
    want = _run("numpy", name, shape)
    assert calls == KERNELS[name]
    for g, w in zip(got, want):
        assert g.dtype == numpy.float32 and g.shape == w.shape
        # exp from the C library may differ from numpy's in the last place: one ulp of y near 1 is
        # 6e-8, which (1 - y) turns into an absolute difference of that size times |gy|
        numpy.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_compiled_activations_pass_float64_gradient_checks(name):
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5)) + 0.01  # away from relu's kink
    with cpu_compiled.using("compiled"):
        check_backward(FUNCS[name], (x,), atol=1e-7, rtol=1e-6)
