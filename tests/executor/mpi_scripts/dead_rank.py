"""Run under mpiexec: rank 1 never joins the all-reduce; rank 0 must time out, not hang."""
import sys
import time

import numpy

from benchbench.executor import communicators
from benchbench.executor.communicators import CollectiveTimeout

comm = communicators.create("mpi", timeout_s=1.0)
if comm.rank == 1:
    time.sleep(120)  # far beyond rank 0's 1 s time-out, however busy the machine; rank 0's abort ends it
    sys.exit(0)
try:
    comm.allreduce_sum(numpy.ones(4))
except CollectiveTimeout as e:
    print(f"TIMEOUT: {e}")
    sys.stdout.flush()
    comm.abort(3)
print("NO TIMEOUT")
