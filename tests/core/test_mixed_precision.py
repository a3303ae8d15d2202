"""Mixed precision: cast, compute_dtype in the links, loss scaling, the optimizer wrapper.

The float16 paths run on the CPU with numpy's float16; the ``xp`` fixture repeats the
training tests on cupy where a GPU is present.
"""
import numpy
import pytest

from benchbench.core import functions as F
from benchbench.core import links as L
from benchbench.core import mixed_precision as mp
from benchbench.core import optimizers, seed
from benchbench.core.config import config, using_config
from benchbench.core.functions.array import Cast
from benchbench.core.gradient_check import check_backward
from benchbench.core.optimizers.hooks import WeightDecay
from benchbench.core.variable import Variable
from benchbench.executor.communicators import SingleCommunicator
from benchbench.executor.cell.data_parallel import DataParallelOptimizer

F16 = numpy.float16
F32 = numpy.float32


def _blobs(n, d, k, spread, rng):
    centers = rng.normal(size=(k, d)) * spread
    t = rng.integers(0, k, n)
    x = centers[t] + rng.normal(size=(n, d))
    return x.astype(F32), t.astype(numpy.int32)


def _images(n, k, rng):
    protos = rng.normal(size=(k, 1, 8, 8))
    t = rng.integers(0, k, n)
    x = protos[t] + 1.5 * rng.normal(size=(n, 1, 8, 8))
    return x.astype(F32), t.astype(numpy.int32)


def _mlp():
    return L.Sequential(L.Linear(20, 32), F.relu, L.Linear(32, 3))


def _convnet():
    return L.Sequential(
        L.Convolution2D(1, 4, 3, pad=1), L.BatchNormalization(4), F.relu,
        lambda h: F.max_pooling_2d(h, 2, 2), L.Linear(None, 3),
    )


def _train(build, x, t, xp, dtype, steps=40, batch=32, lr=0.01, scaler=None):
    """Train from seed 0 with Adam; returns (final loss on all data, model, optimizer)."""
    seed(0)
    model = build()
    model(x[:1])  # initialise lazy parameters on the host, then move
    if xp is not numpy:
        model.to_device("gpu:0")
    x, t = xp.asarray(x), xp.asarray(t)
    if dtype is None:
        fmodel, opt = model, optimizers.Adam(lr).setup(model)
    else:
        fmodel = mp.MixedPrecisionModel(model, dtype)
        opt = mp.MixedPrecisionOptimizer(optimizers.Adam(lr), scaler or mp.loss_scaler_for(dtype)).setup(model)
    n = x.shape[0]
    for i in range(steps):
        lo = (i * batch) % n
        loss = F.softmax_cross_entropy(fmodel(x[lo:lo + batch]), t[lo:lo + batch])
        model.cleargrads()
        if dtype is None:
            loss.backward()
        else:
            opt.backward(loss)
        opt.update()
    with using_config("train", False):
        final = float(F.softmax_cross_entropy(fmodel(x), t).array)
    return final, model, opt


# -- cast ----------------------------------------------------------------------------------------
def test_cast_forward_converts_and_backward_returns_source_dtype(xp):
    x = Variable(xp.asarray(numpy.linspace(-3, 3, 12, dtype=F32).reshape(3, 4)))
    y = F.cast(x, F16)
    assert y.dtype == F16
    numpy.testing.assert_array_equal(xp.asnumpy(y.array) if xp is not numpy else y.array,
                                     numpy.linspace(-3, 3, 12).reshape(3, 4).astype(F16))
    y.grad = xp.full(y.shape, 0.5, dtype=F16)
    y.backward()
    assert x.grad.dtype == F32
    assert float(abs(x.grad - 0.5).max()) == 0.0


def test_cast_gradient_round_trip_float64_float32():
    x = numpy.random.default_rng(0).normal(size=(3, 5))
    check_backward(lambda v: F.cast(F.cast(v, F32), numpy.float64) * 3.0, x, atol=1e-3, rtol=1e-3)


def test_cast_to_same_dtype_adds_no_graph_node():
    x = Variable(numpy.ones((2, 2), F32))
    assert F.cast(x, F32) is x
    y = F.cast(numpy.ones(3, F16), "float16")
    assert isinstance(y, Variable) and y.creator is None and not y.requires_grad


@pytest.mark.parametrize("bad", [numpy.int32, "bool", object])
def test_cast_rejects_a_non_float_dtype(bad):
    with pytest.raises(TypeError, match="cast: dtype"):
        F.cast(numpy.ones(2, F32), bad)


