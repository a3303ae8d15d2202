"""Every optimizer test runs on both CPU kernel paths (compiled and numpy)."""
import pytest


@pytest.fixture(autouse=True)
def _both_cpu_kernel_paths(cpu_kernels):
    yield cpu_kernels
