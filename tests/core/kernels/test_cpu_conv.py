"""The compiled convolution and pooling kernels (``cpu_conv``, ``cpu_pooling``) against the numpy
path: float32 to rounding on odd sizes, pads, strides and rectangles, float64 gradients through the
compiled path, the algorithm choice, and the numpy switch that turns them off."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core.config import using_config
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import conv_algorithm, cpu_compiled

pytestmark = pytest.mark.skipif(not cpu_compiled.active() and cpu_compiled.numba_error() is not None,
                                reason="numba did not import")


def _rand(shape, seed, dtype=numpy.float32):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def calls(monkeypatch):
    """Counts of the compiled entry points called (so a test knows the compiled path ran)."""
    from benchbench.core.kernels import cpu_conv, cpu_pooling

    counts = {}
    for module, names in ((cpu_conv, ("direct_forward", "direct_backward")), (cpu_pooling, ("max_forward", "max_backward"))):
        for name in names:
            def spy(*a, _fn=getattr(module, name), _name=name, **k):
                counts[_name] = counts.get(_name, 0) + 1
                return _fn(*a, **k)
            monkeypatch.setattr(module, name, spy)
    return counts


def _conv(path, algorithm, x, W, b, pad, need_x):
    xv, Wv = Variable(x, requires_grad=need_x), Variable(W)
    bv = None if b is None else Variable(b)
    with cpu_compiled.using(path), using_config("conv_algorithm", algorithm):
        y = F.convolution_2d(xv, Wv, bv, pad=pad)
        y.grad = _rand(y.shape, 9, x.dtype)
        y.backward()
    out = [y.array, Wv.grad] + ([] if b is None else [bv.grad]) + ([xv.grad] if need_x else [])
    return out


# (n, c, o, h, w, k, pad, bias, input gradient)
CASES = [
    (3, 3, 6, 13, 11, 5, (0, 0), True, False),   # LeNet5 conv1, odd sizes
    (2, 6, 16, 9, 10, 5, (2, 1), False, True),   # LeNet5 conv2, padded
    (5, 1, 7, 8, 9, 3, (1, 1), True, True),      # CNN conv1-like, an odd output count
    (2, 3, 9, 7, 7, 3, (2, 0), True, True),      # a stem, rectangular padding
    (1, 5, 3, 4, 6, 4, (3, 1), True, True),      # an even kernel, pad = k - 1
]


@pytest.mark.parametrize("case", CASES)
def test_direct_matches_im2col_in_float32(case, calls):
    n, c, o, h, w, k, pad, bias, need_x = case
    x, W = _rand((n, c, h, w), 1), _rand((o, c, k, k), 2)
    b = _rand((o,), 3) if bias else None
    want = _conv("numpy", "im2col", x, W, b, pad, need_x)
    assert calls == {}
    got = _conv("compiled", "direct", x, W, b, pad, need_x)  # small planes: auto would take im2col's backward
    assert calls == {"direct_forward": 1, "direct_backward": 1}
    for g, r in zip(got, want):
        assert g.dtype == numpy.float32 and g.shape == r.shape
        numpy.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5 * numpy.abs(r).max())


@pytest.mark.parametrize("c, o, k, pad, bias", [(16, 24, 3, (1, 1), False), (9, 12, 5, (2, 1), True)])
def test_direct_forward_with_im2col_backward_up_to_64_channels(c, o, k, pad, bias, calls, monkeypatch):
    """Above the thin-layer bound and up to 64 channels, auto runs the direct forward, the input
    gradient by the same kernel and im2col's weight gradient; the results are im2col's to float32
    rounding, float64 gradients included."""
    from benchbench.core.kernels import cpu_conv

    input_grad = cpu_conv.direct_input_grad
    monkeypatch.setattr(cpu_conv, "direct_input_grad",
                        lambda *a: calls.__setitem__("direct_input_grad", calls.get("direct_input_grad", 0) + 1)
                        or input_grad(*a))
    x, W = _rand((3, c, 9, 8), 1), _rand((o, c, k, k), 2)
    b = _rand((o,), 3) if bias else None
    want = _conv("numpy", "im2col", x, W, b, pad, True)
    monkeypatch.setattr(cpu_compiled, "threads", lambda: 1)
    one = _conv("compiled", "auto", x, W, b, pad, True)
    assert calls == {"direct_forward": 1}  # one thread: im2col's input gradient
    monkeypatch.setattr(cpu_compiled, "threads", lambda: 2)
    calls.clear()
    got = _conv("compiled", "auto", x, W, b, pad, True)
    assert calls == {"direct_forward": 1, "direct_input_grad": 1}
    for g, g1, r in zip(got, one, want):
        numpy.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5 * numpy.abs(r).max())
        numpy.testing.assert_allclose(g1, r, rtol=1e-5, atol=2e-5 * numpy.abs(r).max())
    _conv("compiled", "im2col", x, W, b, pad, True)
    assert calls == {"direct_forward": 1, "direct_input_grad": 1}
    calls.clear()
    x64, W64 = _rand((2, c, 6, 5), 4, numpy.float64), _rand((o, c, k, k), 5, numpy.float64)
    gy = _rand(F.convolution_2d(Variable(x64), Variable(W64), pad=pad).shape, 6, numpy.float64)
    with cpu_compiled.using("compiled"), using_config("conv_algorithm", "auto"):
        check_backward(lambda a, w: F.convolution_2d(a, w, pad=pad), (x64, W64), gy, atol=1e-6, rtol=1e-5)
    assert calls["direct_forward"] > 1 and "direct_backward" not in calls
    assert not conv_algorithm.use_direct_forward((x,), 65, 64, k, k, (1, 1), pad, (1, 1))


@pytest.mark.parametrize("case", [CASES[1], CASES[3]])
def test_direct_gradients_in_float64(case, calls):
    n, c, o, h, w, k, pad = case[:7]
    x, W, b = _rand((n, c, h, w), 4, numpy.float64), _rand((o, c, k, k), 5, numpy.float64), _rand((o,), 6, numpy.float64)
    with cpu_compiled.using("compiled"), using_config("conv_algorithm", "direct"):
        check_backward(lambda x, W, b: F.convolution_2d(x, W, b, pad=pad), (x, W, b))
    assert calls["direct_backward"] >= 1


def test_direct_is_forced_only_where_it_applies_and_never_on_the_numpy_path(calls):
    x, W = _rand((2, 16, 9, 9), 1), _rand((32, 16, 3, 3), 2)
    with using_config("conv_algorithm", "direct"):
        want = _conv("numpy", "im2col", x, W, None, (1, 1), True)
        got = _conv("compiled", "direct", x, W, None, (1, 1), True)  # 16 -> 32: auto would not
        assert calls == {"direct_forward": 1, "direct_backward": 1}
        for g, r in zip(got, want):
            numpy.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5 * numpy.abs(r).max())
        with cpu_compiled.using("numpy"):
            F.convolution_2d(x[:, :3], W[:6, :3], pad=1)
        with cpu_compiled.using("compiled"):
            F.convolution_2d(x[:, :3], W[:6, :3], stride=2, pad=1)  # stride 2: im2col
            F.convolution_2d(x[:, :3], W[:6, :3], pad=3)  # pad >= kernel: im2col
    assert calls == {"direct_forward": 1, "direct_backward": 1}


@pytest.mark.parametrize("c, o, size, algorithm, want", [
    (3, 6, 16, "auto", True), (6, 16, 16, "auto", True), (1, 32, 24, "auto", True), (3, 64, 32, "auto", True),
    (32, 64, 16, "auto", False), (16, 120, 16, "auto", False), (32, 64, 16, "direct", True),
    (3, 6, 16, "im2col", False), (3, 6, 16, "winograd", False),
    # output planes below DIRECT_MIN_PLANE: im2col, unless forced
    (6, 16, 15, "auto", False), (3, 6, 8, "auto", False), (3, 6, 8, "direct", True),
])
def test_the_direct_rule(c, o, size, algorithm, want):
    arrays = (_rand((2, c, size, size), 1), _rand((o, c, 3, 3), 2))
    with cpu_compiled.using("compiled"), using_config("conv_algorithm", algorithm):
        assert conv_algorithm.use_direct(arrays, c, o, 3, 3, (1, 1), (1, 1), (1, 1)) is want
        assert conv_algorithm.use_direct(arrays, c, o, 3, 3, (2, 2), (1, 1), (1, 1)) is False
        assert conv_algorithm.use_direct(arrays, c, o, 3, 3, (1, 1), (1, 1), (2, 2)) is False
        strided = (arrays[0][:, :, :, ::2], arrays[1])
        assert conv_algorithm.use_direct(strided, c, o, 3, 3, (1, 1), (1, 1), (1, 1)) is False
        assert conv_algorithm.use_winograd(numpy, c, o, 3, 3, (1, 1), (1, 1), (1, 1)) is (
            algorithm == "winograd")
    with cpu_compiled.using("numpy"), using_config("conv_algorithm", algorithm):
        assert conv_algorithm.use_direct(arrays, c, o, 3, 3, (1, 1), (1, 1), (1, 1)) is False


# -- pooling ---------------------------------------------------------------------------------
def _pool(path, fn, x, **kw):
    xv = Variable(x)
    with cpu_compiled.using(path):
        y = fn(xv, **kw)
        y.grad = _rand(y.shape, 7, x.dtype)
        y.backward()
    return y.array, xv.grad


POOLS = [  # stride 1, and windows that tile the plane: the compiled path
    dict(ksize=2, stride=1), dict(ksize=3, stride=1, pad=1), dict(ksize=(3, 2), stride=1, pad=(1, 0)),
    dict(ksize=2, stride=1, cover_all=False), dict(ksize=3, stride=1, pad=2),
    dict(ksize=2, cover_all=False), dict(ksize=(3, 2), cover_all=False),  # a row (and rows) left over
]


def _tied(shape, seed):
    x = _rand(shape, seed)
    x[0, 0, :2, :2] = 1.5  # a tie: the first maximum in row-major order takes the gradient
    x[1, 2] = numpy.round(x[1, 2])  # many ties in overlapping windows
    return x


@pytest.mark.parametrize("kw", POOLS)
def test_max_pooling_matches_numpy(kw, calls):
    x = _tied((3, 5, 11, 8), 1)
    want = _pool("numpy", F.max_pooling_2d, x, **kw)
    got = _pool("compiled", F.max_pooling_2d, x, **kw)
    assert calls == {"max_forward": 1, "max_backward": 1}
    numpy.testing.assert_array_equal(got[0], want[0])
    numpy.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("geometry", [(2, 2, 2, 2, 0, 0), (3, 3, 2, 2, 1, 1), (3, 2, 2, 3, 1, 0), (3, 3, 3, 3, 2, 2)])
def test_the_max_kernels_at_other_strides(geometry):
    """Strided pooling whose windows overlap or are padded keeps the numpy path (fewer passes there),
    but the kernels compute it too."""
    from benchbench.core.functions.pooling import _pool_args
    from benchbench.core.kernels import cpu_pooling

    kh, kw, sy, sx, ph, pw = geometry
    x = _tied((3, 5, 11, 8), 2)
    want = _pool("numpy", F.max_pooling_2d, x, ksize=(kh, kw), stride=(sy, sx), pad=(ph, pw))
    full = _pool_args("test", x, (kh, kw), (sy, sx), (ph, pw), True)
    with cpu_compiled.using("compiled"):
        y, idx = cpu_pooling.max_forward(x, full)
        gx = cpu_pooling.max_backward(_rand(y.shape, 7), idx, x.shape, full)
    numpy.testing.assert_array_equal(y, want[0])
    numpy.testing.assert_allclose(gx, want[1], rtol=1e-6, atol=1e-6)


def test_strided_and_average_pooling_keep_the_numpy_path(calls):
    x = _rand((2, 3, 8, 8), 3)
    with cpu_compiled.using("compiled"):
        F.max_pooling_2d(x, 3, stride=2)
        F.max_pooling_2d(x, 2, pad=1)
        F.average_pooling_2d(x, 2, stride=1)
    assert calls == {}


def test_max_pooling_gradients_in_float64(calls):
    x = _rand((2, 2, 7, 6), 3, numpy.float64) + numpy.arange(42).reshape(7, 6) * 0.1  # no near-ties
    with cpu_compiled.using("compiled"):
        check_backward(lambda v: F.max_pooling_2d(v, 3, stride=1, pad=1), (x,))
        check_backward(lambda v: F.max_pooling_2d(v, 2, stride=1), (x,))
    assert calls["max_backward"] >= 2


def test_non_contiguous_input_takes_the_numpy_path(calls):
    x = _rand((2, 3, 8, 16), 4)[:, :, :, ::2]
    with cpu_compiled.using("compiled"):
        y = F.max_pooling_2d(x, 2, stride=1)
    assert calls == {}
    with cpu_compiled.using("numpy"):
        want = F.max_pooling_2d(numpy.ascontiguousarray(x), 2, stride=1)
    numpy.testing.assert_array_equal(y.array, want.array)