def test_cast_rejects_non_arrays_and_integer_input():
    with pytest.raises(TypeError, match="cast: x"):
        F.cast([1.0, 2.0], F16)
    with pytest.raises(TypeError, match="cast: x.dtype"):
        F.cast(numpy.ones(2, numpy.int64), F16)


# -- config and names ----------------------------------------------------------------------------
def test_compute_dtype_config_defaults_to_none_and_is_normalised():
    assert config.compute_dtype is None
    with using_config("compute_dtype", "float16"):
        assert config.compute_dtype == numpy.dtype(F16)
    assert config.compute_dtype is None
    with pytest.raises(TypeError, match="compute_dtype"):
        with using_config("compute_dtype", numpy.int32):
            pass


def test_compute_dtype_names():
    assert mp.compute_dtype("float32") is None
    assert mp.compute_dtype("float16") == numpy.dtype(F16)
    with pytest.raises(ValueError, match="'float32', 'float16' or 'bfloat16'.*'fp8'"):
        mp.compute_dtype("fp8")


def test_bfloat16_is_a_clear_error():
    with pytest.raises(ValueError, match="bfloat16 is not supported.*use float16 or float32"):
        mp.compute_dtype("bfloat16")


# -- links ---------------------------------------------------------------------------------------
def _link_cases(rng):
    x2 = rng.normal(size=(4, 6)).astype(F32)
    x4 = rng.normal(size=(2, 3, 6, 6)).astype(F32)
    xs = rng.normal(size=(5, 2, 3)).astype(F32)
    return [
        (L.Linear(6, 5), x2, lambda l, x: F.linear(x, l.W, l.b)),
        (L.Convolution2D(3, 4, 3, pad=1), x4, lambda l, x: F.convolution_2d(x, l.W, l.b, pad=1)),
        (L.BatchNormalization(3), x4,
         lambda l, x: F.batch_normalization(x, l.gamma, l.beta, running_mean=l.avg_mean.copy(),
                                            running_var=l.avg_var.copy())),
        (L.LSTMSequence(3, 4), xs, lambda l, x: F.lstm_sequence(x, None, None, l.W_x, l.W_h, l.b)[0]),
    ]


def _out(y):
    return y[0] if isinstance(y, tuple) else y


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("setting", [None, F32])
def test_links_without_a_lower_compute_dtype_are_bit_identical_to_the_plain_functions(case, setting):
    link, x, plain = _link_cases(numpy.random.default_rng(case))[case]
    y_ref = plain(link, x)
    y_ref.grad = numpy.ones_like(y_ref.array)
    y_ref.backward()
    ref_grads = {n: p.grad.copy() for n, p in link.namedparams()}
    link.cleargrads()
    with using_config("compute_dtype", setting):
        y = _out(link(x))
    assert not isinstance(y.creator, Cast)
    numpy.testing.assert_array_equal(y.array, y_ref.array)
    y.grad = numpy.ones_like(y.array)
    y.backward()
    for n, p in link.namedparams():
        numpy.testing.assert_array_equal(p.grad, ref_grads[n])


@pytest.mark.parametrize("case", range(4))
def test_links_in_float16_keep_float32_master_weights_and_gradients(case):
    link, x, _ = _link_cases(numpy.random.default_rng(case))[case]
    y32 = _out(link(x)).array
    with using_config("compute_dtype", F16):
        y = _out(link(x.astype(F16)))
    assert y.dtype == F16
    numpy.testing.assert_allclose(y.array.astype(F32), y32, rtol=2e-2, atol=2e-2)
    y.grad = numpy.ones_like(y.array)
    y.backward()
    for n, p in link.namedparams():
        assert p.array.dtype == F32 and p.grad.dtype == F32, n


def test_links_cast_a_float32_input_themselves():
    fc = L.Linear(None, 3)
    with using_config("compute_dtype", F16):
        y = fc(numpy.ones((2, 4), F32))
    assert y.dtype == F16 and fc.W.array.dtype == F32 and fc.W.shape == (3, 4)


def test_stateful_lstm_in_float16_accepts_a_float32_state():
    rnn = L.LSTM(3, 4)
    rnn.set_state(numpy.zeros((2, 4), F32), numpy.zeros((2, 4), F32))
    with using_config("compute_dtype", F16):
        h = rnn(numpy.ones((2, 3), F16))
        h = rnn(numpy.ones((2, 3), F16))
    assert h.dtype == F16
    F.sum(F.cast(h, F32)).backward()
    assert rnn.upward.W.grad.dtype == F32 and rnn.lateral.W.grad.dtype == F32


