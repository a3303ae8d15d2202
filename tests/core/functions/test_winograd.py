"""Winograd F(2x2, 3x3) convolutions: forward against the loop reference, backward against numerical
gradients (float64), float32 results against im2col's, the transformed input kept or rebuilt and
split over samples, and which layers ``auto`` sends to Winograd.
"""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.functions import connection
from benchbench.core.kernels import conv_chunks as _conv_chunks
from benchbench.core.kernels import winograd as _winograd
from benchbench.core.functions.connection import Convolution2DFunction
from benchbench.core.config import reload_switches, using_config
from benchbench.core.kernels import conv_algorithm
from benchbench.core.kernels.conv_algorithm import use_winograd
from benchbench.core.gradient_check import check_backward

from .test_connection import CONV_CASES, _rand, _ref_conv

ENV = conv_algorithm.CONV_ALGORITHM_ENV


def _setenv(monkeypatch, value):
    """Set (or, with None, unset) the switch and have the next use read it again (it is read once)."""
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    reload_switches()


def test_the_switch_is_read_once_and_a_block_setting_wins(monkeypatch):
    _setenv(monkeypatch, "im2col")
    assert conv_algorithm.conv_algorithm() == "im2col"
    monkeypatch.setenv(ENV, "winograd")  # a change after the first read does not reach this process
    assert conv_algorithm.conv_algorithm() == "im2col"
    with using_config("conv_algorithm", "winograd"):
        assert conv_algorithm.conv_algorithm() == "winograd"
        assert use_winograd(numpy, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1)) is True
    with pytest.raises(ValueError, match="conv_algorithm must be None or one of auto, im2col, winograd"):
        with using_config("conv_algorithm", "fft"):
            pass

