import re
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from benchbench.executor import communicators

SCRIPTS = Path(__file__).parent / "mpi_scripts"
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def mpirun(script, n=2, timeout=60):
    return subprocess.run(
        [MPIEXEC, "-n", str(n), sys.executable, str(SCRIPTS / script)],
        capture_output=True, text=True, timeout=timeout,
    )


def test_single_communicator_is_identity():
    comm = communicators.create("single")
    a = numpy.arange(4.0)
    assert comm.allreduce_mean(a) is a and list(a) == [0, 1, 2, 3]
    assert comm.allgather_obj("x") == ["x"] and comm.rank == 0 and comm.size == 1
    comm.barrier()


def test_unknown_communicator_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown communicator 'gloo'.*'mpi'"):
        communicators.create("gloo")


def test_bad_timeout():
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        communicators.create("single", timeout_s=0)


def test_nccl_without_gpu_says_how_to_get_one():
    from benchbench.core import backend

    if backend.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(communicators.CommunicatorError,
                       match=r"NCCL is not usable on rank 0: no usable CUDA GPU \(cupy is not installed\).*benchbench\[gpu\]"):
        communicators.create("nccl")


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_mpi_collectives_exact(n):
    p = mpirun("collectives.py", n=n)
    assert p.returncode == 0, p.stdout + p.stderr
    # ranks print concurrently, so their lines may run together
    assert sorted(re.findall(r"rank \d+/\d+ ok", p.stdout)) == [f"rank {r}/{n} ok" for r in range(n)]


@pytest.mark.mpi
def test_dead_rank_times_out_instead_of_hanging():
    p = mpirun("dead_rank.py", n=2, timeout=100)
    assert "TIMEOUT: mpi allreduce on rank 0/2 timed out after 1 s" in p.stdout, p.stdout + p.stderr
    assert p.returncode != 0