def test_batch_normalization_in_float16_takes_statistics_in_float32():
    # 64*32*32 values of about 3: their float16 sum of squares overflows (65504 is float16's max).
    x = numpy.random.default_rng(0).normal(3.0, 1.0, size=(64, 2, 32, 32)).astype(F32)
    bn32, bn16 = L.BatchNormalization(2), L.BatchNormalization(2)
    y32 = bn32(x)
    with using_config("compute_dtype", F16):
        y16 = bn16(x.astype(F16))
    assert y16.dtype == F16
    assert numpy.isfinite(y16.array).all()
    numpy.testing.assert_allclose(y16.array.astype(F32), y32.array, atol=1e-2)
    assert bn16.avg_mean.dtype == F32
    numpy.testing.assert_allclose(bn16.avg_mean, bn32.avg_mean, rtol=1e-3)
    numpy.testing.assert_allclose(bn16.avg_var, bn32.avg_var, rtol=1e-2)


# -- MixedPrecisionModel ---------------------------------------------------------------------------
def test_mixed_precision_model_casts_inputs_in_and_outputs_out():
    model = _mlp()
    fmodel = mp.MixedPrecisionModel(model, F16)
    y = fmodel(numpy.ones((2, 20), F32))
    assert y.dtype == F32 and isinstance(y.creator, Cast)
    assert y.creator.inputs[0].dtype == F16
    assert config.compute_dtype is None
    assert fmodel.params is not None and list(fmodel.params()) == list(model.params())


def test_mixed_precision_model_validates():
    with pytest.raises(TypeError, match="MixedPrecisionModel: model"):
        mp.MixedPrecisionModel(lambda x: x, F16)
    with pytest.raises(TypeError, match="MixedPrecisionModel: dtype"):
        mp.MixedPrecisionModel(_mlp(), numpy.int8)


# -- training --------------------------------------------------------------------------------------
def test_mlp_in_float16_trains_like_float32(xp):
    x, t = _blobs(256, 20, 3, 0.6, numpy.random.default_rng(1))
    l32, _, _ = _train(_mlp, x, t, xp, None)
    l16, model, opt = _train(_mlp, x, t, xp, F16)
    assert l32 < 0.8 * 1.0986  # it learned (log 3 is chance)
    assert abs(l16 - l32) <= 0.01 + 0.02 * l32  # observed on the CPU: 2e-5
    assert all(p.array.dtype == F32 and p.grad.dtype == F32 for p in model.params())
    assert opt.skipped_steps == 0 and opt.t == 40 and opt.loss_scale == 2.0 ** 15


def test_convnet_with_batchnorm_in_float16_trains_like_float32(xp):
    x, t = _images(128, 3, numpy.random.default_rng(2))
    l32, _, _ = _train(_convnet, x, t, xp, None, steps=24)
    l16, model, opt = _train(_convnet, x, t, xp, F16, steps=24)
    assert l32 < 0.8 * 1.0986
    assert abs(l16 - l32) <= 0.01 + 0.02 * l32  # observed on the CPU: 5e-4
    assert all(p.array.dtype == F32 for p in model.params())
    assert opt.skipped_steps == 0


def test_power_of_two_scaling_is_exact_in_float32():
    # With float32 compute, scaling by 2**15 and unscaling commute exactly with rounding:
    # the wrapped optimizer (with a hook) gives bit-identical weights.
    x, t = _blobs(64, 20, 3, 0.6, numpy.random.default_rng(3))
    results = []
    for wrap in (False, True):
        seed(0)
        model = _mlp()
        inner = optimizers.MomentumSGD(0.1)
        opt = (mp.MixedPrecisionOptimizer(inner) if wrap else inner).setup(model)
        opt.add_hook(WeightDecay(1e-3))
        for i in range(3):
            loss = F.softmax_cross_entropy(model(x[i * 16:(i + 1) * 16]), t[i * 16:(i + 1) * 16])
            model.cleargrads()
            opt.backward(loss) if wrap else loss.backward()
            opt.update()
        results.append([p.array.copy() for p in model.params()])
    for a, b in zip(*results):
        numpy.testing.assert_array_equal(a, b)


