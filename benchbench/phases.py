"""The phases a training step is timed in, named once for the executor and the reports.

``PHASES`` lists them in the order a step runs them:

- ``data``: fetching the next batch and moving it to the device.
- ``forward``: the model's forward pass and the loss.
- ``backward``: back-propagation of the loss to every parameter's gradient.
- ``update``: the optimizer's step on the parameters (loss scaling and master weights included).
- ``allreduce``: averaging the gradients across data-parallel ranks (absent on a single device).

Standard library only, so every layer may import it.
"""
from __future__ import annotations

__all__ = ["PHASES"]

PHASES: tuple[str, ...] = ("data", "forward", "backward", "update", "allreduce")
