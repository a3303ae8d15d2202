"""A GPU training step reads nothing back to the host but what it must (counted by the simulated GPUs).

Real cupy cannot count device-to-host transfers; the simulator (``tests/simgpu``) does, so these
tests run there and skip on a real GPU.
"""
import numpy
import pytest

from benchbench.core import backend, functions as F, links as L, mixed_precision, optimizers, seed

pytestmark = pytest.mark.gpu


def _transfers():
    cupy = backend.cupy
    if not getattr(cupy, "_benchbench_simulated", False):
        pytest.skip("host transfers are counted only on the simulated GPUs")
    return cupy._sim_host_transfers()


def _setup(device, optimizer, mixed=None):
    seed(0)
    model = L.Sequential(L.Linear(20, 32), F.relu, L.Linear(32, 5))
    model.to_device(device)
    fmodel = model
    if mixed is not None:
        optimizer = mixed_precision.MixedPrecisionOptimizer(optimizer, mixed_precision.loss_scaler_for(mixed))
        fmodel = mixed_precision.MixedPrecisionModel(model, mixed)
    optimizer.setup(model)
    rng = numpy.random.default_rng(0)
    x = backend.to_device(rng.standard_normal((16, 20)).astype(numpy.float32), device)
    t = backend.to_device(rng.integers(0, 5, 16).astype(numpy.int32), device)
    return model, fmodel, optimizer, x, t


def _steps_transfers(device, optimizer, mixed=None, steps=3):
    """Host transfers per training step (forward, backward, update), after one step to initialise."""
    with backend.Device(device).scope():
        model, fmodel, opt, x, t = _setup(device, optimizer, mixed)

        def step():
            loss = F.softmax_cross_entropy(fmodel(x), t)
            model.cleargrads()
            opt.backward(loss) if mixed is not None else loss.backward()
            opt.update()
            return loss

        step()
        n0 = _transfers()
        for _ in range(steps):
            loss = step()
        n = _transfers() - n0
        return n / steps, float(loss.array), model


@pytest.mark.parametrize("device", ["gpu:0", "gpu:1"])
@pytest.mark.parametrize("make", [lambda: optimizers.SGD(0.1), lambda: optimizers.MomentumSGD(0.1),
                                  lambda: optimizers.Adam()], ids=["SGD", "MomentumSGD", "Adam"])
def test_a_float32_training_step_reads_nothing_back(device, make):
    per_step, loss, _ = _steps_transfers(device, make())
    assert per_step == 0
    assert numpy.isfinite(loss)


def test_hooks_stay_on_the_device_and_clip_as_on_the_cpu():
    def make():
        opt = optimizers.MomentumSGD(0.5)
        opt.add_hook(optimizers.WeightDecay(1e-2))
        opt.add_hook(optimizers.GradientClipping(0.05))  # small: it clips every step
        return opt

    per_step, loss_gpu, model_gpu = _steps_transfers("gpu:0", make())
    assert per_step == 0
    _, loss_cpu, model_cpu = _steps_transfers("cpu", make())
    for (name, pg), (_, pc) in zip(sorted(model_gpu.namedparams()), sorted(model_cpu.namedparams())):
        numpy.testing.assert_allclose(backend.as_numpy(pg.array), pc.array, rtol=1e-5, atol=1e-6, err_msg=name)
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-5)


def test_a_mixed_precision_step_reads_back_once():
    # Skipping an overflowed step is a host decision: the finiteness check is the one transfer.
    per_step, loss, _ = _steps_transfers("gpu:0", optimizers.Adam(), mixed="float16")
    assert per_step == 1
    assert numpy.isfinite(loss)


def test_the_runner_reads_loss_and_metric_in_one_transfer():
    from benchbench.executor.cell import training

    cupy = backend.cupy
    with backend.Device("gpu:1").scope():
        loss, metric = cupy.asarray(numpy.float32(0.25)), cupy.asarray(numpy.float32(0.75))
        n0 = _transfers()
        assert training._to_host(loss, metric) == (0.25, 0.75)
        assert training._to_host(loss, None) == (0.25, 0.25)
        assert _transfers() - n0 == 2
    assert training._to_host(numpy.float32(0.5), None) == (0.5, 0.5)


@pytest.mark.parametrize("algorithm", ["auto", "winograd"])
def test_a_conv_net_step_reads_nothing_back(monkeypatch, algorithm):
    """Convolutions (im2col, or Winograd when forced), BatchNorm, stride-1 and stride-2 max pooling,
    relu and sigmoid, Adam: a step of them transfers nothing to the host."""
    monkeypatch.setenv("BENCHBENCH_CONV_ALGORITHM", algorithm)
    device = "gpu:0"
    with backend.Device(device).scope():
        seed(0)
        model = L.Sequential(
            L.Convolution2D(3, 8, 3, pad=1), L.BatchNormalization(8), F.relu,
            lambda h: F.max_pooling_2d(h, 2, 1),
            L.Convolution2D(8, 8, 3, pad=1), F.sigmoid,
            lambda h: F.max_pooling_2d(h, 2, 2), L.Linear(8 * 4 * 4, 5))
        model.to_device(device)
        opt = optimizers.Adam().setup(model)
        rng = numpy.random.default_rng(0)
        x = backend.to_device(rng.standard_normal((4, 3, 9, 9)).astype(numpy.float32), device)
        t = backend.to_device(rng.integers(0, 5, 4).astype(numpy.int32), device)

        def step():
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()
            return loss

        step()
        n0 = _transfers()
        for _ in range(2):
            loss = step()
        assert _transfers() - n0 == 0
        assert numpy.isfinite(float(loss.array))
