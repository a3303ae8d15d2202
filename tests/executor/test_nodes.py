"""With a hostfile, a GPU spec names the GPUs of each node; the cell runs that many ranks per node."""
import json
import subprocess
import sys

import pytest

from benchbench.executor.launch import launcher
from benchbench.executor.planning import nodes


def test_read_hostfile(tmp_path):
    f = tmp_path / "hosts"
    f.write_text("# two nodes\nnode1:4\n\n node2   # the second\n")
    assert nodes.read_hostfile(f) == [("node1", 4), ("node2", None)]


@pytest.mark.parametrize("text, needle", [("", "names no host"), ("# nothing\n", "names no host"),
                                          ("node1:x\n", ":1: expected 'host' or 'host:slots', got 'node1:x'"),
                                          ("a\nnode 2\n", ":2: expected"), ("n:0\n", ":1: expected")])
def test_bad_hostfiles_say_which_line(tmp_path, text, needle):
    f = tmp_path / "hosts"
    f.write_text(text)
    with pytest.raises(nodes.HostfileError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        nodes.read_hostfile(f)
    with pytest.raises(nodes.HostfileError, match="cannot read it"):
        nodes.read_hostfile(tmp_path / "absent")


def test_gpu_data_parallel_cells_spread_over_the_nodes():
    gpu_dp = {"device_kind": "gpu", "n_ranks": 2, "indices": [0, 1], "device": "gpu:0,1"}
    gpu_one = {"device_kind": "gpu", "n_ranks": 1, "indices": [1], "device": "gpu:1"}
    cpu_dp = {"device_kind": "cpu", "n_ranks": 2, "indices": [], "device": "cpu:dp2"}
    out = nodes.spread_over_nodes([gpu_dp, gpu_one, cpu_dp], 3)
    assert out[0] == {**gpu_dp, "ranks_per_node": 2, "n_ranks": 6, "nodes": 3}
    assert out[1:] == [gpu_one, cpu_dp] and gpu_dp["n_ranks"] == 2  # copies, not modified
    with pytest.raises(ValueError, match="n_nodes must be an int >= 1"):
        nodes.spread_over_nodes([], 0)


def test_worker_command_places_the_ranks_per_node():
    if launcher.mpiexec_path() is None:
        pytest.skip("no mpiexec")
    d = {"n_ranks": 4, "ranks_per_node": 2}
    cmd = launcher.worker_command(d, "c.json", "o.json", hostfile="hosts")
    assert cmd[:7] == [launcher.mpiexec_path(), "-n", "4", "-f", "hosts", "-ppn", "2"]
    assert "-ppn" not in launcher.worker_command({"n_ranks": 2}, "c.json", "o.json", hostfile="hosts")


def test_a_bad_hostfile_is_a_usage_error(tmp_path):
    (tmp_path / "hosts").write_text("node1:zero\n")
    proc = subprocess.run([sys.executable, "-m", "benchbench", "run", "--device", "cpu", "--workload", "mlp_mnist",
                           "--data", "synthetic", "--hostfile", "hosts", "--output", "res"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("benchbench: error: --hostfile hosts:1: expected 'host' or 'host:slots', "
                                   "got 'node1:zero'")
    assert not (tmp_path / "res").exists()


@pytest.mark.mpi
@pytest.mark.multi_gpu(2)
def test_a_gpu_cell_with_a_hostfile_runs_its_ranks_per_node(tmp_path):
    (tmp_path / "hosts").write_text("localhost:8\n")
    (tmp_path / "plan.yaml").write_text("workloads: [mlp_mnist:small]\ndata: synthetic\nprofiles:\n  quick:\n"
                                        "    warmup_steps: 1\n    steps: 2\n    val_batches: 1\n    min_time_s: 0\n")
    proc = subprocess.run([sys.executable, "-m", "benchbench", "run", "--config", "plan.yaml", "--device", "gpu:0,1",
                           "--hostfile", "hosts", "--output", "res"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    (run_file,) = list((tmp_path / "res").rglob("*.json"))
    (cell,) = json.loads(run_file.read_text())["cells"]
    assert cell["status"] == "ok" and cell["device"] == "gpu:0,1" and cell["n_devices"] == 2
