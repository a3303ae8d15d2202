"""The interconnect of a data-parallel device group, measured: an all-reduce sweep over message sizes.

As nccl-tests reports it: for each message size ``S`` bytes the median time ``t`` of an in-place
sum all-reduce over all ranks gives the algorithm bandwidth ``S / t`` and the bus bandwidth
``S / t × 2(n-1)/n`` (what each link carries in a ring, comparable across rank counts). A straight
line ``t = a + b × S`` fitted above the sweep's knee gives ``bandwidth = 2(n-1)/n / b`` bytes/s and
the fixed cost ``a``, with each size's relative residual; a line that does not fit is refused
(``benchbench.link_model``).

Run ``benchbench bandwidth --device cpu:dp2`` (or ``gpu:0,1``); data-parallel cells record a short
sweep of their own communicator (``interconnect``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy

from benchbench import link_model
from benchbench.core import backend
from benchbench.errors import UserError

DEFAULT_SIZES = tuple(4 ** k * 1024 for k in range(0, 8))  # 1 KiB ... 16 MiB
CELL_SIZES = tuple(4 ** k * 4096 for k in range(0, 6))  # 4 KiB ... 4 MiB, the short sweep of a cell


def _validate_sizes(sizes) -> list[int]:
    out = []
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, numpy.integer)) or s < 4 or s % 4:
            raise ValueError(f"bandwidth: message sizes must be multiples of 4 bytes >= 4, got {s!r}")
        out.append(int(s))
    if len(set(out)) < 2:
        raise ValueError(f"bandwidth: at least two distinct message sizes are needed to fit a line, got {out}")
    return sorted(set(out))


def sweep(comm, sizes=DEFAULT_SIZES, reps: int = 10, warmup: int = 2, xp=numpy) -> dict:
    """Time an in-place float32 sum all-reduce of each message size on every rank of ``comm``.

    Every rank must call it with the same arguments (it is a collective).

    Args:
        comm: a communicator (``executor.communicators``) with ``allreduce_sum``, ``barrier``,
            ``allgather_obj``, ``rank``, ``size`` (size >= 2).
        sizes: message sizes in bytes (multiples of 4; at least two distinct).
        reps: timed all-reduces per size (>= 1); the median over reps, then the slowest rank, counts.
        warmup: untimed all-reduces per size first.
        xp: the array module of the buffers (numpy for MPI, cupy for NCCL).

    Returns:
        ``{ranks, points: [{bytes, time_s, algbw_gbs, busbw_gbs}], fit: see fit_link}``.

    Raises:
        ValueError: fewer than two ranks, bad sizes or counts.
    """
    if comm.size < 2:
        raise ValueError(f"bandwidth.sweep: an all-reduce needs at least 2 ranks, got {comm.size}")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ValueError(f"bandwidth.sweep: reps must be a positive integer, got {reps!r}")
    sizes = _validate_sizes(sizes)
    n = comm.size
    points = []
    for size in sizes:
        buf = xp.ones(size // 4, dtype=xp.float32)
        for _ in range(max(0, int(warmup))):
            comm.allreduce_sum(buf)
        times = []
        for _ in range(reps):
            comm.barrier()
            with backend.synced_timer(buf) as span:  # a device buffer's own GPU, synchronised
                comm.allreduce_sum(buf)
            times.append(span.seconds)
        mine = float(numpy.median(times))
        t = max(comm.allgather_obj(mine))
        alg = size / t
        points.append({"bytes": size, "time_s": t, "algbw_gbs": alg / 1e9, "busbw_gbs": alg * 2 * (n - 1) / n / 1e9})
    return {"ranks": n, "points": points, "fit": fit_link(points, n)}


def fit_link(points: list[dict], ranks: int) -> dict:
    """The ring model's line through one sweep, above its knee, accepted or refused (see ``link_model``)."""
    return link_model.fit_link(points, ranks)


