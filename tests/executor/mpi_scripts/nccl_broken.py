"""Run under mpiexec with an output folder: NCCL's library fails to load on rank 1 only.

Every rank must raise CommunicatorError naming rank 1 and the cause, at once (no rank waits for
a peer that will never join); each writes its message to ``OUT/rankN.txt``.
"""
import sys
from pathlib import Path

from benchbench.core import backend
from benchbench.executor import communicators
from benchbench.executor.communicators import CommunicatorError, topology

place = topology.placement()
if place.rank == 1:
    from cupy.cuda import nccl

    def _broken():
        raise RuntimeError("libnccl.so.2: cannot open shared object file")

    nccl.get_version = _broken
with backend.Device(f"gpu:{topology.gpu_for_rank([0, 1], place.local_rank)}").scope():
    try:
        communicators.create("nccl", timeout_s=120)
        message = "created"
    except CommunicatorError as e:
        message = str(e)
Path(sys.argv[1], f"rank{place.rank}.txt").write_text(message)
