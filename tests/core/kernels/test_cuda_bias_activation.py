"""The fused bias + activation of ``linear(..., activation=...)`` (``LinearActivation``): equal to
``activation(linear(x, W, b))`` forward and backward (float32, odd sizes), numerically right in
float64, one kernel less per layer, and a wrong kernel body caught. Run under the simulated GPUs."""
import numpy
import pytest

from benchbench.core import backend, functions as F, Variable
from benchbench.core.functions.connection import LinearActivation
from benchbench.core.gradient_check import check_backward

from .conftest import rand
from .test_cuda_functions import _same

pytestmark = pytest.mark.simgpu

ACTIVATIONS = {"relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_linear_with_a_fused_activation_equals_the_unfused_path(cupy, unfused, launches, name):
    act = ACTIVATIONS[name]
    x, W, b = rand((7, 13), 0), rand((9, 13), 1), rand((9,), 2)
    n = _same(cupy, unfused, launches, lambda x, W, b: F.linear(x, W, b, activation=act), [x, W, b])
    # forward: GEMM + bias-and-activation; backward: activation gradient, bias sum, two GEMMs
    assert n == 2 + 4


def test_the_fused_path_is_taken_and_the_graph_has_one_function(cupy):
    xs = [Variable(backend.to_device(a, "gpu:0")) for a in (rand((3, 2, 5)), rand((4, 10)), rand((4,)))]
    y = F.linear(*xs, activation=F.relu)
    assert isinstance(y.creator, LinearActivation) and y.shape == (3, 4)
    y = F.linear(xs[0], xs[1], None, activation=F.relu)  # no bias: linear, then relu
    assert y.creator is not None and not isinstance(y.creator, LinearActivation)
    y = F.linear(*xs, activation=F.leaky_relu)  # not a fused activation: applied after linear
    expected = F.leaky_relu(F.linear(*xs))
    numpy.testing.assert_array_equal(backend.as_numpy(y.array), backend.as_numpy(expected.array))
    with pytest.raises(TypeError, match="linear: activation must be None or a function"):
        F.linear(*xs, activation="relu")


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_nan_goes_through_the_fused_activation_as_through_the_unfused_one(cupy, unfused, name):
    x, W, b = (backend.to_device(a, "gpu:0") for a in (rand((2, 3)), rand((4, 3), 1), rand((4,), 2)))
    b[1] = numpy.nan
    fused = backend.as_numpy(F.linear(x, W, b, activation=ACTIVATIONS[name]).array)
    with unfused():
        plain = backend.as_numpy(F.linear(x, W, b, activation=ACTIVATIONS[name]).array)
    assert numpy.isnan(fused[:, 1]).all()
    numpy.testing.assert_array_equal(fused, plain)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_the_fused_path_passes_the_numerical_gradient_check_in_float64(cupy, name):
    act = ACTIVATIONS[name]
    x, W, b = (backend.to_device(a.astype(numpy.float64), "gpu:0")
               for a in (rand((5, 2, 3), 3), rand((7, 3), 4), rand((7,), 5)))
    if name == "relu":
        x = x + 0.05 * backend.cupy.sign(x)  # keep the pre-activations away from the kink
    check_backward(lambda x, W, b: F.linear(x, W, b, n_batch_axes=2, activation=act), (x, W, b), eps=1e-6,
                   atol=1e-7, rtol=1e-6)


def test_a_wrong_bias_activation_body_is_caught(cupy, unfused, launches, monkeypatch):
    from benchbench.core.kernels import cuda_activation

    kind, args = cuda_activation.KERNELS["bias_sigmoid"]
    wrong = (kind, (args[0], args[1], args[2].replace("exp(-(y + b))", "exp(-y)"), "benchbench_bias_sigmoid_wrong"))
    monkeypatch.setitem(cuda_activation.KERNELS, "bias_sigmoid", wrong)
    with pytest.raises(AssertionError):
        _same(cupy, unfused, launches, lambda x, W, b: F.linear(x, W, b, activation=F.sigmoid),
              [rand((3, 4)), rand((5, 4), 1), rand((5,), 2)])
