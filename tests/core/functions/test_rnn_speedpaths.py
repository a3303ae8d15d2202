"""lstm_sequence's fused fast path: layouts, carried gradients, partial gradients, extremes."""
import numpy
import pytest

from benchbench.core import Variable, backend
from benchbench.core import functions as F
from benchbench.core.functions.rnn import lstm, lstm_sequence
from benchbench.core.gradient_check import check_backward

pytestmark = pytest.mark.usefixtures("cpu_kernels")  # the compiled CPU kernels and the numpy path


def _inputs(rng, t, n, i, h, bias=True, dtype=numpy.float64, scale=0.5):
    arrs = [rng.standard_normal((t, n, i)), rng.standard_normal((n, h)), rng.standard_normal((n, h)),
            rng.standard_normal((4 * h, i)) * scale, rng.standard_normal((4 * h, h)) * scale,
            rng.standard_normal(4 * h) if bias else None]
    return [None if a is None else a.astype(dtype) for a in arrs]


def _unrolled(x_seq, h0, c0, w_x, w_h, b):
    """T applications of lstm on Variables: the reference for values and gradients."""
    h, c, hs = h0, c0, []
    for t in range(x_seq.shape[0]):
        g = F.linear(x_seq[t], w_x, b) + F.linear(h, w_h)
        c, h = lstm(c, g)
        hs.append(h)
    return hs, h, c


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("t, n, i, h", [(6, 3, 2, 4), (2, 1, 7, 1), (5, 4, 3, 9)])
def test_gradients_equal_the_unrolled_steps_with_every_output_gradient(xp, bias, t, n, i, h):
    rng = numpy.random.default_rng(20 + t)
    data = [None if a is None else xp.asarray(a) for a in _inputs(rng, t, n, i, h, bias)]
    gys = [xp.asarray(rng.standard_normal(s)) for s in ((t, n, h), (n, h), (n, h))]

    def run(fused):
        vs = [None if a is None else Variable(a.copy()) for a in data]
        if fused:
            hs, h_t, c_t = lstm_sequence(*vs)
            loss = float((hs.array * gys[0]).sum())
            total = _sum_weighted(hs, gys[0]) + _sum_weighted(h_t, gys[1]) + _sum_weighted(c_t, gys[2])
        else:
            hs, h_t, c_t = _unrolled(*vs)
            loss = sum(float((hk.array * gys[0][k]).sum()) for k, hk in enumerate(hs))
            total = _sum_weighted(h_t, gys[1]) + _sum_weighted(c_t, gys[2])
            for k, hk in enumerate(hs):
                total = total + _sum_weighted(hk, gys[0][k])
        total.backward()
        return float(loss), [None if v is None else backend.as_numpy(v.grad) for v in vs]

    loss_f, grads_f = run(True)
    loss_u, grads_u = run(False)
    assert loss_f == pytest.approx(loss_u, rel=1e-12, abs=1e-12)
    for gf, gu in zip(grads_f, grads_u):
        if gu is None:
            assert gf is None
            continue
        assert gf.shape == gu.shape and gf.flags.c_contiguous
        numpy.testing.assert_allclose(gf, gu, rtol=1e-10, atol=1e-12)


def _sum_weighted(v, w):
    return F.sum(v * w)


@pytest.mark.parametrize("which", range(6))
def test_only_the_requested_gradient_is_computed(which):
    rng = numpy.random.default_rng(30 + which)
    data = _inputs(rng, 4, 3, 2, 3)
    vs = [Variable(a, requires_grad=(k == which)) for k, a in enumerate(data)]
    hs, _, c_t = lstm_sequence(*vs)
    (_sum_weighted(hs, numpy.ones_like(hs.array)) + _sum_weighted(c_t, numpy.ones_like(c_t.array))).backward()
    for k, v in enumerate(vs):
        assert (v.grad is not None) == (k == which)
    assert vs[which].grad.shape == data[which].shape and numpy.abs(vs[which].grad).sum() > 0


def test_backward_through_last_cell_state_only_with_long_sequence():
    rng = numpy.random.default_rng(40)
    args = _inputs(rng, 12, 2, 2, 3)
    # A small step: over 12 steps the central difference's O(eps^2) error exceeds 1e-5 at eps=1e-3.
    check_backward(lambda *a: lstm_sequence(*a)[2], args, eps=1e-5, atol=1e-6, rtol=1e-5)


def test_float32_outputs_are_contiguous_and_match_float64(xp):
    rng = numpy.random.default_rng(41)
    a64 = _inputs(rng, 50, 20, 1, 5)
    want = lstm_sequence(*(xp.asarray(a) for a in a64))
    got = lstm_sequence(*(xp.asarray(a.astype(numpy.float32)) for a in a64))
    for g, w in zip(got, want):
        assert g.dtype == numpy.float32 and g.array.flags.c_contiguous
        numpy.testing.assert_allclose(backend.as_numpy(g.array), backend.as_numpy(w.array), atol=1e-5, rtol=1e-5)


def test_saturated_gates_stay_finite():
    rng = numpy.random.default_rng(42)
    x_seq, h0, c0, w_x, w_h, b = _inputs(rng, 5, 2, 3, 2, dtype=numpy.float32)
    b = numpy.tile(numpy.array([1e4, -1e4, 1e4, -1e4], numpy.float32), 2)
    vs = [Variable(a) for a in (x_seq, h0, c0, w_x, w_h, b)]
    hs, h_t, c_t = lstm_sequence(*vs)
    (_sum_weighted(hs, numpy.ones_like(hs.array)) + _sum_weighted(c_t, numpy.ones_like(c_t.array))).backward()
    assert all(numpy.isfinite(v.array).all() for v in (hs, h_t, c_t))
    assert all(numpy.isfinite(v.grad).all() for v in vs)
    # a = tanh(+big) = 1, i = sigmoid(-big) = 0, f = 1, o = 0: c stays c0, h is 0.
    numpy.testing.assert_allclose(c_t.array, c0, rtol=1e-6)
    numpy.testing.assert_array_equal(hs.array, 0)


def test_inputs_are_not_modified(xp):
    rng = numpy.random.default_rng(43)
    data = [xp.asarray(a) for a in _inputs(rng, 3, 2, 2, 3)]
    before = [backend.as_numpy(a).copy() for a in data]
    vs = [Variable(a) for a in data]
    hs, _, _ = lstm_sequence(*vs)
    hs.grad = xp.ones_like(hs.array)
    hs.backward()
    for a, b in zip(data, before):
        numpy.testing.assert_array_equal(backend.as_numpy(a), b)
