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
    got = _conv("compiled", "direct", x, W, b, pad, need_x)
    assert calls == {"direct_forward": 1, "direct_backward": 1}
    for g, r in zip(got, want):
        assert g.dtype == numpy.float32 and g.shape == r.shape
        numpy.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5 * numpy.abs(r).max())


def _reference(x, W, b, gy, pad):
    """Forward, input gradient and weight gradient of a stride-1 convolution in float64, by plain
    sliding windows (no GEMM, no kernel of the project)."""
    k = W.shape[2:]
    x64, W64, gy64 = x.astype(numpy.float64), W.astype(numpy.float64), gy.astype(numpy.float64)
    xp = numpy.pad(x64, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh, ow = gy.shape[2:]
    win = numpy.lib.stride_tricks.sliding_window_view(xp, k, axis=(2, 3))[:, :, :oh, :ow]
    y = numpy.einsum("ncpqij,ocij->nopq", win, W64) + (0 if b is None else b.astype(numpy.float64)[None, :, None, None])
    gW = numpy.einsum("ncpqij,nopq->ocij", win, gy64)
    gxp = numpy.zeros(xp.shape)
    for i in range(k[0]):
        for j in range(k[1]):
            gxp[:, :, i:i + oh, j:j + ow] += numpy.einsum("nopq,oc->ncpq", gy64, W64[:, :, i, j])
    return y, gxp[:, :, pad[0]:pad[0] + x.shape[2], pad[1]:pad[1] + x.shape[3]], gW


# (n, c, o, h, w, k, pad): batches that end in a part-filled block of lanes (16 or 8 float32, 8 or 4 float64)
LANE_CASES = [
    (19, 6, 16, 14, 14, 5, (0, 0)),   # LeNet5's 6 -> 16
    (21, 3, 6, 13, 11, 5, (2, 1)),    # LeNet5's 3 -> 6 on a rectangle, padded
    (17, 5, 7, 8, 9, 3, (1, 1)),      # output channels not a multiple of 4
    (9, 5, 3, 4, 6, 4, (3, 1)),       # an even kernel, pad = k - 1, a 4x6 output (24 pixels)
    (8, 2, 5, 3, 5, 3, (0, 1)),       # a 1x5 output: the last pixel tile part-filled
]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("by_lanes", [True, False])
@pytest.mark.parametrize("case", LANE_CASES)
def test_direct_kernels_against_float64_sliding_windows(case, by_lanes, dtype, monkeypatch):
    """Forward and input gradient by sample lanes and by the flat kernel, the weight gradient by
    lanes, against sliding windows in float64: to float32 rounding, and to 1e-12 in float64."""
    from benchbench.core.kernels import cpu_conv

    monkeypatch.setattr(cpu_conv, "_by_lanes", lambda *a: by_lanes)
    n, c, o, h, w, k, pad = case
    oh, ow = h + 2 * pad[0] - k + 1, w + 2 * pad[1] - k + 1
    x, W, b, gy = _rand((n, c, h, w), 1, dtype), _rand((o, c, k, k), 2, dtype), _rand((o,), 3, dtype), _rand((n, o, oh, ow), 4, dtype)
    with cpu_compiled.using("compiled"):
        y = cpu_conv.direct_forward(x, W, b, pad, oh, ow)
        gx, gW, gb = cpu_conv.direct_backward((x, W, b), gy, pad, (True, True, True))
        gx_only = cpu_conv.direct_input_grad(gy, W, x.shape, pad)
        gW_only = cpu_conv.direct_weight_grad(x, gy, W.shape, pad)
    tol = 1e-5 if dtype == numpy.float32 else 1e-12
    ry, rgx, rgW = _reference(x, W, b, gy, pad)
    for got, want in zip((y, gx, gW, gx_only, gW_only), (ry, rgx, rgW, rgx, rgW)):
        assert got.dtype == dtype and got.shape == want.shape
        numpy.testing.assert_allclose(got, want, rtol=0, atol=tol * numpy.abs(want).max())
    numpy.testing.assert_array_equal(gx, gx_only)
    numpy.testing.assert_array_equal(gW, gW_only)
    assert gb.dtype == dtype
    numpy.testing.assert_allclose(gb, gy.astype(numpy.float64).sum(axis=(0, 2, 3)), rtol=0,
                                  atol=tol * numpy.abs(gy).astype(numpy.float64).sum(axis=(0, 2, 3)).max())


def test_the_lanes_give_the_same_bits_at_any_thread_count():
    """Every output element and weight-gradient part is summed by one thread in a fixed order."""
    import numba

    from benchbench.core.kernels import cpu_conv

    n, c, o, h, w, k, pad = LANE_CASES[0]
    x, W, gy = _rand((n, c, h, w), 1), _rand((o, c, k, k), 2), _rand((n, o, h - k + 1, w - k + 1), 3)
    with cpu_compiled.using("compiled"):
        before = numba.get_num_threads()
        runs = []
        for t in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(t)
            runs.append((cpu_conv.direct_forward(x, W, None, pad, h - k + 1, w - k + 1),)
                        + cpu_conv.direct_backward((x, W), gy, pad, (True, True)))
        numba.set_num_threads(before)
    for a, b in zip(runs[0], runs[-1]):
        numpy.testing.assert_array_equal(a, b)


def test_the_forward_lane_blocks_serve_the_weight_gradient(monkeypatch):
    """The layer keeps its input's lane blocks from the forward: the backward lays out only the
    output gradient, once for the input, weight and bias gradients, with the same results."""
    from benchbench.core.kernels import cpu_conv

    n, c, o, h, w, k, pad = LANE_CASES[0]
    x, W, b = _rand((n, c, h, w), 1), _rand((o, c, k, k), 2), _rand((o,), 3)
    laid = []
    monkeypatch.setattr(cpu_conv, "_by_lanes", lambda *a: True)
    monkeypatch.setattr(cpu_conv, "to_lanes", lambda a, *r, _f=cpu_conv.to_lanes: laid.append(a.shape) or _f(a, *r))
    got = _conv("compiled", "direct", x, W, b, pad, True)
    assert laid == [x.shape, (n, o, h - k + 1, w - k + 1)]
    gy = _rand((n, o, h - k + 1, w - k + 1), 9)
    with cpu_compiled.using("compiled"):
        gx, gW, gb = cpu_conv.direct_backward((x, W, b), gy, pad, (True, True, True))
    for a, want in zip(got[1:], (gW, gb, gx)):
        numpy.testing.assert_array_equal(a, want)


def test_the_lanes_rule():
    """Sample lanes from 64 taps per output, for a batch that fills half a block, while a block's
    planes fit in 1 MiB; the flat kernel otherwise."""
    from benchbench.core.kernels import cpu_conv, cpu_simd

    lanes = cpu_simd.lanes(numpy.float32)
    f32 = numpy.float32
    assert cpu_conv._by_lanes(100, 6, 14, 14, 150, f32)         # LeNet5's 6 -> 16 forward
    assert cpu_conv._by_lanes(100, 16, 18, 18, 400, f32)        # ... and its input gradient
    assert cpu_conv._by_lanes(100, 3, 32, 32, 75, f32)          # LeNet5's 3 -> 6
    assert not cpu_conv._by_lanes(128, 3, 34, 34, 27, f32)      # a 3x3 stem: 27 taps
    assert not cpu_conv._by_lanes(128, 64, 34, 34, 576, f32)    # the stem's input gradient: 4.7 MB planes a block
    assert not cpu_conv._by_lanes(lanes // 2 - 1, 6, 14, 14, 150, f32)
    assert cpu_conv._by_lanes(lanes // 2, 6, 14, 14, 150, f32)


def test_the_32_byte_kernels_in_a_process_of_their_own(tmp_path):
    """``BENCHBENCH_SIMD_BYTES=32``: the kernels of a CPU without AVX-512 (8 float32 lanes), whatever
    this machine has, pass the same checks; they compile into a cache of their own."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, BENCHBENCH_SIMD_BYTES="32", BENCHBENCH_CPU_KERNELS="compiled", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    test = os.path.abspath(__file__)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           f"{test}::test_direct_kernels_against_float64_sliding_windows",
                           f"{test}::test_the_lanes_give_the_same_bits_at_any_thread_count",
                           os.path.join(os.path.dirname(test), "test_cpu_simd.py")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert os.path.isdir(tmp_path / "cache" / "simd32")


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
    (3, 6, 16, "auto", True), (6, 16, 10, "auto", True), (1, 32, 24, "auto", True), (3, 64, 32, "auto", True),
    (32, 64, 16, "auto", True), (16, 120, 16, "auto", False), (65, 64, 16, "auto", False), (65, 64, 16, "direct", True),
    (3, 6, 16, "im2col", False), (3, 6, 16, "winograd", False),
    # output planes below DIRECT_MIN_PLANE (16 pixels): im2col, unless forced
    (6, 16, 3, "auto", False), (3, 6, 4, "auto", True), (3, 6, 3, "direct", True),
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


@pytest.mark.parametrize("path", ["compiled", "numpy"])
@pytest.mark.parametrize("stride, bias", [(1, True), (2, False)])
def test_a_kernel_that_covers_its_input_runs_as_one_gemm(path, stride, bias, monkeypatch):
    """LeNet5's 16 -> 120 on 5x5 maps is a fully connected layer: auto runs it as one GEMM each way
    on the input as it is (no columns), with im2col's results to float32 rounding and float64
    gradients; padding, or a forced algorithm, keeps the columns."""
    from benchbench.core.functions import connection

    built = []
    monkeypatch.setattr(connection, "im2col", lambda *a, _f=connection.im2col, **k: built.append(1) or _f(*a, **k))
    x, W = _rand((7, 16, 5, 5), 1), _rand((12, 16, 5, 5), 2)
    b = _rand((12,), 3) if bias else None
    want = _conv("numpy", "im2col", x, W, b, (0, 0), True)
    assert built
    built.clear()
    xv, Wv = Variable(x), Variable(W)
    bv = None if b is None else Variable(b)
    with cpu_compiled.using(path), using_config("conv_algorithm", "auto"):
        y = F.convolution_2d(xv, Wv, bv, stride=stride)
        y.grad = _rand(y.shape, 9)
        y.backward()
        assert conv_algorithm.use_dense(numpy, x.shape, 5, 5, (0, 0), (1, 1))
        assert not conv_algorithm.use_dense(numpy, x.shape, 5, 5, (1, 1), (1, 1))
        assert not conv_algorithm.use_dense(numpy, (7, 16, 6, 5), 5, 5, (0, 0), (1, 1))
        with using_config("conv_algorithm", "im2col"):
            assert not conv_algorithm.use_dense(numpy, x.shape, 5, 5, (0, 0), (1, 1))
    assert built == []
    got = [y.array, Wv.grad] + ([] if b is None else [bv.grad]) + [xv.grad]
    for g, r in zip(got, want):
        assert g.dtype == numpy.float32 and g.shape == r.shape
        numpy.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5 * numpy.abs(r).max())
    x64, W64 = _rand((3, 4, 3, 2), 4, numpy.float64), _rand((5, 4, 3, 2), 5, numpy.float64)
    with cpu_compiled.using(path), using_config("conv_algorithm", "auto"):
        check_backward(lambda a, w: F.convolution_2d(a, w, stride=stride), (x64, W64))
    assert built == []


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
