"""Simulated ``cupy.random``: device arrays drawn from a seeded generator per device (its stream differs
from numpy's global one, as real cupy's does; ``seed`` seeds the current device's generator only)."""
from __future__ import annotations

import numpy

from .. import _capture, _launches, _state
from .._core import ndarray


def _curand(method):
    """A draw: cupy sets the generator's stream first (``curand.setStream``), which refuses a capturing
    stream, before the generator advances."""
    def draw(self, *args, **kwargs):
        _capture.check_curand(_state.local.device)
        return method(self, *args, **kwargs)
    draw.__name__ = method.__name__
    return draw


class RandomState:
    def __init__(self, seed=None):
        self.seed(seed)

    def seed(self, seed=None):
        self._g = numpy.random.default_rng(None if seed is None else int(seed) + 0x5EED)

    def _out(self, a, dtype=None):
        a = numpy.asarray(a if dtype is None else numpy.asarray(a).astype(dtype, copy=False))
        _launches.launch(_state.local.device, 1, "cupy.random")  # a generator kernel
        return ndarray._adopt(numpy.array(a), _state.local.device, "cupy.random")

    def random_sample(self, size=None, dtype=float):
        dt = numpy.dtype(dtype)
        return self._out(self._g.random(size, dtype=dt if dt in (numpy.float32, numpy.float64) else numpy.float64),
                         dt)

    random = random_sample

    def rand(self, *size, dtype=float):
        return self.random_sample(size or None, dtype)

    def standard_normal(self, size=None, dtype=float):
        dt = numpy.dtype(dtype)
        return self._out(self._g.standard_normal(size, dtype=dt if dt in (numpy.float32, numpy.float64)
                                                 else numpy.float64), dt)

    def randn(self, *size, dtype=float):
        return self.standard_normal(size or None, dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return self._out(self._g.normal(loc, scale, size), dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return self._out(self._g.uniform(low, high, size), dtype)

    def randint(self, low, high=None, size=None, dtype=int):
        return self._out(self._g.integers(low, high, size), dtype)

    def permutation(self, a):
        if isinstance(a, ndarray):
            _launches.launch(a._dev, 1, "cupy.random")
            return ndarray._adopt(self._g.permutation(a._a), a._dev, "cupy.random.permutation")
        return self._out(self._g.permutation(a))

    def shuffle(self, a):
        if not isinstance(a, ndarray):
            raise TypeError("cupy.random.shuffle: a must be a device array")
        _launches.launch(a._dev, 1, "cupy.random")
        self._g.shuffle(a._a)

    def choice(self, a, size=None, replace=True, p=None):
        a = a._a if isinstance(a, ndarray) else a
        p = p._a if isinstance(p, ndarray) else p
        return self._out(self._g.choice(a, size, replace, p))


for _name in "random_sample rand standard_normal randn normal uniform randint permutation shuffle choice".split():
    setattr(RandomState, _name, _curand(getattr(RandomState, _name)))
RandomState.random = RandomState.random_sample

_states: dict[int, RandomState] = {}  # cupy keeps one generator per device


def get_random_state():
    """The current device's generator (each device has its own, seeded separately)."""
    dev = _state.check_device(_state.local.device)
    if dev not in _states:
        _states[dev] = RandomState()
    return _states[dev]


def seed(seed=None):
    """Seed the current device's generator only (as cupy.random.seed does)."""
    get_random_state().seed(seed)


def reset_states():
    _states.clear()


def _on_current(name):
    def f(*args, **kwargs):
        return getattr(get_random_state(), name)(*args, **kwargs)
    f.__name__ = name
    return f


for _name in "random random_sample rand randn standard_normal normal uniform randint permutation shuffle choice".split():
    globals()[_name] = _on_current(_name)
del _name
