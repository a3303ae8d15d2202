"""When a fused GPU kernel applies (``fusable``) and how one is made (``get``, cached in ``core.backend``)."""
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


def get(kind: str, args: tuple):
    """The (cached) cupy kernel of one definition."""
    make = backend.elementwise_kernel if kind == "elementwise" else backend.reduction_kernel
    return make(*args)
