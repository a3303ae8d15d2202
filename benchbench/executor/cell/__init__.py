"""The worker side: one cell (workload x device spec x repeat) in its own process.

Run as ``python -m benchbench.executor.cell --cell cell.json --out result.json``: the launcher writes
the cell description, the worker trains and times the workload and writes the cell record
atomically. It never raises out: any exception becomes ``status: failed`` with a one-line reason, an
out-of-memory ``oom`` and a non-finite loss ``diverged``. Data-parallel cells run one process per rank
under mpiexec; rank 0 writes the result, a failing rank writes ``result.json.rankN``.

- ``worker``: the process entry (arguments, rank, communicator, where each rank writes);
- ``run_cell``: one cell in this process (``run_cell(desc, comm)``), with its measurements;
- ``training``: the cell's build and its quick and full training loops;
- ``batch_run`` and ``batch_search``: a cell at another batch size, and the largest batch that trains;
- ``measurements``: probes, energy, memory, interconnect and determinism records of a cell;
- ``window``: the timed window (energy, interference); ``ranks``: the data-parallel ranks;
- ``data_parallel``: gradient all-reduce and persistent averaging; ``device_memory``: the pool's peak.

The parent process (``executor/planning``, ``executor/launch``, ``executor/run.py``, the CLI) never
imports this package.
"""
