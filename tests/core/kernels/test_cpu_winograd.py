"""The compiled Winograd convolutions (``cpu_winograd``): F(2x2) and F(4x4) for 3x3 and 5x5 filters
against a float64 im2col reference on odd sizes, pads and rectangles, the Toom-Cook matrices and the
transforms against their definitions, float64 gradients through ``F.convolution_2d``, the chunk and
worker split, the BLAS limit they run under, and which layers ``auto`` sends them."""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.config import using_config
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import conv_algorithm, cpu_compiled

pytestmark = pytest.mark.skipif(not cpu_compiled.active() and cpu_compiled.numba_error() is not None,
                                reason="numba did not import")


@pytest.fixture
def cw():
    with cpu_compiled.using("compiled"):
        from benchbench.core.kernels import cpu_winograd

        yield cpu_winograd


def _rand(shape, seed, dtype=numpy.float64):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _reference(x, W, b, pad, gy):
    """y, gx, gW, gb in float64 by im2col on the numpy path."""
    xv, Wv, bv = (Variable(a.astype(numpy.float64), requires_grad=True) for a in (x, W, b))
    with cpu_compiled.using("numpy"), using_config("conv_algorithm", "im2col"):
        y = F.convolution_2d(xv, Wv, bv, pad=pad)
        y.grad = gy.astype(numpy.float64)
        y.backward()
    return y.array, xv.grad, Wv.grad, bv.grad


# (n, c, o, h, w, pad): odd and even outputs, rectangles, every padding the kernels take (below the
# kernel size), a plane smaller than one 4x4 tile, channel counts that are not a multiple of the
# copies' block of 8
CASES = [
    (3, 5, 7, 9, 11, (1, 1)),
    (2, 4, 6, 8, 8, (0, 0)),
    (2, 3, 5, 7, 6, (2, 1)),
    (1, 2, 3, 3, 4, (1, 2)),
    (4, 9, 10, 10, 5, (2, 2)),
    (2, 17, 16, 6, 6, (1, 1)),
    (2, 3, 4, 12, 9, (4, 3)),
]
# worst error relative to the largest reference value: float32 rounding through the transforms
TOLERANCE = {("float32", 2): 3e-6, ("float32", 4): 4e-5, ("float64", 2): 1e-13, ("float64", 4): 1e-12}


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("r", [3, 5])
@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_match_im2col(cw, case, r, dtype, m):
    n, c, o, h, w, pad = case
    if max(pad) > r - 1 or min(h + 2 * pad[0], w + 2 * pad[1]) < r:
        pytest.skip("outside the geometry Winograd takes")
    x, W, b = _rand((n, c, h, w), 1, dtype), _rand((o, c, r, r), 2, dtype), _rand((o,), 3, dtype)
    oh, ow = h + 2 * pad[0] - r + 1, w + 2 * pad[1] - r + 1
    gy = _rand((n, o, oh, ow), 4, dtype)
    want = _reference(x, W, b, pad, gy)
    y = cw.forward(x, W, b, pad, oh, ow, m)
    gx, gW, gb = cw.backward((x, W, b), gy, pad, oh, ow, (True, True, True), m)
    tol = TOLERANCE[dtype, m] * (5 if (r, dtype, m) == (5, "float32", 2) else 1)
    for got, ref in zip((y, gx, gW, gb), want):
        assert got.dtype == numpy.dtype(dtype) and got.shape == ref.shape
        assert numpy.abs(got - ref).max() <= tol * numpy.abs(ref).max()