def test_loss_scaling_keeps_gradients_that_underflow_float16():
    # d(loss)/dy = 1e-8 is below float16's smallest subnormal (6e-8): unscaled, it flushes to 0.
    x = numpy.random.default_rng(7).normal(size=(4, 5)).astype(F32)
    grads = {}
    for scale in (1.0, 2.0 ** 15):
        seed(0)
        fc = L.Linear(5, 3)
        opt = mp.MixedPrecisionOptimizer(optimizers.SGD(1.0), mp.LossScaler(scale, dynamic=False)).setup(fc)
        y = mp.MixedPrecisionModel(fc, F16)(x)
        opt.backward(F.sum(y) * 1e-8)
        opt.pack_grads()
        opt.update_packed()
        grads[scale] = opt.packed_groups()[0].grad.copy()
    expected = numpy.concatenate([numpy.tile(1e-8 * x.sum(axis=0), (3, 1)).ravel(), numpy.full(3, 4e-8)])
    assert not grads[1.0].any()
    numpy.testing.assert_allclose(grads[2.0 ** 15], expected, rtol=2e-2)


# -- overflow and the dynamic scale ----------------------------------------------------------------
def _one_step_setup(scaler):
    x, t = _blobs(16, 20, 3, 0.6, numpy.random.default_rng(4))
    model = _mlp()
    fmodel = mp.MixedPrecisionModel(model, F16)
    opt = mp.MixedPrecisionOptimizer(optimizers.Adam(0.01), scaler).setup(model)

    def step(poison=None):
        loss = F.softmax_cross_entropy(fmodel(x), t)
        model.cleargrads()
        opt.backward(loss)
        if poison is not None:
            model[0].W.grad[0, 0] = poison
        opt.update()

    return model, opt, step


@pytest.mark.parametrize("poison", [numpy.inf, -numpy.inf, numpy.nan])
def test_an_overflowed_step_is_skipped_and_halves_the_scale(poison):
    model, opt, step = _one_step_setup(mp.LossScaler())
    step()
    before = [p.array.copy() for p in model.params()]
    state = [{k: s.copy() for k, s in g.state.items()} for g in opt.packed_groups()]
    step(poison)
    assert opt.skipped_steps == 1 and opt.t == 1 and opt.loss_scale == 2.0 ** 14
    for a, p in zip(before, model.params()):
        numpy.testing.assert_array_equal(a, p.array)
    for s, g in zip(state, opt.packed_groups()):
        for k in s:
            numpy.testing.assert_array_equal(s[k], g.state[k])
    step()
    assert opt.t == 2 and opt.skipped_steps == 1
    assert any((a != p.array).any() for a, p in zip(before, model.params()))


def test_a_real_float16_overflow_is_caught():
    # A scale of 2**24 makes the float16 backward overflow (float16's max is 65504).
    model, opt, step = _one_step_setup(mp.LossScaler(scale=2.0 ** 24, max_scale=2.0 ** 24))
    before = [p.array.copy() for p in model.params()]
    step()
    assert opt.skipped_steps == 1 and opt.loss_scale == 2.0 ** 23
    for a, p in zip(before, model.params()):
        numpy.testing.assert_array_equal(a, p.array)


def test_the_scale_doubles_after_growth_interval_good_steps_up_to_max_scale():
    _, opt, step = _one_step_setup(mp.LossScaler(scale=8.0, growth_interval=3, max_scale=16.0))
    for _ in range(2):
        step()
    assert opt.loss_scale == 8.0
    step()
    assert opt.loss_scale == 16.0 and opt.loss_scaler.good_steps == 0
    for _ in range(3):
        step()
    assert opt.loss_scale == 16.0
    step(numpy.inf)
    assert opt.loss_scale == 8.0 and opt.loss_scaler.good_steps == 0


def test_a_static_scale_skips_overflow_without_changing():
    _, opt, step = _one_step_setup(mp.LossScaler(scale=4.0, dynamic=False, growth_interval=1))
    step()
    step(numpy.nan)
    assert opt.loss_scale == 4.0 and opt.skipped_steps == 1 and opt.t == 1


def test_the_scale_never_falls_below_min_scale():
    scaler = mp.LossScaler(scale=2.0, min_scale=1.0)
    for _ in range(3):
        scaler.update(False)
    assert scaler.scale == 1.0 and scaler.skipped_steps == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"scale": 0}, "scale"), ({"scale": float("inf")}, "scale"), ({"growth_interval": 0}, "growth_interval"),
    ({"min_scale": 4.0, "max_scale": 2.0}, "min_scale"), ({"scale": True}, "scale"),
])
def test_loss_scaler_validates(kwargs, match):
    with pytest.raises(ValueError, match=f"LossScaler: {match}"):
        mp.LossScaler(**kwargs)


