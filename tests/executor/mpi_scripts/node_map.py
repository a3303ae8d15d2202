"""Run under mpiexec with an output folder: each rank writes where it runs and the GPU it picks (spec
gpu:0,1 on every node) to ``OUT/rankN.json``.

With ``--nccl`` the rank also makes that GPU current, creates the NCCL communicator and checks an
all-reduce, a broadcast, an object all-gather and a barrier across every rank of every node.
"""
import json
import sys
from pathlib import Path

from benchbench.executor.communicators import topology

place = topology.placement()
out = {"rank": place.rank, "size": place.size, "node": place.node, "local_rank": place.local_rank,
       "local_size": place.local_size, "source": place.source}
out["gpu"] = topology.gpu_for_rank([0, 1], place.local_rank, place.node) if place.local_rank < 2 else None
if "--nccl" in sys.argv:
    from benchbench.core import backend
    from benchbench.executor import communicators

    cupy = backend.cupy
    with backend.Device(f"gpu:{out['gpu']}").scope():
        comm = communicators.create("nccl", timeout_s=60)
        x = cupy.full(4, float(place.rank + 1), dtype=cupy.float32)
        comm.allreduce_sum(x)
        y = cupy.full(3, 7.0 if place.rank == 0 else -1.0, dtype=cupy.float32)
        comm.broadcast(y, root=0)
        out.update(sum=cupy.asnumpy(x).tolist(), bcast=cupy.asnumpy(y).tolist(), array_device=int(x.device.id),
                   objs=comm.allgather_obj(place.node), root_obj=comm.bcast_obj(place.node + "!", root=3))
        comm.barrier()
        comm.close()
Path(sys.argv[1], f"rank{place.rank}.json").write_text(json.dumps(out))
