"""The compiled optimizer updates and weight decay against the numpy path: bit for bit in float32 and
float64, on odd sizes, with a parameter that has no gradient."""
import numpy
import pytest

from benchbench.core import links as L
from benchbench.core import optimizers
from benchbench.core.kernels import cpu_compiled
from benchbench.core.link import Chain
from benchbench.core.optimizers import hooks


class Odd(Chain):
    def __init__(self, dtype):
        super().__init__()
        self.a = L.Linear(37, 29)
        self.b = L.Linear(29, 3, nobias=True)
        for p in self.params():
            p.array = p.array.astype(dtype)


def _train(path, make, dtype, decay, clip_after=False):
    numpy.random.seed(0)
    model = Odd(dtype)
    rng = numpy.random.default_rng(5)
    init = [rng.standard_normal(p.shape).astype(dtype) for p in model.params()]
    for p, a in zip(model.params(), init):
        p.array = a
    opt = make()
    opt.setup(model)
    if decay:
        opt.add_hook(hooks.WeightDecay(1e-3))
    if clip_after:  # a pre-hook after the decay: the decay cannot be folded into the update
        opt.add_hook(hooks.GradientHardClipping(-0.5, 0.5))
    with cpu_compiled.using(path):
        for step in range(4):
            for i, p in enumerate(model.params()):
                p.grad = None if (i == 1 and step == 2) else rng.standard_normal(p.shape).astype(dtype)
            opt.update()
    # the packed gradients with the decay added, on both paths (without a hook the compiled update
    # reads each parameter's own gradient and leaves the packed buffer as it was)
    grads = [g.grad.copy() for g in opt.packed_groups()] if decay or clip_after else []
    return [p.array.copy() for p in model.params()] + grads, init


@pytest.mark.parametrize("make", [lambda: optimizers.SGD(lr=0.1), lambda: optimizers.MomentumSGD(lr=0.05, momentum=0.9),
                                  lambda: optimizers.Adam(alpha=0.01)], ids=["sgd", "momentum", "adam"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("decay", [False, True], ids=["", "decay"])
def test_compiled_updates_equal_the_numpy_path(make, dtype, decay):
    if cpu_compiled.numba_error() is not None or not cpu_compiled.active():
        pytest.skip("compiled kernels are off")
    got, init = _train("compiled", make, dtype, decay)
    want, _ = _train("numpy", make, dtype, decay)
    for g, w in zip(got, want):
        assert g.dtype == dtype
        numpy.testing.assert_array_equal(g, w)  # same operations in the same order: the same bits
    # and the updates moved the parameters at all (a kernel that did nothing would fail here)
    assert not numpy.array_equal(got[0], init[0])


@pytest.mark.parametrize("clip_after", [False, True])
def test_a_last_weight_decay_is_folded_into_the_update_pass(monkeypatch, clip_after):
    """WeightDecay last among the pre-hooks runs inside the compiled update (one pass); another
    pre-hook after it keeps it a hook of its own. Either way the bits are the numpy path's."""
    if not cpu_compiled.active():
        pytest.skip("compiled kernels are off")
    from benchbench.core.kernels import cpu_update

    calls = []
    for name in ("_momentum_sgd_decay", "_weight_decay", "_momentum_sgd"):
        real = getattr(cpu_update, name)
        monkeypatch.setattr(cpu_update, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    make = lambda: optimizers.MomentumSGD(lr=0.05, momentum=0.9)  # noqa: E731
    got, _ = _train("compiled", make, numpy.float32, True, clip_after)
    assert calls == (["_weight_decay", "_momentum_sgd"] if clip_after else ["_momentum_sgd_decay"]) * 4
    want, _ = _train("numpy", make, numpy.float32, True, clip_after)
    for g, w in zip(got, want):
        numpy.testing.assert_array_equal(g, w)


def test_the_compiled_kernels_run_in_the_update(monkeypatch):
    """The optimizers dispatch to the compiled kernel on the compiled path, and not on the numpy path."""
    if not cpu_compiled.active():
        pytest.skip("compiled kernels are off")
    from benchbench.core.kernels import cpu_update

    calls = []
    real = cpu_update.adam
    monkeypatch.setattr(cpu_update, "adam", lambda *a: calls.append(1) or real(*a))
    _train("compiled", optimizers.Adam, numpy.float32, False)
    assert len(calls) == 4
    _train("numpy", optimizers.Adam, numpy.float32, False)
    assert len(calls) == 4


@pytest.mark.parametrize("make", [lambda: optimizers.SGD(lr=0.1), lambda: optimizers.MomentumSGD(lr=0.05, momentum=0.9),
                                  lambda: optimizers.Adam(alpha=0.01)], ids=["sgd", "momentum", "adam"])
def test_without_hooks_the_update_reads_each_parameters_gradient_unpacked(make, monkeypatch):
    """No copy of the gradients into the packed buffer where nothing needs it; the same bits as the
    packed update; packing still happens with a hook, a missing gradient, or on the numpy path."""
    if cpu_compiled.numba_error() is not None or not cpu_compiled.active():
        pytest.skip("compiled kernels are off")
    from benchbench.core.optimizers.optimizer import PackedGroup

    gathers = []
    gather = PackedGroup.gather_grads
    monkeypatch.setattr(PackedGroup, "gather_grads", lambda self: gathers.append(1) or gather(self))

    def run(unpacked):
        rng = numpy.random.default_rng(3)
        model = Odd(numpy.float32)
        for p in model.params():
            p.array = rng.standard_normal(p.shape).astype(numpy.float32)
        opt = make()
        opt.setup(model)
        for _ in range(3):
            for p in model.params():
                p.grad = rng.standard_normal(p.shape).astype(numpy.float32)
            if unpacked:
                opt.update()
            else:
                opt.pack_grads()
                opt.update_packed()
        return [p.array.copy() for p in model.params()], opt

    with cpu_compiled.using("compiled"):
        want, _ = run(unpacked=False)
        gathers.clear()
        got, opt = run(unpacked=True)
        assert gathers == [] and opt.t == 3
        for g, w in zip(got, want):
            numpy.testing.assert_array_equal(g, w)
        # flat_grad still packs on demand
        group = opt.packed_groups()[0]
        numpy.testing.assert_array_equal(opt.flat_grad(), numpy.concatenate([p.grad.reshape(-1) for p in group.params]))
        gathers.clear()
        opt.add_hook(hooks.GradientHardClipping(-10.0, 10.0))
        opt.update()
        assert gathers == [1]  # a hook reads the packed gradients
    with cpu_compiled.using("numpy"):
        gathers.clear()
        run(unpacked=True)
        assert gathers == [1, 1, 1]
