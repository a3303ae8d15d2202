"""Linear and Convolution2D links."""
import numpy
import pytest

from benchbench.core import backend, initializers
from benchbench.core import links as L
from benchbench.core.gradient_check import check_backward


def test_linear_forms_and_shapes():
    assert L.Linear(3, 5).W.shape == (5, 3)
    one = L.Linear(5)
    assert one.W.array is None and one.out_size == 5 and one.b.shape == (5,)
    lazy = L.Linear(None, 5, nobias=True)
    assert lazy.b is None
    y = lazy(numpy.ones((2, 3, 4), numpy.float32))  # every axis after the first is flattened
    assert y.shape == (2, 5) and lazy.W.shape == (5, 12) and lazy.in_size == 12


def test_linear_forward_matches_numpy(xp):
    fc = L.Linear(4, 3, initial_bias=0.5).to_device("cpu" if xp is numpy else "gpu:0")
    x = numpy.random.default_rng(0).standard_normal((6, 4)).astype(numpy.float32)
    y = fc(xp.asarray(x))
    want = x @ backend.as_numpy(fc.W.array).T + 0.5
    numpy.testing.assert_allclose(backend.as_numpy(y.array), want, rtol=1e-5, atol=1e-6)


def test_linear_initializers():
    w = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    fc = L.Linear(3, 2, initialW=w, initial_bias=initializers.Constant(1.5))
    numpy.testing.assert_array_equal(fc.W.array, w)
    numpy.testing.assert_array_equal(fc.b.array, [1.5, 1.5])
    assert fc.W.dtype == numpy.float32


def test_linear_default_init_is_seeded():
    from benchbench.core import seed

    seed(3)
    a = L.Linear(4, 4).W.array.copy()
    seed(3)
    b = L.Linear(4, 4).W.array
    numpy.testing.assert_array_equal(a, b)
    assert abs(float(a.std()) - 0.5) < 0.3  # LeCunNormal: std 1/sqrt(4)


def test_linear_backward():
    fc = L.Linear(3, 2)
    x = numpy.random.default_rng(1).standard_normal((4, 3))
    check_backward(fc, x, params=(fc.W, fc.b))


@pytest.mark.parametrize("args", [(0, 3), (3, -1), (2.5, 3), (True, 3)])
def test_linear_rejects_bad_sizes(args):
    with pytest.raises(ValueError, match="Linear"):
        L.Linear(*args)


def test_linear_lazy_rejects_1d_input():
    with pytest.raises(ValueError, match="Linear"):
        L.Linear(3)(numpy.ones(4, numpy.float32))


def test_convolution2d_forms():
    c = L.Convolution2D(3, 8, 5)
    assert c.W.shape == (8, 3, 5, 5) and c.b.shape == (8,)
    short = L.Convolution2D(8, 3)
    assert short.W.array is None and short.out_channels == 8 and short.ksize == (3, 3)
    lazy = L.Convolution2D(None, 4, (3, 2), stride=(1, 2), pad=1, nobias=True)
    y = lazy(numpy.ones((2, 3, 6, 6), numpy.float32))
    assert lazy.W.shape == (4, 3, 3, 2) and lazy.b is None
    assert y.shape == (2, 4, 6, 4)


def test_convolution2d_forward_matches_numpy():
    conv = L.Convolution2D(2, 3, 3, pad=1, initial_bias=0.25)
    x = numpy.random.default_rng(2).standard_normal((1, 2, 4, 4)).astype(numpy.float32)
    y = conv(x).array
    xp_ = numpy.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    w = conv.W.array
    want = numpy.zeros((1, 3, 4, 4))
    for o in range(3):
        for i in range(4):
            for j in range(4):
                want[0, o, i, j] = (xp_[0, :, i:i + 3, j:j + 3] * w[o]).sum() + 0.25
    numpy.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_convolution2d_backward():
    conv = L.Convolution2D(2, 2, 2, stride=1, pad=0)
    x = numpy.random.default_rng(3).standard_normal((2, 2, 3, 3))
    check_backward(conv, x, params=(conv.W, conv.b))


@pytest.mark.parametrize("kwargs", [{"ksize": 0}, {"stride": 0}, {"pad": -1}, {"ksize": (1, 2, 3)}])
def test_convolution2d_rejects_bad_args(kwargs):
    args = {"ksize": 3, **kwargs}
    with pytest.raises(ValueError, match="Convolution2D"):
        L.Convolution2D(2, 3, **args)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_linear_with_an_activation_applies_it_after_the_layer(act):
    from benchbench.core import functions as F

    fn = getattr(F, act)
    fc = L.Linear(3, 4)
    x = numpy.random.default_rng(0).standard_normal((5, 3)).astype(numpy.float32)
    numpy.testing.assert_array_equal(fc(x, activation=fn).array, fn(fc(x)).array)