def test_loss_scaler_backward_wants_a_float32_scalar_loss():
    scaler = mp.LossScaler()
    with pytest.raises(TypeError, match="LossScaler.backward: loss must be float32"):
        scaler.backward(F.sum(Variable(numpy.ones(3, F16))))
    with pytest.raises(ValueError, match="LossScaler.backward: loss must be a scalar"):
        scaler.backward(Variable(numpy.ones(3, F32)) * 2.0)
    with pytest.raises(TypeError, match="LossScaler.backward: loss must be a Variable"):
        scaler.backward(numpy.ones((), F32))


def test_loss_scaler_backward_leaves_the_loss_value_unscaled():
    w = Variable(numpy.full(3, 2.0, F32))
    loss = F.sum(w * w)
    mp.LossScaler(scale=8.0).backward(loss)
    assert float(loss.array) == 12.0
    numpy.testing.assert_array_equal(w.grad, numpy.full(3, 32.0, F32))


# -- the optimizer wrapper -------------------------------------------------------------------------
def test_wrapper_reads_and_writes_the_inner_hyperparameters():
    inner = optimizers.MomentumSGD(0.1)
    opt = mp.MixedPrecisionOptimizer(inner)
    opt.lr = 0.5
    assert inner.lr == 0.5 and opt.lr == 0.5
    assert opt.loss_scale == 2.0 ** 15


def test_wrapper_update_with_a_lossfun_scales_the_backward():
    model = _mlp()
    opt = mp.MixedPrecisionOptimizer(optimizers.SGD(0.1), mp.LossScaler(scale=4.0, growth_interval=1)).setup(model)
    x, t = _blobs(8, 20, 3, 0.6, numpy.random.default_rng(5))
    before = model[0].W.array.copy()
    opt.update(lambda: F.softmax_cross_entropy(model(x), t))
    assert opt.t == 1 and opt.loss_scale == 8.0
    assert (model[0].W.array != before).any()


def test_wrapper_validates():
    with pytest.raises(TypeError, match="MixedPrecisionOptimizer: inner"):
        mp.MixedPrecisionOptimizer(object())
    with pytest.raises(TypeError, match="MixedPrecisionOptimizer: loss_scaler"):
        mp.MixedPrecisionOptimizer(optimizers.SGD(), loss_scaler=2.0 ** 15)
    with pytest.raises(RuntimeError, match="setup"):
        mp.MixedPrecisionOptimizer(optimizers.SGD()).update()


def test_wrapper_refuses_gradients_from_an_unscaled_backward():
    model = _mlp()
    opt = mp.MixedPrecisionOptimizer(optimizers.SGD(0.1)).setup(model)
    F.sum(model(numpy.ones((2, 20), F32))).backward()
    with pytest.raises(RuntimeError, match=r"call optimizer.backward\(loss\)"):
        opt.update()


def test_wrapper_refuses_float16_master_weights():
    fc = L.Linear(2, 2)
    fc.W.array = fc.W.array.astype(F16)
    fc.b.array = fc.b.array.astype(F16)
    opt = mp.MixedPrecisionOptimizer(optimizers.SGD()).setup(fc)
    opt.backward(F.sum(F.cast(fc(numpy.ones((1, 2), F16)), F32)))
    with pytest.raises(TypeError, match="master weights must be float32"):
        opt.update()


def test_composes_with_the_data_parallel_wrapper():
    x, t = _blobs(16, 20, 3, 0.6, numpy.random.default_rng(6))
    weights = []
    for dp in (False, True):
        seed(0)
        model = _mlp()
        opt = mp.MixedPrecisionOptimizer(optimizers.Adam(0.01))
        if dp:
            opt = DataParallelOptimizer(opt, SingleCommunicator())
        opt.setup(model)
        fmodel = mp.MixedPrecisionModel(model, F16)
        for poison in (None, numpy.inf, None):
            loss = F.softmax_cross_entropy(fmodel(x), t)
            model.cleargrads()
            opt.backward(loss)
            if poison is not None:
                model[2].b.grad[0] = poison
            opt.update()
        assert opt.skipped_steps == 1 and opt.t == 2 and opt.loss_scale == 2.0 ** 14
        weights.append([p.array.copy() for p in model.params()])
    for a, b in zip(*weights):
        numpy.testing.assert_array_equal(a, b)
