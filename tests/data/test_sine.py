import numpy as np
import pytest

from benchbench.data.sine import sine


def test_shapes_dtypes_and_next_value_target():
    (x, t), (xv, tv), note = sine(n_train=16, n_val=8, seq_len=30, noise=0.01, seed=1)
    assert x.shape == t.shape == (16, 30, 1) and xv.shape == tv.shape == (8, 30, 1)
    assert x.dtype == t.dtype == np.float32
    np.testing.assert_array_equal(x[:, 1:], t[:, :-1])
    assert "period 25" in note and "noise sd 0.01" in note and "16 train / 8 val" in note


def test_noise_free_series_is_a_sine_of_the_stated_period():
    (x, t), _, _ = sine(n_train=5, n_val=1, seq_len=60, noise=0.0, seed=0, periods=(20.0,))
    np.testing.assert_allclose(x[:, 20:], x[:, :-20], atol=1e-5)
    assert np.abs(x).max() <= 1.0 and np.abs(x).max() > 0.9


def test_noise_level_is_as_stated():
    (x, _), _, _ = sine(n_train=200, n_val=1, seq_len=40, noise=0.0, seed=4)
    (xn, _), _, _ = sine(n_train=200, n_val=1, seq_len=40, noise=0.05, seed=4)
    assert abs(float((xn - x).std()) - 0.05) < 0.005


def test_seeded_and_split_differs():
    a = sine(n_train=4, n_val=4, seed=7)
    b = sine(n_train=4, n_val=4, seed=7)
    c = sine(n_train=4, n_val=4, seed=8)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    assert not np.array_equal(a[0][0], c[0][0])
    assert not np.array_equal(a[0][0], a[1][0])


def test_several_periods():
    (x, _), _, note = sine(n_train=50, n_val=1, seq_len=80, noise=0.0, seed=0, periods=(10.0, 40.0))
    assert "period 10/40" in note
    short = np.abs(x[:, 10:] - x[:, :-10]).max(axis=(1, 2)) < 1e-5
    assert 0 < short.sum() < len(x)


@pytest.mark.parametrize("kwargs, err, text", [
    ({"n_train": 0}, ValueError, "sine: n_train must be >= 1"),
    ({"seq_len": 2.0}, TypeError, "sine: seq_len must be an int"),
    ({"noise": -1}, ValueError, "sine: noise must be a non-negative"),
    ({"periods": (0.0,)}, ValueError, "sine: periods must be positive"),
])
def test_validation(kwargs, err, text):
    with pytest.raises(err, match=text):
        sine(**kwargs)
