"""Run under mpiexec: checks broadcast, all-reduce (exactly, on integers), allgather and barrier."""
import sys

import numpy

from benchbench.executor import communicators

comm = communicators.create("mpi", timeout_s=30)
r, n = comm.rank, comm.size

a = numpy.arange(10, dtype=numpy.int64) * (r + 1)
comm.allreduce_sum(a)
expected = numpy.arange(10, dtype=numpy.int64) * sum(range(1, n + 1))
assert numpy.array_equal(a, expected), (a, expected)

b = numpy.full(5, r, dtype=numpy.float64)
comm.allreduce_mean(b)
assert numpy.allclose(b, (n - 1) / 2), b

c = numpy.full(3, 7 if r == 0 else -1, dtype=numpy.int32)
comm.broadcast(c, root=0)
assert numpy.array_equal(c, [7, 7, 7]), c

objs = comm.allgather_obj({"rank": r, "payload": "x" * (r * 100)})
assert [o["rank"] for o in objs] == list(range(n)), objs
comm.barrier()
print(f"rank {r}/{n} ok")
sys.stdout.flush()
