"""Optimizer base: packing into flat buffers, repacking, flat_grad, hooks."""
import numpy
import pytest

from benchbench.core import Parameter, backend
from benchbench.core import functions as F
from benchbench.core import links as L
from benchbench.core import optimizers, seed
from benchbench.core.link import Chain

from .reference import Net as RefNet
from .reference import run as run_reference


class Net(Chain):
    def __init__(self):
        super().__init__()
        self.l1 = L.Linear(3, 4)
        self.l2 = L.Linear(4, 2)

    def forward(self, x):
        return self.l2(F.relu(self.l1(x)))


def _set_grads(model, seed):
    rng = numpy.random.default_rng(seed)
    for p in model.params():
        p.grad = rng.standard_normal(p.shape).astype(p.dtype)


def test_params_become_views_of_one_flat_buffer():
    m = Net()
    before = {n: p.array.copy() for n, p in m.namedparams()}
    opt = optimizers.SGD().setup(m)
    flat = opt.flat_param()
    assert flat.shape == (m.count_params(),) and flat.dtype == numpy.float32
    for n, p in m.namedparams():
        assert numpy.shares_memory(p.array, flat)
        numpy.testing.assert_array_equal(p.array, before[n])
    # packing order is the sorted name order
    numpy.testing.assert_array_equal(flat[:12], before["/l1/W"].ravel())


def test_flat_grad_packs_in_name_order_with_zeros_for_missing():
    m = Net()
    opt = optimizers.SGD().setup(m)
    _set_grads(m, 0)
    m.l1.b.grad = None
    g = opt.flat_grad()
    want = numpy.concatenate([numpy.zeros(p.size, numpy.float32) if p.grad is None else p.grad.ravel()
                              for p in m.params()])
    numpy.testing.assert_array_equal(g, want)
    assert opt.flat_grad() is g  # the same buffer every time


def test_update_packed_uses_the_reduced_flat_grad():
    m = Net()
    opt = optimizers.SGD(lr=0.5).setup(m)
    _set_grads(m, 1)
    w0 = opt.flat_param().copy()
    g = opt.flat_grad()
    g *= 0.0
    g[0] = 2.0  # as if an all-reduce had replaced the gradient
    opt.update_packed()
    delta = opt.flat_param() - w0
    assert delta[0] == pytest.approx(-1.0) and not delta[1:].any()
    assert opt.t == 1


def test_repack_after_array_replacement_keeps_state():
    m = Net()
    opt = optimizers.MomentumSGD(lr=0.1, momentum=0.5).setup(m)
    _set_grads(m, 2)
    opt.update()
    v_before = opt.packed_groups()[0].state["v"].copy()
    m.l2.W.array = m.l2.W.array.copy()  # e.g. to_device or a reload reallocated it
    groups = opt.packed_groups()
    assert numpy.shares_memory(m.l2.W.array, groups[0].data)
    numpy.testing.assert_array_equal(groups[0].state["v"], v_before)


def test_lazy_parameters_are_packed_once_initialised():
    m = L.Sequential(L.Linear(None, 3), L.Linear(3, 2))
    opt = optimizers.Adam().setup(m)
    assert opt.flat_param().size == 3 * 2 + 2 + 3  # only the initialised params
    loss = F.sum(m(numpy.ones((2, 5), numpy.float32)))
    m.cleargrads()
    loss.backward()
    opt.update()
    assert opt.flat_param().size == m.count_params() == 5 * 3 + 3 + 3 * 2 + 2
    assert all(numpy.shares_memory(p.array, opt.flat_param()) for p in m.params())


def test_groups_split_by_dtype():
    m = Net()
    m.l2.W.array = m.l2.W.array.astype(numpy.float64)
    opt = optimizers.SGD(lr=1.0).setup(m)
    _set_grads(m, 3)
    groups = opt.packed_groups()
    assert sorted(g.data.dtype.name for g in groups) == ["float32", "float64"]
    with pytest.raises(ValueError, match="groups"):
        opt.flat_grad()
    w = m.l2.W.array.copy()
    opt.update()
    numpy.testing.assert_allclose(m.l2.W.array, w - m.l2.W.grad)


