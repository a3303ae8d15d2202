"""Gradients of a weight shared by many steps (and of an output with two consumers) are added inside the
linear layer's GEMMs and bias reduction (``Function.accumulate_into``): the same gradients as the
unfused path, fewer launches, and nothing else's gradient changed. Run under the simulated GPUs."""
import numpy
import pytest

from benchbench.core import backend, functions as F, Variable

from .conftest import rand

pytestmark = pytest.mark.simgpu


def _unrolled(x, W, b, V, steps=5):
    """An RNN-like chain: W, b, V shared by every step; each h feeds the next step and the output."""
    h, outs = x, []
    for _ in range(steps):
        h = F.tanh(F.linear(h, W, b))
        outs.append(F.linear(h, V))
    return F.sum(F.concat(outs, axis=1) * F.concat(outs, axis=1))


def _grads(arrays, fn):
    vs = [Variable(backend.to_device(a, "gpu:0")) for a in arrays]
    y = fn(*vs)
    y.backward()
    return [backend.as_numpy(v.grad) for v in vs]


def test_shared_gradients_added_in_their_gemms_equal_the_unfused_path(cupy, unfused, launches):
    arrays = [rand((3, 4), 0), rand((4, 4), 1) * 0.5, rand((4,), 2), rand((2, 4), 3)]
    fused, n_fused = launches(lambda: _grads(arrays, _unrolled))
    with unfused():
        plain, n_plain = launches(lambda: _grads(arrays, _unrolled))
    for a, b in zip(fused, plain):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # per step after the second: the adds of W, b, V and of h's two contributions are gone
    assert n_fused <= n_plain - 3 * 4


def test_a_variable_used_twice_by_one_function_and_retained_gradients_stay_right(cupy, unfused):
    arrays = [rand((3, 4), 0), rand((4, 4), 1), rand((4,), 2)]

    def run():
        vs = [Variable(backend.to_device(a, "gpu:0")) for a in arrays]
        x, W, b = vs
        a = F.linear(x, W, b)
        y = a + a
        z = F.linear(y, W, b)
        z2 = F.linear(F.reshape(z, (3, 4)), W, b)
        loss = F.sum(z2 * z2) + F.sum(z)
        loss.backward(retain_grad=True)
        return [backend.as_numpy(v) for v in (W.grad, b.grad, x.grad, a.grad, y.grad, z.grad)]

    fused = run()
    with unfused():
        plain = run()
    for k, (f, p) in enumerate(zip(fused, plain)):
        numpy.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-5, err_msg=f"gradient {k}")


def test_a_bias_gradient_that_forgets_what_was_accumulated_is_caught(cupy, unfused, launches, monkeypatch):
    from benchbench.core.kernels import cuda_linear

    kind, args = cuda_linear.KERNELS["bias_grad_add"]
    monkeypatch.setitem(cuda_linear.KERNELS, "bias_grad_add",
                        (kind, args[:4] + ("gb = a",) + args[5:6] + ("benchbench_bias_grad_add_wrong",)))
    with pytest.raises(AssertionError):
        test_shared_gradients_added_in_their_gemms_equal_the_unfused_path(cupy, unfused, launches)
