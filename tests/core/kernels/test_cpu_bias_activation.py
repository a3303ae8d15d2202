"""``linear(..., activation=...)`` on the CPU with the compiled kernels (``LinearActivation``): the
bits of ``activation(linear(x, W, b))`` forward and backward (float32, odd sizes, NaN and signed
zeros), one function in the graph, numerically right in float64, and the numpy path unfused."""
import numpy
import pytest

from benchbench.core import Variable, functions as F
from benchbench.core.functions.connection import LinearActivation, LinearFunction
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import cpu_compiled

pytestmark = pytest.mark.skipif(cpu_compiled.numba_error() is not None, reason="needs numba")

ACTIVATIONS = {"relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh}


def _rand(shape, seed, dtype=numpy.float32):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _run(path, act, x, W, b, gy, fused=True):
    xs = [Variable(a.copy()) for a in (x, W, b)]
    with cpu_compiled.using(path):
        y = F.linear(*xs, activation=act) if fused else act(F.linear(*xs))
        creator = type(y.creator)
        y.grad = gy
        y.backward()
    return creator, [y.array] + [v.grad for v in xs]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_the_fused_path_gives_the_unfused_bits(name):
    act = ACTIVATIONS[name]
    x, W, b = _rand((7, 13), 0), _rand((9, 13), 1), _rand((9,), 2)
    b[1] = numpy.nan  # a NaN goes through as through the unfused path
    W[2], b[2] = 0.0, -0.0  # pre-activations of -0.0: ReLU gives +0.0, as numpy's maximum does
    x[3, 0] = 5e4  # sigmoid's exp overflows on the way, as unfused
    gy = _rand((7, 9), 3)
    fused_type, fused = _run("compiled", act, x, W, b, gy)
    unfused_type, unfused = _run("compiled", act, x, W, b, gy, fused=False)
    plain_type, plain = _run("numpy", act, x, W, b, gy)
    assert fused_type is LinearActivation and plain_type is not LinearActivation
    assert unfused_type is not LinearActivation
    for got, same, want in zip(fused, unfused, plain):
        assert got.dtype == want.dtype and numpy.array_equal(got, same, equal_nan=True)
        assert numpy.array_equal(numpy.signbit(got), numpy.signbit(same))
        if name == "sigmoid":  # the compiled exp and numpy's differ in the last place
            numpy.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)
        else:
            assert numpy.array_equal(got, want, equal_nan=True)
            assert numpy.array_equal(numpy.signbit(got), numpy.signbit(want))
    if name == "relu":
        assert not numpy.signbit(fused[0][:, 2]).any() and numpy.isnan(fused[0][:, 1]).all()


def test_relu_bias_is_one_compiled_pass_and_unfusable_inputs_fall_back(monkeypatch):
    from benchbench.core.kernels import cpu_activation

    calls = []
    bias_relu = cpu_activation.bias_relu
    monkeypatch.setattr(cpu_activation, "bias_relu", lambda y, b: calls.append(y.shape) or bias_relu(y, b))
    x, W, b = (Variable(a) for a in (_rand((3, 2, 5), 4), _rand((4, 10), 5), _rand((4,), 6)))
    with cpu_compiled.using("compiled"):
        y = F.linear(x, W, b, activation=F.relu)
        assert isinstance(y.creator, LinearActivation) and y.shape == (3, 4) and calls == [(3, 4)]
        y = F.linear(x, W, None, activation=F.relu)  # no bias: linear, then relu
        assert not isinstance(y.creator, LinearActivation)
        y = F.linear(x, W, Variable(b.array.astype(numpy.float64)), activation=F.relu)  # mixed dtypes: unfused
        assert not isinstance(y.creator, LinearActivation)
        y = F.linear(x, W, b, activation=F.leaky_relu)  # not a fused activation
        assert y.creator is not None and not isinstance(y.creator, LinearActivation) and calls == [(3, 4)]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_the_fused_path_passes_the_numerical_gradient_check_in_float64(name, monkeypatch):
    act = ACTIVATIONS[name]
    x, W, b = (_rand(s, k, numpy.float64) for s, k in (((5, 2, 3), 7), ((7, 3), 8), ((7,), 9)))
    if name == "relu":
        x = x + 0.05 * numpy.sign(x)  # keep the pre-activations away from the kink
    seen = []
    forward = LinearActivation.forward
    monkeypatch.setattr(LinearActivation, "forward", lambda self, xp, xs: seen.append(1) or forward(self, xp, xs))
    with cpu_compiled.using("compiled"):
        check_backward(lambda x, W, b: F.linear(x, W, b, n_batch_axes=2, activation=act), (x, W, b), eps=1e-6,
                       atol=1e-7, rtol=1e-6)
    assert seen and LinearFunction in LinearActivation.__mro__
