"""Train a workload for a few steps, data parallel when run under mpiexec, and save the weights.

Usage: dp_train.py SPEC GLOBAL_BATCH STEPS OUT.npz {single|mpi}
"""
import sys

import numpy

from benchbench import registry
from benchbench.core import seed
from benchbench.data import BatchIterator
from benchbench.executor import communicators
from benchbench.executor.cell.data_parallel import DataParallelOptimizer

spec, global_batch, steps, out, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
comm = communicators.create(mode, timeout_s=60)
wl, params = registry.resolve(spec, registry.discover())
seed(0)
data = wl.load_data("synthetic", seed=0, n_train=global_batch * steps, n_val=global_batch)
model = wl.build_model(params)
opt = wl.build_optimizer(params)
if comm.size > 1:
    opt = DataParallelOptimizer(opt, comm)
opt.setup(model)
it = BatchIterator(data.train, global_batch // comm.size, shuffle=True, seed=0, rank=comm.rank, size=comm.size)
losses = []
for _ in range(steps):
    x, t = next(it)
    loss, _ = wl.forward(model, x, t, params)
    model.cleargrads()
    loss.backward()
    opt.update()
    losses.append(float(loss.array))
losses = comm.allgather_obj(losses)
if comm.rank == 0:
    arrays = {name: p.array for name, p in model.namedparams()}
    arrays["__losses__"] = numpy.mean(numpy.array(losses), axis=0)
    numpy.savez(out, **arrays)
