"""Forward + backward of the heavy ops at the shapes the workloads use (numpy, float32).

Run with ``python -m pytest benchmarks/bench_ops.py``; ``-k gemm`` runs the plain
``numpy.matmul`` of each convolution's GEMM, the BLAS bound to compare with.
"""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core import functions as F

ROUNDS = 5


def _rand(*shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)


def _step(fn, inputs, needs_grad):
    """A callable running ``fn`` forward and backward on fresh Variables."""
    gy = _rand(*fn(*inputs).shape, seed=9)

    def run():
        y = fn(*[Variable(a, requires_grad=g) for a, g in zip(inputs, needs_grad)])
        y.grad = gy
        y.backward()

    return run


def _bench(benchmark, fn, inputs, needs_grad):
    run = _step(fn, inputs, needs_grad)
    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)


def test_linear_784_1000(benchmark):
    """MLP/MNIST first layer: the input is data and needs no gradient."""
    _bench(benchmark, F.linear, (_rand(100, 784), _rand(1000, 784), _rand(1000)), (False, True, True))


def test_linear_1000_1000(benchmark):
    _bench(benchmark, F.linear, (_rand(100, 1000), _rand(1000, 1000), _rand(1000)), (True, True, True))


CONVS = {
    # name: x shape, W shape, stride, pad, x needs grad
    "mnist_conv1_100x1x28x28_k5x32": ((100, 1, 28, 28), (32, 1, 5, 5), 1, 0, False),
    "mnist_conv2_100x32x24x24_k5x64": ((100, 32, 24, 24), (64, 32, 5, 5), 1, 0, True),
    "resnet_64x64x32x32_k3x64_s1": ((64, 64, 32, 32), (64, 64, 3, 3), 1, 1, True),
    "resnet_64x128x16x16_k3x128_s1": ((64, 128, 16, 16), (128, 128, 3, 3), 1, 1, True),
    "resnet_64x128x16x16_k3x256_s2": ((64, 128, 16, 16), (256, 128, 3, 3), 2, 1, True),
    "resnet_64x256x8x8_k1x64_s1": ((64, 256, 8, 8), (64, 256, 1, 1), 1, 0, True),
}


@pytest.mark.parametrize("name", list(CONVS))
def test_convolution_2d(benchmark, name):
    xs, ws, stride, pad, x_grad = CONVS[name]

    def conv(x, W, b):
        return F.convolution_2d(x, W, b, stride=stride, pad=pad)

    _bench(benchmark, conv, (_rand(*xs), _rand(*ws, seed=1), _rand(ws[0], seed=2)), (x_grad, True, True))


@pytest.mark.parametrize("name", list(CONVS))
def test_gemm_reference(benchmark, name):
    """The forward GEMM of each convolution as one plain numpy.matmul (the BLAS bound per GEMM)."""
    xs, ws, stride, pad, _ = CONVS[name]
    n, c, h, w = xs
    o, _, kh, kw = ws
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (w + 2 * pad - kw) // stride + 1
    a, b = _rand(o, c * kh * kw), _rand(c * kh * kw, n * oh * ow)
    benchmark.pedantic(numpy.matmul, (a, b), rounds=ROUNDS, warmup_rounds=1)


POOLS = {
    "mnist_100x32x24x24_k2_s1": ((100, 32, 24, 24), 2, 1),
    "mnist_100x32x24x24_k2_s2": ((100, 32, 24, 24), 2, 2),
    "resnet_64x64x32x32_k3_s2_p1": ((64, 64, 32, 32), 3, 2),
}


@pytest.mark.parametrize("name", list(POOLS))
def test_max_pooling_2d(benchmark, name):
    xs, ksize, stride = POOLS[name]
    pad = 1 if name.endswith("_p1") else 0
    _bench(benchmark, lambda x: F.max_pooling_2d(x, ksize, stride, pad), (_rand(*xs),), (True,))


def test_average_pooling_2d_64x512x4x4_k4(benchmark):
    _bench(benchmark, lambda x: F.average_pooling_2d(x, 4), (_rand(64, 512, 4, 4),), (True,))


def test_batch_normalization_64x64x32x32(benchmark):
    _bench(benchmark, F.batch_normalization, (_rand(64, 64, 32, 32), _rand(64), _rand(64)), (True, True, True))


def test_fixed_batch_normalization_64x64x32x32(benchmark):
    c = 64
    inputs = (_rand(64, c, 32, 32), _rand(c), _rand(c), _rand(c), numpy.abs(_rand(c)) + 0.5)
    _bench(benchmark, F.fixed_batch_normalization, inputs, (True, False, False, False, False))