@pytest.mark.parametrize("m, r", [(2, 3), (4, 3), (2, 5), (4, 5)])
def test_the_toom_cook_matrices_compute_a_correlation_exactly(cw, m, r):
    """In float64, Y = A^T [(G g G^T) * (B^T d B)] A is the r x r correlation of an (m+r-1)^2 patch."""
    BT, G, AT = cw.matrices(m, numpy.float64, r)
    a = m + r - 1
    assert BT.shape == (a, a) and G.shape == (a, r) and AT.shape == (m, a)
    d, g = _rand((a, a), 1), _rand((r, r), 2)
    y = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
    want = numpy.array([[(d[i:i + r, j:j + r] * g).sum() for j in range(m)] for i in range(m)])
    numpy.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    if (m, r) == (2, 3):  # Lavin and Gray's own F(2x2, 3x3), up to the signs of two rows of B^T
        assert numpy.array_equal(numpy.abs(BT), numpy.abs(numpy.array(
            [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])))


def test_gradients_not_asked_for_are_none(cw):
    x, W = _rand((2, 3, 6, 6), 1), _rand((4, 3, 3, 3), 2)
    gy = _rand((2, 4, 6, 6), 3)
    gx, gW = cw.backward((x, W), gy, (1, 1), 6, 6, (False, True))
    assert gx is None and gW.shape == W.shape
    gx, gW = cw.backward((x, W), gy, (1, 1), 6, 6, (True, False))
    assert gW is None and gx.shape == x.shape


