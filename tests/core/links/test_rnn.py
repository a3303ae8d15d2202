"""LSTM and LSTMSequence links."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core import links as L
from benchbench.core.functions.rnn import lstm


def test_lstm_parameters_like_chainer():
    rnn = L.LSTM(3, 4)
    assert [n for n, _ in rnn.namedparams()] == ["/lateral/W", "/upward/W", "/upward/b"]
    assert rnn.upward.W.shape == (16, 3) and rnn.lateral.W.shape == (16, 4)
    b = rnn.upward.b.array.reshape(4, 4)  # (unit, gate a/i/f/o)
    numpy.testing.assert_array_equal(b[:, 2], 1.0)
    numpy.testing.assert_array_equal(b[:, [0, 1, 3]], 0.0)
    assert L.LSTM(4).upward.W.array is None


def test_lstm_steps_match_function():
    rnn = L.LSTM(3, 4)
    rng = numpy.random.default_rng(0)
    xs = rng.standard_normal((3, 2, 3)).astype(numpy.float32)
    h = numpy.zeros((2, 4), numpy.float32)
    c = numpy.zeros((2, 4), numpy.float32)
    for t in range(3):
        y = rnn(xs[t])
        pre = xs[t] @ rnn.upward.W.array.T + rnn.upward.b.array + h @ rnn.lateral.W.array.T
        c, h = (v.array for v in lstm(c, pre))
        numpy.testing.assert_allclose(y.array, h, rtol=1e-5, atol=1e-6)
    rnn.reset_state()
    assert rnn.h is None and rnn.c is None


def test_lstm_set_state():
    rnn = L.LSTM(2, 3)
    rnn.set_state(numpy.ones((1, 3), numpy.float32), numpy.ones((1, 3), numpy.float32))
    a = rnn(numpy.ones((1, 2), numpy.float32)).array
    rnn.reset_state()
    b = rnn(numpy.ones((1, 2), numpy.float32)).array
    assert not numpy.allclose(a, b)


def test_lstm_unrolled_1000_steps_backward():
    rnn = L.LSTM(1, 3)
    out = L.Linear(3, 1)
    loss = 0
    for t in range(1000):
        x = numpy.full((2, 1), numpy.sin(t * 0.1), numpy.float32)
        loss = loss + F.sum(out(rnn(x)))
    loss.backward()
    assert all(numpy.isfinite(p.grad).all() for p in rnn.params())
    assert rnn.lateral.W.grad.shape == (12, 3)


def test_lstm_sequence_link_equals_lstm_link():
    rnn = L.LSTM(3, 4)
    seq = L.LSTMSequence(3, 4)
    seq.W_x.array[...] = rnn.upward.W.array
    seq.W_h.array[...] = rnn.lateral.W.array
    seq.b.array[...] = rnn.upward.b.array
    xs = numpy.random.default_rng(1).standard_normal((5, 2, 3)).astype(numpy.float32)
    h_seq, h, c = seq(xs)
    loss_seq = F.sum(h_seq * h_seq)
    ys = [rnn(xs[t]) for t in range(5)]
    loss_step = sum(F.sum(y * y) for y in ys)
    numpy.testing.assert_allclose(h_seq.array, numpy.stack([y.array for y in ys]), rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(c.array, rnn.c.array, rtol=1e-5, atol=1e-6)
    loss_seq.backward()
    loss_step.backward()
    numpy.testing.assert_allclose(seq.W_h.grad, rnn.lateral.W.grad, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(seq.W_x.grad, rnn.upward.W.grad, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(seq.b.grad, rnn.upward.b.grad, rtol=1e-4, atol=1e-5)


def test_lstm_sequence_lazy_and_state_passing():
    seq = L.LSTMSequence(4)
    xs = numpy.ones((6, 2, 3), numpy.float32)
    h_all, h, c = seq(xs)
    assert seq.W_x.shape == (16, 3) and h_all.shape == (6, 2, 4)
    h_a, h1, c1 = seq(xs[:3])
    h_b, h2, c2 = seq(xs[3:], h1, c1)
    numpy.testing.assert_allclose(h_b.array, h_all.array[3:], rtol=1e-6)
    assert isinstance(h2, Variable)


def test_lstm_sequence_lazy_rejects_2d():
    with pytest.raises(ValueError, match="LSTMSequence"):
        L.LSTMSequence(4)(numpy.ones((2, 3), numpy.float32))


@pytest.mark.gpu
def test_lstm_state_moves_with_parent_chain():
    from benchbench.core import backend

    cupy = backend.cupy
    model = L.Sequential(L.LSTM(2, 3))
    model(numpy.ones((1, 2), numpy.float32))
    model.to_device("gpu:0")
    assert isinstance(model[0].h.array, cupy.ndarray) and isinstance(model[0].c.array, cupy.ndarray)
    y = model(cupy.ones((1, 2), cupy.float32))
    assert isinstance(y.array, cupy.ndarray)
