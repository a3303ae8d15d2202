"""GPU ranks over NCCL (``cupy.cuda.nccl``), one GPU per rank; the unique id travels over MPI.

Only device buffers go through NCCL. Objects (the unique id, losses, results) and barriers go
through an :class:`MpiCommunicator` on host memory: NCCL cannot reduce a numpy array.
"""
from __future__ import annotations

import faulthandler
import sys
import threading

from benchbench.core import backend
from benchbench.executor.communicators.base import Communicator, CommunicatorError
from benchbench.executor.communicators.mpi import MpiCommunicator

_INSTALL = ("install cupy with its CUDA libraries and NCCL with `pip install 'benchbench[gpu]'` "
            "(CUDA 13; `benchbench[gpu12]` for CUDA 12)")
# After the watchdog's own abort, a backstop that needs no Python thread: faulthandler's C
# thread dumps the stacks and ends the process even if NCCL holds the interpreter lock.
_BACKSTOP_S = 30.0


def nccl_status() -> tuple[bool, str | None]:
    """Whether NCCL can be used here, and if not, why (one clause).

    NCCL is usable when cupy sees a CUDA GPU, ``cupy.cuda.nccl`` imports and the NCCL
    library really loads (``nccl.get_version()`` answers).
    """
    if not backend.cuda_available():
        return False, f"no usable CUDA GPU ({backend.cuda_unavailable_reason()})"
    try:
        from cupy.cuda import nccl
    except Exception as e:  # ImportError, or a library that fails to load
        return False, f"cupy.cuda.nccl cannot be imported ({type(e).__name__}: {e})"
    if getattr(nccl, "available", True) is False:
        return False, "cupy was built without NCCL"
    try:
        version = nccl.get_version()
    except Exception as e:
        return False, f"the NCCL library does not load ({type(e).__name__}: {e})"
    if not version:
        return False, f"the NCCL library reports version {version!r}"
    return True, None


def nccl_available() -> bool:
    """True when :func:`nccl_status` finds NCCL usable."""
    return nccl_status()[0]


class _InitWatchdog:
    """End the job when NCCL initialisation does not finish within ``seconds``.

    A Python timer thread reports the time-out (``on_timeout(message)``, then stderr) and
    aborts every rank through MPI; faulthandler ends this process ``_BACKSTOP_S`` later should
    that thread never get to run.
    """

    def __init__(self, seconds, message, on_timeout, abort):
        self.seconds, self.message, self.on_timeout, self.abort = float(seconds), message, on_timeout, abort
        self.timer = None

    def _fire(self):
        try:
            if self.on_timeout is not None:
                self.on_timeout(self.message)
        finally:
            print(f"benchbench: {self.message}", file=sys.stderr, flush=True)
            self.abort(1)

    def __enter__(self):
        self.timer = threading.Timer(self.seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()
        faulthandler.dump_traceback_later(self.seconds + _BACKSTOP_S, exit=True)
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        faulthandler.cancel_dump_traceback_later()
        return False


class NcclCommunicator(Communicator):
    """All-reduce and broadcast of cupy arrays with NCCL; objects and barriers over MPI.

    The rank's GPU must be current when the communicator is created (the worker selects
    ``gpu:<indices[local_rank]>`` first). Every rank first tells the others whether NCCL is
    usable on it, so that all of them fail at once, naming the rank and the cause, instead of
    waiting for a peer that will never join.

    Args:
        timeout_s: seconds a collective may wait.
        comm: an ``mpi4py`` communicator (default ``COMM_WORLD``).
        init_timeout_s: seconds NCCL initialisation may take (default ``timeout_s``); past
            them the job is aborted.
        on_init_timeout: called with a one-line message before that abort (e.g. to record it).

    Raises:
        CommunicatorError: NCCL is not usable on some rank (the message names the first one).
    """

    name = "nccl"

    def __init__(self, timeout_s=300.0, comm=None, init_timeout_s=None, on_init_timeout=None):
        super().__init__(timeout_s)
        self.host = MpiCommunicator(timeout_s, comm)
        self.rank, self.size = self.host.rank, self.host.size
        self.local_rank = self.rank
        self.nccl_comm = None
        ok, why = nccl_status()
        device = _current_device()
        states = self.host.allgather_obj((ok, why, device))
        bad = [(r, w) for r, (o, w, _) in enumerate(states) if not o]
        if bad:
            r, w = bad[0]
            raise CommunicatorError(f"NCCL is not usable on rank {r}: {w}; {_INSTALL}")
        devices = [d for _, _, d in states]
        from cupy.cuda import nccl

        self._nccl = nccl
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.host.bcast_obj(uid, root=0)
        init_timeout_s = self.timeout_s if init_timeout_s is None else float(init_timeout_s)
        if init_timeout_s <= 0:
            raise ValueError(f"NcclCommunicator: init_timeout_s must be positive, got {init_timeout_s!r}")
        message = (f"rank {self.rank}/{self.size}: NCCL initialisation on GPU {device} did not finish within "
                   f"{init_timeout_s:g} s (ranks' GPUs: {devices}); aborting every rank")
        with _InitWatchdog(init_timeout_s, message, on_init_timeout, self.host.abort):
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
        if not array.flags.c_contiguous:  # NCCL reads `size` elements from the first one's address
            raise ValueError(f"NcclCommunicator.{what}: array must be C-contiguous (NCCL moves size elements from "
                             f"its pointer), got shape {array.shape} with strides {array.strides}")
        try:
            return self._dtypes[array.dtype.name]
        except KeyError:
            raise TypeError(f"NcclCommunicator.{what}: unsupported dtype {array.dtype}") from None

    def _sync(self, what):
        if backend.capturing():  # captured into a CUDA graph: the collective runs at each replay, in stream order
            return
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

    def barrier(self):
        self.host.barrier()

    def allgather_obj(self, obj):
        return self.host.allgather_obj(obj)

    def bcast_obj(self, obj, root=0):
        return self.host.bcast_obj(obj, root=root)

    def abort(self, code=1):
        try:
            if self.nccl_comm is not None:
                self.nccl_comm.abort()
        finally:
            self.host.abort(code)

    def close(self):
        if self.nccl_comm is not None:
            self.nccl_comm.destroy()
            self.nccl_comm = None


def _current_device():
    try:
        return int(backend.cupy.cuda.Device().id)
    except Exception:
        return None
