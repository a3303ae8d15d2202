"""Weight initializers. Each is a callable ``init(shape, xp=numpy, dtype=float32) -> array``.

Values are drawn on the CPU from the framework's seeded generator
(``core.random``) and then moved to ``xp``, so a seed gives the same weights
on every device.
"""
from __future__ import annotations

import math

import numpy

from .random import get_rng


def _fans(shape):
    if len(shape) < 2:
        raise ValueError(f"initializer: shape must have at least 2 axes to compute fans, got {shape}")
    receptive = int(numpy.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


class Initializer:
    """Base: subclasses implement ``sample(shape) -> float64 numpy array``."""

    def sample(self, shape):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, shape, xp=numpy, dtype=numpy.float32):
        a = numpy.asarray(self.sample(tuple(shape)), dtype=dtype)
        return a if xp is numpy else xp.asarray(a)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


class Constant(Initializer):
    def __init__(self, value):
        self.value = float(value)

    def sample(self, shape):
        return numpy.full(shape, self.value)


class Zero(Constant):
    def __init__(self):
        super().__init__(0.0)


class One(Constant):
    def __init__(self):
        super().__init__(1.0)


class Normal(Initializer):
    def __init__(self, scale=0.05):
        self.scale = scale

    def sample(self, shape):
        return get_rng().standard_normal(shape) * self.scale


class Uniform(Initializer):
    def __init__(self, scale=0.05):
        self.scale = scale

    def sample(self, shape):
        return get_rng().uniform(-self.scale, self.scale, shape)


class _FanNormal(Initializer):
    _factor = 1.0
    _fan = "in"

    def __init__(self, scale=1.0):
        self.scale = scale

    def _fan_value(self, shape):
        fan_in, fan_out = _fans(shape)
        return {"in": fan_in, "out": fan_out, "avg": (fan_in + fan_out) / 2}[self._fan]

    def sample(self, shape):
        std = self.scale * math.sqrt(self._factor / self._fan_value(shape))
        return get_rng().standard_normal(shape) * std


class _FanUniform(_FanNormal):
    def sample(self, shape):
        limit = self.scale * math.sqrt(3.0 * self._factor / self._fan_value(shape))
        return get_rng().uniform(-limit, limit, shape)


class LeCunNormal(_FanNormal):
    """N(0, scale²/fan_in) — Chainer's default for Linear and Convolution2D."""


class LeCunUniform(_FanUniform):
    """U(±scale·sqrt(3/fan_in))."""


class HeNormal(_FanNormal):
    """N(0, 2·scale²/fan_in) — for ReLU networks."""

    _factor = 2.0


class HeUniform(_FanUniform):
    _factor = 2.0


class GlorotNormal(_FanNormal):
    """N(0, scale²/((fan_in+fan_out)/2))."""

    _fan = "avg"


class GlorotUniform(_FanUniform):
    _fan = "avg"


def get_initializer(spec):
    """An Initializer from an Initializer, a scalar (constant), an array, or None (LeCunNormal)."""
    if spec is None:
        return LeCunNormal()
    if isinstance(spec, Initializer) or callable(spec):
        return spec
    if numpy.isscalar(spec):
        return Constant(spec)
    raise TypeError(f"get_initializer: expected an initializer, a scalar or None, got {type(spec).__name__}")
