"""Running the workloads, in three rooms by process side, plus what both sides share.

- ``planning/``: the plan and its YAML, device specs, batch sizes and split, nodes, pre-flight;
- ``launch/``: the parent process's launcher, lifeline, OOM evidence, progress and signals;
- ``cell/``: the worker process (``python -m benchbench.executor.cell``): one cell's training,
  timing and measurements;
- ``run.py``: the run as one function (``plan_cells`` then ``run``); the CLI only parses and maps errors;
- shared: ``protocol`` (what launcher and worker agree on), ``timing``, ``probes``, ``interference``,
  ``bandwidth``, ``profile``, ``step`` and ``communicators/`` (the only mpi4py and NCCL importers).

The parent never imports ``cell/``. Submodules are imported where they are used; importing this
package loads nothing else.
"""
