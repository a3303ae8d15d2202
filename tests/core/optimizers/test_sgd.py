"""SGD against the formula."""
import numpy
import pytest

from benchbench.core import optimizers

from .reference import Net, reference, run


def test_single_step_by_hand():
    m = Net()
    w = m.a.W.array.copy()
    w_untouched = m.b.W.array.copy()
    m.a.W.grad = numpy.full_like(w, 2.0)
    opt = optimizers.SGD(lr=0.25).setup(m)
    opt.update()
    numpy.testing.assert_allclose(m.a.W.array, w - 0.5)
    numpy.testing.assert_array_equal(m.b.W.array, w_untouched)  # no grad: unchanged
    assert opt.t == 1


def test_matches_per_parameter_reference():
    def rule(p, g, state, t):
        p -= numpy.float32(0.03) * g

    want = reference(Net(), 4, rule)
    from benchbench.core import seed

    seed(0)
    got = run(Net(), optimizers.SGD(lr=0.03), 4)
    for n in want:
        numpy.testing.assert_allclose(got[n], want[n], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("lr", [0, -1.0, "x", float("nan")])
def test_rejects_bad_lr(lr):
    with pytest.raises((ValueError, TypeError), match="SGD: lr"):
        optimizers.SGD(lr=lr)
