"""Each fused kernel equals the unfused array code of its function (float32, odd sizes), forward and
backward, under the simulated GPUs (which compile every source with NVRTC and run its C body)."""
import numpy
import pytest

from benchbench.core import backend, functions as F, kernels, Variable

from .conftest import rand

pytestmark = pytest.mark.simgpu


def _fwd_bwd(fn, arrays, seed=1):
    """Forward and the gradients of every input, for a random upstream gradient."""
    vs = [Variable(backend.to_device(a, "gpu:0")) for a in arrays]
    y = fn(*vs)
    gy = rand(y.shape, seed)
    y.grad = backend.to_device(gy, "gpu:0")
    y.backward()
    return [backend.as_numpy(y.array)] + [backend.as_numpy(v.grad) for v in vs]


def _same(cupy, unfused, launches, fn, arrays, rtol=1e-6):
    fused, n_fused = launches(lambda: _fwd_bwd(fn, arrays))
    with unfused():
        plain, n_plain = launches(lambda: _fwd_bwd(fn, arrays))
    for k, (a, b) in enumerate(zip(fused, plain)):
        # relative to the largest magnitude: sums in another order differ in their last bits
        numpy.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(numpy.abs(b).max(initial=1.0)),
                                      err_msg=f"output {k}")
    assert n_fused < n_plain
    return n_fused


CASES = {
    "relu": (F.relu, [(7, 13)], 1e-6),
    "sigmoid": (F.sigmoid, [(5, 3, 7)], 1e-6),
    "tanh": (F.tanh, [(11, 5)], 1e-6),
    "max_pooling stride 1 cover_all": (lambda x: F.max_pooling_2d(x, 2, 1), [(3, 5, 7, 9)], 1e-6),
    "max_pooling stride 2 pad 1": (lambda x: F.max_pooling_2d(x, 3, 2, pad=1), [(2, 3, 9, 7)], 1e-6),
    "average_pooling": (lambda x: F.average_pooling_2d(x, 3, 2, pad=1), [(2, 3, 9, 7)], 1e-6),
    "convolution 5x5": (lambda x, W, b: F.convolution_2d(x, W, b), [(3, 2, 11, 9), (5, 2, 5, 5), (5,)], 1e-5),
    "convolution 3x3 s2 p1": (lambda x, W, b: F.convolution_2d(x, W, b, stride=2, pad=1),
                              [(2, 3, 9, 7), (4, 3, 3, 3), (4,)], 1e-5),
    "batch_normalization 4-D": (lambda x, g, b: F.batch_normalization(x, g, b), [(3, 5, 7, 3), (5,), (5,)], 1e-5),
    "batch_normalization 2-D": (lambda x, g, b: F.batch_normalization(x, g, b), [(9, 7), (7,), (7,)], 1e-5),
    "lstm step": (lambda c, x: F.concat(F.lstm(c, x), axis=1), [(5, 3), (5, 12)], 1e-6),
    "lstm sequence": (lambda x, h, c, wx, wh, b: F.concat(F.lstm_sequence(x, h, c, wx, wh, b)[1:], axis=1),
                      [(4, 3, 2), (3, 5), (3, 5), (20, 2), (20, 5), (20,)], 1e-5),
    "lstm sequence outputs": (lambda x, h, c, wx, wh: F.lstm_sequence(x, h, c, wx, wh)[0],
                              [(3, 2, 3), (2, 3), (2, 3), (12, 3), (12, 3)], 1e-5),
    "mean_squared_error": (F.mean_squared_error, [(3, 5, 2), (3, 5, 2)], 1e-6),
    "convolution 1x1 s2 no bias": (lambda x, W: F.convolution_2d(x, W, stride=2), [(2, 3, 7, 5), (5, 3, 1, 1)], 1e-5),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_fused_function_equals_the_unfused_path(cupy, unfused, launches, name):
    fn, shapes, rtol = CASES[name]
    _same(cupy, unfused, launches, fn, [rand(s, seed=k) for k, s in enumerate(shapes)], rtol=rtol)


@pytest.mark.parametrize("ignore", [False, True])
def test_softmax_cross_entropy_fused_equals_unfused(cupy, unfused, launches, ignore):
    x = rand((13, 7)) * 4
    t = numpy.random.default_rng(0).integers(0, 7, 13).astype(numpy.int32)
    if ignore:
        t[[2, 5]] = -1
    tg = backend.to_device(t, "gpu:0")
    for normalize in (True, False):
        n = _same(cupy, unfused, launches, lambda v: F.softmax_cross_entropy(v, tg, normalize=normalize), [x],
                  rtol=1e-6)
        assert n == 3  # rows (with the count of valid labels), the loss; the gradient


def test_batch_normalization_updates_the_running_averages_as_the_unfused_path(cupy, unfused):
    x = rand((4, 3, 5, 5)) * 2 + 1
    gamma, beta = rand((3,), 1), rand((3,), 2)

    def run():
        rm, rv = (backend.to_device(a, "gpu:0") for a in (rand((3,), 3), numpy.ones(3, numpy.float32)))
        y = F.batch_normalization(backend.to_device(x, "gpu:0"), backend.to_device(gamma, "gpu:0"),
                                  backend.to_device(beta, "gpu:0"), running_mean=rm, running_var=rv, decay=0.7)
        return [backend.as_numpy(a) for a in (y.array, rm, rv)]

    fused = run()
    with unfused():
        plain = run()
    for a, b in zip(fused, plain):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_accuracy_fused_equals_unfused(cupy, unfused, launches):
    y = rand((13, 7))
    y[3, 4] = y[3, 1] = 9.0  # a tie: the first maximum counts, as argmax takes it
    t = numpy.random.default_rng(1).integers(0, 7, 13).astype(numpy.int32)
    t[3] = 1
    yg, tg = backend.to_device(y, "gpu:0"), backend.to_device(t, "gpu:0")
    fused, n = launches(lambda: float(F.accuracy(yg, tg).array))
    with unfused():
        plain = float(F.accuracy(yg, tg).array)
    assert fused == pytest.approx(plain, rel=1e-6) and n == 2
    assert fused == pytest.approx(numpy.mean(y.argmax(axis=1) == t), rel=1e-6)


def test_the_mutated_relu_gradient_is_caught(cupy, unfused, launches, monkeypatch):
    from benchbench.core.kernels import cuda_activation

    kind, args = cuda_activation.KERNELS["relu_grad"]
    wrong = (kind, (args[0], args[1], args[2].replace("y > (T)0", "y >= (T)0"), "benchbench_relu_grad_wrong"))
    monkeypatch.setitem(cuda_activation.KERNELS, "relu_grad", wrong)
    x = rand((4, 5))
    x[0, :3] = 0.0  # relu's output is 0 there: the wrong mask passes the gradient through
    with pytest.raises(AssertionError):
        _same(cupy, unfused, launches, F.relu, [x])


def test_every_kernel_source_compiles_for_sm80_and_sm90(cupy):
    """Each definition, with float32 and float64 for its type placeholders, through the real NVRTC."""
    from cupy import _nvrtc

    defs = kernels.definitions()
    assert len(defs) >= 15
    for module, name, kind, args, scalars in defs:
        k = kernels.get(kind, args)
        for dt in (numpy.float32, numpy.float64):
            # T: the data type; S: the label or index type where a kernel has one
            ptx = _nvrtc.compile_all(k.source({"T": numpy.dtype(dt), "S": numpy.dtype(numpy.int32)}, scalars),
                                     k.name)
            assert set(ptx) == {"compute_80", "compute_90"} and all(".entry" in p for p in ptx.values()), name
