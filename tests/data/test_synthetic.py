import numpy as np
import pytest

from benchbench.data.synthetic import synthetic


def _nearest_class_mean_accuracy(train, val, n_classes):
    x, t = train
    xv, tv = val
    flat, flat_v = x.reshape(len(x), -1), xv.reshape(len(xv), -1)
    means = np.stack([flat[t == k].mean(axis=0) for k in range(n_classes)])
    dist = (means ** 2).sum(axis=1) - 2 * flat_v @ means.T
    return float((dist.argmin(axis=1) == tv).mean())


@pytest.mark.parametrize("name, shape", [("mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))])
def test_shapes_dtypes_range(name, shape):
    (x, t), (xv, tv) = synthetic(name, n_train=64, n_val=16, seed=0)
    assert x.shape == (64, *shape) and xv.shape == (16, *shape)
    assert x.dtype == np.float32 and t.dtype == np.int32
    assert x.min() >= 0.0 and x.max() <= 1.0 and 0.05 < x.mean() < 0.95
    assert t.min() >= 0 and t.max() < 10 and len(np.unique(t)) > 5


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_learnable_far_above_chance(name):
    train, val = synthetic(name, n_train=2000, n_val=500, seed=1)
    assert _nearest_class_mean_accuracy(train, val, 10) > 0.6  # chance is 0.1


def test_not_trivially_separable_per_sample():
    # Every sample mixes in another class's template and noise: no sample equals a template.
    (x, t), _ = synthetic("mnist", n_train=200, n_val=1, seed=0)
    same = x[t == t[0]].reshape(-1, 784)
    assert np.abs(same - same[0]).max() > 0.5


def test_deterministic_from_seed():
    a = synthetic("mnist", n_train=32, n_val=8, seed=5)
    b = synthetic("mnist", n_train=32, n_val=8, seed=5)
    c = synthetic("mnist", n_train=32, n_val=8, seed=6)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    np.testing.assert_array_equal(a[1][1], b[1][1])
    assert not np.array_equal(a[0][0], c[0][0])


def test_templates_come_from_the_seed():
    # The class templates come from the seed, so a classifier fit on train transfers to val.
    train, val = synthetic("cifar10", n_train=1000, n_val=300, seed=2)
    other_train, _ = synthetic("cifar10", n_train=1000, n_val=1, seed=3)
    assert _nearest_class_mean_accuracy(train, val, 10) > _nearest_class_mean_accuracy(other_train, val, 10) + 0.3


def test_validation():
    with pytest.raises(ValueError, match="synthetic: unknown dataset 'sine'"):
        synthetic("sine", 10, 10)
    with pytest.raises(ValueError, match="synthetic: n_train must be >= 1"):
        synthetic("mnist", 0, 10)
    with pytest.raises(ValueError, match="synthetic: min_weight"):
        synthetic("mnist", 10, 10, min_weight=0.5)
