"""Which node a rank runs on, and its rank among the ranks of that node.

A GPU rank must pick its GPU by its *node-local* rank: with a hostfile, global ranks 2 and 3
may be the first two processes of the second node, whose GPUs are again 0 and 1. The local
rank comes from an MPI shared-memory split (``COMM_TYPE_SHARED``: the processes that share
memory are one node).

``BENCHBENCH_NODE`` overrides the node identity: when set, ranks with the same value count as
one node, whatever host they run on. It exists to test a multi-node layout on one host, e.g.
``mpiexec -n 2 -env BENCHBENCH_NODE a prog : -n 2 -env BENCHBENCH_NODE b prog``.
"""
from __future__ import annotations

import dataclasses
import os
import socket

NODE_ENV = "BENCHBENCH_NODE"


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one rank runs.

    Attributes:
        rank: the global rank.
        size: the number of ranks.
        node: the node's name (``BENCHBENCH_NODE`` when set, else the host name).
        local_rank: the rank among the ranks of the same node (0, 1, ...).
        local_size: the number of ranks on that node.
        source: ``"env"`` (``BENCHBENCH_NODE``) or ``"shared-memory"`` (the MPI split).
    """

    rank: int
    size: int
    node: str
    local_rank: int
    local_size: int
    source: str


def node_override() -> str | None:
    """The node name from ``BENCHBENCH_NODE``, or None when it is unset or empty."""
    value = os.environ.get(NODE_ENV, "").strip()
    return value or None


def local_placement(names: list[str], rank: int) -> tuple[int, int]:
    """``(local_rank, local_size)`` of ``rank`` when rank ``i`` runs on node ``names[i]``.

    Args:
        names: every rank's node name, in rank order.
        rank: the rank asked about, ``0 <= rank < len(names)``.

    Example:
        >>> local_placement(["a", "a", "b", "b"], 3)
        (1, 2)
    """
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"local_placement: names must be a list of strings, got {names!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < len(names):
        raise ValueError(f"local_placement: rank must lie in [0, {len(names)}), got {rank!r}")
    node = names[rank]
    return sum(1 for n in names[:rank] if n == node), sum(1 for n in names if n == node)


def placement(comm=None) -> Placement:
    """This rank's placement over ``comm`` (an ``mpi4py`` communicator, default ``COMM_WORLD``).

    Collective: every rank of ``comm`` must call it. Uses ``BENCHBENCH_NODE`` when set on
    every rank, else an MPI shared-memory split.

    Raises:
        CommunicatorError: mpi4py is not usable, or only some ranks set ``BENCHBENCH_NODE``.
    """
    from benchbench.executor.communicators.base import CommunicatorError
    from benchbench.executor.communicators.mpi import import_mpi

    MPI = import_mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, size = comm.Get_rank(), comm.Get_size()
    override = node_override()
    names = comm.allgather(override)
    if any(n is not None for n in names):
        if any(n is None for n in names):
            unset = [r for r, n in enumerate(names) if n is None]
            raise CommunicatorError(f"{NODE_ENV} is set on some ranks but not on ranks {unset}; set it on all or none")
        local_rank, local_size = local_placement(names, rank)
        return Placement(rank, size, override, local_rank, local_size, "env")
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
    try:
        return Placement(rank, size, socket.gethostname(), local.Get_rank(), local.Get_size(), "shared-memory")
    finally:
        local.Free()


def gpu_for_rank(indices, local_rank: int, node: str = "this node") -> int:
    """The GPU index a rank uses: ``indices[local_rank]``.

    Args:
        indices: the GPU indices of the device spec (``gpu:0,1`` -> ``[0, 1]``), the same on every node.
        local_rank: the rank's node-local rank.
        node: the node's name, for the error message.

    Raises:
        ValueError: the node runs more ranks than the spec lists GPUs.

    Example:
        >>> gpu_for_rank([0, 1], 1)
        1
    """
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("gpu_for_rank: the device spec lists no GPU")
    if isinstance(local_rank, bool) or not isinstance(local_rank, int) or local_rank < 0:
        raise ValueError(f"gpu_for_rank: local_rank must be an int >= 0, got {local_rank!r}")
    if local_rank >= len(indices):
        raise ValueError(
            f"node {node} runs more ranks than the device spec lists GPUs ({len(indices)}: "
            f"{','.join(map(str, indices))}); local rank {local_rank} has none (check the hostfile's slots per node)"
        )
    return indices[local_rank]
