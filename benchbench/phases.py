"""The phases a training step is timed in, named once for the executor and the reports.

``PHASES`` lists them in the order a step runs them:

- ``data``: taking the next batch from the iterator and moving it to the device.
- ``forward``: the model's forward pass, the loss and the metric.
- ``backward``: clearing the gradients and back-propagating the loss (scaled under mixed precision).
- ``update``: the optimizer's step (unscaling, overflow check and master-weight update included),
  less the gradient all-reduce.
- ``allreduce``: averaging the gradients over the data-parallel ranks; split out of ``update``,
  absent on a single device.
- ``graph``: a replayed CUDA graph (``run --gpu-graphs``): forward, backward, all-reduce and update
  captured as one graph and launched at once, so they are not timed apart; with its device scalars
  written before the launch and the host bookkeeping after it.

Standard library only, so every layer may import it.
"""
from __future__ import annotations

__all__ = ["PHASES", "DATA", "FORWARD", "BACKWARD", "UPDATE", "ALLREDUCE", "GRAPH"]

PHASES: tuple[str, ...] = ("data", "forward", "backward", "update", "allreduce", "graph")
DATA, FORWARD, BACKWARD, UPDATE, ALLREDUCE, GRAPH = PHASES  # the names the code that times a step imports
