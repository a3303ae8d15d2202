import numpy
import pytest

from benchbench.core import Function, Variable, no_backprop_mode


class Square(Function):
    def forward(self, xp, xs):
        return (xs[0] * xs[0],)

    def backward(self, xp, xs, gys):
        return (2 * xs[0] * gys[0],)


class AddF(Function):
    def forward(self, xp, xs):
        return (xs[0] + xs[1],)

    def backward(self, xp, xs, gys):
        return (gys[0], gys[0])


def sq(x):
    return Square().apply((x,))[0]


def add(a, b):
    return AddF().apply((a, b))[0]


def test_value_used_twice_accumulates(xp):
    x = Variable(xp.array(3.0))
    y = add(sq(x), sq(x))  # 2 x^2
    y.backward()
    assert float(x.grad) == pytest.approx(12.0)


def test_diamond_graph_ranks(xp):
    x = Variable(xp.array(2.0))
    a = sq(x)          # x^2
    b = add(a, a)      # 2 x^2
    c = add(b, a)      # 3 x^2
    d = sq(c)          # 9 x^4
    d.backward()
    assert float(x.grad) == pytest.approx(36 * 2.0**3)


def test_long_chain_no_recursion(xp):
    x = Variable(xp.array(1.0))
    y = x
    for _ in range(5000):
        y = add(y, Variable(xp.array(0.0), requires_grad=False))
    y.backward()
    assert float(x.grad) == 1.0


def test_no_backprop_mode_records_nothing(xp):
    x = Variable(xp.array(2.0))
    with no_backprop_mode():
        y = sq(x)
    assert y.creator is None


def test_array_inputs_need_no_grad(xp):
    x = xp.array(2.0)
    w = Variable(xp.array(3.0))
    y = add(x, w)
    seen = {}

    class Spy(AddF):
        def forward(self, xp_, xs):
            seen["need"] = self.needs_input_grad
            return super().forward(xp_, xs)

    Spy().apply((x, w))
    y.backward()
    assert seen["need"] == (False, True)
    assert float(w.grad) == 1.0


def test_nonscalar_backward_needs_grad(xp):
    x = Variable(xp.ones((2, 3)))
    y = sq(x)
    with pytest.raises(ValueError, match="set its .grad"):
        y.backward()
    y.grad = xp.ones((2, 3))
    y.backward()
    numpy.testing.assert_allclose(numpy.asarray(x.grad.tolist()), 2.0)


def test_graph_freed_after_backward(xp):
    x = Variable(xp.array(2.0))
    h = sq(x)
    y = sq(h)
    f = h.creator
    y.backward()
    assert f.inputs is None and h.creator is None
    assert h.grad is None  # intermediate gradients are not kept


def test_variable_rejects_lists():
    with pytest.raises(TypeError, match="Variable: data must be"):
        Variable([1, 2, 3])
