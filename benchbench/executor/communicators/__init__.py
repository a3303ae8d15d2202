"""Communicators for data-parallel training, picked by name.

``create("single")`` is one process; ``create("mpi")`` runs CPU ranks over mpi4py on numpy
buffers; ``create("nccl")`` runs one GPU per rank over NCCL (``cupy.cuda.nccl``), with the NCCL
unique id broadcast over MPI. This package is the only place that imports mpi4py or NCCL, and
it does so lazily, when a communicator is created.

Every collective has a time-out: a rank that died or hangs makes the others raise
``CollectiveTimeout`` instead of waiting forever.
"""
from __future__ import annotations

from benchbench.executor.communicators.base import CollectiveTimeout, Communicator, CommunicatorError
from benchbench.executor.communicators.single import SingleCommunicator

_FACTORIES = {
    "single": ("single", "SingleCommunicator"),
    "mpi": ("mpi", "MpiCommunicator"),
    "nccl": ("nccl", "NcclCommunicator"),
}


def create(name: str = "single", timeout_s: float = 300.0, **options) -> Communicator:
    """Create the communicator called ``name``.

    Args:
        name: ``"single"``, ``"mpi"`` or ``"nccl"``.
        timeout_s: seconds any collective may wait before raising ``CollectiveTimeout``.
        **options: passed to the communicator's class (e.g. ``init_timeout_s`` of ``nccl``).

    Raises:
        ValueError: an unknown name.
        CommunicatorError: mpi4py, MPI, cupy or NCCL is missing (the message says how to install it).
    """
    try:
        module_name, cls_name = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"communicators.create: unknown communicator {name!r}; known: {sorted(_FACTORIES)}") from None
    import importlib

    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, cls_name)(timeout_s=timeout_s, **options)


def abort_world(code: int = 1) -> None:
    """End every rank of the MPI job at once (see ``mpi.abort_world``)."""
    from benchbench.executor.communicators.mpi import abort_world as _abort_world

    _abort_world(code)


def available() -> dict[str, bool]:
    """Which communicators can be created on this machine (without creating them)."""
    from benchbench.executor.communicators import mpi, nccl

    return {"single": True, "mpi": mpi.mpi4py_available(), "nccl": nccl.nccl_available()}


__all__ = ["create", "available", "abort_world", "Communicator", "CommunicatorError", "CollectiveTimeout", "SingleCommunicator"]
