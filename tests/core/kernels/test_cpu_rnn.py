"""Compiled LSTM gate gradients (``lstm`` step by step and ``lstm_sequence``) against the numpy path
(float32, odd sizes) and float64 gradient checks on the compiled kernels."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F
from benchbench.core.gradient_check import check_backward
from benchbench.core.kernels import cpu_compiled

pytestmark = pytest.mark.skipif(not cpu_compiled.active(), reason="compiled kernels are off")


def _counted(monkeypatch, names):
    from benchbench.core.kernels import cpu_rnn

    calls = []
    for name in names:
        real = getattr(cpu_rnn, name)
        monkeypatch.setattr(cpu_rnn, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    return calls


def _steps(path, n, hsz, steps=3, dtype=numpy.float32):
    rng = numpy.random.default_rng(2)
    c = Variable(rng.standard_normal((n, hsz)).astype(dtype))
    xs = [Variable(2 * rng.standard_normal((n, 4 * hsz)).astype(dtype)) for _ in range(steps)]
    with cpu_compiled.using(path):
        cc, total = c, None
        for x in xs:
            cc, h = F.lstm(cc, x)
            total = F.sum(h * h) + F.sum(cc) if total is None else total + F.sum(h * h) + F.sum(cc)
        total.backward()
    return [cc.array, c.grad] + [x.grad for x in xs]


@pytest.mark.parametrize("n,hsz", [(7, 5), (1, 3)])
def test_compiled_lstm_steps_equal_the_numpy_path(n, hsz, monkeypatch):
    calls = _counted(monkeypatch, ["lstm_step_grad"])
    got = _steps("compiled", n, hsz)
    assert calls == ["lstm_step_grad"] * 3
    want = _steps("numpy", n, hsz)
    assert len(calls) == 3
    for g, w in zip(got, want):
        assert g.dtype == numpy.float32
        numpy.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _sequence(path, t_len, n, in_size, hsz, dtype=numpy.float32):
    rng = numpy.random.default_rng(4)
    arrays = [rng.standard_normal(s).astype(dtype) for s in
              ((t_len, n, in_size), (n, hsz), (n, hsz), (4 * hsz, in_size), (4 * hsz, hsz), (4 * hsz,))]
    vs = [Variable(a) for a in arrays]
    with cpu_compiled.using(path):
        h_seq, h_last, c_last = F.lstm_sequence(*vs)
        (F.sum(h_seq * h_seq) + F.sum(h_last) + F.sum(c_last * c_last)).backward()
    return [h_seq.array, c_last.array] + [v.grad for v in vs]


def test_compiled_lstm_sequence_equals_the_numpy_path(monkeypatch):
    calls = _counted(monkeypatch, ["sequence_step_grad"])
    got = _sequence("compiled", 4, 3, 2, 5)
    assert calls == ["sequence_step_grad"] * 4
    want = _sequence("numpy", 4, 3, 2, 5)
    assert len(calls) == 4
    for g, w in zip(got, want):
        numpy.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_compiled_lstm_gates_pass_float64_gradient_checks():
    rng = numpy.random.default_rng(0)
    with cpu_compiled.using("compiled"):
        check_backward(F.lstm, (rng.standard_normal((3, 2)), rng.standard_normal((3, 8))), atol=1e-6, rtol=1e-5)
        args = tuple(rng.standard_normal(s) for s in ((3, 2, 2), (2, 3), (2, 3), (12, 2), (12, 3), (12,)))
        check_backward(F.lstm_sequence, args, atol=1e-6, rtol=1e-5)
