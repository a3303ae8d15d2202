"""Versions of benchbench and of the libraries that shape its figures (the ``versions`` block)."""
from __future__ import annotations

import importlib.metadata

from benchbench import __version__
from benchbench.system.nvml import _cuda_version_text

def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _mpi_library() -> str | None:
    for dist in ("mpich", "openmpi", "impi-rt", "msmpi"):
        v = _dist_version(dist)
        if v is not None:
            return f"{dist} {v}"
    return None


def _nccl_version(cupy) -> str | None:
    nccl = getattr(getattr(cupy, "cuda", None), "nccl", None)  # set once the communicators loaded it
    code = None
    if nccl is not None and getattr(nccl, "available", True):
        try:
            code = int(nccl.get_version())
        except Exception:
            code = None
    if code:
        major, rest = (code // 10000, code % 10000) if code >= 10000 else (code // 1000, code % 1000)
        return f"{major}.{rest // 100}.{rest % 100}"
    return _dist_version("nvidia-nccl-cu13", "nvidia-nccl-cu12", "nvidia-nccl-cu11")


def versions() -> dict:
    """Versions of benchbench and of the libraries that shape its figures (None where absent)."""
    import numpy

    from benchbench.core import backend

    out = {"benchbench": __version__, "numpy": numpy.__version__, "cupy": None, "cuda_runtime": None,
           "nccl": None, "mpi4py": _dist_version("mpi4py"), "mpi": _mpi_library(),
           "pandas": _dist_version("pandas"), "matplotlib": _dist_version("matplotlib")}
    cupy = backend.cupy
    if cupy is not None:
        out["cupy"] = str(getattr(cupy, "__version__", None) or "") or None
        try:
            out["cuda_runtime"] = _cuda_version_text(int(cupy.cuda.runtime.runtimeGetVersion()))
        except Exception:
            pass
        out["nccl"] = _nccl_version(cupy)
    return out
