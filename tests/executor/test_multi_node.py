"""A multi-node layout on one host: two "nodes" of two ranks each (BENCHBENCH_NODE per group).

Every rank must use a GPU of its own node, picked by its node-local rank: with the global rank,
ranks 2 and 3 would ask for GPUs 2 and 3, which a two-GPU node does not have.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchbench.executor.communicators import topology

SCRIPT = Path(__file__).parent / "mpi_scripts" / "node_map.py"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def _two_nodes(out, *args, timeout=120):
    """mpiexec MPMD: ranks 0-1 on node 'a', ranks 2-3 on node 'b'; what each rank wrote, by rank."""
    cmd = [sys.executable, str(SCRIPT), str(out), *args]
    proc = subprocess.run([MPIEXEC, "-n", "2", "-env", topology.NODE_ENV, "a", *cmd, ":",
                           "-n", "2", "-env", topology.NODE_ENV, "b", *cmd],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(4)]


def test_local_placement():
    assert [topology.local_placement(["a", "a", "b", "b"], r) for r in range(4)] == [(0, 2), (1, 2), (0, 2), (1, 2)]
    assert topology.local_placement(["a", "b", "a"], 2) == (1, 2)
    with pytest.raises(ValueError, match="rank must lie in"):
        topology.local_placement(["a"], 1)


def test_gpu_for_rank_refuses_a_rank_without_a_gpu():
    assert topology.gpu_for_rank([2, 3], 1) == 3
    with pytest.raises(ValueError, match="node b runs more ranks than the device spec lists GPUs .2: 0,1.; local rank 2"):
        topology.gpu_for_rank([0, 1], 2, "b")


def test_node_override_reads_the_environment(monkeypatch):
    monkeypatch.setenv(topology.NODE_ENV, " rack7 ")
    assert topology.node_override() == "rack7"
    monkeypatch.setenv(topology.NODE_ENV, "")
    assert topology.node_override() is None


@pytest.mark.mpi
def test_each_rank_maps_to_a_gpu_of_its_own_node(tmp_path):
    rows = _two_nodes(tmp_path)
    assert [(r["rank"], r["node"], r["local_rank"], r["local_size"], r["gpu"]) for r in rows] == [
        (0, "a", 0, 2, 0), (1, "a", 1, 2, 1), (2, "b", 0, 2, 0), (3, "b", 1, 2, 1)]
    assert {r["source"] for r in rows} == {"env"}


@pytest.mark.mpi
def test_without_the_override_one_host_is_one_node(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != topology.NODE_ENV}
    proc = subprocess.run([MPIEXEC, "-n", "3", sys.executable, str(SCRIPT), str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(3)]
    assert [(r["rank"], r["local_rank"], r["local_size"], r["source"]) for r in rows] == [
        (r, r, 3, "shared-memory") for r in range(3)]


@pytest.mark.mpi
@pytest.mark.multi_gpu(2)
def test_nccl_over_two_nodes_on_their_own_gpus(tmp_path):
    rows = _two_nodes(tmp_path, "--nccl")
    assert [(r["node"], r["gpu"], r["array_device"]) for r in rows] == [("a", 0, 0), ("a", 1, 1), ("b", 0, 0),
                                                                        ("b", 1, 1)]
    for r in rows:
        assert r["sum"] == [10.0] * 4  # 1 + 2 + 3 + 4
        assert r["bcast"] == [7.0] * 3
        assert r["objs"] == ["a", "a", "b", "b"]
        assert r["root_obj"] == "b!"