@pytest.mark.parametrize("m", [2, 4])
def test_transforms_against_their_matrices(cw, m):
    """V = B^T d B per tile, Z = A g A^T per tile and Y = A^T M A, computed here with numpy's einsum."""
    BT, G, AT = cw.matrices(m, numpy.float64)
    a = m + 2
    n, c, h, w, pad = 2, 3, 7, 5, (1, 1)
    x = _rand((n, c, h, w), 5)
    oh, ow = h, w
    th, tw = cw.tiles(oh, ow, m)
    V = cw.input_tiles(x, 0, n, pad, th, tw, m)
    xp = numpy.zeros((n, c, m * th + 2, m * tw + 2))
    xp[:, :, 1:1 + h, 1:1 + w] = x
    for s in range(n):
        for ty in range(th):
            for tx in range(tw):
                d = xp[s, :, m * ty:m * ty + a, m * tx:m * tx + a]  # (c, a, a)
                want = numpy.einsum("ij,cjk,lk->ilc", BT, d, BT).reshape(a * a, c)
                numpy.testing.assert_allclose(V[:, (s * th + ty) * tw + tx], want, rtol=1e-13, atol=1e-13)
    gy = _rand((n, 4, oh, ow), 6)
    Z = cw.grad_tiles(gy, 0, n, th, tw, m)
    gp = numpy.zeros((n, 4, m * th, m * tw))
    gp[:, :, :oh, :ow] = gy
    M = _rand((a * a, n * th * tw, 4), 7)
    out = numpy.empty((n, 4, oh, ow))
    cw.output_tiles(M, numpy.zeros(4), out, 0, th, tw, m)
    for s in range(n):
        for ty in range(th):
            for tx in range(tw):
                t = (s * th + ty) * tw + tx
                g = gp[s, :, m * ty:m * ty + m, m * tx:m * tx + m]
                want = numpy.einsum("ji,ojk,kl->ilo", AT, g, AT).reshape(a * a, 4)
                numpy.testing.assert_allclose(Z[:, t], want, rtol=1e-13, atol=1e-13)
                y = numpy.einsum("ij,jko,lk->oil", AT, M[:, t].reshape(a, a, 4), AT)
                r, q = min(m, oh - m * ty), min(m, ow - m * tx)
                numpy.testing.assert_allclose(out[s, :, m * ty:m * ty + r, m * tx:m * tx + q], y[:, :r, :q],
                                              rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("r, pad", [(3, 0), (3, 1), (3, 2), (5, 0), (5, 3)])
def test_float64_gradients_through_the_function(cw, r, pad, monkeypatch):
    calls = []
    forward = cw.forward
    monkeypatch.setattr(cw, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    x, W, b = _rand((2, 3, 6, 5), 1), _rand((4, 3, r, r), 2), _rand((4,), 3)
    with using_config("conv_algorithm", "winograd"):
        check_backward(lambda x, W, b: F.convolution_2d(x, W, b, pad=pad), (x, W, b))
    assert calls  # the compiled path ran


def test_chunks_and_workers_give_the_one_chunk_result(cw, monkeypatch):
    """A chunk per sample over two workers gives what one chunk on one worker gives (float64: to rounding)."""
    x, W, b = _rand((5, 6, 9, 7), 1), _rand((8, 6, 3, 3), 2), _rand((8,), 3)
    gy = _rand((5, 8, 9, 7), 4)

    def run():
        return (cw.forward(x, W, b, (1, 1), 9, 7),) + cw.backward((x, W, b), gy, (1, 1), 9, 7, (True, True, True))

    monkeypatch.setattr(cw, "WHOLE_BATCH_BYTES", 0)  # by chunks
    monkeypatch.setattr(cw, "_workers", lambda n: 1)
    whole = run()
    monkeypatch.setattr(cw, "CHUNK_BYTES", 1)
    monkeypatch.setattr(cw, "_workers", lambda n: min(2, n))
    assert cw._chunks(5, 100, 8, 2) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert cw._chunks(5, 100, 8, 2) != cw._chunks(4, 100, 8, 2)
    split = run()
    for got, want in zip(split, whole):
        numpy.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("r, n", [(3, 5), (5, 3)])
def test_by_tile_positions_gives_what_chunks_give_whatever_the_workers(cw, monkeypatch, r, n):
    """Split by tile positions (a small layer), two workers give the bits one gives, and both the
    chunked result to rounding (float64); an odd batch and a*a = 36 or 64 positions split unevenly
    on no worker's expense."""
    x, W, b = _rand((n, 6, 9, 7), 1), _rand((8, 6, r, r), 2), _rand((8,), 3)
    oh, ow = 9 - r + 3, 7 - r + 3  # pad 1
    gy = _rand((n, 8, oh, ow), 4)
    calls = []
    matmul = numpy.matmul

    def run():
        return (cw.forward(x, W, b, (1, 1), oh, ow),) + cw.backward((x, W, b), gy, (1, 1), oh, ow, (True,) * 3)

    monkeypatch.setattr(cw, "_workers", lambda n: 1)
    one = run()
    monkeypatch.setattr(cw, "_workers", lambda n: min(2, n))
    monkeypatch.setattr(cw.numpy, "matmul", lambda a, *rest, **k: calls.append(a.shape) or matmul(a, *rest, **k))
    two = run()
    monkeypatch.undo()
    aa = (4 + r - 1) ** 2
    assert sorted({shape[0] for shape in calls if len(shape) == 3}) == [aa // 2]  # each worker half the positions
    for got, want in zip(two, one):
        assert numpy.array_equal(got, want)
    monkeypatch.setattr(cw, "WHOLE_BATCH_BYTES", 0)
    for got, want in zip(run(), one):
        numpy.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_which_layers_run_by_tile_positions(cw):
    a, t = 6, 1  # ResNet-18's 512-channel stage: 4x4 planes, one tile per sample
    assert cw._by_positions(64, a * a * t * (512 + 512), 4)
    assert not cw._by_positions(64, a * a * 4 * (256 + 256), 4)  # the 256-channel stage: by chunks
    assert cw._shares(5, 2) == [(0, 2), (2, 5)] and cw._shares(36, 2) == [(0, 18), (18, 36)]


def test_chunk_counts_are_a_multiple_of_the_workers_where_the_batch_allows(cw, monkeypatch):
    monkeypatch.setattr(cw, "CHUNK_BYTES", 3 * 100)
    assert len(cw._chunks(64, 100, 1, 2)) == 22  # 22 of about three samples, not 21 and an idle worker
    assert len(cw._chunks(3, 100, 1, 4)) == 3  # never more chunks than samples
    chunks = cw._chunks(64, 100, 1, 2)
    assert chunks[0][0] == 0 and chunks[-1][1] == 64 and all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))


def test_workers_run_with_the_blas_library_at_one_thread_and_restore_it(cw, monkeypatch):
    seen = []
    monkeypatch.setattr(cw, "_workers", lambda n: 2)
    before = backend.blas_threads()

    def fn(i):
        seen.append((i, backend.blas_threads()))
        if i == 1:
            raise RuntimeError("worker failed")
        return i

    with pytest.raises(RuntimeError, match="worker failed"):
        cw._in_parallel(2, fn)
    assert sorted(seen) == [(0, 1), (1, 1)] or backend._blas["controller"] is None
    assert backend.blas_threads() == before
    assert cw._in_parallel(1, lambda i: i * 10) == [0]


def test_auto_takes_the_compiled_winograd_from_64_channels_at_3x3_and_32_at_5x5(cw, monkeypatch):
    x, W = _rand((1, 64, 6, 6), 1, "float32"), _rand((64, 64, 3, 3), 2, "float32")
    assert conv_algorithm.use_winograd(numpy, 64, 64, 3, 3, (1, 1), (1, 1), (1, 1), arrays=(x, W))
    assert not conv_algorithm.use_winograd(numpy, 32, 64, 3, 3, (1, 1), (1, 1), (1, 1), arrays=(x, W))
    assert conv_algorithm.use_winograd(numpy, 32, 64, 5, 5, (1, 1), (0, 0), (1, 1), arrays=(x, W))
    assert not conv_algorithm.use_winograd(numpy, 16, 64, 5, 5, (1, 1), (0, 0), (1, 1), arrays=(x, W))
    assert not conv_algorithm.use_winograd(numpy, 64, 64, 5, 5, (2, 2), (0, 0), (1, 1), arrays=(x, W))
    assert not conv_algorithm.use_winograd(numpy, 64, 64, 5, 5, (1, 1), (5, 5), (1, 1), arrays=(x, W))
    assert not conv_algorithm.use_winograd(numpy, 64, 64, 7, 7, (1, 1), (0, 0), (1, 1), arrays=(x, W))
    with cpu_compiled.using("numpy"), using_config("conv_algorithm", "winograd"):  # numpy's: 3x3 only
        assert not conv_algorithm.use_winograd(numpy, 64, 64, 5, 5, (1, 1), (0, 0), (1, 1), arrays=(x, W))
    # without arrays the compiled kernels take (or on the numpy path), the numpy transforms' bound holds
    assert not conv_algorithm.use_winograd(numpy, 64, 64, 3, 3, (1, 1), (1, 1), (1, 1))
    assert not conv_algorithm.use_winograd(numpy, 64, 64, 3, 3, (1, 1), (1, 1), (1, 1),
                                           arrays=(x, W.astype(numpy.float64)))
    with cpu_compiled.using("numpy"):
        assert not conv_algorithm.use_winograd(numpy, 64, 64, 3, 3, (1, 1), (1, 1), (1, 1), arrays=(x, W))
    calls = []
    forward = cw.forward
    monkeypatch.setattr(cw, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    with using_config("conv_algorithm", "auto"):
        F.convolution_2d(Variable(x), Variable(W), pad=1)
    assert calls == [1]


def test_backward_follows_the_path_forward_took(cw, monkeypatch):
    """A 5x5 layer whose forward ran compiled keeps the compiled backward when the switch changes in between."""
    x, W = Variable(_rand((2, 32, 9, 9), 1, "float32")), Variable(_rand((32, 32, 5, 5), 2, "float32"))
    calls = []
    backward = cw.backward
    monkeypatch.setattr(cw, "backward", lambda *a, **k: calls.append(1) or backward(*a, **k))
    with using_config("conv_algorithm", "auto"):
        y = F.convolution_2d(x, W)
    with cpu_compiled.using("numpy"):
        y.grad = numpy.ones(y.shape, numpy.float32)
        y.backward()
    assert calls == [1] and W.grad.shape == W.array.shape