# x shape, W shape, pad: odd and even outputs, rectangles, every padding Winograd takes
WINOGRAD_CASES = [
    ((2, 3, 8, 8), (4, 3, 3, 3), 1),
    ((3, 5, 7, 9), (6, 5, 3, 3), 1),   # odd height: the last tile row is half used
    ((2, 4, 6, 5), (3, 4, 3, 3), 0),   # 4x3 output
    ((2, 2, 5, 6), (3, 2, 3, 3), 2),   # output larger than the input
    ((1, 3, 3, 3), (2, 3, 3, 3), 0),   # a single output pixel
    ((2, 3, 4, 7), (2, 3, 3, 3), (0, 2)),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.fixture
def winograd(monkeypatch):
    _setenv(monkeypatch, "winograd")


def _grads(x, W, b, pad, gy):
    xv, Wv, bv = Variable(x.copy()), Variable(W.copy()), Variable(b.copy())
    y = F.convolution_2d(xv, Wv, bv, pad=pad)
    y.grad = gy
    y.backward()
    return [backend.as_numpy(a) for a in (y.array, xv.grad, Wv.grad, bv.grad)]


@pytest.mark.parametrize("xs,ws,pad", WINOGRAD_CASES)
def test_winograd_forward_matches_loops(xp, winograd, xs, ws, pad):
    x, W, b = _rand(xp, *xs), _rand(xp, *ws, seed=1), _rand(xp, ws[0], seed=2)
    y = F.convolution_2d(x, W, b, pad=pad)
    ref = _ref_conv(backend.as_numpy(x), backend.as_numpy(W), backend.as_numpy(b), (1, 1), _pair(pad))
    assert y.shape == ref.shape and y.dtype == numpy.float32
    numpy.testing.assert_allclose(backend.as_numpy(y.array), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("xs,ws,pad", WINOGRAD_CASES)
def test_winograd_backward(xp, winograd, xs, ws, pad):
    x, W, b = _rand(xp, *xs), _rand(xp, *ws, seed=1), _rand(xp, ws[0], seed=2)
    check_backward(lambda x, W, b: F.convolution_2d(x, W, b, pad=pad), (x, W, b))


@pytest.mark.parametrize("xs,ws,stride,pad,cover_all,dilate", CONV_CASES)
def test_every_conv_case_with_winograd_forced(xp, winograd, xs, ws, stride, pad, cover_all, dilate):
    """Forcing Winograd changes nothing for layers it does not apply to, and is exact where it does."""
    x, W, b = _rand(xp, *xs), _rand(xp, *ws, seed=1), _rand(xp, ws[0], seed=2)
    f = lambda x, W, b: F.convolution_2d(x, W, b, stride=stride, pad=pad, cover_all=cover_all,  # noqa: E731
                                         dilate=dilate)
    ref = _ref_conv(backend.as_numpy(x), backend.as_numpy(W), backend.as_numpy(b), _pair(stride), _pair(pad),
                    cover_all, _pair(dilate))
    numpy.testing.assert_allclose(backend.as_numpy(f(x, W, b).array), ref, rtol=1e-4, atol=1e-4)
    check_backward(f, (x, W, b))


def test_float32_agrees_with_im2col(monkeypatch):
    """At ResNet's channel counts, float32 Winograd and im2col agree to rounding (values and gradients)."""
    x, W, b = (_rand(numpy, 4, 128, 8, 8), _rand(numpy, 128, 128, 3, 3, seed=1) * 0.05,
               _rand(numpy, 128, seed=2))
    gy = _rand(numpy, 4, 128, 8, 8, seed=3)
    out = {}
    for algo in ("im2col", "winograd"):
        _setenv(monkeypatch, algo)
        out[algo] = _grads(x, W, b, 1, gy)
    for got, want in zip(out["winograd"], out["im2col"]):
        scale = numpy.abs(want).max()
        assert numpy.abs(got - want).max() <= 2e-6 * scale * 16  # a few ulps of the largest term, 16 terms deep


@pytest.mark.parametrize("chunked", [True, False])
def test_one_sample_per_chunk_or_the_whole_batch(monkeypatch, winograd, chunked):
    """Transforms and GEMMs a sample at a time give what the whole batch at once gives, and what im2col gives."""
    if chunked:
        monkeypatch.setattr(_conv_chunks, "COL_CHUNK_BYTES", 1)
    x, W, b = _rand(numpy, 3, 4, 7, 6, dtype=numpy.float64), _rand(numpy, 5, 4, 3, 3, seed=1, dtype=numpy.float64), \
        _rand(numpy, 5, seed=2, dtype=numpy.float64)
    xv, Wv, bv = Variable(x), Variable(W), Variable(b)
    fn = Convolution2DFunction((1, 1), (1, 1), False, (1, 1))
    y = fn.apply((xv, Wv, bv))[0]
    assert fn.col is None  # Winograd keeps nothing from forward
    gy = _rand(numpy, *y.shape, seed=3, dtype=numpy.float64)
    y.grad = gy
    y.backward()
    numpy.testing.assert_allclose(y.array, _ref_conv(x, W, b, (1, 1), (1, 1)), rtol=1e-12, atol=1e-12)
    _setenv(monkeypatch, "im2col")
    want = _grads(x, W, b, 1, gy)
    for got, ref in zip((xv.grad, Wv.grad, bv.grad), want[1:]):
        numpy.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_data_input_gets_no_gradient_but_the_same_weight_grad(winograd):
    x, W = _rand(numpy, 2, 3, 6, 6, dtype=numpy.float64), _rand(numpy, 4, 3, 3, 3, seed=1, dtype=numpy.float64)
    gy = _rand(numpy, 2, 4, 6, 6, seed=3, dtype=numpy.float64)
    grads = []
    for needs in (True, False):
        xv, Wv = Variable(x.copy(), requires_grad=needs), Variable(W.copy())
        y = F.convolution_2d(xv, Wv, pad=1)
        y.grad = gy
        y.backward()
        assert (xv.grad is not None) == needs
        grads.append(Wv.grad)
    numpy.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_transforms_against_their_matrices():
    """U = G g G^T, V = B^T d B, Y = A^T M A and Z = A gy A^T, each against the matrices written out."""
    rng = numpy.random.default_rng(0)
    G = numpy.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    Bt = numpy.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
    At = numpy.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)
    g = rng.standard_normal((2, 3, 3, 3))
    U = _winograd.filter_transform(numpy, g)
    Uf = _winograd.filter_transform(numpy, g, flip=True)
    for o in range(2):
        for c in range(3):
            numpy.testing.assert_allclose(U[:, o, c].reshape(4, 4), G @ g[o, c] @ G.T, atol=1e-12)
            numpy.testing.assert_allclose(Uf[:, o, c].reshape(4, 4), G @ g[o, c, ::-1, ::-1] @ G.T, atol=1e-12)
    dU = rng.standard_normal((16, 2, 3))
    dg = _winograd.filter_grad(numpy, dU, numpy.dtype(numpy.float64))
    numpy.testing.assert_allclose(dg[1, 2], G.T @ dU[:, 1, 2].reshape(4, 4) @ G, atol=1e-12)
    d = rng.standard_normal((6, 6, 2, 3))  # (Hp, Wp, n, C): 2x2 tiles
    V = _winograd.input_transform(numpy, d, 2, 2, numpy.empty((16, 2, 2, 2, 3)))
    numpy.testing.assert_allclose(V[:, 1, 0, 1, 2].reshape(4, 4), Bt @ d[2:6, 0:4, 1, 2] @ Bt.T, atol=1e-12)
    M = rng.standard_normal((16, 2, 2, 2, 3))
    Y = _winograd.output_transform(numpy, M, numpy.empty((4, 3, 2, 3)))  # odd width: a half tile
    full = At @ M[:, 1, 1, 0, 2].reshape(4, 4) @ At.T
    numpy.testing.assert_allclose(Y[2:4, 2:3, 0, 2], full[:, :1], atol=1e-12)
    gy = rng.standard_normal((3, 4, 2, 3))  # odd height, zero-padded to 4
    Z = _winograd.output_grad_transform(numpy, gy, 2, 2, numpy.empty((16, 2, 2, 2, 3)))
    tile = numpy.zeros((2, 2))
    tile[:1] = gy[2:3, 2:4, 1, 0]
    numpy.testing.assert_allclose(Z[:, 1, 1, 1, 0].reshape(4, 4), At.T @ tile @ At, atol=1e-12)


@pytest.mark.parametrize("c,o,kernel,stride,pad,dilate,want", [
    (128, 128, (3, 3), (1, 1), (1, 1), (1, 1), True),
    (512, 256, (3, 3), (1, 1), (0, 0), (1, 1), True),
    (64, 64, (3, 3), (1, 1), (1, 1), (1, 1), False),      # too few channels: im2col is faster
    (3, 128, (3, 3), (1, 1), (1, 1), (1, 1), False),
    (128, 128, (3, 3), (2, 2), (1, 1), (1, 1), False),    # strided
    (128, 128, (5, 5), (1, 1), (2, 2), (1, 1), False),
    (128, 128, (3, 3), (1, 1), (3, 3), (1, 1), False),    # padding past the kernel
    (128, 128, (3, 3), (1, 1), (2, 2), (2, 2), False),    # dilated
])
def test_auto_uses_winograd_where_it_applies_and_pays(monkeypatch, c, o, kernel, stride, pad, dilate, want):
    _setenv(monkeypatch, None)
    assert use_winograd(numpy, c, o, *kernel, stride, pad, dilate) is want
    _setenv(monkeypatch, "im2col")
    assert use_winograd(numpy, c, o, *kernel, stride, pad, dilate) is False
    _setenv(monkeypatch, "winograd")
    applies = kernel == (3, 3) and stride == (1, 1) and dilate == (1, 1) and max(pad) <= 2
    assert use_winograd(numpy, c, o, *kernel, stride, pad, dilate) is applies


def test_auto_keeps_im2col_on_gpus(monkeypatch):
    class NotNumpy:
        pass

    _setenv(monkeypatch, None)
    assert use_winograd(NotNumpy, 512, 512, 3, 3, (1, 1), (1, 1), (1, 1)) is False


def test_unknown_algorithm_is_refused(monkeypatch):
    _setenv(monkeypatch, "fft")
    with pytest.raises(ValueError, match="BENCHBENCH_CONV_ALGORITHM=fft: must be one of auto, im2col, winograd, direct"):
        F.convolution_2d(_rand(numpy, 1, 2, 4, 4), _rand(numpy, 2, 2, 3, 3), pad=1)


@pytest.mark.parametrize("verb", [["profile", "mlp_mnist", "--device", "cpu"], ["run", "--device", "cpu"]])
def test_cli_refuses_an_unknown_algorithm_in_one_line(monkeypatch, capsys, tmp_path, verb):
    from benchbench import cli

    monkeypatch.chdir(tmp_path)
    _setenv(monkeypatch, "fft")
    assert cli.main(verb) == 2
    err = capsys.readouterr().err
    assert err.strip() == "benchbench: error: BENCHBENCH_CONV_ALGORITHM=fft: must be one of auto, im2col, winograd, direct"
