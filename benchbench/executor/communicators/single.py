"""The one-process communicator: every collective is the identity."""
from __future__ import annotations

from benchbench.executor.communicators.base import Communicator


class SingleCommunicator(Communicator):
    name = "single"

    def broadcast(self, array, root=0):
        if root != 0:
            raise ValueError(f"SingleCommunicator.broadcast: root must be 0, got {root}")
        return array

    def allreduce_sum(self, array):
        return array

    def barrier(self):
        pass

    def allgather_obj(self, obj):
        return [obj]
