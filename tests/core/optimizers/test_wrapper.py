"""OptimizerWrapper: the one delegation to an inner optimizer (data parallel, mixed precision)."""
import numpy
import pytest

from benchbench.core import functions as F
from benchbench.core import links as L
from benchbench.core import optimizers
from benchbench.core.optimizers.wrapper import OptimizerWrapper


class Counting(OptimizerWrapper):
    _own = OptimizerWrapper._own | {"steps"}

    def __init__(self, inner):
        super().__init__(inner)
        self.steps = 0

    def update(self, lossfun=None, *args, **kwargs):
        if lossfun is not None:
            self._grads_from(lossfun, *args, **kwargs)
        self.pack_grads()
        self.update_packed()

    def update_packed(self):
        self.steps += 1
        super().update_packed()


def _model():
    m = L.Linear(3, 2)
    m(numpy.zeros((1, 3), dtype=numpy.float32))
    return m


def test_refuses_an_inner_that_is_not_an_optimizer():
    with pytest.raises(TypeError, match="^Counting: inner must be a benchbench optimizer, got object$"):
        Counting(object())


def test_hyperparameters_read_and_write_through_own_attributes_stay():
    inner = optimizers.MomentumSGD(lr=0.1)
    opt = Counting(inner)
    assert opt.lr == 0.1
    opt.lr = 0.01
    assert inner.lr == 0.01
    opt.steps = 5
    assert opt.steps == 5 and not hasattr(inner, "steps")
    assert opt.target is None


def test_setup_returns_self_and_sets_target_and_inner():
    m = _model()
    inner = optimizers.SGD(lr=0.5)
    opt = Counting(inner)
    assert opt.setup(m) is opt
    assert opt.target is m and inner.target is m


def test_update_from_lossfun_matches_the_inner_optimizer_alone():
    x = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    results = []
    for wrap in (False, True):
        m = _model()
        m.W.array[...] = numpy.arange(6, dtype=numpy.float32).reshape(2, 3) / 10
        inner = optimizers.SGD(lr=0.5)
        opt = (Counting(inner) if wrap else inner).setup(m)
        opt.update(lambda: F.sum(m(x) * m(x)))
        results.append(m.W.array.copy())
        if wrap:
            assert opt.steps == 1 and opt.t == 1
    numpy.testing.assert_array_equal(results[0], results[1])
    # SGD moved the weights: the gradient of sum((xW^T+b)^2) is not zero here.
    assert not numpy.array_equal(results[0], numpy.arange(6, dtype=numpy.float32).reshape(2, 3) / 10)


def test_hooks_added_through_the_wrapper_are_the_inner_ones():
    inner = optimizers.SGD()
    opt = Counting(inner).setup(_model())
    hook = optimizers.WeightDecay(1e-4)
    opt.add_hook(hook)
    assert list(inner._hooks.values()) == [hook]
