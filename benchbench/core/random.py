"""One seed for every random source: Python, numpy, cupy and the framework's generator."""
from __future__ import annotations

import random as _pyrandom

import numpy


_state = {"seed": None, "rng": numpy.random.default_rng()}


def seed(n: int) -> None:
    """Seed Python's ``random``, numpy's global state, cupy's generators (each device's at its first
    use through :func:`get_xp_rng`) and the generator that initializers, dropout and data order draw from.

    Args:
        n: a non-negative integer.
    """
    if isinstance(n, bool) or not isinstance(n, (int, numpy.integer)) or n < 0:
        raise ValueError(f"seed: n must be a non-negative integer, got {n!r}")
    n = int(n)
    _pyrandom.seed(n)
    numpy.random.seed(n % 2**32)
    _state["seed"] = n
    _state["rng"] = numpy.random.default_rng(n)
    _state["cupy_seeded"] = set()  # cupy has a generator per device: each is seeded at its first use


def get_seed():
    """The last seed given to ``seed()``, or None."""
    return _state["seed"]


def get_rng() -> numpy.random.Generator:
    """The framework's numpy Generator (reseeded by ``seed``)."""
    return _state["rng"]


def get_xp_rng(xp):
    """A generator for arrays of module ``xp``: the framework's numpy Generator on the CPU,
    cupy's seeded generator on a GPU."""
    if xp is numpy:
        return _state["rng"]
    device = xp.cuda.get_device_id()
    seeded = _state.setdefault("cupy_seeded", set())
    if _state["seed"] is not None and device not in seeded:  # this device's generator, seeded once
        xp.random.seed(_state["seed"])
        seeded.add(device)
    return xp.random
