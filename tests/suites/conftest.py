"""Fixtures for the workload tests: the repository's suites and a tiny training loop."""
import sys
from pathlib import Path

import numpy
import pytest

from benchbench.core import no_backprop_mode, using_config
from benchbench.registry import discover, resolve

SUITES = Path(__file__).resolve().parents[2] / "benchbench" / "suites"


@pytest.fixture(scope="session")
def suites():
    """The Registry of the repository's suites/ folder (no entry points)."""
    return discover(SUITES, entry_points=False)


@pytest.fixture
def get(suites):
    """``get(spec) -> (workload, params, suite module)``."""
    def _get(spec):
        wl, params = resolve(spec, suites)
        return wl, params, sys.modules[type(wl).__module__]
    return _get


class Trainer:
    """The helpers below, handed to tests by the ``trainer`` fixture."""

    @staticmethod
    def as_float(v):
        return as_float(v)

    @staticmethod
    def train(*args, **kwargs):
        return train(*args, **kwargs)

    @staticmethod
    def evaluate(*args, **kwargs):
        return evaluate(*args, **kwargs)

    @staticmethod
    def falls(*args, **kwargs):
        return falls(*args, **kwargs)


@pytest.fixture
def trainer():
    """Helpers: ``train``, ``evaluate``, ``falls``, ``as_float``."""
    return Trainer


def as_float(v):
    """A Python float from a Variable, a 0-d array or a number."""
    return float(numpy.asarray(getattr(v, "array", v)))


def train(wl, params, steps, batch, n_train, model=None, optimizer=None, lr=None):
    """Train ``steps`` steps on the first ``n_train`` synthetic samples, cycling through them in order.

    Returns:
        ``(losses, model, dataset)``.
    """
    ds = wl.load_data("synthetic", n_train=n_train, n_val=batch)
    model = model or wl.build_model(params)
    opt = optimizer or wl.build_optimizer(params)
    opt.setup(model)
    if lr is not None:
        opt.lr = lr  # optimizers with an ``lr`` hyper-parameter (SGD, MomentumSGD)
    x, t = ds.train
    losses = []
    for i in range(steps):
        lo = (i * batch) % (n_train - batch + 1)
        loss, metric = wl.forward(model, x[lo:lo + batch], t[lo:lo + batch], params)
        assert numpy.isfinite(as_float(metric))
        model.cleargrads()
        loss.backward()
        opt.update()
        losses.append(as_float(loss))
    return losses, model, ds


def evaluate(wl, params, model, x, t):
    """The (loss, metric) of a validation batch, in inference mode without a graph."""
    with using_config("train", False), no_backprop_mode():
        loss, metric = wl.forward(model, x, t, params)
    assert loss.creator is None
    return as_float(loss), as_float(metric)


def falls(losses, k):
    """Mean of the last ``k`` losses below the mean of the first ``k``."""
    return numpy.mean(losses[-k:]) < numpy.mean(losses[:k])