def sizes_up_to(nbytes: int | None, sizes=CELL_SIZES) -> list[int]:
    """``sizes`` extended by factors of 4 until one reaches ``nbytes`` (a model's gradient size)."""
    out = list(sizes)
    while nbytes and out[-1] < nbytes:
        out.append(out[-1] * 4)
    return out


def format_sweep(result: dict, device: str = "") -> str:
    """The sweep as a table (nccl-tests' columns) with the fitted terms."""
    lines = [f"all-reduce sweep{' on ' + device if device else ''}: {result['ranks']} ranks, float32 sum, in place",
             f"{'bytes':>12}  {'time (us)':>11}  {'algbw (GB/s)':>12}  {'busbw (GB/s)':>12}  {'fit resid.':>10}"]
    for p, r in zip(result["points"], result["fit"]["residuals"]):
        lines.append(f"{p['bytes']:>12,}  {p['time_s'] * 1e6:>11.1f}  {p['algbw_gbs']:>12.3f}  {p['busbw_gbs']:>12.3f}"
                     f"  {r:>+10.1%}")
    f = result["fit"]
    if not f.get("accepted", True):
        lines.append(f"line t = a + bytes / bandwidth refused: {f['reason']}; no latency or bandwidth is taken from "
                     "this sweep")
        return "\n".join(lines)
    fixed = "-" if f.get("fixed_s") is None else f"{f['fixed_s'] * 1e6:.3g} us"
    bw = "-" if f["bandwidth_bytes_per_s"] is None else f"{f['bandwidth_bytes_per_s'] / 1e9:.3g} GB/s"
    lines.append(f"ring model t = fixed + 2(n-1)/n x bytes / bandwidth, from {f['from_bytes']:,} bytes up: fixed cost "
                 f"{fixed} at {result['ranks']} ranks (per-hop latency needs two rank counts), bandwidth {bw}, "
                 f"largest residual {f['max_abs_residual']:.1%}")
    return "\n".join(lines)


class BandwidthError(UserError):
    """The sweep cannot run as asked (a device spec that is not a data-parallel group, no MPI, ranks
    that fail in this environment): one line for the user, exit 2 at the command line."""


MAX_SIZE = 1 << 30  # a 1 GiB message per rank: far above where the bandwidth line has settled
MAX_SIZES = 64


def parse_sizes(text: str) -> list[int]:
    """The message sizes of ``--sizes``: byte counts separated by commas, checked before any sweep.

    Args:
        text: e.g. ``"1024,4096,16384"``.

    Returns:
        The sizes, ascending.

    Raises:
        BandwidthError: empty, not integers, not multiples of 4 from 4 bytes to 1 GiB, a size given
            twice, fewer than two sizes or more than 64.
    """
    items = [x.strip() for x in str(text).split(",")]
    if not any(items):
        raise BandwidthError(f"--sizes: give two or more byte counts separated by commas, got {text!r}")
    sizes = []
    for item in items:
        try:
            size = int(item)
        except ValueError:
            raise BandwidthError(f"--sizes: {item!r} is not a whole number of bytes") from None
        if not 4 <= size <= MAX_SIZE or size % 4:
            raise BandwidthError(f"--sizes: {item} bytes is not a multiple of 4 from 4 bytes to 1 GiB "
                                 "(a message is float32 values)")
        if size in sizes:
            raise BandwidthError(f"--sizes: {size} is given twice; give each size once")
        sizes.append(size)
    if not 2 <= len(sizes) <= MAX_SIZES:
        raise BandwidthError(f"--sizes: give from 2 to {MAX_SIZES} sizes (a line is fitted through them), "
                             f"got {len(sizes)}")
    return sorted(sizes)


