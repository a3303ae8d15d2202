"""The simulated ``cupy.cublas.gemm`` computes, checks and launches as real cupy's ``cupy/cublas.py``.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does); skipped where ``cupy`` is real or absent.
"""
import numpy
import pytest

from benchbench.core import backend

pytestmark = pytest.mark.simgpu


@pytest.fixture
def cp():
    cupy = backend.cupy
    if not getattr(cupy, "_benchbench_simulated", False):
        pytest.skip("checks the simulated GPUs")
    import cupy.cublas  # noqa: F401  (cupy imports it lazily)

    return cupy


def _launches(cp, fn):
    n0 = cp._sim_stats()["launches"]
    r = fn()
    return r, cp._sim_stats()["launches"] - n0


@pytest.mark.parametrize("ta, tb", [("N", "N"), ("T", "N"), ("N", "T"), ("T", "T")])
def test_gemm_adds_into_out_with_beta(cp, ta, tb):
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((3, 5) if ta == "N" else (5, 3)).astype(numpy.float32)
    b = rng.standard_normal((5, 4) if tb == "N" else (4, 5)).astype(numpy.float32)
    c = rng.standard_normal((3, 4)).astype(numpy.float32)
    out = cp.asarray(c)
    r, n = _launches(cp, lambda: cp.cublas.gemm(ta, tb, cp.asarray(a), cp.asarray(b), out=out, beta=1.0))
    expected = (a if ta == "N" else a.T) @ (b if tb == "N" else b.T) + c
    assert r is out and n == 1
    numpy.testing.assert_allclose(out.get(), expected, rtol=1e-6, atol=1e-6)
    r = cp.cublas.gemm(ta, tb, cp.asarray(a), cp.asarray(b), alpha=2.0)  # no out: a new F-order array, beta 0
    assert r.flags.f_contiguous
    numpy.testing.assert_allclose(r.get(), 2 * (expected - c), rtol=1e-6, atol=1e-6)


def test_gemm_copies_and_checks_as_cupy(cp):
    a = cp.asarray(numpy.ones((6, 5), numpy.float32))
    b = cp.asarray(numpy.ones((5, 4), numpy.float32))
    f_out, c_out = cp.zeros((3, 4), numpy.float32, order="F"), cp.zeros((3, 4), numpy.float32)
    _, n = _launches(cp, lambda: cp.cublas.gemm("N", "N", a[::2], b, out=f_out))
    assert n == 1 + 1  # the strided operand is copied to F order first
    _, n = _launches(cp, lambda: cp.cublas.gemm("N", "N", a[::2], b, out=c_out))
    assert n == 1 + 1 + 2  # on that path a C-order out is computed in an F-order copy and copied back
    wide = cp.zeros((6, 8), numpy.float32)
    _, n = _launches(cp, lambda: cp.cublas.gemm("N", "N", a, b, out=wide[:, ::2], beta=1.0))
    assert n == 1 + 2 and float(wide[:, ::2].sum().get()) == 120.0 and float(wide[:, 1::2].sum().get()) == 0
    numpy.testing.assert_array_equal(f_out.get(), c_out.get())
    with pytest.raises(AssertionError):
        cp.cublas.gemm("T", "N", a, b)
    with pytest.raises(AssertionError):
        cp.cublas.gemm("N", "N", a, b, out=cp.zeros((6, 3), numpy.float32))
    with pytest.raises(AssertionError):
        cp.cublas.gemm("N", "N", a, b.astype(numpy.float64))
    with pytest.raises(TypeError, match="invalid trans"):
        cp.cublas.gemm("X", "N", a, b)
    with pytest.raises(TypeError, match="invalid dtype"):
        cp.cublas.gemm("N", "N", a.astype(numpy.int32), b.astype(numpy.int32))


def test_gemm_is_recorded_by_a_capture_and_replayed_on_the_same_buffers(cp):
    a = cp.asarray(numpy.full((2, 3), 0.5, numpy.float32))
    b = cp.asarray(numpy.ones((3, 4), numpy.float32))
    out = cp.zeros((2, 4), numpy.float32)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        cp.cublas.gemm("N", "N", a, b, out=out, beta=1.0)  # out += a @ b
        g = s.end_capture()
    n0 = cp._sim_stats()["launches"]
    for _ in range(2):
        g.launch(stream=s)
    s.synchronize()
    assert cp._sim_stats()["launches"] == n0  # recorded work: the graph launches, not the kernel
    numpy.testing.assert_array_equal(out.get(), numpy.full((2, 4), 3.0, numpy.float32))
