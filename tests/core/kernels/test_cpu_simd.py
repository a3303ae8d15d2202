"""The explicit SIMD vectors of the compiled kernels (``cpu_simd``) against numpy: loads and stores
at unaligned offsets, splats, fused multiply-adds (one rounding) and lane sums in lane order, in
float32 and float64, at the machine's width or the one ``BENCHBENCH_SIMD_BYTES`` sets."""
import types

import numpy
import pytest

from benchbench.core.kernels import cpu_compiled

pytestmark = pytest.mark.skipif(not cpu_compiled.active(), reason="the compiled kernels are off or numba did not import")


@pytest.fixture(scope="module")
def kernels():
    import numba

    from benchbench.core.kernels.cpu_simd import vadd, vdiv, vexp, vfma, vlanes, vload, vmul, vsplat, vstore, vsub, vsum, vzero

    @numba.njit
    def fma_at(a, b, c, out, i, s):  # out[i:i+L] = a[i:i+L] * b[i:i+L] + c[i:i+L] + s
        vstore(out, i, vadd(vfma(vload(a, i), vload(b, i), vload(c, i)), vsplat(s)))

    @numba.njit
    def lane_sum(a, i):
        return vsum(vadd(vload(a, i), vzero(a)))

    @numba.njit
    def count(a):
        return vlanes(a)

    @numba.njit
    def exp_all(x, y):
        lanes = vlanes(x)
        for v in range(x.size // lanes):
            vstore(y, v * lanes, vexp(vload(x, v * lanes)))

    @numba.njit
    def arithmetic(a, b, out):  # (a - b) * b / a, lane by lane
        vstore(out, 0, vdiv(vmul(vsub(vload(a, 0), vload(b, 0)), vload(b, 0)), vload(a, 0)))

    return types.SimpleNamespace(fma_at=fma_at, lane_sum=lane_sum, count=count, exp_all=exp_all, arithmetic=arithmetic)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_vectors_against_numpy(kernels, dtype):
    from benchbench.core.kernels import cpu_simd

    fma_at, lane_sum, count = kernels.fma_at, kernels.lane_sum, kernels.count
    lanes = count(numpy.zeros(1, dtype))
    assert lanes == cpu_simd.lanes(dtype) == cpu_simd.VECTOR_BYTES // numpy.dtype(dtype).itemsize
    rng = numpy.random.default_rng(0)
    a, b, c = (rng.standard_normal(3 * lanes + 3).astype(dtype) for _ in range(3))
    for i in (0, 1, lanes + 3, 2 * lanes + 3):  # unaligned offsets up to the last whole vector
        out = numpy.full_like(a, 7)
        fma_at(a, b, c, out, i, dtype(0.5))
        want = (a[i:i + lanes].astype(numpy.longdouble) * b[i:i + lanes] + c[i:i + lanes]).astype(dtype) + dtype(0.5)
        numpy.testing.assert_array_equal(out[i:i + lanes], want)  # fused: one rounding of a * b + c
        assert (numpy.delete(out, numpy.arange(i, i + lanes)) == 7).all()  # nothing else written
        total = dtype(0)
        for v in a[i:i + lanes]:  # lane 0 first
            total = dtype(total + v)
        assert lane_sum(a, i) == total


@pytest.mark.parametrize("dtype, bound", [(numpy.float32, 1.01), (numpy.float64, 1.7)])
def test_exp_within_its_bound_of_the_exact_value(kernels, dtype, bound):
    """Against long-double exp over the whole finite range, subnormal results included; inf, NaN,
    overflow and underflow as numpy's."""
    info = numpy.finfo(dtype)
    top = numpy.log(info.max)
    sweep = numpy.linspace(numpy.log(info.smallest_subnormal) - 2, top + 2, 1 << 18).astype(dtype)
    specials = numpy.array([numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, 1.0, -1.0, top, -top], dtype)
    x = numpy.concatenate([sweep, specials, numpy.zeros(-(sweep.size + specials.size) % 64, dtype)])
    y = numpy.full_like(x, 7)
    kernels.exp_all(x, y)
    exact = numpy.exp(x.astype(numpy.longdouble))
    with numpy.errstate(over="ignore"):
        want = exact.astype(dtype)
    normal = numpy.isfinite(want) & (numpy.abs(want) >= info.tiny)
    ulp = numpy.spacing(want[normal]).astype(numpy.longdouble)
    assert float((numpy.abs(y[normal] - exact[normal]) / ulp).max()) <= bound
    sub = (want > 0) & (want < info.tiny)  # subnormal results: within one subnormal step
    assert float(numpy.abs(y[sub] - exact[sub]).max()) <= 2 * info.smallest_subnormal
    assert numpy.isnan(y[numpy.isnan(x)]).all()
    assert (y[x == numpy.inf] == numpy.inf).all() and (y[x > top + 0.01] == numpy.inf).all()
    assert (y[x == -numpy.inf] == 0).all() and (y[x < numpy.log(info.smallest_subnormal) - 1] == 0).all()
    assert (y[x == 0] == 1).all()


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_arithmetic_lane_by_lane(kernels, dtype):
    rng = numpy.random.default_rng(1)
    lanes = kernels.count(numpy.zeros(1, dtype))
    a, b = rng.standard_normal(lanes).astype(dtype), rng.standard_normal(lanes).astype(dtype)
    out = numpy.empty(lanes, dtype)
    kernels.arithmetic(a, b, out)
    numpy.testing.assert_array_equal(out, (a - b) * b / a)
