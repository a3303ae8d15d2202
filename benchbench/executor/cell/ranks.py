"""The ranks of a data-parallel cell: their communicator, their failures, their combined figures.

Each rank of a GPU cell uses the GPU of its node-local rank (``communicators.topology``); a rank
that cannot create its communicator records why and aborts every rank at once, so that its peers
do not wait out the collective time-out and the launcher can report this root cause.
"""
from __future__ import annotations

import contextlib
import sys
import time

from benchbench.cell_record import failed, write_json


def rank_out(out: str, rank: int) -> str:
    """Where a rank writes its record: rank 0 the result, another rank ``result.json.rankN``."""
    return out if rank == 0 else f"{out}.rank{rank}"


def write_failure(desc: dict, out: str, rank: int, reason: str) -> None:
    """Record that ``rank`` failed with ``reason`` (stamped with the time, so that the launcher can
    tell the first failure from its consequences)."""
    cell = failed(desc, "failed", reason)
    cell["failed_at"] = time.time()
    write_json(rank_out(out, rank), cell)


def abort_world(code: int = 1) -> None:
    """End every rank of the job at once (a rank that failed before its communicator existed)."""
    from benchbench.executor import communicators

    sys.stderr.flush()
    try:
        communicators.abort_world(code)
    except Exception:  # MPI itself broken: this process alone ends
        pass


def create_comm(desc: dict, out: str, stack: contextlib.ExitStack, state: dict):
    """The cell's communicator; for a GPU cell created on the GPU of this rank's node-local rank.

    Args:
        desc: the cell description.
        out: the result path (a time-out of NCCL's start-up is recorded beside it).
        stack: keeps the rank's GPU current for the rest of the process.
        state: filled with ``rank`` and ``where`` (the GPU and node) as soon as they are known,
            for the error message should creation fail.

    Raises:
        CommunicatorError, ValueError: the communicator cannot be created, or the node has more
            ranks than the spec lists GPUs.
    """
    from benchbench.executor import communicators
    from benchbench.executor.communicators import topology

    place = topology.placement()
    state["rank"] = place.rank
    options = {}
    if desc.get("device_kind") == "gpu":
        # NCCL binds a communicator to the GPU that is current when it is created.
        from benchbench.core import backend

        gpu = topology.gpu_for_rank(desc.get("indices") or [], place.local_rank, place.node)
        state["where"] = f"gpu:{gpu} of node {place.node}"
        stack.enter_context(backend.Device(f"gpu:{gpu}").scope())
        options["init_timeout_s"] = float(desc.get("collective_timeout_s", 300))
        options["on_init_timeout"] = lambda msg: write_failure(desc, out, place.rank, msg)
    comm = communicators.create(desc.get("communicator", "mpi"),
                                timeout_s=float(desc.get("collective_timeout_s", 300)), **options)
    comm.local_rank = place.local_rank
    return comm


def combine_ranks(cell: dict, comm) -> None:
    """Memory figures of a data-parallel cell over all its ranks (one object all-gather): the peak host
    and device memory of the largest rank. (Energy is summed over the ranks' timed windows by
    ``window.combine``.)"""
    mem = cell["memory"]
    rows = comm.allgather_obj((mem["peak_host_bytes"], mem["peak_device_bytes"]))
    mem["peak_host_bytes"] = max(r[0] for r in rows)
    devs = [r[1] for r in rows if r[1] is not None]
    mem["peak_device_bytes"] = max(devs) if devs else None
    if devs and mem.get("device_scope"):
        mem["device_scope"] = mem["device_scope"].replace("rank 0", f"the largest of {len(rows)} ranks")
