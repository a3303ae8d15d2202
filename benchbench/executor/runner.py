"""One cell (workload x device spec x repeat) in the current process.

Run as ``python -m benchbench.executor.runner --cell cell.json --out result.json``:
the launcher writes the cell description, this module trains and times the
workload and writes the cell result atomically. It never raises out: any
exception becomes ``status: failed`` with a one-line reason, an out-of-memory
becomes ``oom`` and a non-finite loss ``diverged`` (training stops at once).
Data-parallel cells (``n_ranks > 1``) run one process per rank under mpiexec;
rank 0 writes the result, a failing rank writes ``result.json.rankN``.

Progress goes to stdout as lines ``@progress {"done": k, "total": n, ...}``.

The work is split into ``cell_record`` (the record, failed records, summaries),
``training`` (the cell build and the training loops), ``cell_run`` (``run_cell``)
and ``worker`` (the process entry); this module re-exports their names.
"""
from __future__ import annotations

import sys

from .cell_record import Diverged, classify, failed, one_line, skeleton, write_json
from .cell_run import run_cell
from .training import PROGRESS_PREFIX
from .worker import main

__all__ = ["PROGRESS_PREFIX", "Diverged", "classify", "failed", "main", "one_line", "run_cell", "skeleton",
           "write_json"]

if __name__ == "__main__":
    sys.exit(main())