def run_sweep(spec: str, sizes=DEFAULT_SIZES, reps: int = 10, timeout_s: float = 600.0) -> dict:
    """Run the sweep over the device group ``spec`` (``cpu:dpN`` or ``gpu:I,J,...``) under mpiexec.

    ``mpiexec`` and its ranks run as one process group (``processes.group``): a time-out, Ctrl-C or
    SIGTERM (turned into ``KeyboardInterrupt`` by the caller) ends every one of them and removes
    the scratch folder; the ranks also end when this process dies.

    Args:
        spec: a data-parallel device spec.
        sizes, reps: as in :func:`sweep`.
        timeout_s: how long the ranks may take.

    Returns:
        :func:`sweep`'s result, plus ``device`` and ``communicator``.

    Raises:
        BandwidthError: not a data-parallel group, no mpiexec, a time-out, or the ranks failed (the
            message carries the last line of their error output).
    """
    import subprocess

    from benchbench.core import backend
    from benchbench.executor.launch import launcher, processes
    from benchbench.executor.planning import devices

    parsed, _ = devices.parse_specs([spec], backend.gpu_count())
    if len(parsed) != 1 or parsed[0].n_ranks < 2:
        raise BandwidthError(f"bandwidth --device: a data-parallel group (cpu:dp2, gpu:0,1 ...), got {spec!r}")
    d = parsed[0]
    mpiexec = launcher.mpiexec_path()
    if mpiexec is None:
        raise BandwidthError("bandwidth: mpiexec not found; install the MPI runtime with `pip install mpi4py mpich`")
    sizes = _validate_sizes(sizes)
    with processes.scratch_dir("bw") as tmp:
        out, err_path = Path(tmp) / "sweep.json", Path(tmp) / "stderr.log"
        cmd = [mpiexec, "-n", str(d.n_ranks), sys.executable, "-m", "benchbench.executor.bandwidth",
               "--communicator", d.communicator, "--indices", ",".join(map(str, d.indices or [])),
               "--sizes", ",".join(map(str, sizes)), "--reps", str(int(reps)), "--out", str(out)]
        with open(err_path, "wb") as err, processes.group(cmd, stdout=subprocess.DEVNULL, stderr=err) as proc:
            ended = processes.wait(proc, timeout_s)
        if not ended:
            raise BandwidthError(f"bandwidth: the sweep on {spec} took longer than {timeout_s:g} s (--timeout); "
                                 "its processes were ended")
        if proc.returncode != 0 or not out.exists():
            text = err_path.read_text(encoding="utf-8", errors="replace")
            tail = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["no output"]
            raise BandwidthError(f"bandwidth: the sweep on {spec} failed ({tail[0].strip()[:300]})")
        result = json.loads(out.read_text(encoding="utf-8"))
    result.update(device=d.spec, communicator=d.communicator)
    return result


def main(argv=None) -> int:
    """A rank of ``benchbench bandwidth`` (under mpiexec): sweep, rank 0 writes the JSON result."""
    parser = argparse.ArgumentParser(prog="python -m benchbench.executor.bandwidth")
    parser.add_argument("--communicator", choices=("mpi", "nccl"), required=True)
    parser.add_argument("--indices", default="", help="GPU index per rank, comma-separated (nccl)")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from benchbench.cell_record import write_json
    from benchbench.executor import communicators
    from benchbench.executor.communicators import topology
    from benchbench.executor.launch import lifeline

    lifeline.start_watchdog()  # end this rank when `benchbench bandwidth` is gone

    xp, scope = numpy, None
    if args.communicator == "nccl":
        from benchbench.core import backend

        # Node-local, as a cell's ranks: on each node its ranks take that node's GPUs of the spec.
        place = topology.placement()
        indices = [int(i) for i in args.indices.split(",") if i]
        device = backend.Device(f"gpu:{topology.gpu_for_rank(indices, place.local_rank, place.node)}")
        scope = device.scope()
        scope.__enter__()
        xp = backend.cupy
    comm = communicators.create(args.communicator, timeout_s=120.0)
    try:
        result = sweep(comm, [int(s) for s in args.sizes.split(",")], reps=args.reps, xp=xp)
        if comm.rank == 0:
            write_json(args.out, result)
    finally:
        comm.close()
        if scope is not None:
            scope.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
