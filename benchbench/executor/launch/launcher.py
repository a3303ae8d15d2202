"""Run every cell of a plan, each in a fresh worker process.

A worker is ``python -m benchbench.executor.cell`` (or ``mpiexec -n N`` of it for a
data-parallel cell) in its own session, so a crash, an out-of-memory or a hang costs
only that cell: a time-out kills the worker's process group (``timeout``), a worker
that dies without writing its result is ``failed`` with its exit code or signal and
the last lines of its stderr (``oom`` only when the cgroup counted an out-of-memory
kill). Ctrl-C kills the current worker and propagates ``KeyboardInterrupt`` to the
caller, which marks the run interrupted. A worker dies with the launcher (parent-death
signal and a watchdog, see ``lifeline``), and the epochs a full-profile cell finished
are kept when it times out, crashes or is interrupted.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchbench.errors import UserError
from benchbench.json_files import atomic_write_json

from benchbench.executor import kept_epochs
from benchbench.executor.launch import oom_evidence, processes
from benchbench.executor.protocol import PROGRESS_PREFIX, WORKER_MODULE
from benchbench.cell_record import failed, one_line

_STDERR_TAIL_LINES = 5


MPIEXEC_ENV = "BENCHBENCH_MPIEXEC"


class MpiexecError(UserError):
    """``BENCHBENCH_MPIEXEC`` names no executable file."""


def mpiexec_path() -> str | None:
    """The launcher of data-parallel cells.

    ``BENCHBENCH_MPIEXEC`` when set (a cluster's own MPI: the ``mpiexec`` of the MPI that mpi4py
    was built against), else the ``mpiexec`` beside the interpreter (the pip-installed MPICH),
    else one on PATH, else None.

    Raises:
        MpiexecError: ``BENCHBENCH_MPIEXEC`` is set but is not an executable file.
    """
    chosen = os.environ.get(MPIEXEC_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise MpiexecError(f"{MPIEXEC_ENV}={chosen}: no such executable file; point it at the mpiexec of the "
                               "MPI that mpi4py was built against, or unset it to use the pip-installed MPICH")
        return str(path.absolute())
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


@functools.lru_cache(maxsize=4)
def _mpi_library(executable: str) -> str | None:
    """The first line of ``MPI.Get_library_version()`` as the workers' mpi4py sees it, or None."""
    code = "from mpi4py import MPI; print(MPI.Get_library_version().strip().splitlines()[0])"
    try:
        proc = subprocess.run([executable, "-c", code], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if proc.returncode == 0 and lines else None


def mpi_record(mpiexec: str | None = None) -> dict:
    """Which MPI a data-parallel cell ran with: ``{"mpiexec": path, "library": first line}``.

    Args:
        mpiexec: the launcher used (default: :func:`mpiexec_path`).

    Returns:
        The launcher's path and the first line of ``MPI.Get_library_version()`` (None when
        mpi4py cannot say).
    """
    return {"mpiexec": mpiexec if mpiexec is not None else mpiexec_path(), "library": _mpi_library(sys.executable)}


def worker_command(desc: dict, cell_path, out_path, hostfile=None) -> list[str]:
    """The command line of one cell's worker.

    Raises:
        RuntimeError: a data-parallel cell and no ``mpiexec`` to start it with.
    """
    cmd = [sys.executable, "-m", WORKER_MODULE, "--cell", str(cell_path), "--out", str(out_path)]
    n = int(desc.get("n_ranks", 1))
    if n <= 1:
        return cmd
    mpiexec = mpiexec_path()
    if mpiexec is None:
        raise RuntimeError("mpiexec not found beside the Python interpreter or on PATH; "
                           "install the MPI runtime with `pip install mpi4py mpich`")
    prefix = [mpiexec, "-n", str(n)]
    if hostfile:
        prefix += ["-f", str(hostfile)]
        if desc.get("ranks_per_node"):  # a GPU cell: as many ranks on each node as it lists GPUs
            prefix += ["-ppn", str(int(desc["ranks_per_node"]))]
    return prefix + cmd


def _read_progress(stream, on_progress) -> None:
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line.startswith(PROGRESS_PREFIX) and on_progress is not None:
            try:
                on_progress(json.loads(line[len(PROGRESS_PREFIX):]))
            except (ValueError, TypeError):
                pass


def _stderr_tail(path: Path, n: int = _STDERR_TAIL_LINES) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


_CONSEQUENCES = ("CollectiveTimeout", "another rank died or hangs")


def _root_cause_key(record: dict, rank: int) -> tuple:
    """Order failing ranks' records so that the root cause comes first: a failure of its own
    before a time-out waiting for a peer, then the earliest, then the lowest rank."""
    reason = str(record.get("reason") or "")
    consequence = any(c in reason for c in _CONSEQUENCES)
    when = record.get("failed_at")
    return (consequence, when if isinstance(when, (int, float)) else float("inf"), rank)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")) or None
    except (OSError, ValueError):
        return None


def _read_result(out: Path) -> dict | None:
    """The cell result: rank 0's when it is ok; otherwise the root cause among the failing
    ranks' records (see :func:`_root_cause_key`), not a peer's time-out; None when no
    process wrote one."""
    found = _read_json(out) if out.exists() else None
    if found is not None and found.get("status") == "ok":
        return found
    failing = [(found, 0)] if found is not None and found.get("status") is not None else []
    for rank_file in out.parent.glob(out.name + ".rank*"):
        suffix = rank_file.name[len(out.name) + len(".rank"):]
        other = _read_json(rank_file) if suffix.isdigit() else None
        if other and other.get("status") not in (None, "ok"):
            failing.append((other, int(suffix)))
    if not failing:
        return found
    cause = min(failing, key=lambda fr: _root_cause_key(*fr))[0]
    cause.pop("failed_at", None)
    return cause


class CellInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM/SIGHUP) during a cell; ``partial`` is the cell's record with the
    epochs it finished (status ``failed``, ``interrupted: true``), or None when it had none."""

    def __init__(self, partial=None):
        super().__init__()
        self.partial = partial


def read_epoch_log(path) -> list:
    """The epoch rows a worker appended to ``path`` (one JSON object a line); [] when none.

    A torn last line (the worker died while writing it) is skipped.
    """
    return [row for row in kept_epochs.json_rows(path) if isinstance(row.get("epoch"), int)]


def _keep_epochs(cell: dict, epochs_path: Path) -> dict:
    rows = read_epoch_log(epochs_path)
    if rows and not cell.get("epoch_log"):
        cell["epoch_log"] = rows
        cell["reason"] = one_line(f"{cell['reason']} (after {len(rows)} finished epoch(s), kept)")
        kept_epochs.keep(cell, epochs_path, rows)
    return cell


def run_one(desc: dict, hostfile=None, on_progress=None, log_path=None) -> dict:
    """Run one cell in a fresh worker process and return its finished record.

    Args:
        desc: the cell description from ``executor.run.describe_cell``.
        hostfile: an MPI hostfile for data-parallel cells across nodes.
        on_progress: called with each progress event (a dict) the worker reports.
        log_path: where to keep the worker's stderr (None: a temporary file).

    Returns:
        The cell record; never raises for a failing worker.

    Raises:
        CellInterrupted: Ctrl-C; the worker's process group has been killed and the
            cell's temporary folder removed.
    """
    cell = _run_worker(desc, hostfile, on_progress, log_path)
    if int(desc.get("n_ranks", 1)) > 1 and isinstance(cell, dict):
        cell["mpi"] = mpi_record()
    return cell


def _run_worker(desc: dict, hostfile, on_progress, log_path) -> dict:
    timeout = float(desc.get("timeout_s") or 1800.0)
    with processes.scratch_dir("cell") as tmp:
        tmp = Path(tmp)
        cell_path, out, epochs_path = tmp / "cell.json", tmp / "result.json", tmp / "epochs.jsonl"
        atomic_write_json(cell_path, {**desc, "epoch_log_path": str(epochs_path)}, indent=None)
        err_path = Path(log_path) if log_path else tmp / "stderr.log"
        err_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            cmd = worker_command(desc, cell_path, out, hostfile)
        except RuntimeError as e:
            return failed(desc, "failed", str(e))
        t0 = time.perf_counter()
        timed_out = False
        oom_before = oom_evidence.oom_kill_count()
        try:
            with open(err_path, "wb") as err, processes.group(cmd, stdout=subprocess.PIPE, stderr=err) as proc:
                reader = threading.Thread(target=_read_progress, args=(proc.stdout, on_progress), daemon=True)
                reader.start()
                try:
                    timed_out = not processes.wait(proc, timeout)
                finally:
                    processes.kill_group(proc)  # time-out, Ctrl-C or ranks left behind: the whole group goes
                    reader.join(timeout=5)
        except KeyboardInterrupt:
            partial = None
            rows = read_epoch_log(epochs_path)
            if rows:
                partial = failed(desc, "failed", f"interrupted after {len(rows)} finished epoch(s), kept; "
                                        "`--resume` runs the cell again", duration_s=time.perf_counter() - t0,
                                        epoch_log=rows, interrupted=True)
                kept_epochs.keep(partial, epochs_path, rows)
            raise CellInterrupted(partial) from None
        if timed_out:
            return _keep_epochs(failed(desc, "timeout", f"no result within the time-out of {timeout:g} s; "
                                              "worker killed", duration_s=time.perf_counter() - t0), epochs_path)
        duration = time.perf_counter() - t0
        cell = _read_result(out)
        if cell is None:
            tail = _stderr_tail(err_path)
            reason = f"worker {_exit_text(proc.returncode)} without writing a result"
            status = "failed"
            if proc.returncode < 0 and oom_evidence.oom_killed_since(oom_before):
                status, reason = "oom", reason + " (the cgroup counted an out-of-memory kill meanwhile)"
            return _keep_epochs(failed(desc, status, reason + (f": {tail}" if tail else ""),
                                              duration_s=duration), epochs_path)
        if cell.get("status") == "ok" and proc.returncode != 0:
            cell["status"] = "failed"
            cell["reason"] = one_line(f"worker {_exit_text(proc.returncode)} after its result: {_stderr_tail(err_path)}")
        return cell


def run_cells(descs, on_cell_start=None, on_progress=None, on_cell_done=None, hostfile=None, log_dir=None) -> list:
    """Run cells one after another, each in a fresh worker.

    Args:
        descs: cell descriptions.
        on_cell_start: ``f(index, desc)`` before a cell starts.
        on_progress: ``f(index, event)`` for the worker's progress events.
        on_cell_done: ``f(index, cell)`` with each finished record (save it here).
        hostfile: an MPI hostfile for data-parallel cells.
        log_dir: a folder to keep each worker's stderr in, or None.

    Returns:
        The finished cell records, in order.

    Raises:
        KeyboardInterrupt: Ctrl-C; cells finished before it were passed to ``on_cell_done``.
    """
    done = []
    for i, desc in enumerate(descs):
        if on_cell_start is not None:
            on_cell_start(i, desc)
        log_path = None
        if log_dir is not None:
            log_path = Path(log_dir) / (desc["id"].replace("/", "__").replace(":", "_") + ".log")
        cell = run_one(desc, hostfile=hostfile, log_path=log_path,
                       on_progress=(lambda ev, i=i: on_progress(i, ev)) if on_progress else None)
        done.append(cell)
        if on_cell_done is not None:
            on_cell_done(i, cell)
    return done
