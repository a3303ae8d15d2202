"""Adam against Chainer's formula, by hand and per parameter over several steps."""
import math

import numpy
import pytest

from benchbench.core import optimizers, seed

from .reference import Net, reference, run


def test_first_step_by_hand():
    m = Net()
    w = m.a.W.array.astype(numpy.float64)
    g = numpy.random.default_rng(0).standard_normal(w.shape).astype(numpy.float32)
    m.a.W.grad = g
    opt = optimizers.Adam(alpha=0.01, beta1=0.8, beta2=0.99, eps=1e-6).setup(m)
    opt.update()
    m1 = 0.2 * g
    v1 = 0.01 * g.astype(numpy.float64) ** 2
    alpha_t = 0.01 * math.sqrt(1 - 0.99) / (1 - 0.8)
    numpy.testing.assert_allclose(m.a.W.array, w - alpha_t * m1 / (numpy.sqrt(v1) + 1e-6), rtol=1e-5, atol=1e-6)
    assert opt.alpha_t == pytest.approx(alpha_t) and opt.lr == opt.alpha_t


def test_matches_per_parameter_reference():
    alpha, b1, b2, eps = 0.002, 0.9, 0.999, 1e-8

    def rule(p, g, state, t):
        m = state.setdefault("m", numpy.zeros_like(p))
        v = state.setdefault("v", numpy.zeros_like(p))
        m += numpy.float32(1 - b1) * (g - m)
        v += numpy.float32(1 - b2) * (g * g - v)
        lr = alpha * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p -= numpy.float32(lr) * m / (numpy.sqrt(v) + numpy.float32(eps))

    want = reference(Net(), 6, rule)
    seed(0)
    got = run(Net(), optimizers.Adam(alpha=alpha, beta1=b1, beta2=b2, eps=eps), 6)
    for n in want:
        numpy.testing.assert_allclose(got[n], want[n], rtol=1e-5, atol=1e-7)


def test_same_seed_gives_bit_identical_params():
    seed(1)
    a = run(Net(), optimizers.Adam(), 3)
    seed(1)
    b = run(Net(), optimizers.Adam(), 3)
    for n in a:
        numpy.testing.assert_array_equal(a[n], b[n])


@pytest.mark.parametrize("kwargs", [{"alpha": 0}, {"beta1": 1.0}, {"beta2": -0.5}, {"eps": 0}])
def test_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError, match="Adam"):
        optimizers.Adam(**kwargs)
