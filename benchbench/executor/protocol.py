"""What the launcher and a cell's worker agree on: the worker's module, its progress lines, its rank.

The parent side (``executor/launch``) never imports the worker side (``executor/cell``); both import
this module instead.
"""
from __future__ import annotations

import os

WORKER_MODULE = "benchbench.executor.cell"  # run as ``python -m benchbench.executor.cell --cell C --out O``
PROGRESS_PREFIX = "@progress "  # a worker's stdout line ``@progress {json}`` is a progress event


def rank_from_env() -> int:
    """This process's rank as the MPI launcher set it in the environment (0 outside mpiexec)."""
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0
