"""lstm and lstm_sequence: forward against plain numpy, backward numerically."""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core.functions.rnn import lstm, lstm_sequence
from benchbench.core.gradient_check import check_backward

pytestmark = pytest.mark.usefixtures("cpu_kernels")  # the compiled CPU kernels and the numpy path


def _sigmoid(x):
    return 1.0 / (1.0 + numpy.exp(-x))


def _ref_lstm(c_prev, x):
    n, h4 = x.shape
    g = x.reshape(n, h4 // 4, 4)
    a, i, f, o = numpy.tanh(g[:, :, 0]), _sigmoid(g[:, :, 1]), _sigmoid(g[:, :, 2]), _sigmoid(g[:, :, 3])
    c = a * i + f * c_prev
    return c, o * numpy.tanh(c)


def _ref_sequence(xs, h, c, w_x, w_h, b):
    out = []
    for x in xs:
        c, h = _ref_lstm(c, x @ w_x.T + h @ w_h.T + (0 if b is None else b))
        out.append(h)
    return numpy.stack(out), h, c


def _rand(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_lstm_forward_matches_numpy(xp, dtype):
    rng = numpy.random.default_rng(1)
    c_prev, x = _rand(rng, 3, 5), _rand(rng, 3, 20, scale=2.0)
    c, h = lstm(xp.asarray(c_prev.astype(dtype)), xp.asarray(x.astype(dtype)))
    rc, rh = _ref_lstm(c_prev, x)
    tol = 1e-6 if dtype == numpy.float32 else 1e-12
    assert c.dtype == dtype and h.shape == (3, 5)
    numpy.testing.assert_allclose(backend.as_numpy(c.array), rc, atol=tol, rtol=tol)
    numpy.testing.assert_allclose(backend.as_numpy(h.array), rh, atol=tol, rtol=tol)


def test_lstm_large_preactivations_no_overflow():
    x = numpy.full((2, 8), -1000.0, numpy.float32)
    x[:, 1::4] = 1000.0
    c, h = lstm(numpy.zeros((2, 2), numpy.float32), x)
    assert numpy.isfinite(c.array).all() and numpy.isfinite(h.array).all()


def test_lstm_backward(xp):
    rng = numpy.random.default_rng(2)
    check_backward(lstm, (xp.asarray(_rand(rng, 3, 5)), xp.asarray(_rand(rng, 3, 20))))


def test_lstm_backward_one_output_only():
    rng = numpy.random.default_rng(3)
    check_backward(lambda c, x: lstm(c, x)[1], (_rand(rng, 2, 3), _rand(rng, 2, 12)))


def test_lstm_gradient_only_for_inputs_that_need_it():
    rng = numpy.random.default_rng(4)
    x = Variable(_rand(rng, 2, 12))
    c_prev = Variable(_rand(rng, 2, 3), requires_grad=False)
    _, h = lstm(c_prev, x)
    h.grad = numpy.ones_like(h.array)
    h.backward()
    assert x.grad.shape == (2, 12) and numpy.abs(x.grad).sum() > 0
    assert c_prev.grad is None


@pytest.mark.parametrize(
    "c_shape, x_shape, err",
    [((2, 3), (2, 13), ValueError), ((2, 4), (2, 12), ValueError), ((2, 3), (3, 12), ValueError),
     ((2, 3, 1), (2, 12), ValueError)],
)
def test_lstm_rejects_bad_shapes(c_shape, x_shape, err):
    with pytest.raises(err, match="lstm"):
        lstm(numpy.zeros(c_shape), numpy.zeros(x_shape))


def test_lstm_rejects_int_and_mixed_dtypes():
    with pytest.raises(TypeError, match="lstm: x"):
        lstm(numpy.zeros((2, 3)), numpy.zeros((2, 12), numpy.int32))
    with pytest.raises(TypeError, match="dtype"):
        lstm(numpy.zeros((2, 3), numpy.float32), numpy.zeros((2, 12)))


def _seq_inputs(rng, t, n, i, h, bias=True):
    return (_rand(rng, t, n, i), _rand(rng, n, h), _rand(rng, n, h), _rand(rng, 4 * h, i, scale=0.5),
            _rand(rng, 4 * h, h, scale=0.5), _rand(rng, 4 * h) if bias else None)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_sequence_forward_matches_numpy(xp, bias):
    rng = numpy.random.default_rng(5)
    args = _seq_inputs(rng, 7, 3, 4, 5, bias)
    hs, h, c = lstm_sequence(*(None if a is None else xp.asarray(a) for a in args))
    rhs, rh, rc = _ref_sequence(*args)
    assert hs.shape == (7, 3, 5) and h.shape == c.shape == (3, 5)
    for got, want in ((hs, rhs), (h, rh), (c, rc)):
        numpy.testing.assert_allclose(backend.as_numpy(got.array), want, atol=1e-12, rtol=1e-12)


def test_lstm_sequence_equals_repeated_lstm_float32(xp):
    rng = numpy.random.default_rng(6)
    x_seq, h0, c0, w_x, w_h, b = (xp.asarray(a.astype(numpy.float32)) for a in _seq_inputs(rng, 5, 4, 3, 6))
    hs, h_last, c_last = lstm_sequence(x_seq, h0, c0, w_x, w_h, b)
    h, c = h0, c0
    for t in range(5):
        c, h = lstm(c, x_seq[t] @ w_x.T + h @ w_h.T + b)
        c, h = c.array, h.array
        numpy.testing.assert_allclose(backend.as_numpy(hs.array[t]), backend.as_numpy(h), atol=1e-5, rtol=1e-5)
    numpy.testing.assert_allclose(backend.as_numpy(c_last.array), backend.as_numpy(c), atol=1e-5, rtol=1e-5)
    assert hs.dtype == numpy.float32


@pytest.mark.parametrize("t, n, i, h", [(1, 1, 1, 1), (4, 3, 2, 3), (3, 2, 5, 4)])
def test_lstm_sequence_backward_all_inputs(xp, t, n, i, h):
    rng = numpy.random.default_rng(7 + t)
    args = tuple(xp.asarray(a) for a in _seq_inputs(rng, t, n, i, h))
    check_backward(lstm_sequence, args, atol=1e-6, rtol=1e-5)


def test_lstm_sequence_backward_without_bias_and_last_state_only():
    rng = numpy.random.default_rng(8)
    args = _seq_inputs(rng, 3, 2, 3, 2, bias=False)[:5]
    check_backward(lambda *a: lstm_sequence(*a)[1:], args, atol=1e-6, rtol=1e-5)


def test_lstm_sequence_zero_initial_state_by_default():
    rng = numpy.random.default_rng(9)
    x_seq, _, _, w_x, w_h, b = _seq_inputs(rng, 3, 2, 3, 4)
    zeros = numpy.zeros((2, 4))
    got = lstm_sequence(x_seq, None, None, w_x, w_h, b)[0].array
    want = lstm_sequence(x_seq, zeros, zeros, w_x, w_h, b)[0].array
    numpy.testing.assert_array_equal(got, want)


def test_lstm_sequence_skips_unneeded_gradients():
    rng = numpy.random.default_rng(10)
    x_seq, h0, c0, w_x, w_h, b = _seq_inputs(rng, 3, 2, 3, 4)
    wv = Variable(w_h)
    hs, _, _ = lstm_sequence(x_seq, h0, c0, w_x, wv, b)
    hs.grad = numpy.ones_like(hs.array)
    hs.backward()
    assert wv.grad.shape == w_h.shape


def test_lstm_sequence_rejects_bad_input():
    rng = numpy.random.default_rng(11)
    x_seq, h0, c0, w_x, w_h, b = _seq_inputs(rng, 3, 2, 3, 4)
    with pytest.raises(ValueError, match="lstm_sequence: x_seq"):
        lstm_sequence(x_seq[0], h0, c0, w_x, w_h, b)
    with pytest.raises(ValueError, match="lstm_sequence: x_seq"):
        lstm_sequence(x_seq[:0], h0, c0, w_x, w_h, b)
    with pytest.raises(ValueError, match="lstm_sequence: W_x"):
        lstm_sequence(x_seq, h0, c0, w_x[:, :2], w_h, b)
    with pytest.raises(ValueError, match="lstm_sequence: W_h"):
        lstm_sequence(x_seq, h0, c0, w_x, w_h[:, :3], b)
    with pytest.raises(ValueError, match="lstm_sequence: h0"):
        lstm_sequence(x_seq, h0[:1], c0, w_x, w_h, b)
    with pytest.raises(ValueError, match="lstm_sequence: b"):
        lstm_sequence(x_seq, h0, c0, w_x, w_h, b[:3])
    with pytest.raises(TypeError, match="lstm_sequence: W_h has dtype"):
        lstm_sequence(x_seq, h0, c0, w_x, w_h.astype(numpy.float32), b)
    with pytest.raises(TypeError, match="lstm_sequence: x_seq"):
        lstm_sequence(x_seq.astype(numpy.int64), h0, c0, w_x, w_h, b)
