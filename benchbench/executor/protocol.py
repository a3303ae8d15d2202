"""What the launcher and a cell's worker agree on: the worker's module, its progress lines, its rank.

The parent side (``executor/launch``) never imports the worker side (``executor/cell``); both import
this module instead.
"""
from __future__ import annotations

import dataclasses
import os

WORKER_MODULE = "benchbench.executor.cell"  # run as ``python -m benchbench.executor.cell --cell C --out O``
PROGRESS_PREFIX = "@progress "  # a worker's stdout line ``@progress {json}`` is a progress event


def data_seed(desc) -> int:
    """The seed of a cell's data: the run's first seed (``data_seed``), else the cell's own."""
    return int(desc.get("data_seed", desc.get("seed", 0)))


def rank_from_env() -> int:
    """This process's rank as the MPI launcher set it in the environment (0 outside mpiexec)."""
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


@dataclasses.dataclass
class CellDesc:
    """Everything a worker needs to run one cell; written by planning, read by the worker.

    The one place a cell description is defined: ``executor.run.plan_cells`` builds these, the
    launcher serialises them (:meth:`as_dict`) into the file the worker reads, and the worker reads
    them back (:meth:`from_dict`). It also reads like a mapping (``desc["id"]``, ``desc.get(...)``)
    so that the worker's code and tests can hand a plain dict where a description is expected.
    """

    id: str
    workload: str                      # the label that names the parameters (``mlp_mnist:small``)
    workload_name: str                 # the registry name (``mlp_mnist``)
    params: dict
    dataset: str | None
    device: str                        # the device spec (``cpu``, ``gpu:0,1``)
    device_kind: str                   # ``cpu`` or ``gpu``
    indices: list
    n_ranks: int
    communicator: str
    scaling: str
    repeat: int
    profile: str
    settings: dict
    seed: int
    data: str
    data_dir: str | None
    dtype: str
    deterministic: bool
    timeout_s: float
    collective_timeout_s: float
    batch_size: int | None             # the workload's own global batch
    data_seed: int | None = None       # the seed of the data every seed of the run trains on (the first)
    ranks_per_node: int | None = None  # data-parallel GPU cells over a hostfile's nodes
    nodes: int | None = None
    batch: dict | None = None          # a batch sweep's or the largest-batch search's block
    gpu_graphs: str | None = None      # GPU cells: on, off or auto (executor/planning/graph_modes.py)
    epoch_log_path: str | None = None  # where the worker appends finished epochs (set by the launcher)

    def as_dict(self) -> dict:
        """The JSON-ready description (fields left at None are dropped)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None or k in _ALWAYS}

    @classmethod
    def from_dict(cls, d: dict) -> CellDesc:
        """A description from :meth:`as_dict` (unknown keys refused, so a stale worker cannot misread)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"CellDesc.from_dict: unknown field(s) {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> CellDesc:
        """A copy with ``changes`` (descriptions are never changed in place once planned)."""
        return dataclasses.replace(self, **changes)

    # The mapping view the worker's code reads.
    def __getitem__(self, key: str):
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default=None):
        value = getattr(self, key, None)
        return default if value is None else value

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None

    def keys(self):
        return self.as_dict().keys()


def as_desc(desc) -> CellDesc:
    """``desc`` as a :class:`CellDesc` (a mapping such as a test's dict is converted)."""
    return desc if isinstance(desc, CellDesc) else CellDesc.from_dict(dict(desc))


_ALWAYS = {"dataset", "data_dir", "batch_size"}
