"""CPU ranks over MPI (mpi4py on numpy buffers), launched with the ``mpiexec`` of the mpich wheel."""
from __future__ import annotations

import importlib.util

import numpy

from benchbench.executor.communicators.base import Communicator, CommunicatorError

_INSTALL = (
    "install MPI for Python with `pip install mpi4py mpich` (benchbench's default dependencies include them) "
    "and launch the ranks with the mpiexec next to the Python interpreter"
)


def mpi4py_available() -> bool:
    return importlib.util.find_spec("mpi4py") is not None


def import_mpi():
    """Import ``mpi4py.MPI`` or raise CommunicatorError saying how to install it."""
    try:
        from mpi4py import MPI
    except Exception as e:  # ImportError, or a broken MPI library
        raise CommunicatorError(f"mpi4py is not usable here ({e}); {_INSTALL}") from None
    return MPI


def abort_world(code: int = 1) -> None:
    """End every rank of ``MPI.COMM_WORLD`` at once (a rank that failed before it had a
    communicator); without a usable MPI nothing happens and this process ends on its own."""
    try:
        MPI = import_mpi()
    except CommunicatorError:
        return
    MPI.COMM_WORLD.Abort(code)


class MpiCommunicator(Communicator):
    """Collectives over ``MPI.COMM_WORLD`` with non-blocking calls and a time-out."""

    name = "mpi"

    def __init__(self, timeout_s=300.0, comm=None):
        super().__init__(timeout_s)
        MPI = import_mpi()
        self._MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.local_rank = self.rank  # one node unless told otherwise (the worker sets it from ``topology``)

    def _check(self, array, what):
        if not isinstance(array, numpy.ndarray):
            raise TypeError(f"MpiCommunicator.{what}: array must be a numpy array, got {type(array).__name__}")
        if not array.flags.c_contiguous:
            raise ValueError(f"MpiCommunicator.{what}: array must be C-contiguous")

    def broadcast(self, array, root=0):
        self._check(array, "broadcast")
        req = self.comm.Ibcast(array, root=root)
        self._wait(req.Test, "broadcast")
        return array

    def allreduce_sum(self, array):
        self._check(array, "allreduce_sum")
        return self._mpi_allreduce_sum(array)

    def _mpi_allreduce_sum(self, array):
        # Host buffers over MPI; subclasses that reduce device buffers elsewhere keep using this one.
        if self.size == 1:
            return array
        req = self.comm.Iallreduce(self._MPI.IN_PLACE, array, op=self._MPI.SUM)
        self._wait(req.Test, "allreduce")
        return array

    def barrier(self):
        req = self.comm.Ibarrier()
        self._wait(req.Test, "barrier")

    def allgather_obj(self, obj):
        # Objects travel as pickled bytes: sizes first, then the payload, both non-blocking.
        import pickle

        payload = numpy.frombuffer(pickle.dumps(obj), dtype=numpy.uint8)
        sizes = numpy.zeros(self.size, dtype=numpy.int64)
        sizes[self.rank] = payload.size
        self._mpi_allreduce_sum(sizes)
        buf = numpy.empty(int(sizes.sum()), dtype=numpy.uint8)
        displs = numpy.concatenate([[0], numpy.cumsum(sizes)[:-1]])
        req = self.comm.Iallgatherv(payload, [buf, sizes, displs, self._MPI.BYTE])
        self._wait(req.Test, "allgather")
        return [pickle.loads(buf[d:d + s].tobytes()) for d, s in zip(displs, sizes)]

    def abort(self, code=1):
        self.comm.Abort(code)
