"""The fused optimizer updates equal the unfused array code, one launch per packed buffer and step."""
import numpy
import pytest

from benchbench.core import backend, kernels, links as L, optimizers, seed
from benchbench.core.kernels import cuda_update

pytestmark = pytest.mark.simgpu


def _model_with_grads():
    seed(0)
    model = L.Sequential(L.Linear(7, 13), L.Linear(13, 3))  # odd sizes: 7*13 + 13 + 13*3 + 3 = 146
    model.to_device("gpu:0")
    rng = numpy.random.default_rng(0)
    for _, p in sorted(model.namedparams()):
        p.grad = backend.to_device(rng.standard_normal(p.array.shape).astype(numpy.float32), "gpu:0")
    return model


def _run(make, steps=3):
    model = _model_with_grads()
    opt = make().setup(model)
    for _ in range(steps):
        opt.update()
    return {n: backend.as_numpy(p.array) for n, p in model.namedparams()}


MAKERS = {"SGD": lambda: optimizers.SGD(0.1), "MomentumSGD": lambda: optimizers.MomentumSGD(0.1, 0.8),
          "Adam": lambda: optimizers.Adam(0.01)}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_the_fused_update_equals_the_unfused_one(cupy, unfused, launches, name):
    fused, _ = launches(lambda: _run(MAKERS[name]))
    with unfused():
        plain = _run(MAKERS[name])
    for k in plain:
        numpy.testing.assert_allclose(fused[k], plain[k], rtol=1e-6, atol=1e-7, err_msg=k)
    model = _model_with_grads()
    opt = MAKERS[name]().setup(model)
    opt.update()
    _, n = launches(opt.update)
    assert n == 2  # the gradients gathered into the packed buffer, then ONE update kernel


def test_a_wrong_adam_body_fails_the_comparison(cupy, unfused, monkeypatch):
    """The simulator runs the kernel's own C body: a formula without its bias correction
    (alpha instead of alpha_t) or with a slip in it is caught."""
    with unfused():
        plain = _run(MAKERS["Adam"])
    kind, args = cuda_update.KERNELS["adam"]
    wrong_bodies = [args[2].replace("grad * grad", "grad"), args[2].replace("* alpha_t", "* (T)0.01")]
    for body in wrong_bodies:
        monkeypatch.setitem(cuda_update.KERNELS, "adam", (kind, (args[0], args[1], body, "benchbench_adam_wrong")))
        fused = _run(MAKERS["Adam"])
        assert not all(numpy.allclose(fused[k], plain[k], rtol=1e-6, atol=1e-7) for k in plain), body


def test_half_precision_keeps_the_unfused_path(cupy):
    a = cupy.ones(3, numpy.float16)
    assert not kernels.fusable(a) and kernels.fusable(cupy.ones(3, numpy.float32))
    assert not kernels.fusable(numpy.ones(3, numpy.float32))


@pytest.mark.parametrize("bad", [None, numpy.inf, numpy.nan])
def test_unscale_and_check_equals_the_unfused_path(cupy, unfused, launches, bad):
    from benchbench.core import mixed_precision

    g = numpy.random.default_rng(3).standard_normal(37).astype(numpy.float32) * 1024
    if bad is not None:
        g[11] = bad

    def run():
        scaler = mixed_precision.LossScaler(scale=1024.0)
        bufs = [backend.to_device(g[:20], "gpu:0"), backend.to_device(g[20:], "gpu:0")]
        finite = scaler.unscale(bufs)
        return finite, [backend.as_numpy(b) for b in bufs]

    (finite, fused), n = launches(run)
    with unfused():
        plain_finite, plain = run()
    assert finite == plain_finite == (bad is None)
    assert n == 1 + 2  # the flag's fill, then one kernel per buffer
    if finite:
        for a, b in zip(fused, plain):
            numpy.testing.assert_array_equal(a, b)


def test_a_large_finite_gradient_is_not_taken_for_an_overflow(cupy):
    from benchbench.core import mixed_precision

    g = backend.to_device(numpy.full(4, 3.0e38, numpy.float32), "gpu:0")  # finite; their sum is not
    assert mixed_precision.LossScaler(scale=2.0).unscale([g])