def test_shared_parameter_updated_once():
    m = Net()
    m.l3 = L.Linear(3, 4)
    m.l3.W = m.l1.W
    opt = optimizers.SGD(lr=1.0).setup(m)
    assert opt.flat_param().size == m.count_params() - m.l1.W.size


def test_update_with_lossfun():
    m = Net()
    opt = optimizers.SGD(lr=0.1).setup(m)
    x = numpy.random.default_rng(4).standard_normal((8, 3)).astype(numpy.float32)
    losses = []
    for _ in range(5):
        opt.update(lambda: F.mean(m(x) ** 2))
        losses.append(float(F.mean(m(x) ** 2).array))
    assert losses[-1] < losses[0]
    assert opt.t == 5


def test_hyperparameters_as_attributes():
    opt = optimizers.MomentumSGD(lr=0.1, momentum=0.8)
    assert opt.lr == 0.1 and opt.hyperparam.momentum == 0.8
    opt.lr = 0.05
    assert opt.hyperparam.lr == 0.05
    assert opt.hyperparam.get_dict() == {"lr": 0.05, "momentum": 0.8}
    with pytest.raises(AttributeError):
        opt.nonexistent  # noqa: B018


def test_errors_before_setup_and_bad_target():
    opt = optimizers.SGD()
    with pytest.raises(RuntimeError, match="setup"):
        opt.update()
    with pytest.raises(TypeError, match="setup"):
        opt.setup(Parameter(numpy.zeros(2, numpy.float32)))


def test_weight_decay_hook():
    m = Net()
    opt = optimizers.SGD(lr=0.1).setup(m)
    opt.add_hook(optimizers.WeightDecay(0.01))
    _set_grads(m, 5)
    want = {n: p.array - 0.1 * (p.grad + 0.01 * p.array) for n, p in m.namedparams()}
    opt.update()
    for n, p in m.namedparams():
        numpy.testing.assert_allclose(p.array, want[n], rtol=1e-6)


@pytest.mark.parametrize("threshold", [0.5, 100.0])
def test_gradient_clipping_hook(threshold):
    m = Net()
    opt = optimizers.SGD(lr=1.0).setup(m)
    opt.add_hook(optimizers.GradientClipping(threshold))
    _set_grads(m, 6)
    grads = numpy.concatenate([p.grad.ravel() for p in m.params()])
    norm = numpy.sqrt((grads.astype(numpy.float64) ** 2).sum())
    scale = min(1.0, threshold / norm)
    w = opt.flat_param().copy()
    opt.update()
    numpy.testing.assert_allclose(opt.flat_param(), w - grads * scale, rtol=1e-5, atol=1e-6)
    if threshold < norm:
        assert numpy.linalg.norm(w - opt.flat_param()) == pytest.approx(threshold, rel=1e-5)


def test_gradient_hard_clipping_and_hook_management():
    m = Net()
    opt = optimizers.SGD(lr=1.0).setup(m)
    opt.add_hook(optimizers.GradientHardClipping(-0.1, 0.1))
    with pytest.raises(KeyError, match="GradientHardClipping"):
        opt.add_hook(optimizers.GradientHardClipping(-1, 1))
    _set_grads(m, 7)
    w = opt.flat_param().copy()
    opt.update()
    assert numpy.abs(w - opt.flat_param()).max() <= 0.1 + 1e-7
    opt.remove_hook("GradientHardClipping")
    with pytest.raises(TypeError, match="callable"):
        opt.add_hook(3)


def test_post_hook_sees_updated_params():
    seen = []

    class Post:
        timing = "post"

        def __call__(self, optimizer):
            seen.append(optimizer.flat_param().copy())

    m = Net()
    opt = optimizers.SGD().setup(m)
    opt.add_hook(Post())
    _set_grads(m, 8)
    opt.update()
    numpy.testing.assert_array_equal(seen[0], opt.flat_param())


