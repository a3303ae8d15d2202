"""The communicator interface: rank, size and the few collectives data parallelism needs."""
from __future__ import annotations

import abc
import time


class CommunicatorError(RuntimeError):
    """A communicator cannot be created or used (missing library, wrong launch)."""


class CollectiveTimeout(CommunicatorError):
    """A collective did not complete in time: another rank died or hangs."""


class Communicator(abc.ABC):
    """Rank, size and collectives over one group of processes.

    Arrays are numpy arrays (``mpi``) or cupy arrays (``nccl``); collectives work in place.
    """

    name = "base"

    def __init__(self, timeout_s: float = 300.0):
        if timeout_s <= 0:
            raise ValueError(f"{type(self).__name__}: timeout_s must be positive, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self.rank = 0
        self.size = 1
        self.local_rank = 0  # the rank among the ranks of this node (see ``topology``)

    @abc.abstractmethod
    def broadcast(self, array, root: int = 0):
        """Overwrite ``array`` on every rank with its value on ``root``; returns ``array``."""

    @abc.abstractmethod
    def allreduce_sum(self, array):
        """Sum ``array`` over all ranks, in place; returns ``array``."""

    def allreduce_mean(self, array):
        """Average ``array`` over all ranks, in place; returns ``array``."""
        self.allreduce_sum(array)
        if self.size > 1:
            array *= array.dtype.type(1.0 / self.size)
        return array

    @abc.abstractmethod
    def barrier(self):
        """Wait until every rank arrives."""

    @abc.abstractmethod
    def allgather_obj(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""

    def bcast_obj(self, obj, root: int = 0):
        """``obj`` of ``root`` on every rank."""
        return self.allgather_obj(obj)[root]

    def abort(self, code: int = 1):
        """End every rank of the group at once (after a rank failed)."""
        raise SystemExit(code)

    def close(self):
        """Release resources; the communicator is unusable afterwards."""

    def _wait(self, done, what: str):
        """Poll ``done()`` until it is true or the time-out passes (then raise CollectiveTimeout)."""
        deadline = time.monotonic() + self.timeout_s
        spins = 0
        while not done():
            spins += 1
            if spins > 1000:
                if time.monotonic() > deadline:
                    raise CollectiveTimeout(
                        f"{self.name} {what} on rank {self.rank}/{self.size} timed out after {self.timeout_s:g} s: "
                        "another rank died or hangs"
                    )
                time.sleep(0.0002 if spins < 20000 else 0.005)

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"
