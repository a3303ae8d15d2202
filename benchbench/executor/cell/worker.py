"""The worker process entry (``python -m benchbench.executor.cell``): arguments, the rank,
the communicator of a data-parallel cell, and where each rank writes its result."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback

from benchbench.executor.cell.measurements import deterministic_environment
from benchbench.cell_record import one_line, write_json
from benchbench.executor.cell.run_cell import run_cell
from benchbench.executor.protocol import rank_from_env


def main(argv=None) -> int:
    """Entry point of the worker process; returns the exit status (0 when a result was written)."""
    parser = argparse.ArgumentParser(prog="python -m benchbench.executor.cell")
    parser.add_argument("--cell", required=True, help="the cell description (JSON)")
    parser.add_argument("--out", required=True, help="where to write the cell result (JSON)")
    args = parser.parse_args(argv)
    from benchbench.executor.launch.lifeline import start_watchdog

    start_watchdog()  # end with the run, even when the launcher is killed outright
    with open(args.cell, encoding="utf-8") as f:
        desc = json.load(f)
    deterministic_environment(desc)
    with contextlib.ExitStack() as stack:
        return _worker(desc, args.out, stack)


def _worker(desc: dict, out: str, stack: contextlib.ExitStack) -> int:
    n_ranks = int(desc.get("n_ranks", 1))
    comm, rank = None, rank_from_env()
    if n_ranks > 1:
        from benchbench.executor.cell import ranks

        state = {"rank": rank, "where": None}
        try:
            comm = ranks.create_comm(desc, out, stack, state)
            rank = comm.rank
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            rank = state["rank"]
            where = f" ({state['where']})" if state["where"] else ""
            ranks.write_failure(desc, out, rank, f"rank {rank}{where}: cannot create the {desc.get('communicator')} "
                                                 f"communicator: {type(e).__name__}: {e}")
            ranks.abort_world(1)  # the peers must not wait out the collective time-out
            return 1
    cell = run_cell(desc, comm)
    if cell["status"] != "ok" and comm is not None and cell["reason"] and not cell["reason"].startswith("rank "):
        cell["reason"] = one_line(f"rank {rank}: {cell['reason']}")
    if comm is not None and cell["status"] != "ok":
        cell["failed_at"] = time.time()
    if rank == 0:
        write_json(out, cell)
    elif cell["status"] != "ok":
        write_json(f"{out}.rank{rank}", cell)
    if comm is not None:
        if cell["status"] in ("failed", "oom"):
            sys.stderr.flush()
            comm.abort(1)
        try:
            comm.close()
        except Exception:
            pass
    return 0