@pytest.mark.parametrize("hook, arg", [(optimizers.WeightDecay, -1), (optimizers.GradientClipping, 0)])
def test_hooks_validate(hook, arg):
    with pytest.raises(ValueError, match=hook.__name__):
        hook(arg)


@pytest.mark.gpu
def test_to_device_moves_state_with_repack():
    cupy = backend.cupy
    m = Net()
    opt = optimizers.Adam().setup(m)
    _set_grads(m, 9)
    opt.update()
    m_state = opt.packed_groups()[0].state["m"].copy()
    m.to_device("gpu:0")
    for p in m.params():
        p.grad = cupy.asarray(p.grad)
    groups = opt.packed_groups()
    assert isinstance(groups[0].data, cupy.ndarray)
    numpy.testing.assert_array_equal(cupy.asnumpy(groups[0].state["m"]), m_state)
    opt.update()
    assert isinstance(m.l1.W.array, cupy.ndarray)


@pytest.mark.parametrize("make", [optimizers.SGD, lambda: optimizers.MomentumSGD(lr=0.1),
                                  lambda: optimizers.Adam(alpha=0.01)])
def test_a_parameter_without_gradient_is_not_updated(make):
    """Chainer's rule: a parameter whose grad is None keeps its value and its optimizer state."""
    m = Net()
    opt = make().setup(m)
    opt.add_hook(optimizers.WeightDecay(0.1))
    for step in range(3):  # state builds up with every gradient present
        _set_grads(m, step)
        opt.update()
    frozen = {n: p.array.copy() for n, p in m.namedparams() if n.startswith("/l1")}
    state = {k: s.copy() for k, s in opt.packed_groups()[0].state.items()}
    moved = m.l2.W.array.copy()
    _set_grads(m, 7)
    m.l1.W.grad = None
    m.l1.b.grad = None
    opt.update()
    for n, p in m.namedparams():
        if n in frozen:
            numpy.testing.assert_array_equal(p.array, frozen[n], err_msg=n)
    lo, hi = 0, m.l1.W.size + m.l1.b.size  # /l1/W and /l1/b come first in name order
    for k, s in opt.packed_groups()[0].state.items():
        numpy.testing.assert_array_equal(s[lo:hi], state[k][lo:hi], err_msg=k)
    assert not numpy.array_equal(m.l2.W.array, moved)  # the others still move


@pytest.mark.parametrize("make", [lambda: optimizers.Adam(alpha=0.01), lambda: optimizers.MomentumSGD(lr=0.05)])
@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_blocked_update_is_bit_identical_to_one_pass(monkeypatch, make, block):
    """Cut into blocks (uneven, smaller than a parameter, or one block), split over threads or not,
    the packed update gives exactly the bits of one pass over the whole buffers."""
    from benchbench.core.optimizers import optimizer as optimizer_mod

    seed(3)
    want = run_reference(RefNet(), make(), 4)
    monkeypatch.setattr(optimizer_mod, "UPDATE_BLOCK", block)
    monkeypatch.setattr(optimizer_mod._buffers, "_PARALLEL_MIN_BYTES", 0)  # threads even for this small net
    seed(3)
    got = run_reference(RefNet(), make(), 4)
    for n in want:
        numpy.testing.assert_array_equal(got[n], want[n])


def test_run_blocked_covers_every_element_once(monkeypatch):
    from benchbench.core.optimizers import optimizer as optimizer_mod

    monkeypatch.setattr(optimizer_mod, "UPDATE_BLOCK", 5)
    monkeypatch.setattr(optimizer_mod._buffers, "_PARALLEL_MIN_BYTES", 0)
    seed(0)
    group = optimizers.Adam().setup(RefNet()).packed_groups()[0]
    group.state = {"s": numpy.zeros(group.size, dtype=group.data.dtype)}
    seen = []

    def fn(data, grad, work, state):
        assert data.shape == grad.shape == work.shape == state["s"].shape and 1 <= data.size <= 5
        state["s"] += 1
        seen.append(data.size)

    group.run_blocked(fn)
    assert sum(seen) == group.size
    numpy.testing.assert_array_equal(group.state["s"], 1)
