"""HOW FAST: fused GPU kernels that the functions and optimizers dispatch to when ``xp is cupy``.

Each module holds the CUDA C sources of one family (``cupy.ElementwiseKernel`` /
``cupy.ReductionKernel`` definitions, in the manner of Chainer's ``cuda.elementwise`` updates) and
thin wrappers that launch them. Kernels are made through ``core.backend`` at their first use and
cached there; nothing is compiled at import. Every kernel is tested against the unfused array-code
path of its function under the simulated GPUs, which compile each source with NVRTC for
``compute_80`` and ``compute_90`` and run its C body.

``fusable(*arrays)`` says when a kernel applies: cupy arrays of float32 or float64 (half precision
goes through the unfused path).
"""
from __future__ import annotations

import numpy

from .. import backend


def fusable(*arrays) -> bool:
    """True when every array is a cupy array of float32 or float64 (the fused kernels' types)."""
    if backend.cupy is None:
        return False
    for a in arrays:
        if not isinstance(a, backend.cupy.ndarray) or a.dtype not in (numpy.float32, numpy.float64):
            return False
    return True


def definitions() -> list:
    """Every fused kernel's definition, ``(module, name, kind, args, scalars)``, for the compile tests
    (``scalars``: the inputs passed as host scalars, where it matters to the source)."""
    from . import (cuda_activation, cuda_conv, cuda_loss, cuda_mixed, cuda_normalization, cuda_pooling, cuda_rnn,
                   cuda_update)

    out = []
    for module in (cuda_update, cuda_loss, cuda_activation, cuda_conv, cuda_pooling, cuda_normalization,
                   cuda_rnn, cuda_mixed):
        for name, (kind, args) in module.KERNELS.items():
            out.append((module.__name__, name, kind, args, getattr(module, "SCALARS", {}).get(name, ())))
    return out


def get(kind: str, args: tuple):
    """The (cached) cupy kernel of one definition."""
    make = backend.elementwise_kernel if kind == "elementwise" else backend.reduction_kernel
    return make(*args)
