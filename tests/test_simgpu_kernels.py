"""The simulated GPUs compile user kernels with NVRTC and run their own C bodies.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does); skipped where ``cupy`` is real or absent.
"""
import numpy
import pytest

from benchbench.core import backend

pytestmark = pytest.mark.simgpu

ADAM = """m += one_minus_beta1 * (grad - m);
v += one_minus_beta2 * (grad * grad - v);
param -= lr * m / (sqrt(v) + eps);"""


@pytest.fixture
def cupy():
    return backend.cupy


def test_an_elementwise_body_runs_as_written(cupy):
    k = cupy.ElementwiseKernel(
        "T x, raw T w, float32 s", "T y",
        "T h = x * s; if (h > (T)2) { y = h - w[i % 3]; } else y = h < 0 ? (T)0 : expf(h); y += (T)(i / 4)",
        "sim_elementwise")
    rng = numpy.random.default_rng(0)
    x, w = rng.standard_normal((5, 7)).astype(numpy.float32) * 3, rng.standard_normal(3).astype(numpy.float32)
    n0 = cupy._sim_stats()["launches"]
    y = k(cupy.asarray(x), cupy.asarray(w), 1.5).get()
    assert cupy._sim_stats()["launches"] == n0 + 1
    h = x * numpy.float32(1.5)
    idx = numpy.arange(x.size).reshape(x.shape)
    want = numpy.where(h > 2, h - w[idx % 3], numpy.where(h < 0, 0, numpy.exp(h))) + idx // 4
    numpy.testing.assert_allclose(y, want.astype(numpy.float32), rtol=1e-6)


def test_a_reduction_runs_its_map_reduce_and_post_map(cupy):
    k = cupy.ReductionKernel("T x", "T y", "x * x", "a + b", "y = sqrt(a)", "0", "sim_l2")
    x = numpy.random.default_rng(1).standard_normal((3, 5, 7)).astype(numpy.float32)
    numpy.testing.assert_allclose(k(cupy.asarray(x), axis=(0, 2)).get(), numpy.sqrt((x * x).sum(axis=(0, 2))),
                                  rtol=1e-6)
    numpy.testing.assert_allclose(k(cupy.asarray(x)).get(), numpy.sqrt((x * x).sum()), rtol=1e-6)


def _adam(cupy, body):
    k = cupy.ElementwiseKernel("T grad, T lr, T one_minus_beta1, T one_minus_beta2, T eps", "T param, T m, T v",
                               body, "sim_adam")
    rng = numpy.random.default_rng(2)
    g = rng.standard_normal(101).astype(numpy.float32)
    p, m, v = (cupy.zeros(101, numpy.float32) for _ in range(3))
    k(cupy.asarray(g), numpy.float32(0.01), numpy.float32(0.1), numpy.float32(0.001), numpy.float32(1e-8), p, m, v)
    return g, p.get()


def test_a_wrong_formula_gives_a_wrong_result(cupy):
    g, p = _adam(cupy, ADAM)
    m, v = 0.1 * g, 0.001 * g * g
    numpy.testing.assert_allclose(p, -0.01 * m / (numpy.sqrt(v) + 1e-8), rtol=1e-5)
    _, wrong = _adam(cupy, ADAM.replace("grad * grad", "grad"))
    assert not numpy.allclose(wrong, p, rtol=1e-3, equal_nan=True)


def test_nvrtc_refusal_is_reported_with_its_message(cupy):
    from cupy.cuda.compiler import CompileException

    k = cupy.ElementwiseKernel("T x", "T y", "y = expff(x)", "sim_misspelt")
    with pytest.raises(CompileException, match='identifier "expff" is undefined'):
        k(cupy.ones(3, numpy.float32))
    k = cupy.ElementwiseKernel("T x", "T y", "x = y", "sim_const")  # an input is const, as in cupy
    with pytest.raises(CompileException, match="compute_80"):
        k(cupy.ones(3, numpy.float32))


@pytest.mark.parametrize("body, what", [("y = x; while (y < 3) y += 1", "while loops"),
                                        ("y = static_cast<T>(x)", "static_cast"),
                                        ("y = my_helper(x)", "the function my_helper()"),
                                        ("for (int k = 0; k < (int)x; ++k) y += 1", "bound differs")])
def test_a_body_outside_the_subset_is_refused_not_replaced(cupy, body, what):
    k = cupy.ElementwiseKernel("T x", "T y", body, "sim_unsupported",
                               preamble="__device__ float my_helper(float v) { return v; }")
    with pytest.raises(Exception, match="outside the C subset") as info:
        k(cupy.arange(4, dtype=numpy.float32))
    assert what in str(info.value)


def test_a_loop_inside_an_if_needs_a_uniform_bound_only_where_the_if_holds(cupy):
    """Elements outside the if do not run its loop (their counter stays put), as threads that skip it."""
    k = cupy.ElementwiseKernel("T x, raw T v, int32 n", "T y",
                               "y = x;\nif (i == 0) { for (int r = 0; r < n; ++r) { y += v[r]; } }", "sim_masked_loop")
    a = cupy.arange(4, dtype=numpy.float32)
    assert cupy.asnumpy(k(a, a, numpy.int32(4))).tolist() == [6.0, 1.0, 2.0, 3.0]
    k = cupy.ElementwiseKernel("T x", "T y", "y = x;\nif (i < 2) { for (int k = 0; k < (int)x; ++k) y += 1; }",
                               "sim_masked_divergent")
    with pytest.raises(Exception, match="bound differs"):
        k(a)


def test_kernels_keep_cupys_rules(cupy):
    k = cupy.ElementwiseKernel("T x, T y", "T z", "z = x + y", "sim_add")
    with pytest.raises(TypeError, match="host numpy array"):
        k(cupy.ones(3, numpy.float32), numpy.ones(3, numpy.float32))
    with pytest.raises(TypeError, match="mismatched"):
        k(cupy.ones(3, numpy.float32), cupy.ones(3, numpy.float64))
    with pytest.raises(TypeError, match="float16"):
        k(cupy.ones(3, numpy.float16), cupy.ones(3, numpy.float16))
    if cupy.cuda.runtime.getDeviceCount() > 1:
        with cupy.cuda.Device(1):
            b = cupy.ones(3, numpy.float32)
        with pytest.raises(ValueError):
            k(cupy.ones(3, numpy.float32), b)
