"""HOW FAST: the kernels and algorithms the functions and optimizers dispatch to.

On the CPU: the host buffer pool (``buffers``), convolution geometry (``conv_geometry``), im2col's
gradient passes (``im2col``), column chunking (``conv_chunks``), Winograd (``winograd``; compiled:
``cpu_winograd`` and its matrices in ``winograd_algebra``) and the choice between them
(``conv_algorithm``). On a GPU, the fused kernels below, used when
``xp is cupy``.

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

from .fusion import fusable, get  # noqa: F401


def definitions() -> list:
    """Every fused kernel's definition, ``(module, name, kind, args, scalars)``, for the compile tests
    (``scalars``: the inputs passed as host scalars, where it matters to the source)."""
    from . import (cuda_activation, cuda_conv, cuda_linear, cuda_loss, cuda_mixed, cuda_normalization, cuda_pooling,
                   cuda_rnn, cuda_update)

    out = []
    for module in (cuda_update, cuda_loss, cuda_activation, cuda_linear, cuda_conv, cuda_pooling, cuda_normalization,
                   cuda_rnn, cuda_mixed):
        for name, (kind, args) in module.KERNELS.items():
            out.append((module.__name__, name, kind, args, getattr(module, "SCALARS", {}).get(name, ())))
    return out
