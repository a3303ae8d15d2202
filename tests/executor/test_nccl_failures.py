"""NCCL start-up failures end every rank at once and are reported by their root cause."""
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchbench import registry
from benchbench.executor.launch import launcher
from benchbench.executor.run import describe_cell
from benchbench.executor.communicators import nccl as nccl_module, topology
from benchbench.executor.planning.devices import gpu_spec
from benchbench.executor.planning.plan import load_plan

MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def test_init_watchdog_reports_and_aborts_when_init_hangs():
    seen, aborted = [], threading.Event()
    with nccl_module._InitWatchdog(0.2, "rank 1/2: NCCL initialisation did not finish", seen.append,
                                   lambda code: aborted.set()):
        assert aborted.wait(10)  # stands for an ncclCommInitRank that never returns
    assert seen == ["rank 1/2: NCCL initialisation did not finish"]


def test_init_watchdog_is_quiet_when_init_finishes():
    fired = []
    with nccl_module._InitWatchdog(0.3, "late", fired.append, fired.append):
        pass
    time.sleep(0.6)
    assert fired == []


def test_nccl_status_says_why_without_a_gpu():
    from benchbench.core import backend

    if backend.cuda_available():
        pytest.skip("a GPU is present")
    ok, why = nccl_module.nccl_status()
    assert not ok and why.startswith("no usable CUDA GPU (")


@pytest.mark.mpi
@pytest.mark.multi_gpu(2)
def test_a_rank_without_a_gpu_aborts_its_peers_at_once_and_is_named(tmp_path):
    # Three ranks on one "node" for the spec gpu:0,1: local rank 2 has no GPU. Its peers are
    # already waiting in the communicator's start-up; they must end at once, not after the
    # collective time-out, and the result must name rank 2's error, not a peer's.
    plan = load_plan(None, {"devices": ["gpu:0,1"], "workloads": ["mlp_mnist:small"], "profile": "quick",
                            "data": "synthetic"})
    wl, params = registry.resolve("mlp_mnist:small", registry.discover())
    desc = describe_cell(plan, wl, params, wl.label(params), gpu_spec([0, 1]), 0)
    desc = desc.replace(n_ranks=3, collective_timeout_s=120.0)
    cell, out = tmp_path / "cell.json", tmp_path / "result.json"
    cell.write_text(json.dumps(desc.as_dict()))
    start = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", "3", "-env", topology.NODE_ENV, "a", sys.executable, "-m",
                           "benchbench.executor.cell", "--cell", str(cell), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - start
    assert proc.returncode != 0
    assert elapsed < 60, f"the peers waited {elapsed:.0f} s"
    got = launcher._read_result(out)
    assert got["status"] == "failed"
    assert got["reason"].startswith("rank 2: cannot create the nccl communicator: ValueError: node a runs more "
                                    "ranks than the device spec lists GPUs (2: 0,1); local rank 2 has none"), got["reason"]


@pytest.mark.gpu
def test_nccl_status_checks_that_the_library_loads(monkeypatch):
    from cupy.cuda import nccl

    def broken():
        raise RuntimeError("libnccl.so.2: cannot open shared object file")

    assert nccl_module.nccl_status() == (True, None)
    monkeypatch.setattr(nccl, "get_version", broken)
    ok, why = nccl_module.nccl_status()
    assert not ok and why == "the NCCL library does not load (RuntimeError: libnccl.so.2: cannot open shared object file)"
    assert not nccl_module.nccl_available()


@pytest.mark.mpi
@pytest.mark.multi_gpu(2)
def test_nccl_unusable_on_one_rank_fails_every_rank_at_once_naming_it(tmp_path):
    start = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(Path(__file__).parent / "mpi_scripts" /
                                                                    "nccl_broken.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 60
    for r in range(2):
        text = (tmp_path / f"rank{r}.txt").read_text()
        assert text.startswith("NCCL is not usable on rank 1: the NCCL library does not load (RuntimeError: "
                               "libnccl.so.2"), text


@pytest.mark.gpu
def test_nccl_refuses_a_non_contiguous_array():
    """NCCL moves ``size`` elements from the array's pointer: a strided view would send the wrong bytes."""
    from benchbench.core import backend

    comm = nccl_module.NcclCommunicator.__new__(nccl_module.NcclCommunicator)  # the check comes before NCCL
    comm._dtypes, comm.nccl_comm = {"float32": 7}, None
    strided = backend.cupy.ones((4, 6), dtype="float32")[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        comm.allreduce_sum(strided)
    with pytest.raises(ValueError, match="C-contiguous"):
        comm.broadcast(strided.T)
