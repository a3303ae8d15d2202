"""MomentumSGD against the formula (Chainer's form: v = momentum v - lr g; p += v)."""
import numpy
import pytest

from benchbench.core import optimizers, seed

from .reference import Net, reference, run


def test_two_steps_by_hand():
    m = Net()
    w = m.a.b.array.copy()
    opt = optimizers.MomentumSGD(lr=0.1, momentum=0.5).setup(m)
    m.a.b.grad = numpy.ones_like(w)
    opt.update()
    numpy.testing.assert_allclose(m.a.b.array, w - 0.1, rtol=1e-6)
    m.a.b.grad = numpy.full_like(w, 3.0)
    opt.update()
    # v1 = -0.1; v2 = 0.5 * -0.1 - 0.3 = -0.35
    numpy.testing.assert_allclose(m.a.b.array, w - 0.1 - 0.35, rtol=1e-6)


def test_matches_per_parameter_reference():
    def rule(p, g, state, t):
        v = state.setdefault("v", numpy.zeros_like(p))
        v *= numpy.float32(0.9)
        v -= numpy.float32(0.05) * g
        p += v

    want = reference(Net(), 5, rule)
    seed(0)
    got = run(Net(), optimizers.MomentumSGD(lr=0.05, momentum=0.9), 5)
    for n in want:
        numpy.testing.assert_allclose(got[n], want[n], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kwargs", [{"momentum": 1.0}, {"momentum": -0.1}, {"lr": 0.0}])
def test_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError, match="MomentumSGD"):
        optimizers.MomentumSGD(**kwargs)
