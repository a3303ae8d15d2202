"""Data-parallel GPU cells across the nodes of an MPI hostfile.

With a hostfile, a GPU spec names the GPUs of EACH node: ``gpu:0,1`` over a hostfile of two
nodes is 4 ranks, 2 per node (``mpiexec -ppn 2``), and every rank uses the GPU of its node-local
rank (``communicators.topology``). Single-device cells run on the launching node alone.
"""
from __future__ import annotations

from pathlib import Path

from benchbench.errors import UserError


class HostfileError(UserError):
    """A hostfile that cannot be read or names no host."""


def read_hostfile(path) -> list[tuple[str, int | None]]:
    """The hosts of an MPICH hostfile: ``(host, slots or None)``, one per line ``host[:slots]``.

    Blank lines and ``#`` comments are skipped.

    Raises:
        HostfileError: unreadable, a malformed line, or no host at all (the message names the line).

    Example:
        >>> # hosts: "node1:4\\nnode2  # the second\\n"  ->  [("node1", 4), ("node2", None)]
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HostfileError(f"--hostfile {path}: cannot read it ({e})") from None
    hosts = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        host, sep, slots = line.partition(":")
        host = host.strip()
        if not host or " " in host or (sep and not slots.strip().isdigit()) or (sep and int(slots) < 1):
            raise HostfileError(f"--hostfile {path}:{n}: expected 'host' or 'host:slots', got {raw.strip()!r}")
        hosts.append((host, int(slots) if sep else None))
    if not hosts:
        raise HostfileError(f"--hostfile {path}: names no host")
    return hosts


def spread_over_nodes(descs: list[dict], n_nodes: int) -> list[dict]:
    """Cell descriptions with every data-parallel GPU cell spread over ``n_nodes`` nodes.

    Such a cell gets ``ranks_per_node`` = its GPU count and ``n_ranks`` = that times ``n_nodes``;
    other cells are returned unchanged. The descriptions are copied, not modified.
    """
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or n_nodes < 1:
        raise ValueError(f"spread_over_nodes: n_nodes must be an int >= 1, got {n_nodes!r}")
    out = []
    for d in descs:
        if d.get("device_kind") == "gpu" and int(d.get("n_ranks", 1)) > 1:
            per_node = len(d.get("indices") or [])
            changes = {"ranks_per_node": per_node, "n_ranks": per_node * n_nodes, "nodes": n_nodes}
            d = {**d, **changes} if isinstance(d, dict) else d.replace(**changes)
        out.append(d)
    return out
