"""GPU ranks over NCCL (``cupy.cuda.nccl``), one GPU per rank; the unique id travels over MPI."""
from __future__ import annotations

from ...core import backend
from .base import CommunicatorError
from .mpi import MpiCommunicator


def nccl_available() -> bool:
    if not backend.cuda_available():
        return False
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:
        return False
    return True


class NcclCommunicator(MpiCommunicator):
    """All-reduce and broadcast of cupy arrays with NCCL; objects and barriers over MPI.

    The rank's GPU must be current when the communicator is created (the runner selects
    ``gpu:<indices[rank]>`` first).
    """

    name = "nccl"

    def __init__(self, timeout_s=300.0, comm=None):
        super().__init__(timeout_s, comm)
        if not nccl_available():
            raise CommunicatorError(
                "NCCL needs cupy with a CUDA GPU (`pip install 'benchbench[gpu]'`); none is usable here"
            )
        from cupy.cuda import nccl

        self._nccl = nccl
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.bcast_obj(uid, root=0)
        self.nccl_comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._dtypes = {
            "float32": nccl.NCCL_FLOAT32,
            "float64": nccl.NCCL_FLOAT64,
            "float16": nccl.NCCL_FLOAT16,
            "int32": nccl.NCCL_INT32,
            "int64": nccl.NCCL_INT64,
        }

    def _nccl_dtype(self, array, what):
        if not isinstance(array, backend.ndarray):
            raise TypeError(f"NcclCommunicator.{what}: array must be a cupy array, got {type(array).__name__}")
        try:
            return self._dtypes[array.dtype.name]
        except KeyError:
            raise TypeError(f"NcclCommunicator.{what}: unsupported dtype {array.dtype}") from None

    def _sync(self, what):
        cupy = backend.cupy
        event = cupy.cuda.Event(disable_timing=True)
        event.record()
        self._wait(event.query, what)

    def broadcast(self, array, root=0):
        dt = self._nccl_dtype(array, "broadcast")
        stream = backend.cupy.cuda.get_current_stream()
        self.nccl_comm.bcast(array.data.ptr, array.size, dt, root, stream.ptr)
        self._sync("broadcast")
        return array

    def allreduce_sum(self, array):
        dt = self._nccl_dtype(array, "allreduce_sum")
        stream = backend.cupy.cuda.get_current_stream()
        self.nccl_comm.allReduce(array.data.ptr, array.data.ptr, array.size, dt, self._nccl.NCCL_SUM, stream.ptr)
        self._sync("allreduce")
        return array

    def abort(self, code=1):
        try:
            self.nccl_comm.abort()
        finally:
            super().abort(code)

    def close(self):
        self.nccl_comm.destroy()
