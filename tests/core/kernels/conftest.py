"""Helpers for the fused-kernel tests: they run under the simulated GPUs, which compile every kernel
source with NVRTC (compute_80 and compute_90) and execute its C body."""
import numpy
import pytest

from benchbench.core import backend, kernels


@pytest.fixture
def cupy():
    cp = backend.cupy
    if not getattr(cp, "_benchbench_simulated", False):
        pytest.skip("the fused kernels are checked against the unfused path on the simulated GPUs")
    return cp


@pytest.fixture
def unfused(monkeypatch):
    """A context manager: inside it, every dispatch to a fused kernel takes the unfused path."""
    import contextlib

    @contextlib.contextmanager
    def off():
        with monkeypatch.context() as m:
            m.setattr(kernels, "fusable", lambda *a: False)
            yield

    return off


@pytest.fixture
def launches(cupy):
    def count(fn):
        n0 = cupy._sim_stats()["launches"]
        r = fn()
        return r, cupy._sim_stats()["launches"] - n0
    return count


def rand(shape, seed=0, dtype=numpy.float32):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(dtype)
